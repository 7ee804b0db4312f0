#include "TestHttpClient.h"
#include "proxy/HttpMessageParser.h"
#include "proxy/LocalProxy.h"
#include "tls/LocalCertificate.h"

#include <QRandomGenerator>
#include <QSignalSpy>
#include <QSslConfiguration>
#include <QSslServer>
#include <QSslSocket>
#include <QTest>
#include <algorithm>
#include <memory>

using namespace lamplighter;

namespace {

const QByteArray kIdToken = "eyJhbGciOiJSUzI1NiJ9.upgrade-token.signature";
const QByteArray kBearerSubprotocol = "base64url.bearer.authorization.k8s.io.c21ydWdnbGVk";
const QByteArray kServerGreeting = "greeting from the cluster\n";
constexpr qint64 kFloodChunkBytes = 64 * 1024;
constexpr qint64 kServerMaxQueuedBytes = 256 * 1024;

QByteArray randomSessionKey()
{
    QByteArray bytes(32, Qt::Uninitialized);
    QRandomGenerator::system()->fillRange(reinterpret_cast<quint32 *>(bytes.data()), 8);
    return bytes.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
}

QByteArray pathOf(const QByteArray &target)
{
    const qsizetype query = target.indexOf('?');
    return query < 0 ? target : target.left(query);
}

} // namespace

// An HTTPS API server double that switches protocols. It responds according to the path:
//   /tunnel/echo     101, then the greeting, then every received byte back unchanged
//   /tunnel/flood    101, then bytes only as fast as the socket drains, counted in floodBytes()
//   /tunnel/refused  403 with a small body, and the connection stays open for more requests
//   other paths      200 with a small JSON object
class UpgradeUpstream : public QObject {
public:
    UpgradeUpstream()
    {
        const Result<LocalCertificate> generated =
            LocalCertificate::generate(QDateTime::currentDateTimeUtc());
        if (generated.ok())
            m_certificate = *generated;
        QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
        configuration.setLocalCertificate(m_certificate.certificate);
        configuration.setPrivateKey(m_certificate.privateKey);
        m_server.setSslConfiguration(configuration);
        connect(&m_server, &QSslServer::pendingConnectionAvailable, this, [this] { accept(); });
    }

    ~UpgradeUpstream() override
    {
        m_server.close();
        qDeleteAll(m_server.findChildren<QSslSocket *>());
    }

    bool listen()
    {
        return !m_certificate.certificate.isNull() && m_server.listen(QHostAddress::LocalHost, 0);
    }

    UpstreamCluster cluster() const
    {
        const QUrl url(QStringLiteral("https://127.0.0.1:%1").arg(m_server.serverPort()));
        return UpstreamCluster{QStringLiteral("dev"), url, {m_certificate.certificate}};
    }

    const QList<HttpHead> &requests() const { return m_requests; }
    QByteArray tunnelBytes() const { return m_tunnelBytes; }
    qint64 floodBytes() const { return m_floodBytes; }
    bool tunnelClosed() const { return m_tunnelClosed; }

private:
    void accept()
    {
        while (m_server.hasPendingConnections()) {
            auto *socket = qobject_cast<QSslSocket *>(m_server.nextPendingConnection());
            if (!socket)
                continue;
            connect(socket, &QSslSocket::readyRead, this, [this, socket] { read(socket); });
            connect(socket, &QSslSocket::encryptedBytesWritten, this, [this, socket] {
                flood(socket);
            });
            connect(socket, &QSslSocket::disconnected, this, [this, socket] {
                if (socket->property("tunnel").toBool())
                    m_tunnelClosed = true;
                socket->deleteLater();
            });
            QMetaObject::invokeMethod(
                this, [this, socket] { read(socket); }, Qt::QueuedConnection);
        }
    }

