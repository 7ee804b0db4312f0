#include "TestHttpClient.h"
#include "TestSessionKey.h"
#include "TestUpstream.h"
#include "proxy/LocalProxy.h"
#include "proxy/UpstreamPool.h"

#include <QMutex>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>
#include <QThread>
#include <memory>

using namespace lamplighter;

namespace {

const QByteArray kIdToken = "eyJhbGciOiJSUzI1NiJ9.first-token.signature";

// A wait long enough for any timeout of the deadline tests to pass several times over.
constexpr int kOutcomeWaitMs = 15000;

// The start of a head without its end. A proxy that waits for the rest forever never responds.
const QByteArray kPartialHead = "GET /clusters/dev/api HTTP/1.1\r\nHost: 127.0.0.1\r\n";

// Messages logged by the code under test, for checks on what reaches the log. The proxy logs
// from its worker threads.
QMutex g_logMutex;
QStringList g_logMessages;

void recordLogMessage(QtMsgType, const QMessageLogContext &, const QString &message)
{
    const QMutexLocker locker(&g_logMutex);
    g_logMessages.append(message);
}

QStringList recordedLogMessages()
{
    const QMutexLocker locker(&g_logMutex);
    return g_logMessages;
}

} // namespace

class TestLocalProxy : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void sessionKeyAccepted();
    void sessionKeyRejected_data();
    void sessionKeyRejected();
    void unauthorizedStatusBodyExact();
    void headerRewrite_data();
    void headerRewrite();
    void hostRewrittenToUpstream();
    void queryKept();
    void unknownClusterNotFound();
    void pathOutsideClustersNotFound();
    void keepAliveReusesUpstream();
    void changedCaClosesOpenUpstream();
    void pipelinedRequestsInOrder();
    void upstreamCloseThenReconnect();
    void nextClientReusesIdleUpstream();
    void idleUpstreamClosedByServerNotReused();
    void idleUpstreamClosedAfterTimeout();
    void idleUpstreamServesItsClusterOnly();
    void idleUpstreamKeepsItsLimits();
    void idleUpstreamsBounded();
    void unrequestedResponseClosesUpstream();
    void closeEndsIdleUpstreams();
    void unansweredReadResentOnNewConnection();
    void unansweredReadOnOpenClientResent();
    void unansweredWriteNotResent();
    void unansweredReadResentOnce();
    void unansweredFirstRequestNotResent();
    void unansweredUpgradeNotResent();
    void requestBodyStreamed_data();
    void requestBodyStreamed();
    void streamingResponsePerEvent();
    void largeResponseIntact();
    void slowReaderBoundsBuffering();
    void upstreamTlsFailureNamesCluster();
    void upstreamConnectionRefused();
    void upstreamConnectTimeout();
    void smugglingShapesRejected_data();
    void smugglingShapesRejected();
    void oversizedHeadRejected_data();
    void oversizedHeadRejected();
    void headerTimeoutRejected();
    void keptAliveConnectionOutlivesHeaderTimeout();
    void dripFedHeadRejected();
    void slowHeadAfterFirstExchangeRejected_data();
    void slowHeadAfterFirstExchangeRejected();
    void slowPipelinedHeadRejected();
    void headTimeoutLongerThanIdle();
    void idleConnectionClosed();
    void closingToStalledReaderAborted();
    void mixedClientsAllClosed_data();
    void mixedClientsAllClosed();
    void signedOutRejected();
    void expiredTokenRejected();
    void droppedHandshakesKeepAccepting();
    void stalledHandshakeClosed();
    void connectionOutlivesHandshakeTimeout();
    void connectionsOverMaximumClosed();
    void validTokenForwardedUntilExpiry();
    void unavailableReasonShown();
    void idTokenChangeOnOpenConnection();
    void idTokenChangeKeepsOpenWatch();
    void unsupportedUpgradeRejected();
    void foreignHostRejected();
    void ambiguousRequestRejected_data();
    void ambiguousRequestRejected();
    void foreignOriginRejected();
    void rejectionLogHasNoSecret();
    void interimResponseFieldsWithheld();
    void clusterUrlNamesCluster();

private:
    QByteArray get(const QByteArray &target, const QList<QByteArray> &headers = {}) const;
    std::unique_ptr<TestHttpClient> connectClient() const;
    std::optional<TestResponse> roundTrip(const QByteArray &request) const;
    // Returns a client connection whose first request got a 200 response, so that its connection
    // to the cluster is reused for the next one, or null.
    std::unique_ptr<TestHttpClient> connectClientAfterOneRequest() const;
    void setTimeouts(int headerMs, int idleMs);
    Status listenOnOneWorkerThread();
    void verifyPartialHeadTimesOut(TestHttpClient &client) const;

    LocalCertificate m_proxyCertificate;
    QByteArray m_sessionKey;
    std::unique_ptr<TestUpstream> m_upstream;
    std::unique_ptr<LocalProxy> m_proxy;
};

void TestLocalProxy::initTestCase()
{
    const Result<LocalCertificate> generated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_proxyCertificate = *generated;
}

void TestLocalProxy::init()
{
    m_upstream = std::make_unique<TestUpstream>();
    QVERIFY(m_upstream->listen());

    m_sessionKey = newTestSessionKey();
    m_proxy = std::make_unique<LocalProxy>();
    m_proxy->setServerCertificate(m_proxyCertificate);
    m_proxy->setSessionKey(m_sessionKey);
    m_proxy->setClusters({m_upstream->cluster(QStringLiteral("dev"))});
    m_proxy->setIdToken(kIdToken);
    const Status listening = m_proxy->listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
}

void TestLocalProxy::cleanup()
{
    m_proxy.reset();
    m_upstream.reset();
}

QByteArray TestLocalProxy::get(const QByteArray &target, const QList<QByteArray> &headers) const
{
    return TestHttpClient::request("GET", target, m_proxy->port(), m_sessionKey, headers);
}

std::unique_ptr<TestHttpClient> TestLocalProxy::connectClient() const
{
    auto client = std::make_unique<TestHttpClient>(m_proxyCertificate.certificate);
    if (!client->connectToProxy(m_proxy->port()))
        return nullptr;
    return client;
}

std::optional<TestResponse> TestLocalProxy::roundTrip(const QByteArray &request) const
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    if (!client)
        return std::nullopt;
    client->send(request);
    return client->waitForResponse();
}

std::unique_ptr<TestHttpClient> TestLocalProxy::connectClientAfterOneRequest() const
{
    std::unique_ptr<TestHttpClient> client = connectClient();
    if (!client)
        return nullptr;
    client->send(get("/clusters/dev/api"));
    const std::optional<TestResponse> response = client->waitForResponse();
    if (!response || response->head.statusCode != 200)
        return nullptr;
    return client;
}

void TestLocalProxy::setTimeouts(int headerMs, int idleMs)
{
    ProxyLimits limits;
    limits.headerTimeout = std::chrono::milliseconds(headerMs);
    limits.idleTimeout = std::chrono::milliseconds(idleMs);
    m_proxy->setLimits(limits);
}

// Each worker thread keeps its own idle connections to the clusters. On one thread, every client
// connection meets the same ones.
Status TestLocalProxy::listenOnOneWorkerThread()
{
    m_proxy->close();
    m_proxy->setWorkerThreads(1);
    return m_proxy->listen();
}

