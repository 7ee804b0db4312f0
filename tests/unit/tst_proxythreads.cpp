// Stress tests for the proxy's worker threads: counters after aborts, connections that a
// stopped worker still holds, and the LocalProxy's setters racing with requests.
#include "TestHttpClient.h"
#include "TestSessionKey.h"
#include "TestUpstream.h"
#include "proxy/LocalProxy.h"
#include "proxy/ProxyHeaders.h"
#include "proxy/ProxyServer.h"
#include "proxy/ProxySettings.h"
#include "proxy/RequestGate.h"
#include "tls/LocalCertificate.h"
#include "tls/TlsContext.h"

#include <QDir>
#include <QSslConfiguration>
#include <QSslServer>
#include <QSslSocket>
#include <QTcpSocket>
#include <QTest>
#include <QThread>
#include <memory>
#include <unistd.h>
#include <vector>

using namespace lamplighter;

namespace {

// Counts the sockets open in this process.
int openSocketCount()
{
    int count = 0;
    const QDir fds(QStringLiteral("/proc/self/fd"));
    for (const QString &name :
         fds.entryList(QDir::AllEntries | QDir::System | QDir::NoDotAndDotDot)) {
        char target[256] = {};
        const QByteArray path = fds.filePath(name).toLocal8Bit();
        const ssize_t length = ::readlink(path.constData(), target, sizeof target - 1);
        if (length > 0 && QByteArray(target, int(length)).startsWith("socket:"))
            ++count;
    }
    return count;
}

// A gate that rejects every request with 403 at once.
class RejectingGate : public RequestGate {
public:
    void admit(const HttpHead &, Decide decide) override
    {
        decide(rejectWithStatus(
            403, QStringLiteral("Forbidden by the test gate."), QStringLiteral("test rejection")));
    }
};

// An HTTPS server that responds to every request with 101 and then never reads again, so what the
// proxy sends it stays queued in the proxy.
class StalledUpgradeUpstream : public QObject {
public:
    explicit StalledUpgradeUpstream(const LocalCertificate &certificate)
        : m_certificate(certificate)
    {
        QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
        configuration.setLocalCertificate(certificate.certificate);
        configuration.setPrivateKey(certificate.privateKey);
        m_server.setSslConfiguration(configuration);
        connect(&m_server, &QSslServer::pendingConnectionAvailable, this, [this] {
            while (m_server.hasPendingConnections()) {
                auto *socket = qobject_cast<QSslSocket *>(m_server.nextPendingConnection());
                socket->setReadBufferSize(4096);
                connect(socket, &QSslSocket::readyRead, this, [socket] {
                    if (socket->property("upgraded").toBool())
                        return; // reads nothing more, so the proxy's writes back up
                    const QByteArray received = socket->peek(socket->bytesAvailable());
                    if (!received.contains("\r\n\r\n"))
                        return;
                    socket->read(received.indexOf("\r\n\r\n") + 4);
                    socket->setProperty("upgraded", true);
                    socket->write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                  "Upgrade: websocket\r\n\r\nhello");
                });
                m_sockets.push_back(socket);
            }
        });
    }

    bool listen() { return m_server.listen(QHostAddress::LocalHost, 0); }

    UpstreamCluster cluster() const
    {
        const QUrl url(QStringLiteral("https://127.0.0.1:%1").arg(m_server.serverPort()));
        return UpstreamCluster{QStringLiteral("dev"), url, {m_certificate.certificate}};
    }

    void closeAll()
    {
        m_server.close();
        for (QSslSocket *socket : m_sockets)
            socket->abort();
    }

private:
    LocalCertificate m_certificate;
    QSslServer m_server;
    std::vector<QSslSocket *> m_sockets;
};

} // namespace

class TestProxyThreads : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void abortTwiceKeepsConnectionLimit_data();
    void abortTwiceKeepsConnectionLimit();
    void closeAndListenKeepsConnectionLimit();
    void failedHandshakesDuringAbortsKeepLimit_data();
    void failedHandshakesDuringAbortsKeepLimit();
    void handedOverTunnelClosedAfterDestroy();
    void destroyWhileRequestsRun();
    void destroyWithTunnelOpen();