    // Reads request heads one at a time, or echoes once the connection is a tunnel.
    void read(QSslSocket *socket)
    {
        QByteArray received = socket->property("unparsed").toByteArray() + socket->readAll();
        for (int guard = 0; guard < 100 && !received.isEmpty(); ++guard) {
            if (socket->property("tunnel").toBool()) {
                m_tunnelBytes += received;
                if (!socket->property("flood").toBool())
                    socket->write(received);
                received.clear();
                break;
            }
            const qsizetype headEnd = received.indexOf("\r\n\r\n");
            if (headEnd < 0)
                break;
            HttpMessageParser parser(HttpMessageParser::Type::Request, {});
            parser.parse(QByteArrayView(received.constData(), headEnd + 4));
            if (!parser.isHeadComplete()) {
                socket->abort();
                return;
            }
            received.remove(0, headEnd + 4);
            m_requests.append(parser.head());
            respond(socket, parser.head());
        }
        socket->setProperty("unparsed", received);
    }

    void respond(QSslSocket *socket, const HttpHead &request)
    {
        const QByteArray path = pathOf(request.target);
        if (path == "/tunnel/echo" || path == "/tunnel/flood") {
            socket->write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                          request.value("Upgrade") +
                          "\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
                          // Fields that the proxy must withhold from its clients.
                          "Access-Control-Allow-Origin: *\r\n"
                          "Set-Cookie: lamplighter-session=forged; Path=/\r\n\r\n");
            socket->setProperty("tunnel", true);
            if (path == "/tunnel/flood") {
                socket->setProperty("flood", true);
                flood(socket);
            } else {
                socket->write(kServerGreeting);
            }
            return;
        }
        const QByteArray body = path == "/tunnel/refused" ? R"({"kind":"Status","code":403})"
                                                          : R"({"path":")" + path + R"("})";
        const QByteArray status = path == "/tunnel/refused" ? "403 Forbidden" : "200 OK";
        socket->write("HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\n" +
                      "Content-Length: " + QByteArray::number(body.size()) + "\r\n\r\n" + body);
    }

    // Writes the next pieces of an endless tunnel stream while little is queued, so the amount
    // written follows what the proxy takes.
    void flood(QSslSocket *socket)
    {
        if (!socket->property("flood").toBool())
            return;
        for (int guard = 0; guard < 64; ++guard) {
            if (socket->bytesToWrite() + socket->encryptedBytesToWrite() >= kServerMaxQueuedBytes)
                return;
            socket->write(QByteArray(kFloodChunkBytes, 'f'));
            m_floodBytes += kFloodChunkBytes;
        }
    }

    LocalCertificate m_certificate;
    QSslServer m_server;
    QList<HttpHead> m_requests;
    QByteArray m_tunnelBytes;
    qint64 m_floodBytes = 0;
    bool m_tunnelClosed = false;
};

// A TLS client that keeps every received byte, for the bytes after a 101 head.
class TunnelClient : public QObject {
public:
    explicit TunnelClient(const QSslCertificate &trustedCertificate)
    {
        QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
        configuration.setCaCertificates({trustedCertificate});
        m_socket.setSslConfiguration(configuration);
        m_socket.setReadBufferSize(64 * 1024);
        connect(&m_socket, &QSslSocket::readyRead, this, [this] {
            if (!m_readingPaused)
                m_received += m_socket.readAll();
        });
    }

    ~TunnelClient() override
    {
        m_socket.disconnect(this);
        m_socket.abort();
    }

