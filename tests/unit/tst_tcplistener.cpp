#include "DescriptorExhaustion.h"
#include "Logging.h"
#include "util/TcpListener.h"

#include <QLoggingCategory>
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
    void pauseInHandlerEndsRound();
    void failedAcceptRetriedAfterInterval();
    void ipv6LoopbackAccepted();
    void occupiedPortNamed();
    void nullAddressRejected();
    void closedListenerFreesPort();
    void closeEndsPause();
    void secondListenRejected();

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

// Counts the log lines about failed accepts while it exists, with the proxy's debug lines
// enabled. The lines are not printed: a listener that retried without a pause would log
// thousands.
class AcceptLog {
public:
    AcceptLog()
    {
        s_current = this;
        QLoggingCategory::setFilterRules(QStringLiteral("lamplighter.proxy.debug=true"));
        m_previous = qInstallMessageHandler(&AcceptLog::handle);
    }
    ~AcceptLog()
    {
        qInstallMessageHandler(m_previous);
        QLoggingCategory::setFilterRules(QString());
        s_current = nullptr;
    }

    int warnings = 0;   // failures logged as warnings
    int retries = 0;    // failures logged at debug level
    int recoveries = 0; // lines that report accepting works again

private:
    static void handle(QtMsgType type, const QMessageLogContext &, const QString &message)
    {
        if (message.contains(QStringLiteral("failed")))
            ++(type == QtWarningMsg ? s_current->warnings : s_current->retries);
        else if (type == QtInfoMsg && message.contains(QStringLiteral(" again, ")))
            ++s_current->recoveries;
    }

    static inline AcceptLog *s_current = nullptr;
    QtMessageHandler m_previous = nullptr;
};

} // namespace

void TestTcpListener::acceptedDescriptorIsNonBlocking()
{
    std::vector<int> accepted;
    TcpListener listener(lcProxy, keepIn(accepted));
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
    TcpListener listener(lcProxy, keepIn(accepted));
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    listener.pauseAccepting();
    QVERIFY(!listener.isAccepting());

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
    QVERIFY(listener.isAccepting());
    QTRY_COMPARE(accepted.size(), size_t(2));
    closeAll(accepted);
}

// The proxy pauses from its handler when a connection reaches the handshake limit. The
// connections behind it stay in the backlog.
void TestTcpListener::pauseInHandlerEndsRound()
{
    std::vector<int> accepted;
    TcpListener *listening = nullptr;
    TcpListener listener(lcProxy, [&](int descriptor) {
        accepted.push_back(descriptor);
        listening->pauseAccepting();
    });
    listening = &listener;
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    listener.pauseAccepting();
    QTcpSocket clients[3];
    for (QTcpSocket &client : clients)
        client.connectToHost(QHostAddress::LocalHost, listener.port());
    for (QTcpSocket &client : clients)
        QTRY_COMPARE(client.state(), QAbstractSocket::ConnectedState);

    listener.resumeAccepting();
    QTRY_COMPARE(accepted.size(), size_t(1));
    QCoreApplication::processEvents();
    QCOMPARE(accepted.size(), size_t(1));
    QVERIFY(!listener.isAccepting());

    listener.resumeAccepting();
    QTRY_COMPARE(accepted.size(), size_t(2));
    closeAll(accepted);
}

