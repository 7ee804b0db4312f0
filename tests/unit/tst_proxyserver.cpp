#include "DescriptorExhaustion.h"
#include "TestHttpClient.h"
#include "TestUpstream.h"
#include "proxy/ProxyHeaders.h"
#include "proxy/ProxyServer.h"
#include "proxy/ProxySettings.h"
#include "proxy/RequestGate.h"
#include "tls/LocalCertificate.h"
#include "tls/TlsContext.h"

#include <QMutex>
#include <QRegularExpression>
#include <QSslSocket>
#include <QTest>
#include <QThread>
#include <QTimer>
#include <memory>
#include <set>
#include <thread>

using namespace lamplighter;

namespace {

// A gate that decides after `delayMs` on the event loop, as the cluster proxy's gate does while
// it fetches the issuer's keys: it forwards to `cluster`, optionally with a body of its own, or
// rejects with 403.
class DelayedGate : public RequestGate {
public:
    UpstreamCluster cluster;
    int delayMs = 50;
    bool reject = false;
    std::optional<QByteArray> replacementBody;
    int decisions = 0;

    void admit(const HttpHead &request, Decide decide) override
    {
        RequestAdmission admission;
        if (reject) {
            admission = rejectWithStatus(403,
                                         QStringLiteral("Forbidden by the test gate."),
                                         QStringLiteral("test rejection"));
        } else {
            HttpHead forwarded = request;
            if (replacementBody) {
                forwarded.method = "POST";
                forwarded.framing = HttpBodyFraming::ContentLength;
                forwarded.contentLength = replacementBody->size();
                admission.upstreamBody = replacementBody;
            }
            admission.cluster = &cluster;
            admission.upstreamHead = upstreamRequestHead(
                forwarded, forwarded.target, cluster.server, std::vector<HttpHeader>{});
        }
        QTimer::singleShot(delayMs, [this, decide, admission] {
            ++decisions;
            decide(admission);
        });
    }
};

// A gate that forwards every request to `cluster` at once and records the thread that
// called it.
class ThreadRecordingGate : public RequestGate {
public:
    UpstreamCluster cluster;

    void admit(const HttpHead &request, Decide decide) override
    {
        {
            const QMutexLocker locker(&m_mutex);
            m_threads.append(QThread::currentThread());
        }
        RequestAdmission admission;
        admission.cluster = &cluster;
        admission.upstreamHead =
            upstreamRequestHead(request, request.target, cluster.server, std::vector<HttpHeader>{});
        decide(admission);
    }

    QList<QThread *> threads() const
    {
        const QMutexLocker locker(&m_mutex);
        return m_threads;
    }

private:
    mutable QMutex m_mutex;
    QList<QThread *> m_threads;
};

} // namespace

// ProxyServer with a gate that decides later. The connection keeps the request and its body
// until the decision, and then forwards or rejects it.
class TestProxyServer : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();
    void laterDecisionForwardsBody();
    void laterRejectionKeepsConnection();
    void gateBodyReplacesClients();
    void workersShareConnections();
    void abortReachesEveryWorker();
    void acceptsWhileOwnerThreadBusy();
    void acceptResumesAfterDescriptorsFreed();
    void secondListenRejected();

private:
    QByteArray request(const QByteArray &method,
                       const QByteArray &target,
                       const QByteArray &body = QByteArray()) const;
    std::unique_ptr<TestHttpClient> connectClient() const;
    // Replaces m_server with one that runs its connections on two worker threads and forwards
    // through `gate`.
    bool startServerWithWorkers(std::shared_ptr<RequestGate> gate);

    LocalCertificate m_certificate;
    std::unique_ptr<TestUpstream> m_upstream;
    std::shared_ptr<DelayedGate> m_gate;
    std::unique_ptr<ProxyServer> m_server;
};

void TestProxyServer::initTestCase()
{
    const Result<LocalCertificate> generated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_certificate = *generated;
}

void TestProxyServer::init()
{
    m_upstream = std::make_unique<TestUpstream>();
    QVERIFY(m_upstream->listen());
    m_gate = std::make_shared<DelayedGate>();
    m_gate->cluster = m_upstream->cluster(QStringLiteral("test"));
    m_server = std::make_unique<ProxyServer>(std::make_shared<SharedProxySettings>(), m_gate);
    const auto context = TlsContext::forServer(m_certificate.certificate, m_certificate.privateKey);
    QVERIFY2(context.ok(), qPrintable(context.errorMessage()));
    m_server->setTlsContext(*context);
    const Status listening = m_server->listen(QHostAddress::LocalHost, 0, QStringLiteral("test"));
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
}