    bool connectToProxy(quint16 port)
    {
        QSignalSpy encrypted(&m_socket, &QSslSocket::encrypted);
        m_socket.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port);
        return encrypted.wait(10000);
    }

    void send(const QByteArray &bytes) { m_socket.write(bytes); }
    void close() { m_socket.disconnectFromHost(); }
    // A paused client reads nothing, so the proxy's writes back up. The socket buffers at most
    // 64 KiB.
    void setReadingPaused(bool paused)
    {
        m_readingPaused = paused;
        if (!paused)
            m_received += m_socket.readAll();
    }

    // Waits for a whole response head and returns it, leaving the bytes after it in received().
    QByteArray waitForHead()
    {
        if (!QTest::qWaitFor([this] { return m_received.contains("\r\n\r\n"); }, 10000))
            return {};
        const qsizetype end = m_received.indexOf("\r\n\r\n") + 4;
        const QByteArray head = m_received.left(end);
        m_received.remove(0, end);
        return head;
    }

    bool waitForReceived(const QByteArray &expected)
    {
        return QTest::qWaitFor([&] { return m_received == expected; }, 10000);
    }

    bool waitForDisconnected()
    {
        return QTest::qWaitFor(
            [this] { return m_socket.state() == QAbstractSocket::UnconnectedState; }, 10000);
    }

    QByteArray received() const { return m_received; }

private:
    QSslSocket m_socket;
    QByteArray m_received;
    bool m_readingPaused = false;
};

class TestProxyUpgrade : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void webSocketTunnelEchoes();
    void spdyTunnelEchoes();
    void upgradeCarriesIdToken();
    void upgradeResponseFieldsWithheld();
    void bearerSubprotocolStripped_data();
    void bearerSubprotocolStripped();
    void refusedUpgradeKeepsConnection();
    void unsupportedUpgradeRejected_data();
    void unsupportedUpgradeRejected();
    void upgradeWithoutSessionKeyRejected();
    void bytesAfterRequestHeadForwarded();
    void clientCloseEndsTunnel();
    void signOutEndsTunnel();
    void slowTunnelReaderBounded();
    void appWebSocketTunnelEchoes();

private:
    QByteArray upgradeRequest(const QByteArray &path,
                              const QByteArray &protocol,
                              const QList<QByteArray> &extraHeaders = {}) const;
    std::unique_ptr<TunnelClient> openTunnel(const QByteArray &path, const QByteArray &protocol);
    void checkTunnelEchoes(const QByteArray &protocol);

    LocalCertificate m_proxyCertificate;
    QByteArray m_sessionKey;
    std::unique_ptr<UpgradeUpstream> m_upstream;
    std::unique_ptr<LocalProxy> m_proxy;
};

void TestProxyUpgrade::initTestCase()
{
    const Result<LocalCertificate> generated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_proxyCertificate = *generated;
}

void TestProxyUpgrade::init()
{
    m_upstream = std::make_unique<UpgradeUpstream>();
    QVERIFY(m_upstream->listen());

    m_sessionKey = randomSessionKey();
    m_proxy = std::make_unique<LocalProxy>();
    m_proxy->setServerCertificate(m_proxyCertificate);
    m_proxy->setSessionKey(m_sessionKey);
    m_proxy->setClusters({m_upstream->cluster()});
    m_proxy->setIdToken(kIdToken);
    const Status listening = m_proxy->listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
}

void TestProxyUpgrade::cleanup()
{
    m_proxy.reset();
    m_upstream.reset();
}

QByteArray TestProxyUpgrade::upgradeRequest(const QByteArray &path,
                                            const QByteArray &protocol,
                                            const QList<QByteArray> &extraHeaders) const
{
    QList<QByteArray> headers = {"Connection: Upgrade", "Upgrade: " + protocol};
    const bool ownSubprotocols =
        std::any_of(extraHeaders.begin(), extraHeaders.end(), [](const QByteArray &header) {
            return header.startsWith("Sec-WebSocket-Protocol:");
        });
    if (protocol == "websocket") {
        headers += {"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="};
        if (!ownSubprotocols)
            headers += "Sec-WebSocket-Protocol: v5.channel.k8s.io";
    } else {
        headers += {"X-Stream-Protocol-Version: v4.channel.k8s.io",
                    "X-Stream-Protocol-Version: channel.k8s.io"};
    }
    headers += extraHeaders;
    const QByteArray method = protocol == "websocket" ? "GET" : "POST";
    return TestHttpClient::request(
        method, "/clusters/dev" + path, m_proxy->port(), m_sessionKey, headers);
}