// Sends the start of a head and checks that the proxy rejects it with 408 and closes.
void TestLocalProxy::verifyPartialHeadTimesOut(TestHttpClient &client) const
{
    client.send(kPartialHead);
    const std::optional<TestResponse> response = client.waitForResponse(kOutcomeWaitMs);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 408);
    QVERIFY(client.waitForDisconnected(kOutcomeWaitMs));
}

void TestLocalProxy::sessionKeyAccepted()
{
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QVERIFY(response->body.startsWith(R"({"kind":"APIVersions")"));
    QCOMPARE(m_upstream->requests().size(), 1);
    QCOMPARE(m_upstream->requests().first().head.target, QByteArray("/api"));
    QCOMPARE(m_upstream->requests().first().head.values("Authorization"),
             QList<QByteArray>{"Bearer " + kIdToken});
}

void TestLocalProxy::sessionKeyRejected_data()
{
    QTest::addColumn<QList<QByteArray>>("authorization");
    QTest::addColumn<QString>("expectedMessage");

    const QString missing = QStringLiteral("has no Lamplighter session key");
    const QString invalid = QStringLiteral("session key in the request is invalid");
    QTest::newRow("missing") << QList<QByteArray>{} << missing;
    QTest::newRow("basic scheme") << QList<QByteArray>{"Authorization: Basic dXNlcjpwYXNz"}
                                  << missing;
    QTest::newRow("empty bearer") << QList<QByteArray>{"Authorization: Bearer "} << missing;
    QTest::newRow("wrong key of same length")
        << QList<QByteArray>{"Authorization: Bearer " + QByteArray(43, 'x')} << invalid;
    QTest::newRow("wrong short key") << QList<QByteArray>{"Authorization: Bearer abc"} << invalid;
    QTest::newRow("the ID token") << QList<QByteArray>{"Authorization: Bearer " + kIdToken}
                                  << invalid;
}

void TestLocalProxy::sessionKeyRejected()
{
    QFETCH(QList<QByteArray>, authorization);
    QFETCH(QString, expectedMessage);

    const QByteArray request =
        TestHttpClient::request("GET", "/clusters/dev/api", m_proxy->port(), {}, authorization);
    const std::optional<TestResponse> response = roundTrip(request);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QCOMPARE(response->head.value("Content-Type"), QByteArray("application/json"));
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(body.contains(expectedMessage), qPrintable(body));
    QVERIFY2(body.contains(QStringLiteral("lamplighter kubeconfig")), qPrintable(body));
    QVERIFY(body.endsWith(QStringLiteral(R"("reason":"Unauthorized","code":401})"
                                         "\n")));
    QCOMPARE(m_upstream->requests().size(), 0);
    QCOMPARE(m_upstream->connectionCount(), 0);
}

void TestLocalProxy::unauthorizedStatusBodyExact()
{
    const QByteArray request =
        TestHttpClient::request("GET", "/clusters/dev/api", m_proxy->port(), {});
    const std::optional<TestResponse> response = roundTrip(request);
    QVERIFY(response);
    QCOMPARE(response->body,
             QByteArray(R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
                        R"("message":"The request has no Lamplighter session key. Use the )"
                        R"(kubeconfig that `lamplighter kubeconfig` prints.",)"
                        R"("reason":"Unauthorized","code":401})"
                        "\n"));
    QCOMPARE(response->head.value("Cache-Control"), QByteArray("no-cache, private"));
}

void TestLocalProxy::headerRewrite_data()
{
    QTest::addColumn<QList<QByteArray>>("clientHeaders");
    QTest::addColumn<QByteArray>("upstreamHeader");
    QTest::addColumn<QList<QByteArray>>("expectedValues");

    const QList<QByteArray> none;
    QTest::newRow("Impersonate-User removed")
        << QList<QByteArray>{"Impersonate-User: admin"} << QByteArray("Impersonate-User") << none;
    QTest::newRow("lowercase impersonate-user removed")
        << QList<QByteArray>{"impersonate-user: admin"} << QByteArray("Impersonate-User") << none;
    QTest::newRow("Impersonate-Group removed")
        << QList<QByteArray>{"Impersonate-Group: system:masters", "Impersonate-Group: other"}
        << QByteArray("Impersonate-Group") << none;
    QTest::newRow("Impersonate-Uid removed")
        << QList<QByteArray>{"Impersonate-Uid: 1234"} << QByteArray("Impersonate-Uid") << none;
    QTest::newRow("Impersonate-Extra removed")
        << QList<QByteArray>{"Impersonate-Extra-Scopes: view"}
        << QByteArray("Impersonate-Extra-Scopes") << none;
    // Only an app may get this field, and only from the proxy.
    QTest::newRow("X-Forwarded-Id-Token removed")
        << QList<QByteArray>{"X-Forwarded-Id-Token: forged"} << QByteArray("X-Forwarded-Id-Token")
        << none;
    QTest::newRow("Connection-named header removed")
        << QList<QByteArray>{"Connection: keep-alive, X-Hop", "X-Hop: 1"} << QByteArray("X-Hop")
        << none;
    QTest::newRow("Connection removed")
        << QList<QByteArray>{"Connection: keep-alive"} << QByteArray("Connection") << none;
    QTest::newRow("Keep-Alive removed")
        << QList<QByteArray>{"Keep-Alive: timeout=5"} << QByteArray("Keep-Alive") << none;
    QTest::newRow("Proxy-Authorization removed")
        << QList<QByteArray>{"Proxy-Authorization: Basic eDp5"} << QByteArray("Proxy-Authorization")
        << none;
    QTest::newRow("TE removed") << QList<QByteArray>{"TE: trailers"} << QByteArray("TE") << none;
    QTest::newRow("Trailer removed")
        << QList<QByteArray>{"Trailer: Expires"} << QByteArray("Trailer") << none;
    QTest::newRow("Accept kept") << QList<QByteArray>{"Accept: application/json"}
                                 << QByteArray("Accept") << QList<QByteArray>{"application/json"};
    QTest::newRow("User-Agent kept")
        << QList<QByteArray>{"User-Agent: kubectl/v1.32.4"} << QByteArray("User-Agent")
        << QList<QByteArray>{"kubectl/v1.32.4"};
    QTest::newRow("Authorization is the ID token")
        << QList<QByteArray>{} << QByteArray("Authorization")
        << QList<QByteArray>{"Bearer " + kIdToken};
    QTest::newRow("no Content-Length on GET")
        << QList<QByteArray>{} << QByteArray("Content-Length") << none;
}

void TestLocalProxy::headerRewrite()
{
    QFETCH(QList<QByteArray>, clientHeaders);
    QFETCH(QByteArray, upstreamHeader);
    QFETCH(QList<QByteArray>, expectedValues);

    const std::optional<TestResponse> response =
        roundTrip(get("/clusters/dev/api/v1/namespaces", clientHeaders));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 1);
    QCOMPARE(m_upstream->requests().first().head.values(upstreamHeader), expectedValues);
}

void TestLocalProxy::hostRewrittenToUpstream()
{
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/version"));
    QVERIFY(response);
    QCOMPARE(m_upstream->requests().size(), 1);
    QCOMPARE(m_upstream->requests().first().head.values("Host"),
             QList<QByteArray>{"127.0.0.1:" + QByteArray::number(m_upstream->port())});
}

