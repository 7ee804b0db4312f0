#include "TestTlsListener.h"
#include "tls/EpollWatcher.h"
#include "tls/LocalCertificate.h"
#include "tls/TlsContext.h"
#include "tls/TlsSocket.h"

#include <QDateTime>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTest>
#include <memory>
#include <vector>

using namespace lamplighter;

namespace {

constexpr int kWaitMs = 10000;

QByteArray pattern(qsizetype size)
{
    QByteArray bytes(size, Qt::Uninitialized);
    for (qsizetype i = 0; i < size; ++i)
        bytes[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return bytes;
}

// Reads from `socket` until `size` bytes have arrived or the wait runs out.
QByteArray readExactly(TlsSocket *socket, qsizetype size)
{
    QByteArray received = socket->readAll();
    QDeadlineTimer deadline(kWaitMs);
    while (received.size() < size && !deadline.hasExpired()) {
        QTest::qWait(5);
        received += socket->readAll();
    }
    return received;
}

} // namespace

// Runs every case with the sockets watched by Qt's socket notifiers.
class TestTlsSocket : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();
    void bytesCrossBothWays_data();
    void bytesCrossBothWays();
    void smallWritesMergedInOrder();
    void untrustedServerRejected();
    void wrongAddressRejected();
    void refusedConnectionReported();
    void readBufferLimitHoldsBackTheServer();
    void disconnectSendsQueuedBytesFirst();
    void writingToAClosedPeerFailsQuietly();
    void bytesCrossAfterTheWatcherIsGone();

protected:
    virtual bool usesWatcher() const { return false; }

private:
    TlsSocket *connectClient(const QString &host, const QHostAddress &listenAddress);
    TlsSocket *acceptedSocket();

    std::shared_ptr<const TlsContext> m_serverContext;
    std::shared_ptr<const TlsContext> m_clientContext;
    std::unique_ptr<EpollWatcher> m_watcher;
    std::unique_ptr<TestTlsListener> m_listener;
    std::unique_ptr<TlsSocket> m_client;
};

// Runs every case again with the sockets watched by the thread's EpollWatcher, as the proxy's
// worker threads do.
class TestTlsSocketOnEpollWatcher : public TestTlsSocket {
    Q_OBJECT
protected:
    bool usesWatcher() const override { return true; }
};

void TestTlsSocket::initTestCase()
{
    const Result<TestTlsContexts> contexts = TestTlsContexts::create();
    QVERIFY2(contexts.ok(), qPrintable(contexts.errorMessage()));
    m_serverContext = contexts->server;
    m_clientContext = contexts->client;
}

void TestTlsSocket::init()
{
    if (usesWatcher())
        m_watcher = std::make_unique<EpollWatcher>();
    m_listener = std::make_unique<TestTlsListener>(m_serverContext);
}

void TestTlsSocket::cleanup()
{
    m_client.reset();
    m_listener.reset();
    if (m_watcher)
        QCOMPARE(m_watcher->watchedCount(), 0);
    m_watcher.reset();
}

TlsSocket *TestTlsSocket::connectClient(const QString &host, const QHostAddress &listenAddress)
{
    if (!m_listener->listen(listenAddress, 0))
        return nullptr;
    m_client = std::make_unique<TlsSocket>(m_clientContext);
    m_client->connectToHost(host, m_listener->serverPort());
    return m_client.get();
}

TlsSocket *TestTlsSocket::acceptedSocket()
{
    QDeadlineTimer deadline(kWaitMs);
    while (m_listener->accepted.empty() && !deadline.hasExpired())
        QTest::qWait(5);
    return m_listener->accepted.empty() ? nullptr : m_listener->accepted.front();
}

void TestTlsSocket::bytesCrossBothWays_data()
{
    QTest::addColumn<QString>("host");
    QTest::newRow("IP address") << QStringLiteral("127.0.0.1");
    QTest::newRow("DNS name") << QStringLiteral("localhost");
}

void TestTlsSocket::bytesCrossBothWays()
{
    QFETCH(QString, host);
    TlsSocket *client = connectClient(host, QHostAddress::LocalHost);
    QVERIFY(client);
    QSignalSpy encrypted(client, &TlsSocket::encrypted);
    QVERIFY(encrypted.wait(kWaitMs));
    QVERIFY(!client->cipherName().isEmpty());
    TlsSocket *server = acceptedSocket();
    QVERIFY(server);

    // Larger than the read buffer limit and many TLS records, written in uneven pieces.
    const QByteArray request = pattern(3 * 1024 * 1024 + 17);
    for (qsizetype offset = 0; offset < request.size(); offset += 70001)
        client->write(request.mid(offset, 70001));
    QCOMPARE(readExactly(server, request.size()), request);

    const QByteArray response = pattern(100);
    server->write(response);
    QCOMPARE(readExactly(client, response.size()), response);
    QCOMPARE(client->failure(), TlsSocket::Failure::None);
    QCOMPARE(client->bytesToWrite(), 0);
    if (m_watcher)
        QCOMPARE(m_watcher->watchedCount(), 2);
}