std::unique_ptr<TunnelClient> TestProxyUpgrade::openTunnel(const QByteArray &path,
                                                           const QByteArray &protocol)
{
    auto client = std::make_unique<TunnelClient>(m_proxyCertificate.certificate);
    if (!client->connectToProxy(m_proxy->port()))
        return nullptr;
    client->send(upgradeRequest(path, protocol));
    return client;
}

void TestProxyUpgrade::checkTunnelEchoes(const QByteArray &protocol)
{
    const std::unique_ptr<TunnelClient> client = openTunnel("/tunnel/echo", protocol);
    QVERIFY(client);
    const QByteArray head = client->waitForHead();
    QVERIFY2(head.startsWith("HTTP/1.1 101 "), head.constData());
    QVERIFY2(head.contains("\r\nConnection: Upgrade\r\n"), head.constData());
    QVERIFY2(head.contains("\r\nUpgrade: " + protocol + "\r\n"), head.constData());
    QVERIFY2(head.contains("\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n"), head.constData());
    QVERIFY(client->waitForReceived(kServerGreeting));

    // Every byte value, and a piece larger than one TLS record, in both directions.
    QByteArray payload;
    for (int i = 0; i < 256; ++i)
        payload.append(static_cast<char>(i));
    payload += QByteArray(100 * 1024, 'x') + "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    client->send(payload);
    QVERIFY(client->waitForReceived(kServerGreeting + payload));
    QCOMPARE(m_upstream->tunnelBytes(), payload);
    QCOMPARE(m_upstream->requests().size(), 1);
}

void TestProxyUpgrade::webSocketTunnelEchoes()
{
    checkTunnelEchoes("websocket");
}

void TestProxyUpgrade::spdyTunnelEchoes()
{
    checkTunnelEchoes("SPDY/3.1");
}

void TestProxyUpgrade::upgradeCarriesIdToken()
{
    const std::unique_ptr<TunnelClient> client =
        openTunnel("/tunnel/echo?command=cat", "websocket");
    QVERIFY(client);
    QVERIFY(client->waitForHead().startsWith("HTTP/1.1 101 "));

    QCOMPARE(m_upstream->requests().size(), 1);
    const HttpHead &request = m_upstream->requests().first();
    QCOMPARE(request.method, QByteArray("GET"));
    QCOMPARE(request.target, QByteArray("/tunnel/echo?command=cat"));
    QCOMPARE(request.values("Authorization"), QList<QByteArray>{"Bearer " + kIdToken});
    QCOMPARE(request.tokens("Connection"), QList<QByteArray>{"upgrade"});
    QCOMPARE(request.value("Upgrade"), QByteArray("websocket"));
    QCOMPARE(request.value("Sec-WebSocket-Version"), QByteArray("13"));
    QCOMPARE(request.value("Sec-WebSocket-Key"), QByteArray("dGhlIHNhbXBsZSBub25jZQ=="));
    QCOMPARE(request.value("Sec-WebSocket-Protocol"), QByteArray("v5.channel.k8s.io"));
    for (const HttpHeader &header : request.headers)
        QVERIFY2(!header.value.contains(m_sessionKey), header.name.constData());
}

// The 101 head reaches the client without the cluster's Access-Control-* fields and without a
// Set-Cookie of the proxy's session cookie.
void TestProxyUpgrade::upgradeResponseFieldsWithheld()
{
    const std::unique_ptr<TunnelClient> client =
        openTunnel("/tunnel/echo?command=cat", "websocket");
    QVERIFY(client);
    const QByteArray head = client->waitForHead().toLower();
    QVERIFY2(head.startsWith("http/1.1 101 "), head.constData());
    QVERIFY2(head.contains("sec-websocket-protocol: v5.channel.k8s.io"), head.constData());
    QVERIFY2(!head.contains("access-control-"), head.constData());
    QVERIFY2(!head.contains("set-cookie"), head.constData());
}