void TestLocalProxy::queryKept()
{
    const std::optional<TestResponse> response =
        roundTrip(get("/clusters/dev/api/v1/pods?watch=true&resourceVersion=10"));
    QVERIFY(response);
    QCOMPARE(m_upstream->requests().size(), 1);
    QCOMPARE(m_upstream->requests().first().head.target,
             QByteArray("/api/v1/pods?watch=true&resourceVersion=10"));
}

void TestLocalProxy::unknownClusterNotFound()
{
    const std::optional<TestResponse> response = roundTrip(get("/clusters/prod/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 404);
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(body.contains(QStringLiteral(R"(Cluster \"prod\" is not configured)")),
             qPrintable(body));
    QVERIFY2(body.contains(QStringLiteral("Configured clusters: dev.")), qPrintable(body));
    QVERIFY(body.contains(QStringLiteral(R"("reason":"NotFound","code":404)")));
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::pathOutsideClustersNotFound()
{
    const std::optional<TestResponse> response = roundTrip(get("/api/v1/pods"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 404);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::keepAliveReusesUpstream()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);

    client->send(get("/clusters/dev/api"));
    const std::optional<TestResponse> first = client->waitForResponse();
    QVERIFY(first);
    QCOMPARE(first->head.statusCode, 200);

    client->send(get("/clusters/dev/apis"));
    const std::optional<TestResponse> second = client->waitForResponse();
    QVERIFY(second);
    QCOMPARE(second->head.statusCode, 200);

    QVERIFY(client->isConnected());
    QCOMPARE(m_upstream->requests().size(), 2);
    QCOMPARE(m_upstream->connectionCount(), 1);
    QCOMPARE(m_upstream->requests().at(0).connectionId, m_upstream->requests().at(1).connectionId);
}

// A client connection that stays open does not keep sending on a cluster connection that was
// verified against the CA certificates that setClusters() replaced.
void TestLocalProxy::changedCaClosesOpenUpstream()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get("/clusters/dev/api"));
    const std::optional<TestResponse> first = client->waitForResponse();
    QVERIFY(first);
    QCOMPARE(first->head.statusCode, 200);

    const Result<LocalCertificate> otherCa =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY(otherCa.ok());
    UpstreamCluster cluster = m_upstream->cluster(QStringLiteral("dev"));
    cluster.caCertificates = {otherCa->certificate};
    m_proxy->setClusters({cluster});

    client->send(get("/clusters/dev/apis"));
    const std::optional<TestResponse> second = client->waitForResponse();
    QVERIFY(second);
    QCOMPARE(second->head.statusCode, 502);
    QVERIFY2(QString::fromUtf8(second->body).contains(QStringLiteral("TLS verification")),
             second->body.constData());
    QCOMPARE(m_upstream->requests().size(), 1);
}

void TestLocalProxy::pipelinedRequestsInOrder()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);

    client->send(get("/clusters/dev/first") + get("/clusters/nope/x") + get("/clusters/dev/third"));
    const std::optional<TestResponse> first = client->waitForResponse();
    const std::optional<TestResponse> second = client->waitForResponse();
    const std::optional<TestResponse> third = client->waitForResponse();
    QVERIFY(first);
    QVERIFY(second);
    QVERIFY(third);
    QCOMPARE(first->body, QByteArray(R"({"path":"/first"})"));
    QCOMPARE(second->head.statusCode, 404);
    QCOMPARE(third->body, QByteArray(R"({"path":"/third"})"));
    QCOMPARE(m_upstream->connectionCount(), 1);
}

void TestLocalProxy::upstreamCloseThenReconnect()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);

    client->send(get("/clusters/dev/close"));
    const std::optional<TestResponse> first = client->waitForResponse();
    QVERIFY(first);
    QCOMPARE(first->body, QByteArray("closing"));
    QVERIFY(!first->head.contains("Connection"));

    client->send(get("/clusters/dev/api"));
    const std::optional<TestResponse> second = client->waitForResponse();
    QVERIFY(second);
    QCOMPARE(second->head.statusCode, 200);
    QVERIFY(client->isConnected());
    QCOMPARE(m_upstream->connectionCount(), 2);
}

void TestLocalProxy::nextClientReusesIdleUpstream()
{
    const Status listening = listenOnOneWorkerThread();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    const std::optional<TestResponse> first = roundTrip(get("/clusters/dev/api"));
    QVERIFY(first);
    QCOMPARE(first->head.statusCode, 200);
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);

    const std::optional<TestResponse> second = roundTrip(get("/clusters/dev/apis"));
    QVERIFY(second);
    QCOMPARE(second->head.statusCode, 200);
    QCOMPARE(m_upstream->connectionCount(), 1);
    QCOMPARE(m_upstream->requests().size(), 2);
    QCOMPARE(m_upstream->requests().at(1).head.values("Authorization"),
             QList<QByteArray>{"Bearer " + kIdToken});
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);
}

void TestLocalProxy::idleUpstreamClosedByServerNotReused()
{
    const Status listening = listenOnOneWorkerThread();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    QVERIFY(roundTrip(get("/clusters/dev/api")));
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);
    m_upstream->closeConnections();
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 0);

    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->connectionCount(), 2);
}

void TestLocalProxy::idleUpstreamClosedAfterTimeout()
{
    ProxyLimits limits;
    limits.upstreamIdleTimeout = std::chrono::milliseconds(300);
    m_proxy->setLimits(limits);
    const Status listening = listenOnOneWorkerThread();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    QVERIFY(roundTrip(get("/clusters/dev/api")));
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 0);
    QTRY_COMPARE(m_upstream->openConnectionCount(), 0);
    QCOMPARE(m_upstream->connectionCount(), 1);
}

// A connection kept for one cluster name is not lent to another, even on the same server.
void TestLocalProxy::idleUpstreamServesItsClusterOnly()
{
    m_proxy->setClusters(
        {m_upstream->cluster(QStringLiteral("dev")), m_upstream->cluster(QStringLiteral("prod"))});
    const Status listening = listenOnOneWorkerThread();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    QVERIFY(roundTrip(get("/clusters/dev/api")));
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);

    const std::optional<TestResponse> response = roundTrip(get("/clusters/prod/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->connectionCount(), 2);
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 2);
}

// A response on a connection kept from before setLimits() would be read with the old limits.
void TestLocalProxy::idleUpstreamKeepsItsLimits()
{
    const Status listening = listenOnOneWorkerThread();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    QVERIFY(roundTrip(get("/clusters/dev/api")));
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);
    ProxyLimits limits;
    limits.maxHeadBytes = 32 * 1024;
    m_proxy->setLimits(limits);

    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->connectionCount(), 2);
}

