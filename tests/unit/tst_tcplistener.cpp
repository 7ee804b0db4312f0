#include "proxy/TcpListener.h"

#include <QTcpSocket>
#include <QTest>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

using namespace lamplighter;

class TestTcpListener : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void acceptedDescriptorIsNonBlocking();
    void pausedListenerLeavesConnectionsWaiting();
    void ipv6LoopbackAccepted();
    void occupiedPortNamed();
    void nullAddressRejected();
    void closedListenerFreesPort();

private:
    // Returns a handler that keeps each accepted descriptor in `descriptors` for the test.
    TcpListener::Handler keepIn(std::vector<int> &descriptors)
    {
        return [&descriptors](int descriptor) {
            descriptors.push_back(descriptor);
        };
    }
};

namespace {

void closeAll(const std::vector<int> &descriptors)
{
    for (int descriptor : descriptors)
        ::close(descriptor);
}

} // namespace

void TestTcpListener::acceptedDescriptorIsNonBlocking()
{
    std::vector<int> accepted;
    TcpListener listener(keepIn(accepted));
    const Status listening = listener.listen(QHostAddress::LocalHost, 0);
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
    QVERIFY(listener.port() != 0);

    QTcpSocket client;
    client.connectToHost(QHostAddress::LocalHost, listener.port());
    QTRY_COMPARE(accepted.size(), size_t(1));
    const int flags = ::fcntl(accepted.front(), F_GETFL);
    const int descriptorFlags = ::fcntl(accepted.front(), F_GETFD);
    closeAll(accepted);
    QVERIFY(flags & O_NONBLOCK);
    QVERIFY(descriptorFlags & FD_CLOEXEC);
}

// The proxy pauses while too many TLS handshakes are running. Clients that connect meanwhile wait
// in the backlog, and all of them are accepted on resume.
void TestTcpListener::pausedListenerLeavesConnectionsWaiting()
{
    std::vector<int> accepted;
    TcpListener listener(keepIn(accepted));
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    listener.pauseAccepting();

    QTcpSocket first;
    QTcpSocket second;
    first.connectToHost(QHostAddress::LocalHost, listener.port());
    second.connectToHost(QHostAddress::LocalHost, listener.port());
    // The kernel completes the TCP handshakes of the backlog without the listener.
    QTRY_COMPARE(first.state(), QAbstractSocket::ConnectedState);
    QTRY_COMPARE(second.state(), QAbstractSocket::ConnectedState);
    QCoreApplication::processEvents();
    QCOMPARE(accepted.size(), size_t(0));

    listener.resumeAccepting();
    QTRY_COMPARE(accepted.size(), size_t(2));
    closeAll(accepted);
}

void TestTcpListener::ipv6LoopbackAccepted()
{
    std::vector<int> accepted;
    TcpListener listener(keepIn(accepted));
    const Status listening = listener.listen(QHostAddress::LocalHostIPv6, 0);
    if (!listening.ok())
        QSKIP(qPrintable(
            QStringLiteral("this machine cannot listen on ::1: %1").arg(listening.errorMessage())));
    QTcpSocket client;
    client.connectToHost(QHostAddress::LocalHostIPv6, listener.port());
    QTRY_COMPARE(accepted.size(), size_t(1));
    closeAll(accepted);
    listener.close();

    // On :: it accepts IPv6 clients only, as QTcpServer does, so 127.0.0.1 at the same port is
    // still free.
    QVERIFY(listener.listen(QHostAddress::AnyIPv6, 0).ok());
    TcpListener ipv4Listener(keepIn(accepted));
    const Status ipv4Listening = ipv4Listener.listen(QHostAddress::LocalHost, listener.port());
    QVERIFY2(ipv4Listening.ok(), qPrintable(ipv4Listening.errorMessage()));
}

void TestTcpListener::occupiedPortNamed()
{
    std::vector<int> accepted;
    TcpListener first(keepIn(accepted));
    QVERIFY(first.listen(QHostAddress::LocalHost, 0).ok());
    TcpListener second(keepIn(accepted));
    const Status listening = second.listen(QHostAddress::LocalHost, first.port());
    QVERIFY(!listening.ok());
    QCOMPARE(listening.errorMessage(), QStringLiteral("Address already in use"));
    QVERIFY(!second.isListening());
    QCOMPARE(second.port(), quint16(0));
}

void TestTcpListener::nullAddressRejected()
{
    std::vector<int> accepted;
    TcpListener listener(keepIn(accepted));
    const Status listening = listener.listen(QHostAddress(), 0);
    QCOMPARE(listening.errorMessage(), QStringLiteral("\"\" is not an IP address"));
    QVERIFY(!listener.isListening());
}

void TestTcpListener::closedListenerFreesPort()
{
    std::vector<int> accepted;
    TcpListener listener(keepIn(accepted));
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    const quint16 port = listener.port();
    listener.close();
    QVERIFY(!listener.isListening());

    QTcpSocket client;
    client.connectToHost(QHostAddress::LocalHost, port);
    QTRY_COMPARE(client.state(), QAbstractSocket::UnconnectedState);
    QCOMPARE(client.error(), QAbstractSocket::ConnectionRefusedError);
    // The port can be bound again at once.
    QVERIFY(listener.listen(QHostAddress::LocalHost, port).ok());
    QCOMPARE(listener.port(), port);
}

QTEST_GUILESS_MAIN(TestTcpListener)
#include "tst_tcplistener.moc"
