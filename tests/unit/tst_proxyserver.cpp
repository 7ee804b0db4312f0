#include "TestHttpClient.h"
#include "TestUpstream.h"
#include "proxy/ProxyHeaders.h"
#include "proxy/ProxyServer.h"
#include "proxy/ProxySettings.h"
#include "proxy/RequestGate.h"
#include "tls/LocalCertificate.h"
#include "tls/TlsContext.h"

#include <QTest>
#include <QTimer>
#include <memory>

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

private:
    QByteArray request(const QByteArray &method,
                       const QByteArray &target,
                       const QByteArray &body = QByteArray()) const;
    std::unique_ptr<TestHttpClient> connectClient() const;

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
    m_server = std::make_unique<ProxyServer>(std::make_shared<ProxySettings>(), m_gate);
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

QTEST_MAIN(TestProxyServer)
#include "tst_proxyserver.moc"