void TestLocalProxy::idleUpstreamsBounded()
{
    const Status listening = listenOnOneWorkerThread();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    // Clients that are all in a request at once each need a connection of their own.
    const int clientCount = UpstreamPool::kMaxIdleConnections + 2;
    std::vector<std::unique_ptr<TestHttpClient>> clients;
    for (int i = 0; i < clientCount; ++i) {
        clients.push_back(connectClient());
        QVERIFY(clients.back());
        clients.back()->send(get("/clusters/dev/stream"));
    }
    for (const std::unique_ptr<TestHttpClient> &client : clients)
        QVERIFY(client->waitForPartialBody(TestUpstream::streamEvent(0)));
    QCOMPARE(m_upstream->connectionCount(), clientCount);
    m_upstream->finishStream();
    for (const std::unique_ptr<TestHttpClient> &client : clients) {
        const std::optional<TestResponse> response = client->waitForResponse();
        QVERIFY(response);
        QCOMPARE(response->head.statusCode, 200);
    }
    clients.clear();

    QTRY_COMPARE(m_upstream->openConnectionCount(), UpstreamPool::kMaxIdleConnections);
    QCOMPARE(m_proxy->idleUpstreamConnections(), UpstreamPool::kMaxIdleConnections);
}

// The second response, which no request asked for, stays in the proxy's socket buffer after the
// first. The connection must close, or the next request on it would receive that response.
void TestLocalProxy::unrequestedResponseClosesUpstream()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);

    client->send(get("/clusters/dev/extra-response"));
    const std::optional<TestResponse> first = client->waitForResponse();
    QVERIFY(first);
    QCOMPARE(first->head.statusCode, 200);
    QTRY_COMPARE(m_upstream->openConnectionCount(), 0);
    QCOMPARE(m_proxy->idleUpstreamConnections(), 0);

    client->send(get("/clusters/dev/api"));
    const std::optional<TestResponse> second = client->waitForResponse();
    QVERIFY(second);
    QVERIFY2(second->body.startsWith(R"({"kind":"APIVersions")"), second->body.constData());
    QCOMPARE(m_upstream->connectionCount(), 2);
}

void TestLocalProxy::closeEndsIdleUpstreams()
{
    QVERIFY(roundTrip(get("/clusters/dev/api")));
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);
    m_proxy->close();
    QCOMPARE(m_proxy->idleUpstreamConnections(), 0);
    QTRY_COMPARE(m_upstream->openConnectionCount(), 0);
}

// A server may close a kept connection as idle while a request is on its way to it. A request
// that is safe to repeat then goes again on a new connection instead of failing.
void TestLocalProxy::unansweredReadResentOnNewConnection()
{
    const Status listening = listenOnOneWorkerThread();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
    QVERIFY(roundTrip(get("/clusters/dev/api")));
    QTRY_COMPARE(m_proxy->idleUpstreamConnections(), 1);

    const std::optional<TestResponse> response =
        roundTrip(get("/clusters/dev/close-unanswered-on-reuse"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(response->body, QByteArray(R"({"path":"/close-unanswered-on-reuse"})"));
    QCOMPARE(m_upstream->connectionCount(), 2);
    QCOMPARE(m_upstream->requests().size(), 3);
    QCOMPARE(m_upstream->requests().at(2).head.values("Authorization"),
             QList<QByteArray>{"Bearer " + kIdToken});
}

void TestLocalProxy::unansweredReadOnOpenClientResent()
{
    const std::unique_ptr<TestHttpClient> client = connectClientAfterOneRequest();
    QVERIFY(client);

    client->send(get("/clusters/dev/close-unanswered-on-reuse"));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->connectionCount(), 2);
    QVERIFY(client->isConnected());
}

// Sending a request that changes something twice could apply the change twice.
void TestLocalProxy::unansweredWriteNotResent()
{
    const std::unique_ptr<TestHttpClient> client = connectClientAfterOneRequest();
    QVERIFY(client);

    client->send(TestHttpClient::request("POST",
                                         "/clusters/dev/close-unanswered-on-reuse",
                                         m_proxy->port(),
                                         m_sessionKey,
                                         {"Content-Type: application/json"},
                                         "{}"));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 502);
    QCOMPARE(m_upstream->requests().size(), 2);
    QCOMPARE(m_upstream->connectionCount(), 1);
}

// The request goes again once: when the new connection closes without a response too, the
// client gets the error.
void TestLocalProxy::unansweredReadResentOnce()
{
    const std::unique_ptr<TestHttpClient> client = connectClientAfterOneRequest();
    QVERIFY(client);

    client->send(get("/clusters/dev/close-unanswered"));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 502);
    QVERIFY2(response->body.contains("closed the connection"), response->body.constData());
    QCOMPARE(m_upstream->requests().size(), 3);
    QCOMPARE(m_upstream->connectionCount(), 2);
}

// A server that closes a new connection without a response to its first request did not close it
// for being idle, so the request does not go again.
void TestLocalProxy::unansweredFirstRequestNotResent()
{
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/close-unanswered"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 502);
    QCOMPARE(m_upstream->requests().size(), 1);
    QCOMPARE(m_upstream->connectionCount(), 1);
}

// An upgrade request is a GET without a body, but for exec or attach it starts a command in the
// container, so it does not go to the cluster a second time.
void TestLocalProxy::unansweredUpgradeNotResent()
{
    const std::unique_ptr<TestHttpClient> client = connectClientAfterOneRequest();
    QVERIFY(client);

    client->send(get("/clusters/dev/close-unanswered-on-reuse?command=rm",
                     {"Connection: Upgrade", "Upgrade: websocket"}));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 502);
    QCOMPARE(m_upstream->requests().size(), 2);
    QCOMPARE(m_upstream->connectionCount(), 1);
}

void TestLocalProxy::requestBodyStreamed_data()
{
    QTest::addColumn<bool>("chunked");
    QTest::newRow("Content-Length") << false;
    QTest::newRow("chunked") << true;
}

// The first half of the body must reach the server before the client sends the second half.
void TestLocalProxy::requestBodyStreamed()
{
    QFETCH(bool, chunked);

    const QByteArray firstHalf(40000, 'a');
    const QByteArray secondHalf(30000, 'b');
    const QList<QByteArray> framing =
        chunked ? QList<QByteArray>{"Transfer-Encoding: chunked"}
                : QList<QByteArray>{"Content-Length: " +
                                    QByteArray::number(firstHalf.size() + secondHalf.size())};
    const auto frame = [chunked](const QByteArray &data) {
        return chunked ? encodeChunk(data) : data;
    };

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(TestHttpClient::request(
                     "POST", "/clusters/dev/echo", m_proxy->port(), m_sessionKey, framing) +
                 frame(firstHalf));
    QVERIFY(QTest::qWaitFor([this, &firstHalf] {
        return !m_upstream->requests().isEmpty() &&
               m_upstream->requests().first().body == firstHalf;
    }));
    QVERIFY(!m_upstream->requests().first().complete);

    client->send(frame(secondHalf) + (chunked ? lastChunk() : QByteArray()));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(response->body, firstHalf + secondHalf);

    const HttpHead &upstreamHead = m_upstream->requests().first().head;
    if (chunked) {
        QCOMPARE(upstreamHead.values("Transfer-Encoding"), QList<QByteArray>{"chunked"});
        QVERIFY(!upstreamHead.contains("Content-Length"));
    } else {
        QCOMPARE(upstreamHead.values("Content-Length"), QList<QByteArray>{"70000"});
        QVERIFY(!upstreamHead.contains("Transfer-Encoding"));
    }
}