void TestProxyServer::cleanup()
{
    m_server.reset();
    m_gate.reset();
    m_upstream.reset();
}

QByteArray TestProxyServer::request(const QByteArray &method,
                                    const QByteArray &target,
                                    const QByteArray &body) const
{
    QByteArray bytes = method + ' ' + target +
                       " HTTP/1.1\r\nHost: 127.0.0.1:" + QByteArray::number(m_server->port()) +
                       "\r\n";
    if (!body.isEmpty())
        bytes += "Content-Length: " + QByteArray::number(body.size()) + "\r\n";
    return bytes + "\r\n" + body;
}

std::unique_ptr<TestHttpClient> TestProxyServer::connectClient() const
{
    auto client = std::make_unique<TestHttpClient>(m_certificate.certificate);
    if (!client->connectToProxy(m_server->port()))
        return nullptr;
    return client;
}

// The body arrives with the head, before the decision, and must reach the upstream whole.
void TestProxyServer::laterDecisionForwardsBody()
{
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    const QByteArray body(20000, 'b');
    client->send(request("POST", "/echo", body));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(response->body, body);
    QCOMPARE(m_gate->decisions, 1);

    // The connection reads the next request after a decision that came later.
    client->send(request("GET", "/api"));
    const std::optional<TestResponse> second = client->waitForResponse();
    QVERIFY(second);
    QCOMPARE(second->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 2);
}

void TestProxyServer::laterRejectionKeepsConnection()
{
    m_gate->reject = true;
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(request("GET", "/api"));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 403);
    QVERIFY(response->body.contains("Forbidden by the test gate."));

    m_gate->reject = false;
    client->send(request("GET", "/api"));
    const std::optional<TestResponse> second = client->waitForResponse();
    QVERIFY2(second, "the connection did not serve a request after a rejection");
    QCOMPARE(second->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 1);
}

void TestProxyServer::gateBodyReplacesClients()
{
    m_gate->replacementBody = QByteArray(R"({"kind":"SelfSubjectReview"})");
    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(request("GET", "/echo"));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(response->body, *m_gate->replacementBody);
    QCOMPARE(m_upstream->requests().size(), 1);
    QCOMPARE(m_upstream->requests().first().head.method, QByteArray("POST"));
}

bool TestProxyServer::startServerWithWorkers(std::shared_ptr<RequestGate> gate)
{
    m_server = std::make_unique<ProxyServer>(std::make_shared<SharedProxySettings>(), gate);
    m_server->setWorkerThreads(2);
    const auto context = TlsContext::forServer(m_certificate.certificate, m_certificate.privateKey);
    if (!context)
        return false;
    m_server->setTlsContext(*context);
    return m_server->listen(QHostAddress::LocalHost, 0, QStringLiteral("test")).ok();
}

// Each new connection goes to the worker with the fewest, so four open connections are served
// two on each worker, and none on the owner's thread.
void TestProxyServer::workersShareConnections()
{
    auto gate = std::make_shared<ThreadRecordingGate>();
    gate->cluster = m_upstream->cluster(QStringLiteral("test"));
    QVERIFY(startServerWithWorkers(gate));
    QCOMPARE(m_server->workerThreads(), 2);

    std::vector<std::unique_ptr<TestHttpClient>> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(connectClient());
        QVERIFY(clients.back());
        clients.back()->send(request("GET", "/api/v1/namespaces"));
        const std::optional<TestResponse> response = clients.back()->waitForResponse();
        QVERIFY(response);
        QCOMPARE(response->head.statusCode, 200);
    }

    const QList<QThread *> threads = gate->threads();
    QCOMPARE(threads.size(), 4);
    QVERIFY(!threads.contains(QThread::currentThread()));
    const std::set<QThread *> distinct(threads.begin(), threads.end());
    QCOMPARE(distinct.size(), std::size_t(2));
    for (QThread *thread : distinct)
        QCOMPARE(threads.count(thread), 2);
}