private:
    // Opens TLS connections to `port` one after another and returns how many completed their
    // handshake. Each one stays open in `sockets`.
    int countAcceptedConnections(quint16 port,
                                 int attempts,
                                 std::vector<std::unique_ptr<QSslSocket>> &sockets) const;
    // Returns a signed-in LocalProxy, not yet listening, that forwards to `cluster`.
    std::unique_ptr<LocalProxy> proxyForCluster(const UpstreamCluster &cluster,
                                                const QByteArray &sessionKey) const;
    // Opens a WebSocket tunnel through the proxy on `port` to a StalledUpgradeUpstream and
    // sends more than the kernel buffers between the proxy and that upstream can take.
    static void
    fillStalledTunnel(TestHttpClient &client, quint16 port, const QByteArray &sessionKey);
    // Opens `count` TCP connections that never start a TLS handshake.
    std::vector<std::unique_ptr<QTcpSocket>> openSilentConnections(quint16 port, int count) const;

    LocalCertificate m_certificate;
};

void TestProxyThreads::initTestCase()
{
    const Result<LocalCertificate> generated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_certificate = *generated;
}

int TestProxyThreads::countAcceptedConnections(
    quint16 port, int attempts, std::vector<std::unique_ptr<QSslSocket>> &sockets) const
{
    int accepted = 0;
    for (int i = 0; i < attempts; ++i) {
        auto socket = std::make_unique<QSslSocket>();
        QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
        configuration.setCaCertificates({m_certificate.certificate});
        socket->setSslConfiguration(configuration);
        socket->connectToHostEncrypted(QStringLiteral("127.0.0.1"), port);
        QSslSocket *raw = socket.get();
        const bool settled = QTest::qWaitFor(
            [raw] {
                return raw->isEncrypted() || raw->state() == QAbstractSocket::UnconnectedState;
            },
            5000);
        // A connection that is still in its handshake counts as not accepted.
        if (!settled)
            qWarning("Connection %d neither finished its handshake nor closed within 5 s", i);
        // A connection closed on accept may still finish its handshake on the client first.
        QTest::qWait(100);
        if (raw->isEncrypted() && raw->state() == QAbstractSocket::ConnectedState)
            ++accepted;
        sockets.push_back(std::move(socket));
    }
    return accepted;
}

std::unique_ptr<LocalProxy> TestProxyThreads::proxyForCluster(const UpstreamCluster &cluster,
                                                              const QByteArray &sessionKey) const
{
    auto proxy = std::make_unique<LocalProxy>();
    proxy->setServerCertificate(m_certificate);
    proxy->setSessionKey(sessionKey);
    proxy->setClusters({cluster});
    proxy->setIdToken("eyJhbGciOiJSUzI1NiJ9.token.signature");
    return proxy;
}

void TestProxyThreads::fillStalledTunnel(TestHttpClient &client,
                                         quint16 port,
                                         const QByteArray &sessionKey)
{
    client.send(TestHttpClient::request("GET",
                                        "/clusters/dev/api/v1/namespaces/default/pods/p/exec",
                                        port,
                                        sessionKey,
                                        {"Connection: Upgrade",
                                         "Upgrade: websocket",
                                         "Sec-WebSocket-Version: 13",
                                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                                         "Sec-WebSocket-Protocol: v5.channel.k8s.io"}));
    QTest::qWait(500);
    for (int i = 0; i < 64; ++i)
        client.send(QByteArray(64 * 1024, 'x'));
    QTest::qWait(500);
}

std::vector<std::unique_ptr<QTcpSocket>> TestProxyThreads::openSilentConnections(quint16 port,
                                                                                 int count) const
{
    std::vector<std::unique_ptr<QTcpSocket>> sockets;
    for (int i = 0; i < count; ++i) {
        auto socket = std::make_unique<QTcpSocket>();
        socket->connectToHost(QHostAddress::LocalHost, port);
        socket->waitForConnected(5000);
        sockets.push_back(std::move(socket));
    }
    // The wait gives the listener time to accept them and the workers time to start the
    // handshakes.
    QTest::qWait(300);
    return sockets;
}