// Each watch event must reach the client before the server sends the next one.
void TestLocalProxy::streamingResponsePerEvent()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get("/clusters/dev/stream?watch=true"));

    QVERIFY(client->waitForPartialBody(TestUpstream::streamEvent(0)));
    QCOMPARE(m_upstream->streamEventsSent(), 1);

    m_upstream->releaseStreamEvent();
    QVERIFY(client->waitForPartialBody(TestUpstream::streamEvent(1)));
    QCOMPARE(m_upstream->streamEventsSent(), 2);

    m_upstream->finishStream();
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.values("Transfer-Encoding"), QList<QByteArray>{"chunked"});
    QCOMPARE(response->body, TestUpstream::streamEvent(0) + TestUpstream::streamEvent(1));
}

void TestLocalProxy::largeResponseIntact()
{
    m_upstream->setLargeBodyBytes(8 * 1024 * 1024 + 123);
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/large"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(response->body.size(), m_upstream->largeBodyBytes());
    for (qint64 offset = 0; offset < response->body.size(); ++offset) {
        if (response->body.at(offset) != TestUpstream::largeBodyByte(offset))
            QFAIL(qPrintable(QStringLiteral("body differs at byte %1").arg(offset)));
    }
}

// A client that stops reading must stop the server too, after a bounded amount of buffering:
// the proxy queue (1 MiB), its socket buffers and the kernel's loopback buffers.
void TestLocalProxy::slowReaderBoundsBuffering()
{
    const qint64 bodyBytes = 256LL * 1024 * 1024;
    const qint64 maxInFlightBytes = 64LL * 1024 * 1024;
    m_upstream->setLargeBodyBytes(bodyBytes);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->setDiscardingBody(true);
    client->setReadingPaused(true);
    client->send(get("/clusters/dev/large"));

    // Wait until the server has made no progress for a second.
    qint64 written = -1;
    QVERIFY(QTest::qWaitFor(
        [&] {
            const qint64 now = m_upstream->largeBodyBytesWritten();
            const bool stalled = now > 0 && now == written;
            written = now;
            QTest::qWait(1000);
            return stalled;
        },
        60000));
    QVERIFY2(written < maxInFlightBytes,
             qPrintable(QStringLiteral("the server wrote %1 bytes").arg(written)));

    client->setReadingPaused(false);
    QVERIFY(QTest::qWaitFor(
        [&] { return m_upstream->largeBodyBytesWritten() > written + 8 * 1024 * 1024; }, 30000));
    QVERIFY(client->bodyBytesReceived() > 0);
}

void TestLocalProxy::upstreamTlsFailureNamesCluster()
{
    const Result<LocalCertificate> otherCa =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY(otherCa.ok());
    UpstreamCluster cluster = m_upstream->cluster(QStringLiteral("prod"));
    cluster.caCertificates = {otherCa->certificate};
    m_proxy->setClusters({cluster});

    const std::optional<TestResponse> response = roundTrip(get("/clusters/prod/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 502);
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(body.contains(QStringLiteral(R"(TLS verification of cluster \"prod\")")),
             qPrintable(body));
    QVERIFY2(body.contains(m_upstream->url().toString()), qPrintable(body));
    QVERIFY2(!body.contains(QString::fromLatin1(kIdToken)), qPrintable(body));
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::upstreamConnectionRefused()
{
    QTcpServer closedPort;
    QVERIFY(closedPort.listen(QHostAddress::LocalHost, 0));
    const quint16 port = closedPort.serverPort();
    closedPort.close();
    UpstreamCluster cluster = m_upstream->cluster(QStringLiteral("gone"));
    QUrl server = cluster.server.url();
    server.setPort(port);
    cluster.server = server;
    m_proxy->setClusters({cluster});

    const std::optional<TestResponse> response = roundTrip(get("/clusters/gone/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 502);
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(body.contains(QStringLiteral(R"(cluster \"gone\")")), qPrintable(body));
    QVERIFY2(body.contains(QStringLiteral("refused")), qPrintable(body));
}

void TestLocalProxy::upstreamConnectTimeout()
{
    // A TCP server that accepts connections and never completes a TLS handshake.
    QTcpServer silentServer;
    QVERIFY(silentServer.listen(QHostAddress::LocalHost, 0));
    UpstreamCluster cluster = m_upstream->cluster(QStringLiteral("silent"));
    QUrl server = cluster.server.url();
    server.setPort(silentServer.serverPort());
    cluster.server = server;
    m_proxy->setClusters({cluster});
    ProxyLimits limits;
    limits.upstreamConnectTimeout = std::chrono::milliseconds(300);
    m_proxy->setLimits(limits);

    const std::optional<TestResponse> response = roundTrip(get("/clusters/silent/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 504);
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(
        body.contains(QStringLiteral(R"(Timed out after 0.3 s connecting to cluster \"silent\")")),
        qPrintable(body));
    QVERIFY(body.contains(QStringLiteral(R"("reason":"Timeout","code":504)")));
}

void TestLocalProxy::smugglingShapesRejected_data()
{
    QTest::addColumn<QByteArray>("headers");
    QTest::addColumn<QByteArray>("body");

    QTest::newRow("Content-Length with chunked")
        << QByteArray("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")
        << QByteArray("0\r\n\r\n");
    QTest::newRow("duplicated Content-Length")
        << QByteArray("Content-Length: 5\r\nContent-Length: 5\r\n") << QByteArray("hello");
    QTest::newRow("conflicting Content-Length")
        << QByteArray("Content-Length: 5\r\nContent-Length: 6\r\n") << QByteArray("hello!");
    QTest::newRow("Content-Length list")
        << QByteArray("Content-Length: 5, 5\r\n") << QByteArray("hello");
    QTest::newRow("negative Content-Length")
        << QByteArray("Content-Length: -1\r\n") << QByteArray();
    QTest::newRow("gzip then chunked")
        << QByteArray("Transfer-Encoding: gzip, chunked\r\n") << QByteArray("0\r\n\r\n");
    QTest::newRow("Transfer-Encoding twice")
        << QByteArray("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")
        << QByteArray("0\r\n\r\n");
    QTest::newRow("Transfer-Encoding identity")
        << QByteArray("Transfer-Encoding: identity\r\n") << QByteArray();
    QTest::newRow("space before colon")
        << QByteArray("Transfer-Encoding : chunked\r\n") << QByteArray("0\r\n\r\n");
    QTest::newRow("second Host") << QByteArray("Host: 127.0.0.1:1\r\n") << QByteArray();
}

void TestLocalProxy::smugglingShapesRejected()
{
    QFETCH(QByteArray, headers);
    QFETCH(QByteArray, body);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send("POST /clusters/dev/echo HTTP/1.1\r\nHost: 127.0.0.1:" +
                 QByteArray::number(m_proxy->port()) + "\r\nAuthorization: Bearer " + m_sessionKey +
                 "\r\n" + headers + "\r\n" + body);
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 400);
    QVERIFY(response->body.contains(R"("reason":"BadRequest","code":400)"));
    QVERIFY(client->waitForDisconnected());
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::oversizedHeadRejected_data()
{
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<QList<QByteArray>>("headers");

    QList<QByteArray> manyHeaders;
    for (int i = 0; i < 100; ++i)
        manyHeaders.append("X-Header-" + QByteArray::number(i) + ": 1");
    QTest::newRow("70 KiB header value")
        << QByteArray("/clusters/dev/api")
        << QList<QByteArray>{"X-Large: " + QByteArray(70 * 1024, 'x')};
    QTest::newRow("101 header fields") << QByteArray("/clusters/dev/api") << manyHeaders;
    QTest::newRow("70 KiB target")
        << QByteArray("/clusters/dev/api?q=" + QByteArray(70 * 1024, 'x')) << QList<QByteArray>{};
    // The proxy reads TLS records of 16 KiB, so the head comes in several reads.
    QList<QByteArray> longHeaders;
    for (int i = 0; i < 90; ++i)
        longHeaders.append("X-Header-" + QByteArray::number(i) + ": " + QByteArray(1200, 'x'));
    QTest::newRow("107 KiB in 90 fields") << QByteArray("/clusters/dev/api") << longHeaders;
}

void TestLocalProxy::oversizedHeadRejected()
{
    QFETCH(QByteArray, target);
    QFETCH(QList<QByteArray>, headers);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get(target, headers));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 431);
    QVERIFY(client->waitForDisconnected());
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::headerTimeoutRejected()
{
    ProxyLimits limits;
    limits.headerTimeout = std::chrono::milliseconds(300);
    m_proxy->setLimits(limits);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send("GET /clusters/dev/api HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 408);
    QVERIFY(client->waitForDisconnected());
    QCOMPARE(m_upstream->requests().size(), 0);
}

// The connection's one timer is set for the header timeout while a head arrives, and fires then
// although the idle timeout has replaced it. The connection must stay open until the idle
// timeout, and close after it.
void TestLocalProxy::keptAliveConnectionOutlivesHeaderTimeout()
{
    ProxyLimits limits;
    limits.headerTimeout = std::chrono::milliseconds(200);
    limits.idleTimeout = std::chrono::milliseconds(3000);
    m_proxy->setLimits(limits);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get("/clusters/dev/api"));
    std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);

    QTest::qWait(800);
    QVERIFY(client->isConnected());
    client->send(get("/clusters/dev/api"));
    response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);

    QVERIFY(client->waitForDisconnected());
    QCOMPARE(m_upstream->requests().size(), 2);
}

// A byte every 50 ms keeps the connection busy, but the header timeout counts from the first.
void TestLocalProxy::dripFedHeadRejected()
{
    setTimeouts(500, 60000);
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    const QByteArray head = get("/clusters/dev/api");
    std::optional<TestResponse> response;
    for (qsizetype i = 0; i + 1 < head.size() && client->isConnected(); ++i) {
        client->send(head.mid(i, 1));
        response = client->waitForResponse(50);
        if (response)
            break;
    }
    if (!response)
        response = client->waitForResponse(kOutcomeWaitMs);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 408);
    QCOMPARE(m_upstream->requests().size(), 0);
}

// Each first exchange leaves the connection open for a next request, whose head must then
// arrive within the header timeout.
void TestLocalProxy::slowHeadAfterFirstExchangeRejected_data()
{
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<QList<QByteArray>>("headers");
    QTest::addColumn<int>("expectedStatus");

    QTest::newRow("served") << QByteArray("/clusters/dev/api") << QList<QByteArray>{} << 200;
    QTest::newRow("unknown cluster")
        << QByteArray("/clusters/prod/api") << QList<QByteArray>{} << 404;
    // The test API server responds 200 to an upgrade request, so no tunnel opens.
    QTest::newRow("upgrade declined")
        << QByteArray("/clusters/dev/api/v1/namespaces/default/pods/p/exec")
        << QList<QByteArray>{"Connection: Upgrade", "Upgrade: websocket"} << 200;
}

void TestLocalProxy::slowHeadAfterFirstExchangeRejected()
{
    QFETCH(QByteArray, target);
    QFETCH(QList<QByteArray>, headers);
    QFETCH(int, expectedStatus);

    setTimeouts(300, 60000);
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get(target, headers));
    const std::optional<TestResponse> response = client->waitForResponse(kOutcomeWaitMs);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, expectedStatus);
    QVERIFY(client->isConnected());

    verifyPartialHeadTimesOut(*client);
}

// The start of the second head arrives with the first request and waits in the proxy's buffer
// while the proxy responds to the first.
void TestLocalProxy::slowPipelinedHeadRejected()
{
    setTimeouts(300, 60000);
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get("/clusters/dev/api") + kPartialHead);
    std::optional<TestResponse> response = client->waitForResponse(kOutcomeWaitMs);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);

    response = client->waitForResponse(kOutcomeWaitMs);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 408);
    QVERIFY(client->waitForDisconnected(kOutcomeWaitMs));
}

