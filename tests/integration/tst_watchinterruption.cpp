#include "FixtureServer.h"
#include "TestHttpClient.h"
#include "proxy/LocalProxy.h"
#include "tls/LocalCertificate.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>
#include <csignal>
#include <memory>
#include <sys/types.h>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

const QByteArray staticToken = "watch-interruption-static-token-5c1e";
const QByteArray sessionKey = "watch-interruption-session-key-0123456789";
const QByteArray watchTarget = "/clusters/demo/api/v1/namespaces?watch=true&timeoutSeconds=60";
const QByteArray listTarget = "/clusters/demo/api/v1/namespaces";

} // namespace

// A real LocalProxy forwards watches to the API server double of tests/fixtures/apiserver-double
// while the double drops them mid-stream or restarts. The client must see its connection end
// rather than wait forever, and the proxy must serve the next requests.
class TestWatchInterruption : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();
    void init();
    void cleanup();

    void droppedWatchEndsClientConnection();
    void restartedApiServerServedAgain();

private:
    // Starts the double on port (0 picks one) and returns an empty string or why it failed.
    QString startApiServer(quint16 port);
    // Opens a watch through the proxy and waits for its first event.
    std::unique_ptr<TestHttpClient> openWatch();
    // Sends a list request on a new connection and returns its status, or -1 without a response.
    int listNamespaces();

    QTemporaryDir m_work;
    QString m_pki;
    QString m_tokenFile;
    FixtureServer m_apiServer{QStringLiteral("API server double"),
                              m_work.filePath(QStringLiteral("apiserver.log"))};
    QUrl m_apiServerUrl;
    QSslCertificate m_caCertificate;
    QSslCertificate m_proxyCertificate;
    std::unique_ptr<LocalProxy> m_proxy;
};

void TestWatchInterruption::initTestCase()
{
    QVERIFY(m_work.isValid());
    const Result<QString> node = findNode();
    QVERIFY2(node.ok(), qPrintable(node.errorMessage()));

    m_pki = m_work.filePath(QStringLiteral("pki"));
    const Result<QSslCertificate> ca = makeTestPki(m_pki);
    QVERIFY2(ca.ok(), qPrintable(ca.errorMessage()));
    m_caCertificate = *ca;

    m_tokenFile = m_work.filePath(QStringLiteral("tokens.csv"));
    QFile tokens(m_tokenFile);
    QVERIFY(tokens.open(QIODevice::WriteOnly));
    tokens.write(staticToken + ",jane,jane-uid-1,\"developers\"\n");
    tokens.close();

    const QString started = startApiServer(0);
    QVERIFY2(started.isEmpty(), qPrintable(started));
}

void TestWatchInterruption::cleanupTestCase()
{
    m_apiServer.stop();
}

void TestWatchInterruption::init()
{
    const Result<LocalCertificate> certificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(certificate.ok(), qPrintable(certificate.errorMessage()));
    m_proxyCertificate = certificate->certificate;
    m_proxy = std::make_unique<LocalProxy>();
    m_proxy->setServerCertificate(*certificate);
    m_proxy->setSessionKey(sessionKey);
    m_proxy->setClusters(
        {UpstreamCluster{QStringLiteral("demo"), m_apiServerUrl, {m_caCertificate}}});
    m_proxy->setIdToken(staticToken, QDateTime::currentDateTimeUtc().addSecs(3600));
    const Status listening = m_proxy->listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
}

void TestWatchInterruption::cleanup()
{
    m_proxy.reset();
}

QString TestWatchInterruption::startApiServer(quint16 port)
{
    const Result<QUrl> server = m_apiServer.start(QStringLiteral("apiserver-double/server.mjs"),
                                                  {QStringLiteral("--port"),
                                                   QString::number(port),
                                                   QStringLiteral("--tls-cert-file"),
                                                   m_pki + QStringLiteral("/apiserver.crt"),
                                                   QStringLiteral("--tls-private-key-file"),
                                                   m_pki + QStringLiteral("/apiserver.key"),
                                                   QStringLiteral("--token-auth-file"),
                                                   m_tokenFile,
                                                   QStringLiteral("--watch-interval"),
                                                   QStringLiteral("0.2")},
                                                  QStringLiteral("server"));
    if (!server.ok())
        return server.errorMessage();
    m_apiServerUrl = *server;
    return QString();
}

std::unique_ptr<TestHttpClient> TestWatchInterruption::openWatch()
{
    auto client = std::make_unique<TestHttpClient>(m_proxyCertificate);
    if (!client->connectToProxy(m_proxy->port()))
        return nullptr;
    client->send(TestHttpClient::request("GET", watchTarget, m_proxy->port(), sessionKey));
    // The double modifies a namespace every 0.2 s, so events arrive without delay.
    if (!client->waitForPartialBody("\"type\":\"MODIFIED\""))
        return nullptr;
    return client;
}

int TestWatchInterruption::listNamespaces()
{
    TestHttpClient client(m_proxyCertificate);
    if (!client.connectToProxy(m_proxy->port()))
        return -1;
    client.send(TestHttpClient::request("GET", listTarget, m_proxy->port(), sessionKey));
    const std::optional<TestResponse> response = client.waitForResponse();
    return response ? response->head.statusCode : -1;
}

void TestWatchInterruption::droppedWatchEndsClientConnection()
{
    const std::unique_ptr<TestHttpClient> watch = openWatch();
    QVERIFY2(watch, qPrintable(m_apiServer.log()));
    const std::unique_ptr<TestHttpClient> otherWatch = openWatch();
    QVERIFY2(otherWatch, qPrintable(m_apiServer.log()));

    QCOMPARE(::kill(pid_t(m_apiServer.process().processId()), SIGUSR1), 0);

    QVERIFY2(watch->waitForDisconnected(), "the client of a dropped watch is still connected");
    QVERIFY2(otherWatch->waitForDisconnected(),
             "the client of the second dropped watch is still connected");
    QVERIFY(m_apiServer.log().contains(QStringLiteral("dropped the connections of 2 open watch")));
    QCOMPARE(listNamespaces(), 200);
    const std::unique_ptr<TestHttpClient> newWatch = openWatch();
    QVERIFY2(newWatch, "a watch after the dropped ones did not start");
}

void TestWatchInterruption::restartedApiServerServedAgain()
{
    const std::unique_ptr<TestHttpClient> watch = openWatch();
    QVERIFY2(watch, qPrintable(m_apiServer.log()));
    const quint16 port = quint16(m_apiServerUrl.port());

    // SIGKILL: the double gets no chance to end its responses, as in a crash.
    m_apiServer.process().kill();
    QVERIFY(m_apiServer.process().waitForFinished(5'000));
    QVERIFY2(watch->waitForDisconnected(), "the watch's client is still connected");

    // While the API server is down, the proxy responds with an error of its own.
    const int statusWhileDown = listNamespaces();
    QVERIFY2(statusWhileDown == 502 || statusWhileDown == 503,
             qPrintable(QString::number(statusWhileDown)));

    const QString restarted = startApiServer(port);
    QVERIFY2(restarted.isEmpty(), qPrintable(restarted));
    QCOMPARE(listNamespaces(), 200);
    const std::unique_ptr<TestHttpClient> newWatch = openWatch();
    QVERIFY2(newWatch, "a watch after the restart did not start");
}

QTEST_GUILESS_MAIN(TestWatchInterruption)
#include "tst_watchinterruption.moc"