void TestProxyUpgrade::bearerSubprotocolStripped_data()
{
    QTest::addColumn<QList<QByteArray>>("protocolHeaders");
    QTest::addColumn<QList<QByteArray>>("expected");

    const QByteArray field = "Sec-WebSocket-Protocol: ";
    const QList<QByteArray> v5Only = {"v5.channel.k8s.io"};
    QTest::newRow("before v5") << QList<QByteArray>{field + kBearerSubprotocol +
                                                    ", v5.channel.k8s.io"}
                               << v5Only;
    QTest::newRow("after v5") << QList<QByteArray>{field + "v5.channel.k8s.io," +
                                                   kBearerSubprotocol}
                              << v5Only;
    QTest::newRow("own field") << QList<QByteArray>{field + kBearerSubprotocol,
                                                    field + "v5.channel.k8s.io"}
                               << v5Only;
    QTest::newRow("upper case") << QList<QByteArray>{field + kBearerSubprotocol.toUpper() +
                                                     ", v5.channel.k8s.io"}
                                << v5Only;
    QTest::newRow("two tokens") << QList<QByteArray>{field + kBearerSubprotocol + "," +
                                                     kBearerSubprotocol + "x, v4.channel.k8s.io"}
                                << QList<QByteArray>{"v4.channel.k8s.io"};
    QTest::newRow("nothing left") << QList<QByteArray>{field + kBearerSubprotocol}
                                  << QList<QByteArray>{};
    // kube-apiserver trims U+00A0 around an entry, so it would read this one as the token.
    QTest::newRow("after a no-break space")
        << QList<QByteArray>{field + "v5.channel.k8s.io,\xC2\xA0" + kBearerSubprotocol} << v5Only;
}

void TestProxyUpgrade::bearerSubprotocolStripped()
{
    QFETCH(QList<QByteArray>, protocolHeaders);
    QFETCH(QList<QByteArray>, expected);

    auto client = std::make_unique<TunnelClient>(m_proxyCertificate.certificate);
    QVERIFY(client->connectToProxy(m_proxy->port()));
    client->send(upgradeRequest("/tunnel/echo", "websocket", protocolHeaders));
    QVERIFY(client->waitForHead().startsWith("HTTP/1.1 101 "));

    QCOMPARE(m_upstream->requests().size(), 1);
    const HttpHead &request = m_upstream->requests().first();
    QCOMPARE(request.values("Sec-WebSocket-Protocol"), expected);
    for (const HttpHeader &header : request.headers)
        QVERIFY2(!header.value.toLower().contains("bearer.authorization"),
                 header.value.constData());
}

void TestProxyUpgrade::refusedUpgradeKeepsConnection()
{
    TestHttpClient client(m_proxyCertificate.certificate);
    QVERIFY(client.connectToProxy(m_proxy->port()));

    client.send(upgradeRequest("/tunnel/refused", "websocket"));
    const std::optional<TestResponse> refused = client.waitForResponse();
    QVERIFY(refused);
    QCOMPARE(refused->head.statusCode, 403);
    QCOMPARE(refused->body, QByteArray(R"({"kind":"Status","code":403})"));
    QVERIFY(!refused->head.contains("Upgrade"));

    client.send(TestHttpClient::request(
        "GET", "/clusters/dev/api/v1/namespaces", m_proxy->port(), m_sessionKey));
    const std::optional<TestResponse> next = client.waitForResponse();
    QVERIFY(next);
    QCOMPARE(next->head.statusCode, 200);
    QCOMPARE(next->body, QByteArray(R"({"path":"/api/v1/namespaces"})"));

    // A later request without the session key is still checked.
    client.send(TestHttpClient::request("GET", "/clusters/dev/api", m_proxy->port(), {}));
    const std::optional<TestResponse> unauthorized = client.waitForResponse();
    QVERIFY(unauthorized);
    QCOMPARE(unauthorized->head.statusCode, 401);

    QCOMPARE(m_upstream->requests().size(), 2);
    const HttpHead &second = m_upstream->requests().at(1);
    QCOMPARE(second.target, QByteArray("/api/v1/namespaces"));
    QCOMPARE(second.values("Authorization"), QList<QByteArray>{"Bearer " + kIdToken});
    QVERIFY(!second.contains("Upgrade"));
    QVERIFY(client.isConnected());
}