// While a head arrives, the header timeout replaces the idle timeout even when it is longer, so
// the client gets a 408 and not a silent close.
void TestLocalProxy::headTimeoutLongerThanIdle()
{
    setTimeouts(1500, 300);
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    verifyPartialHeadTimesOut(*client);
}

void TestLocalProxy::idleConnectionClosed()
{
    setTimeouts(60000, 300);
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    QVERIFY(client->waitForDisconnected(kOutcomeWaitMs));
}

// After a response with "Connection: close", the proxy waits at most the idle timeout for a
// client that reads nothing, and then aborts. The client reads again only after that, so it
// receives a cut-off body.
void TestLocalProxy::closingToStalledReaderAborted()
{
    const qint64 bodyBytes = 32LL * 1024 * 1024;
    m_upstream->setLargeBodyBytes(bodyBytes);
    ProxyLimits limits;
    limits.idleTimeout = std::chrono::milliseconds(500);
    limits.maxQueuedBytes = 4 * bodyBytes; // the whole body fits, so the response finishes
    m_proxy->setLimits(limits);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->setDiscardingBody(true);
    client->setReadingPaused(true);
    client->send(get("/clusters/dev/large", {"Connection: close"}));
    QVERIFY(QTest::qWaitFor(
        [this, bodyBytes] { return m_upstream->largeBodyBytesWritten() == bodyBytes; },
        kOutcomeWaitMs));
    // Far past the idle timeout, so the proxy has given up on this client.
    QTest::qWait(5000);

    client->setReadingPaused(false);
    QVERIFY(client->waitForDisconnected(kOutcomeWaitMs));
    QVERIFY(!client->waitForResponse(0));
    QVERIFY(client->bodyBytesReceived() < bodyBytes);
}

void TestLocalProxy::mixedClientsAllClosed_data()
{
    QTest::addColumn<int>("headerMs");
    QTest::addColumn<int>("idleMs");

    QTest::newRow("header timeout shorter") << 150 << 400;
    QTest::newRow("header timeout longer") << 400 << 200;
    QTest::newRow("equal timeouts") << 250 << 250;
}