void TestProxyThreads::abortTwiceKeepsConnectionLimit_data()
{
    QTest::addColumn<int>("workers");
    QTest::newRow("no worker threads") << 0;
    QTest::newRow("two worker threads") << 2;
}

// LocalProxy::close() aborts twice: once through ProxyServer::close(), then itself. The
// handshakes in progress must be counted off once, or the connection limit grows.
void TestProxyThreads::abortTwiceKeepsConnectionLimit()
{
    QFETCH(int, workers);
    ProxySettings settings;
    settings.limits.maxClientConnections = 2;
    auto shared = std::make_shared<SharedProxySettings>(settings);
    ProxyServer server(shared, std::make_shared<RejectingGate>());
    server.setWorkerThreads(workers);
    const auto context = TlsContext::forServer(m_certificate.certificate, m_certificate.privateKey);
    QVERIFY(context.ok());
    server.setTlsContext(*context);
    QVERIFY(server.listen(QHostAddress::LocalHost, 0, QStringLiteral("test")).ok());

    {
        const auto silent = openSilentConnections(server.port(), 2);
        server.abortConnections();
        server.abortConnections();
    }
    QTest::qWait(300);

    std::vector<std::unique_ptr<QSslSocket>> sockets;
    const int accepted = countAcceptedConnections(server.port(), 4, sockets);
    QCOMPARE(accepted, 2);
}

// The proxy is closed and reopened five times with the same object, and the limit must hold
// afterwards.
void TestProxyThreads::closeAndListenKeepsConnectionLimit()
{
    LocalProxy proxy;
    proxy.setServerCertificate(m_certificate);
    proxy.setSessionKey(newTestSessionKey());
    ProxyLimits limits;
    limits.maxClientConnections = 2;
    proxy.setLimits(limits);
    QVERIFY(proxy.listen().ok());

    for (int round = 0; round < 5; ++round) {
        const auto silent = openSilentConnections(proxy.port(), 2);
        proxy.close();
        QVERIFY(proxy.listen().ok());
    }
    QTest::qWait(300);

    std::vector<std::unique_ptr<QSslSocket>> sockets;
    const int accepted = countAcceptedConnections(proxy.port(), 4, sockets);
    QCOMPARE(accepted, 2);
}

// Clients that drop the connection in their handshake while the owner aborts the connections
// (sign-out) over and over. Afterwards the limit must still hold.
void TestProxyThreads::failedHandshakesDuringAbortsKeepLimit_data()
{
    QTest::addColumn<bool>("abort");
    QTest::newRow("without aborts") << false;
    QTest::newRow("with aborts") << true;
}

void TestProxyThreads::failedHandshakesDuringAbortsKeepLimit()
{
    QFETCH(bool, abort);
    LocalProxy proxy;
    proxy.setServerCertificate(m_certificate);
    proxy.setSessionKey(newTestSessionKey());
    ProxyLimits limits;
    limits.maxClientConnections = 4;
    proxy.setLimits(limits);
    QVERIFY(proxy.listen().ok());

    for (int round = 0; round < 300; ++round) {
        std::vector<std::unique_ptr<QTcpSocket>> sockets;
        for (int i = 0; i < 3; ++i) {
            auto socket = std::make_unique<QTcpSocket>();
            socket->connectToHost(QHostAddress::LocalHost, proxy.port());
            socket->waitForConnected(2000);
            // Not a TLS record, so the handshake fails at once.
            socket->write("GET / HTTP/1.1\r\n\r\n");
            socket->flush();
            sockets.push_back(std::move(socket));
        }
        QCoreApplication::processEvents();
        if (abort)
            proxy.endBrowserSessions();
        QCoreApplication::processEvents();
    }
    QTest::qWait(500);

    std::vector<std::unique_ptr<QSslSocket>> accepted;
    QCOMPARE(countAcceptedConnections(proxy.port(), 6, accepted), 4);
}