// Writes queued in one pass of the event loop are merged into TLS records of at most 16 KiB. The
// sizes here put merge boundaries at many offsets, and the peer must read every byte in order.
// The record sizes themselves are not visible to the test.
void TestTlsSocket::smallWritesMergedInOrder()
{
    TlsSocket *client = connectClient(QStringLiteral("127.0.0.1"), QHostAddress::LocalHost);
    QVERIFY(client);
    QSignalSpy encrypted(client, &TlsSocket::encrypted);
    QVERIFY(encrypted.wait(kWaitMs));
    TlsSocket *server = acceptedSocket();
    QVERIFY(server);

    const QByteArray written = pattern(400'000);
    qsizetype offset = 0;
    for (int piece = 0; offset < written.size(); ++piece) {
        const qsizetype size = piece % 50 == 49 ? 20'000 : (piece * 977) % 3001 + 1;
        client->write(written.mid(offset, size));
        offset += size;
    }
    QCOMPARE(readExactly(server, written.size()), written);
    QCOMPARE(client->bytesToWrite(), 0);
}

void TestTlsSocket::untrustedServerRejected()
{
    const Result<LocalCertificate> other =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY(other.ok());
    const auto trustsOther = TlsContext::forClient({other->certificate});
    QVERIFY(trustsOther.ok());
    QVERIFY(m_listener->listen(QHostAddress::LocalHost, 0));
    m_client = std::make_unique<TlsSocket>(*trustsOther);
    QSignalSpy failed(m_client.get(), &TlsSocket::errorOccurred);
    QSignalSpy encrypted(m_client.get(), &TlsSocket::encrypted);
    m_client->write("never sent");
    m_client->connectToHost(QStringLiteral("127.0.0.1"), m_listener->serverPort());

    QVERIFY(failed.wait(kWaitMs));
    QCOMPARE(m_client->failure(), TlsSocket::Failure::Verification);
    QVERIFY2(m_client->errorString().contains(QStringLiteral("certificate")),
             qPrintable(m_client->errorString()));
    QCOMPARE(encrypted.count(), 0);
    TlsSocket *server = acceptedSocket();
    QVERIFY(server);
    QSignalSpy serverClosed(server, &TlsSocket::disconnected);
    QVERIFY(serverClosed.count() > 0 || serverClosed.wait(kWaitMs));
    QCOMPARE(server->bytesAvailable(), 0);
}

// The certificate names 127.0.0.1 and localhost; a server reached as 127.0.0.2 must not pass.
void TestTlsSocket::wrongAddressRejected()
{
    TlsSocket *client =
        connectClient(QStringLiteral("127.0.0.2"), QHostAddress(QStringLiteral("127.0.0.2")));
    QVERIFY(client);
    QSignalSpy failed(client, &TlsSocket::errorOccurred);
    QVERIFY(failed.wait(kWaitMs));
    QCOMPARE(client->failure(), TlsSocket::Failure::Verification);
    QVERIFY2(client->errorString().contains(QStringLiteral("mismatch")),
             qPrintable(client->errorString()));
}

void TestTlsSocket::refusedConnectionReported()
{
    QVERIFY(m_listener->listen(QHostAddress::LocalHost, 0));
    const quint16 closedPort = m_listener->serverPort();
    m_listener->close();
    m_client = std::make_unique<TlsSocket>(m_clientContext);
    QSignalSpy failed(m_client.get(), &TlsSocket::errorOccurred);
    QSignalSpy closed(m_client.get(), &TlsSocket::disconnected);
    m_client->connectToHost(QStringLiteral("127.0.0.1"), closedPort);
    QVERIFY(failed.wait(kWaitMs));
    QCOMPARE(m_client->failure(), TlsSocket::Failure::Connect);
    QVERIFY2(m_client->errorString().contains(QStringLiteral("refused")),
             qPrintable(m_client->errorString()));
    QCOMPARE(closed.count(), 1);
    QCOMPARE(m_client->state(), TlsSocket::State::Unconnected);
}

// A reader that does not read buffers at most its limit and one TLS record. The rest waits in
// the kernel and on the writer's side, and arrives intact once the reader goes on.
void TestTlsSocket::readBufferLimitHoldsBackTheServer()
{
    TlsSocket *client = connectClient(QStringLiteral("127.0.0.1"), QHostAddress::LocalHost);
    QVERIFY(client);
    constexpr qint64 limit = 64 * 1024;
    client->setReadBufferLimit(limit);
    QSignalSpy encrypted(client, &TlsSocket::encrypted);
    QVERIFY(encrypted.wait(kWaitMs));
    TlsSocket *server = acceptedSocket();
    QVERIFY(server);

    const QByteArray payload = pattern(16 * 1024 * 1024);
    server->write(payload);
    QTest::qWait(500);
    QVERIFY2(client->bytesAvailable() <= limit + 16 * 1024,
             qPrintable(QString::number(client->bytesAvailable())));
    QVERIFY(client->bytesAvailable() > 0);
    QVERIFY2(server->bytesToWrite() > 0, "the whole payload left although nobody read it");

    QCOMPARE(readExactly(client, payload.size()), payload);
}

void TestTlsSocket::disconnectSendsQueuedBytesFirst()
{
    TlsSocket *client = connectClient(QStringLiteral("127.0.0.1"), QHostAddress::LocalHost);
    QVERIFY(client);
    TlsSocket *server = acceptedSocket();
    QVERIFY(server);
    QSignalSpy serverClosed(server, &TlsSocket::disconnected);
    QSignalSpy clientClosed(client, &TlsSocket::disconnected);

    const QByteArray payload = pattern(2 * 1024 * 1024);
    client->write(payload);
    client->disconnectFromHost();
    client->write("written after the close and dropped");
    QCOMPARE(readExactly(server, payload.size()), payload);
    QVERIFY(serverClosed.count() > 0 || serverClosed.wait(kWaitMs));
    QCOMPARE(server->failure(), TlsSocket::Failure::None);
    QCOMPARE(server->bytesAvailable(), 0);
    QCOMPARE(clientClosed.count(), 1);
}

// OpenSSL's own socket BIO would raise SIGPIPE here and end the test process.
void TestTlsSocket::writingToAClosedPeerFailsQuietly()
{
    TlsSocket *client = connectClient(QStringLiteral("127.0.0.1"), QHostAddress::LocalHost);
    QVERIFY(client);
    QSignalSpy encrypted(client, &TlsSocket::encrypted);
    QVERIFY(encrypted.wait(kWaitMs));
    TlsSocket *server = acceptedSocket();
    QVERIFY(server);
    QSignalSpy serverEncrypted(server, &TlsSocket::encrypted);
    QVERIFY(server->state() == TlsSocket::State::Encrypted || serverEncrypted.wait(kWaitMs));
    server->abort();

    QSignalSpy closed(client, &TlsSocket::disconnected);
    const QByteArray chunk = pattern(256 * 1024);
    for (int i = 0; i < 40 && closed.isEmpty(); ++i) {
        client->write(chunk);
        QTest::qWait(20);
    }
    QVERIFY(closed.count() > 0 || closed.wait(kWaitMs));
    QCOMPARE(client->state(), TlsSocket::State::Unconnected);
    QCOMPARE(client->bytesToWrite(), 0);
}

// Sockets that outlive their thread's watcher go on with Qt's socket notifiers.
void TestTlsSocket::bytesCrossAfterTheWatcherIsGone()
{
    auto watcher = std::make_unique<EpollWatcher>();
    TlsSocket *client = connectClient(QStringLiteral("127.0.0.1"), QHostAddress::LocalHost);
    QVERIFY(client);
    QSignalSpy encrypted(client, &TlsSocket::encrypted);
    QVERIFY(encrypted.wait(kWaitMs));
    TlsSocket *server = acceptedSocket();
    QVERIFY(server);
    QCOMPARE(EpollWatcher::current()->watchedCount(), 2);
    watcher.reset();
    m_watcher.reset();

    const QByteArray payload = pattern(1024 * 1024);
    client->write(payload);
    QCOMPARE(readExactly(server, payload.size()), payload);
    server->write(payload);
    QCOMPARE(readExactly(client, payload.size()), payload);
}

int main(int argc, char **argv)
{
    QCoreApplication application(argc, argv);
    TestTlsSocket onNotifiers;
    TestTlsSocketOnEpollWatcher onWatcher;
    const int notifierFailures = QTest::qExec(&onNotifiers, argc, argv);
    return notifierFailures + QTest::qExec(&onWatcher, argc, argv);
}

#include "tst_tlssocket.moc"