// Clients that make zero to three requests, pausing between them, and then either stop or send
// half a head. Each one must be closed by a timeout, with a 408 when it sent half a head.
void TestLocalProxy::mixedClientsAllClosed()
{
    QFETCH(int, headerMs);
    QFETCH(int, idleMs);
    setTimeouts(headerMs, idleMs);

    struct Plan {
        int requests;
        int pauseMs;
        bool endsWithPartialHead;
    };
    std::vector<Plan> plans;
    for (int requests = 0; requests <= 3; ++requests) {
        for (int pauseMs : {0, 50}) {
            plans.push_back(Plan{requests, pauseMs, false});
            plans.push_back(Plan{requests, pauseMs, true});
        }
    }

    std::vector<std::unique_ptr<TestHttpClient>> clients;
    for (const Plan &plan : plans) {
        std::unique_ptr<TestHttpClient> client = connectClient();
        QVERIFY(client);
        for (int i = 0; i < plan.requests; ++i) {
            client->send(get("/clusters/dev/api"));
            const std::optional<TestResponse> response = client->waitForResponse(kOutcomeWaitMs);
            QVERIFY(response);
            QCOMPARE(response->head.statusCode, 200);
            QTest::qWait(plan.pauseMs);
        }
        if (plan.endsWithPartialHead)
            client->send(kPartialHead);
        clients.push_back(std::move(client));
    }

    for (size_t i = 0; i < plans.size(); ++i) {
        QVERIFY2(clients[i]->waitForDisconnected(kOutcomeWaitMs),
                 qPrintable(QStringLiteral("client %1 still connected").arg(i)));
        if (plans[i].endsWithPartialHead) {
            const std::optional<TestResponse> response = clients[i]->waitForResponse(0);
            QVERIFY2(response, qPrintable(QStringLiteral("client %1 got no 408").arg(i)));
            QCOMPARE(response->head.statusCode, 408);
        }
    }
}

void TestLocalProxy::signedOutRejected()
{
    m_proxy->setIdToken({});
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(body.contains(QStringLiteral(
                 "Sign in from the tray icon or run `lamplighter login`, then retry.")),
             qPrintable(body));
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::expiredTokenRejected()
{
    // A worker thread emits the signal, and a receiver on this thread must get it queued.
    int expired = 0;
    bool onOtherThread = false;
    connect(m_proxy.get(), &LocalProxy::idTokenExpired, this, [&] {
        ++expired;
        onOtherThread |= QThread::currentThread() != thread();
    });
    m_proxy->setIdToken(kIdToken, QDateTime::currentDateTimeUtc().addSecs(-1));
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(body.contains(QStringLiteral("ID token expired at")), qPrintable(body));
    QCOMPARE(m_upstream->requests().size(), 0);
    QTRY_COMPARE(expired, 1);
    QVERIFY(!onOtherThread);
}

void TestLocalProxy::droppedHandshakesKeepAccepting()
{
    ProxyLimits limits;
    limits.maxPendingHandshakes = 4;
    m_proxy->close();
    m_proxy->setLimits(limits);
    QVERIFY(m_proxy->listen().ok());

    // Clients that connect and leave without a TLS handshake, more than the pending maximum.
    for (int round = 0; round < 3; ++round) {
        std::vector<std::unique_ptr<QTcpSocket>> dropped;
        for (int i = 0; i < 8; ++i) {
            dropped.push_back(std::make_unique<QTcpSocket>());
            dropped.back()->connectToHost(QHostAddress::LocalHost, m_proxy->port());
            QVERIFY(dropped.back()->waitForConnected(5000));
        }
        QTest::qWait(100);
        dropped.clear();
        QTest::qWait(100);
    }

    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY2(response, "the proxy stopped accepting after dropped handshakes");
    QCOMPARE(response->head.statusCode, 200);
}

void TestLocalProxy::stalledHandshakeClosed()
{
    ProxyLimits limits;
    limits.clientHandshakeTimeout = std::chrono::milliseconds(300);
    m_proxy->setLimits(limits);

    // A client that connects and never starts its TLS handshake.
    QTcpSocket silent;
    silent.connectToHost(QHostAddress::LocalHost, m_proxy->port());
    QVERIFY(silent.waitForConnected(5000));
    QTRY_COMPARE_WITH_TIMEOUT(silent.state(), QAbstractSocket::UnconnectedState, kOutcomeWaitMs);
}

// The handshake's time limit ends with the handshake.
void TestLocalProxy::connectionOutlivesHandshakeTimeout()
{
    ProxyLimits limits;
    limits.clientHandshakeTimeout = std::chrono::milliseconds(300);
    m_proxy->setLimits(limits);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    QTest::qWait(900);
    client->send(get("/clusters/dev/api"));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QVERIFY(client->isConnected());
}

void TestLocalProxy::connectionsOverMaximumClosed()
{
    ProxyLimits limits;
    limits.maxClientConnections = 2;
    m_proxy->setLimits(limits);

    const std::unique_ptr<TestHttpClient> first = connectClient();
    const std::unique_ptr<TestHttpClient> second = connectClient();
    QVERIFY(first);
    QVERIFY(second);
    // The proxy closes the third connection on accept, so its handshake or request fails.
    const std::unique_ptr<TestHttpClient> third = connectClient();
    if (third) {
        third->send(get("/clusters/dev/api"));
        QVERIFY2(!third->waitForResponse(), "a connection over the maximum was served");
    }
    QCOMPARE(m_upstream->requests().size(), 0);

    first->send(get("/clusters/dev/api"));
    const std::optional<TestResponse> response = first->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
}

void TestLocalProxy::validTokenForwardedUntilExpiry()
{
    int expired = 0;
    connect(m_proxy.get(), &LocalProxy::idTokenExpired, this, [&] { ++expired; });
    m_proxy->setIdToken(kIdToken, QDateTime::currentDateTimeUtc().addSecs(60));
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 1);
    // A signal emitted before the response was written has been posted to this thread by now.
    QCoreApplication::sendPostedEvents();
    QCOMPARE(expired, 0);
}

void TestLocalProxy::unavailableReasonShown()
{
    m_proxy->setUnavailable(QStringLiteral("Refreshing failed: the provider is unreachable."));
    const std::optional<TestResponse> response = roundTrip(get("/clusters/dev/api"));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    const QString body = QString::fromUtf8(response->body);
    QVERIFY2(body.contains(QStringLiteral("the provider is unreachable")), qPrintable(body));
    QCOMPARE(m_upstream->requests().size(), 0);

    m_proxy->setIdToken(kIdToken);
    const std::optional<TestResponse> after = roundTrip(get("/clusters/dev/api"));
    QVERIFY(after);
    QCOMPARE(after->head.statusCode, 200);
}

void TestLocalProxy::idTokenChangeOnOpenConnection()
{
    const QByteArray refreshedToken = "eyJhbGciOiJSUzI1NiJ9.refreshed-token.signature";
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);

    client->send(get("/clusters/dev/api"));
    QVERIFY(client->waitForResponse());
    m_proxy->setIdToken(refreshedToken);
    client->send(get("/clusters/dev/api"));
    QVERIFY(client->waitForResponse());

    QCOMPARE(m_upstream->requests().size(), 2);
    QCOMPARE(m_upstream->requests().at(0).head.value("Authorization"), "Bearer " + kIdToken);
    QCOMPARE(m_upstream->requests().at(1).head.value("Authorization"), "Bearer " + refreshedToken);
}