void TestProxyUpgrade::unsupportedUpgradeRejected_data()
{
    QTest::addColumn<QList<QByteArray>>("headers");
    QTest::addColumn<int>("expectedStatus");

    QTest::newRow("h2c") << QList<QByteArray>{"Connection: Upgrade", "Upgrade: h2c"} << 501;
    QTest::newRow("no Connection token")
        << QList<QByteArray>{"Connection: keep-alive", "Upgrade: websocket"} << 501;
    QTest::newRow("Connection token only") << QList<QByteArray>{"Connection: Upgrade"} << 501;
    QTest::newRow("with a body") << QList<QByteArray>{"Connection: Upgrade",
                                                      "Upgrade: websocket",
                                                      "Content-Length: 2"}
                                 << 400;
}

void TestProxyUpgrade::unsupportedUpgradeRejected()
{
    QFETCH(QList<QByteArray>, headers);
    QFETCH(int, expectedStatus);

    TestHttpClient client(m_proxyCertificate.certificate);
    QVERIFY(client.connectToProxy(m_proxy->port()));
    const QByteArray body = headers.last().startsWith("Content-Length") ? "ab" : "";
    client.send(TestHttpClient::request(
        "GET", "/clusters/dev/tunnel/echo", m_proxy->port(), m_sessionKey, headers, body));
    const std::optional<TestResponse> response = client.waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, expectedStatus);
    QVERIFY(client.waitForDisconnected());
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyUpgrade::upgradeWithoutSessionKeyRejected()
{
    TestHttpClient client(m_proxyCertificate.certificate);
    QVERIFY(client.connectToProxy(m_proxy->port()));
    client.send(TestHttpClient::request(
        "GET",
        "/clusters/dev/tunnel/echo",
        m_proxy->port(),
        {},
        {"Connection: Upgrade",
         "Upgrade: websocket",
         "Sec-WebSocket-Protocol: " + kBearerSubprotocol + ", v5.channel.k8s.io"}));
    const std::optional<TestResponse> response = client.waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QCOMPARE(m_upstream->requests().size(), 0);
}

// The first byte after the head is a line feed, which a parser that stops one byte early would
// drop or pass on twice.
void TestProxyUpgrade::bytesAfterRequestHeadForwarded()
{
    auto client = std::make_unique<TunnelClient>(m_proxyCertificate.certificate);
    QVERIFY(client->connectToProxy(m_proxy->port()));
    client->send(upgradeRequest("/tunnel/echo", "SPDY/3.1") + "\nearly bytes");
    QVERIFY(client->waitForHead().startsWith("HTTP/1.1 101 "));
    QVERIFY(client->waitForReceived(kServerGreeting + "\nearly bytes"));
    QCOMPARE(m_upstream->tunnelBytes(), QByteArray("\nearly bytes"));
}

void TestProxyUpgrade::clientCloseEndsTunnel()
{
    const std::unique_ptr<TunnelClient> client = openTunnel("/tunnel/echo", "websocket");
    QVERIFY(client);
    QVERIFY(client->waitForHead().startsWith("HTTP/1.1 101 "));
    QVERIFY(client->waitForReceived(kServerGreeting));

    client->send("last words");
    client->close();
    QVERIFY(QTest::qWaitFor([this] { return m_upstream->tunnelClosed(); }, 10000));
    QCOMPARE(m_upstream->tunnelBytes(), QByteArray("last words"));
}

void TestProxyUpgrade::signOutEndsTunnel()
{
    const std::unique_ptr<TunnelClient> client = openTunnel("/tunnel/echo", "websocket");
    QVERIFY(client);
    QVERIFY(client->waitForHead().startsWith("HTTP/1.1 101 "));
    QVERIFY(client->waitForReceived(kServerGreeting));

    m_proxy->endBrowserSessions();
    QVERIFY(QTest::qWaitFor([this] { return m_upstream->tunnelClosed(); }, 10000));
}