// abortConnections() runs on the owner's thread and must close the connections that the workers
// have before it returns.
void TestProxyServer::abortReachesEveryWorker()
{
    auto gate = std::make_shared<ThreadRecordingGate>();
    gate->cluster = m_upstream->cluster(QStringLiteral("test"));
    QVERIFY(startServerWithWorkers(gate));

    std::vector<std::unique_ptr<TestHttpClient>> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(connectClient());
        QVERIFY(clients.back());
        clients.back()->send(request("GET", "/api/v1/namespaces"));
        QVERIFY(clients.back()->waitForResponse());
    }
    m_server->abortConnections();
    for (const std::unique_ptr<TestHttpClient> &client : clients)
        QVERIFY(client->waitForDisconnected());

    // The server goes on accepting after the abort.
    const std::unique_ptr<TestHttpClient> later = connectClient();
    QVERIFY(later);
    later->send(request("GET", "/api/v1/namespaces"));
    const std::optional<TestResponse> response = later->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
}

// With worker threads, the listener runs on one of them. A client is then accepted and served
// while the owner's thread, which is the tray's in the app, is busy: here it waits for the
// client's thread without running its event loop. The client uses blocking calls, because its
// thread has no event loop either.
void TestProxyServer::acceptsWhileOwnerThreadBusy()
{
    m_gate->reject = true;
    m_gate->delayMs = 0;
    QVERIFY(startServerWithWorkers(m_gate));
    const quint16 port = m_server->port();
    const QByteArray head = request("GET", "/api");

    QByteArray received;
    std::thread clientThread([&] {
        QSslSocket socket;
        QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
        configuration.setCaCertificates({m_certificate.certificate});
        socket.setSslConfiguration(configuration);
        socket.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port);
        if (!socket.waitForEncrypted(5000))
            return;
        socket.write(head);
        while (!received.contains("\r\n\r\n") && socket.waitForReadyRead(5000))
            received += socket.readAll();
    });
    clientThread.join();

    QVERIFY2(received.startsWith("HTTP/1.1 403 "), received.constData());
}

// When the process has no descriptor left, accepting fails. The listener tries again, so a client
// that waited in the backlog is served once descriptors are free, and later clients are accepted
// without another failure: QTcpServer kept reporting the first error after every later accept.
void TestProxyServer::acceptResumesAfterDescriptorsFreed()
{
    if (DescriptorExhaustion::kSanitized)
        QSKIP("the sanitizers' own checks fail without free descriptors");
    QTest::ignoreMessage(QtWarningMsg,
                         QRegularExpression(QStringLiteral(
                             "^Accepting a client connection on port \\d+ failed: Too many open "
                             "files\\. Trying again every 1000 ms")));
    QTest::ignoreMessage(
        QtInfoMsg,
        QRegularExpression(QStringLiteral(
            "^Accepting client connections on port \\d+ again, \\d+ ms after the first "
            "failure\\.$")));
    // Any further failure would be a warning as well: the first one is the only one expected.
    QTest::failOnWarning(QRegularExpression(QStringLiteral("failed")));

    // Every descriptor but one is taken, and the client's socket takes that one.
    DescriptorExhaustion exhaustion(1);
    QVERIFY(exhaustion.active());
    // The timer is a child of `freeing`, so that it cannot fire after this function returned.
    QObject freeing;
    QTimer::singleShot(300, &freeing, [&exhaustion] { exhaustion.release(); });

    TestHttpClient client(m_certificate.certificate);
    QVERIFY2(client.connectToProxy(m_server->port()),
             "the proxy did not accept again after descriptors were freed");
    client.send(request("GET", "/api"));
    const std::optional<TestResponse> response = client.waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);

    for (int i = 0; i < 2; ++i) {
        TestHttpClient later(m_certificate.certificate);
        QVERIFY(later.connectToProxy(m_server->port()));
        later.send(request("GET", "/api"));
        const std::optional<TestResponse> laterResponse = later.waitForResponse();
        QVERIFY(laterResponse);
        QCOMPARE(laterResponse->head.statusCode, 200);
    }
}

// A second listen() would leave the first socket open and unwatched, so that its clients hang.
void TestProxyServer::secondListenRejected()
{
    const quint16 port = m_server->port();
    const Status again = m_server->listen(QHostAddress::LocalHost, 0, QStringLiteral("test"));
    QCOMPARE(again.errorMessage(),
             QStringLiteral("The test is already listening on port %1.").arg(port));
    QCOMPARE(m_server->port(), port);

    const std::unique_ptr<TestHttpClient> client = connectClient();
    QVERIFY(client);
    client->send(request("GET", "/api"));
    const std::optional<TestResponse> response = client->waitForResponse();
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
}

QTEST_MAIN(TestProxyServer)
#include "tst_proxyserver.moc"