// A refresh replaces the token for new requests; a watch admitted with the old one goes on.
void TestLocalProxy::idTokenChangeKeepsOpenWatch()
{
    const std::unique_ptr<TestHttpClient> watcher = connectClient();
    QVERIFY(watcher);
    watcher->send(get("/clusters/dev/stream?watch=true"));
    QVERIFY(watcher->waitForPartialBody(TestUpstream::streamEvent(0)));

    const QByteArray refreshedToken = "eyJhbGciOiJSUzI1NiJ9.refreshed-token.signature";
    m_proxy->setIdToken(refreshedToken);
    const std::optional<TestResponse> other = roundTrip(get("/clusters/dev/api"));
    QVERIFY(other);
    QCOMPARE(other->head.statusCode, 200);

    m_upstream->releaseStreamEvent();
    QVERIFY2(watcher->waitForPartialBody(TestUpstream::streamEvent(1)),
             "the watch stopped when the token changed");
    m_upstream->finishStream();
    const std::optional<TestResponse> watch = watcher->waitForResponse();
    QVERIFY(watch);
    QCOMPARE(watch->body, TestUpstream::streamEvent(0) + TestUpstream::streamEvent(1));

    QCOMPARE(m_upstream->requests().size(), 2);
    QCOMPARE(m_upstream->requests().at(0).head.value("Authorization"), "Bearer " + kIdToken);
    QCOMPARE(m_upstream->requests().at(1).head.value("Authorization"), "Bearer " + refreshedToken);
}

void TestLocalProxy::unsupportedUpgradeRejected()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get("/clusters/dev/api/v1/namespaces/default/pods/p/exec",
                     {"Connection: Upgrade", "Upgrade: h2c"}));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 501);
    QVERIFY(response->body.contains("forwards only upgrades to websocket and SPDY/3.1"));
    QVERIFY(client->waitForDisconnected());
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::foreignHostRejected()
{
    const QByteArray request = "GET /clusters/dev/api HTTP/1.1\r\nHost: attacker.example:" +
                               QByteArray::number(m_proxy->port()) + "\r\nAuthorization: Bearer " +
                               m_sessionKey + "\r\n\r\n";
    const std::optional<TestResponse> response = roundTrip(request);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 403);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::ambiguousRequestRejected_data()
{
    // PORT in a request is replaced by the proxy's port; KEY by the session key.
    QTest::addColumn<QByteArray>("request");
    QTest::addColumn<int>("status");

    const QByteArray key = "Authorization: Bearer KEY\r\n";
    QTest::newRow("no host") << "GET /clusters/dev/api HTTP/1.1\r\n" + key + "\r\n" << 400;
    QTest::newRow("empty host") << "GET /clusters/dev/api HTTP/1.1\r\nHost:\r\n" + key + "\r\n"
                                << 403;
    QTest::newRow("http/1.0 without host") << "GET /clusters/dev/api HTTP/1.0\r\n" + key + "\r\n"
                                           << 400;
    QTest::newRow("two hosts")
        << "GET /clusters/dev/api HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nHost: 127.0.0.1:PORT\r\n" +
               key + "\r\n"
        << 400;
    QTest::newRow("two origins") << "GET /clusters/dev/api HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\n"
                                    "Origin: https://127.0.0.1:PORT\r\n"
                                    "Origin: https://evil.example\r\n" +
                                        key + "\r\n"
                                 << 400;
    QTest::newRow("dot dot segment")
        << "GET /clusters/dev/../../x HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\n" + key + "\r\n"
        << 400;
    QTest::newRow("encoded dot dot")
        << "GET /clusters/dev/api/%2e%2E/x HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\n" + key + "\r\n"
        << 400;
    QTest::newRow("dot segment") << "GET /clusters/dev/./api HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\n" +
                                        key + "\r\n"
                                 << 400;
    QTest::newRow("fragment") << "GET /clusters/dev/api#x HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\n" +
                                     key + "\r\n"
                              << 400;
    QTest::newRow("HTTP/2.0 request line")
        << "GET /clusters/dev/api HTTP/2.0\r\nHost: 127.0.0.1:PORT\r\n" + key + "\r\n"
        << 505;
    QTest::newRow("prior-knowledge HTTP/2 preface")
        << QByteArray("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") << 505;
}

void TestLocalProxy::ambiguousRequestRejected()
{
    QFETCH(QByteArray, request);
    QFETCH(int, status);
    request.replace("PORT", QByteArray::number(m_proxy->port()));
    request.replace("KEY", m_sessionKey);
    const std::optional<TestResponse> response = roundTrip(request);
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, status);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::foreignOriginRejected()
{
    const std::optional<TestResponse> response =
        roundTrip(get("/clusters/dev/api", {"Origin: https://attacker.example"}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 403);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestLocalProxy::rejectionLogHasNoSecret()
{
    {
        const QMutexLocker locker(&g_logMutex);
        g_logMessages.clear();
    }
    const QtMessageHandler previous = qInstallMessageHandler(recordLogMessage);
    const QByteArray wrongKey = "wrong-session-key-that-must-not-be-logged";
    const QByteArray request = TestHttpClient::request(
        "GET", "/clusters/dev/api?token=query-secret", m_proxy->port(), wrongKey);
    const std::optional<TestResponse> response = roundTrip(request);
    qInstallMessageHandler(previous);

    QVERIFY(response);
    const QStringList messages = recordedLogMessages();
    const QStringList lines = messages.filter(QStringLiteral("Rejected"));
    QCOMPARE(lines.size(), 1);
    const QString &line = lines.first();
    QVERIFY2(line.startsWith(QStringLiteral("Rejected GET /clusters/dev/api from client port ")),
             qPrintable(line));
    QVERIFY2(line.endsWith(QStringLiteral(": 401 session key invalid")), qPrintable(line));
    for (const QString &message : messages) {
        QVERIFY2(!message.contains(QString::fromLatin1(wrongKey)), qPrintable(message));
        QVERIFY2(!message.contains(QStringLiteral("query-secret")), qPrintable(message));
        QVERIFY2(!message.contains(QString::fromLatin1(kIdToken)), qPrintable(message));
    }
}

// A 103 Early Hints head goes to the client without Access-Control-* fields and without a
// Set-Cookie of the proxy's session cookie, like the final head after it.
void TestLocalProxy::interimResponseFieldsWithheld()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(get("/clusters/dev/early-hints"));

    const std::optional<TestResponse> interim = client->waitForResponse();
    QVERIFY(interim);
    QCOMPARE(interim->head.statusCode, 103);
    QCOMPARE(interim->head.value("Link"), QByteArray("</style.css>; rel=preload"));
    QVERIFY(!interim->head.contains("Access-Control-Allow-Origin"));
    QVERIFY(!interim->head.contains("Set-Cookie"));

    const std::optional<TestResponse> final = client->waitForResponse();
    QVERIFY(final);
    QCOMPARE(final->head.statusCode, 200);
    QCOMPARE(final->body, QByteArray("ok"));
    QVERIFY(!final->head.contains("Access-Control-Allow-Origin"));
}

void TestLocalProxy::clusterUrlNamesCluster()
{
    const QUrl url = m_proxy->clusterUrl(QStringLiteral("dev"));
    QCOMPARE(url.toString(),
             QStringLiteral("https://127.0.0.1:%1/clusters/dev").arg(m_proxy->port()));
    const QUrl spaced = m_proxy->clusterUrl(QStringLiteral("my cluster"));
    QCOMPARE(spaced.path(QUrl::FullyEncoded), QStringLiteral("/clusters/my%20cluster"));
}

QTEST_GUILESS_MAIN(TestLocalProxy)
#include "tst_localproxy.moc"