void TestProxyUpgrade::slowTunnelReaderBounded()
{
    const qint64 maxInFlightBytes = 64LL * 1024 * 1024;
    const std::unique_ptr<TunnelClient> client = openTunnel("/tunnel/flood", "SPDY/3.1");
    QVERIFY(client);
    QVERIFY(client->waitForHead().startsWith("HTTP/1.1 101 "));
    client->setReadingPaused(true);

    // Wait until the server has made no progress for a second.
    qint64 written = -1;
    QVERIFY(QTest::qWaitFor(
        [&] {
            const qint64 now = m_upstream->floodBytes();
            const bool stalled = now > 0 && now == written;
            written = now;
            QTest::qWait(1000);
            return stalled;
        },
        60000));
    QVERIFY2(written < maxInFlightBytes,
             qPrintable(QStringLiteral("the server wrote %1 bytes").arg(written)));

    client->setReadingPaused(false);
    QVERIFY(QTest::qWaitFor([&] { return m_upstream->floodBytes() > written + 8 * 1024 * 1024; },
                            30000));
    QVERIFY(!client->received().isEmpty());
}

// A browser's WebSocket to an app goes through the same tunnel, authenticated by the session
// cookie and carrying the injected ID token instead of the cookie.
void TestProxyUpgrade::appWebSocketTunnelEchoes()
{
    UpstreamApp app;
    app.name = QStringLiteral("headlamp");
    app.upstream = m_upstream->cluster();
    app.injectToken = true;
    m_proxy->setApps({app});

    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(app.name);
    QVERIFY(ticket.ok());
    TestHttpClient launch(m_proxyCertificate.certificate);
    QVERIFY(launch.connectToProxy(m_proxy->port()));
    launch.send(TestHttpClient::request(
        "GET", "/apps/headlamp/?ticket=" + ticket.value(), m_proxy->port(), {}));
    const std::optional<TestResponse> redirect = launch.waitForResponse();
    QVERIFY(redirect);
    QCOMPARE(redirect->head.statusCode, 303);
    const QByteArray setCookie = redirect->head.value("Set-Cookie");
    const QByteArray cookie = setCookie.left(setCookie.indexOf(';'));

    TunnelClient client(m_proxyCertificate.certificate);
    QVERIFY(client.connectToProxy(m_proxy->port()));
    client.send(TestHttpClient::request(
        "GET",
        "/apps/headlamp/tunnel/echo",
        m_proxy->port(),
        {},
        {"Connection: Upgrade",
         "Upgrade: websocket",
         "Sec-WebSocket-Version: 13",
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
         "Sec-WebSocket-Protocol: " + kBearerSubprotocol + ", v5.channel.k8s.io",
         "Origin: https://127.0.0.1:" + QByteArray::number(m_proxy->port()),
         "Cookie: " + cookie}));
    const QByteArray head = client.waitForHead();
    QVERIFY2(head.startsWith("HTTP/1.1 101 "), head.constData());
    QVERIFY(client.waitForReceived(kServerGreeting));
    client.send("ping from the browser");
    QVERIFY(client.waitForReceived(kServerGreeting + "ping from the browser"));

    QCOMPARE(m_upstream->requests().size(), 1);
    const HttpHead &request = m_upstream->requests().first();
    QCOMPARE(request.target, QByteArray("/tunnel/echo"));
    QCOMPARE(request.values("Authorization"), QList<QByteArray>{"Bearer " + kIdToken});
    QCOMPARE(request.value("Sec-WebSocket-Protocol"), QByteArray("v5.channel.k8s.io"));
    QVERIFY(!request.contains("Cookie"));
}

QTEST_GUILESS_MAIN(TestProxyUpgrade)
#include "tst_proxyupgrade.moc"