// A tunnel whose client closed while bytes for the cluster were still queued: the upstream
// connection finishes on its own for at most idleTimeout. Destroying the proxy must not leave
// it open for good.
void TestProxyThreads::handedOverTunnelClosedAfterDestroy()
{
    const int before = openSocketCount();
    StalledUpgradeUpstream upstream(m_certificate);
    QVERIFY(upstream.listen());
    const QByteArray sessionKey = newTestSessionKey();
    std::unique_ptr<LocalProxy> proxy = proxyForCluster(upstream.cluster(), sessionKey);
    ProxyLimits limits;
    limits.idleTimeout = std::chrono::milliseconds(500);
    proxy->setLimits(limits);
    QVERIFY(proxy->listen().ok());

    {
        TestHttpClient client(m_certificate.certificate);
        QVERIFY(client.connectToProxy(proxy->port()));
        fillStalledTunnel(client, proxy->port(), sessionKey);
    }
    // The client is gone, so the proxy has handed the tunnel's upstream connection over.
    QTest::qWait(100);
    proxy.reset();
    // Past idleTimeout, the upstream connection should have been aborted and freed.
    QTest::qWait(1500);
    const int proxySideLeft = openSocketCount();
    upstream.closeAll();
    QTest::qWait(200);
    const int after = openSocketCount();
    qInfo() << "sockets before" << before << "with upstream still open" << proxySideLeft
            << "after closing the upstream" << after;
    QCOMPARE(after, before);
}

// Requests run on the workers while this thread changes the settings, ends the browser
// sessions and finally destroys the proxy. Run under AddressSanitizer.
void TestProxyThreads::destroyWhileRequestsRun()
{
    TestUpstream upstream;
    QVERIFY(upstream.listen());
    for (int round = 0; round < 5; ++round) {
        const QByteArray sessionKey = newTestSessionKey();
        auto proxy = std::make_unique<LocalProxy>();
        int expired = 0;
        connect(proxy.get(), &LocalProxy::idTokenExpired, this, [&expired] { ++expired; });
        proxy->setServerCertificate(m_certificate);
        proxy->setSessionKey(sessionKey);
        proxy->setClusters({upstream.cluster(QStringLiteral("dev"))});
        proxy->setIdToken("t0", QDateTime::currentDateTimeUtc().addSecs(-1));
        QVERIFY(proxy->listen().ok());

        std::vector<std::unique_ptr<TestHttpClient>> clients;
        for (int i = 0; i < 6; ++i) {
            auto client = std::make_unique<TestHttpClient>(m_certificate.certificate);
            if (client->connectToProxy(proxy->port()))
                clients.push_back(std::move(client));
        }
        for (int step = 0; step < 40; ++step) {
            for (const auto &client : clients)
                client->send(
                    TestHttpClient::request("GET", "/clusters/dev/api", proxy->port(), sessionKey));
            proxy->setIdToken("t" + QByteArray::number(step),
                              QDateTime::currentDateTimeUtc().addSecs(step % 2 ? 60 : -1));
            proxy->setClusters({upstream.cluster(QStringLiteral("dev"))});
            if (step % 10 == 9)
                proxy->endBrowserSessions();
            QTest::qWait(5);
        }
        for (const auto &client : clients)
            client->send(
                TestHttpClient::request("GET", "/clusters/dev/api", proxy->port(), sessionKey));
        // Half of the steps set an expired token, so some request must have found one.
        QTRY_VERIFY(expired > 0);
        proxy.reset();
        QCoreApplication::processEvents();
    }
}

// A tunnel with bytes queued towards a cluster that reads nothing, open while the proxy is
// destroyed. Every socket of the proxy must be closed afterwards.
void TestProxyThreads::destroyWithTunnelOpen()
{
    const int before = openSocketCount();
    StalledUpgradeUpstream upstream(m_certificate);
    QVERIFY(upstream.listen());
    const QByteArray sessionKey = newTestSessionKey();
    std::unique_ptr<LocalProxy> proxy = proxyForCluster(upstream.cluster(), sessionKey);
    QVERIFY(proxy->listen().ok());

    TestHttpClient client(m_certificate.certificate);
    QVERIFY(client.connectToProxy(proxy->port()));
    fillStalledTunnel(client, proxy->port(), sessionKey);

    proxy.reset();
    QVERIFY(client.waitForDisconnected());
    upstream.closeAll();
    QTest::qWait(300);
    QCOMPARE(openSocketCount(), before);
}

QTEST_GUILESS_MAIN(TestProxyThreads)
#include "tst_proxythreads.moc"