// Without a free descriptor, accept() fails and the connection stays in the backlog, so the
// socket stays readable. The listener stops watching it and tries again after an interval, with
// one warning for the outage, and accepts the waiting client once descriptors are free.
void TestTcpListener::failedAcceptRetriedAfterInterval()
{
    if (DescriptorExhaustion::kSanitized)
        QSKIP("the sanitizers' own checks fail without free descriptors");
    std::vector<int> accepted;
    TcpListener listener(lcProxy, keepIn(accepted));
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    AcceptLog log;
    {
        // The client's socket takes the one descriptor left.
        DescriptorExhaustion exhaustion(1);
        QVERIFY(exhaustion.active());
        QTcpSocket client;
        client.connectToHost(QHostAddress::LocalHost, listener.port());
        QTRY_COMPARE(log.warnings, 1);
        QVERIFY(!listener.isAccepting());
        // One retry fails as well, after the interval.
        QTRY_VERIFY_WITH_TIMEOUT(log.retries >= 1, 5 * int(TcpListener::kRetryInterval.count()));
        // A listener that kept the socket watched would have retried thousands of times.
        QVERIFY2(log.retries < 10, qPrintable(QString::number(log.retries)));
        QCOMPARE(accepted.size(), size_t(0));

        exhaustion.release();
        QTRY_COMPARE_WITH_TIMEOUT(
            accepted.size(), size_t(1), 5 * int(TcpListener::kRetryInterval.count()));
    }
    closeAll(accepted);
    QCOMPARE(log.warnings, 1);
    QCOMPARE(log.recoveries, 1);
    QVERIFY(listener.isAccepting());
}

void TestTcpListener::ipv6LoopbackAccepted()
{
    std::vector<int> accepted;
    TcpListener listener(lcProxy, keepIn(accepted));
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
    TcpListener ipv4Listener(lcProxy, keepIn(accepted));
    const Status ipv4Listening = ipv4Listener.listen(QHostAddress::LocalHost, listener.port());
    QVERIFY2(ipv4Listening.ok(), qPrintable(ipv4Listening.errorMessage()));
}

void TestTcpListener::occupiedPortNamed()
{
    std::vector<int> accepted;
    TcpListener first(lcProxy, keepIn(accepted));
    QVERIFY(first.listen(QHostAddress::LocalHost, 0).ok());
    TcpListener second(lcProxy, keepIn(accepted));
    const Status listening = second.listen(QHostAddress::LocalHost, first.port());
    QVERIFY(!listening.ok());
    QCOMPARE(listening.errorMessage(), QStringLiteral("Address already in use"));
    QVERIFY(!second.isListening());
    QCOMPARE(second.port(), quint16(0));
}

void TestTcpListener::nullAddressRejected()
{
    std::vector<int> accepted;
    TcpListener listener(lcProxy, keepIn(accepted));
    const Status listening = listener.listen(QHostAddress(), 0);
    QCOMPARE(listening.errorMessage(), QStringLiteral("\"\" is not an IP address"));
    QVERIFY(!listener.isListening());
}

void TestTcpListener::closedListenerFreesPort()
{
    std::vector<int> accepted;
    TcpListener listener(lcProxy, keepIn(accepted));
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

// ProxyServer resets its count of handshakes when it closes, so a pause left over from the last
// run would never end.
void TestTcpListener::closeEndsPause()
{
    std::vector<int> accepted;
    TcpListener listener(lcProxy, keepIn(accepted));
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    listener.pauseAccepting();
    listener.close();
    QVERIFY(!listener.isAccepting());

    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    QVERIFY(listener.isAccepting());
    QTcpSocket client;
    client.connectToHost(QHostAddress::LocalHost, listener.port());
    QTRY_COMPARE(accepted.size(), size_t(1));
    closeAll(accepted);
}

void TestTcpListener::secondListenRejected()
{
    std::vector<int> accepted;
    TcpListener listener(lcProxy, keepIn(accepted));
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0).ok());
    const quint16 port = listener.port();

    const Status again = listener.listen(QHostAddress::LocalHost, 0);
    QCOMPARE(again.errorMessage(), QStringLiteral("already listening on port %1").arg(port));
    QCOMPARE(listener.port(), port);
    QTcpSocket client;
    client.connectToHost(QHostAddress::LocalHost, port);
    QTRY_COMPARE(accepted.size(), size_t(1));
    closeAll(accepted);
}

QTEST_GUILESS_MAIN(TestTcpListener)
#include "tst_tcplistener.moc"
