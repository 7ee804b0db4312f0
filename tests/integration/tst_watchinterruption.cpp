#include "TestHttpClient.h"
#include "proxy/LocalProxy.h"
#include "tls/LocalCertificate.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <csignal>
#include <memory>
#include <sys/types.h>

using namespace lamplighter;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);
const QByteArray staticToken = "watch-interruption-static-token-5c1e";
const QByteArray sessionKey = "watch-interruption-session-key-0123456789";
const QByteArray watchTarget = "/clusters/demo/api/v1/namespaces?watch=true&timeoutSeconds=60";
const QByteArray listTarget = "/clusters/demo/api/v1/namespaces";
constexpr int startTimeoutMs = 30'000;

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

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
    void stopApiServer();
    QString apiServerLog() const;
    // Opens a watch through the proxy and waits for its first event.
    std::unique_ptr<TestHttpClient> openWatch();
    // Sends a list request on a new connection and returns its status, or -1 without a response.
    int listNamespaces();

    QTemporaryDir m_work;
    QString m_node;
    QString m_pki;
    QString m_tokenFile;
    QProcess m_apiServer;
    QUrl m_apiServerUrl;
    QSslCertificate m_caCertificate;
    QSslCertificate m_proxyCertificate;
    std::unique_ptr<LocalProxy> m_proxy;
};

void TestWatchInterruption::initTestCase()
{
    QVERIFY(m_work.isValid());
    m_node = QStandardPaths::findExecutable(QStringLiteral("node"));
    QVERIFY2(!m_node.isEmpty(), "node is not on PATH; run scripts/install-deps");

    m_pki = m_work.filePath(QStringLiteral("pki"));
    QProcess makePki;
    makePki.start(fixturesDirectory + QStringLiteral("/make-test-pki.sh"), {m_pki});
    QVERIFY(makePki.waitForFinished(60'000));
    QVERIFY2(makePki.exitCode() == 0, makePki.readAllStandardError().constData());
    const QList<QSslCertificate> ca = QSslCertificate::fromPath(m_pki + QStringLiteral("/ca.crt"));
    QCOMPARE(ca.size(), 1);
    m_caCertificate = ca.first();

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
    stopApiServer();
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
    m_apiServer.setProgram(m_node);
    m_apiServer.setArguments({fixturesDirectory + QStringLiteral("/apiserver-double/server.mjs"),
                              QStringLiteral("--port"),
                              QString::number(port),
                              QStringLiteral("--tls-cert-file"),
                              m_pki + QStringLiteral("/apiserver.crt"),
                              QStringLiteral("--tls-private-key-file"),
                              m_pki + QStringLiteral("/apiserver.key"),
                              QStringLiteral("--token-auth-file"),
                              m_tokenFile,
                              QStringLiteral("--watch-interval"),
                              QStringLiteral("0.2")});
    m_apiServer.setStandardErrorFile(m_work.filePath(QStringLiteral("apiserver.log")),
                                     QIODevice::Append);
    m_apiServer.start();
    if (!m_apiServer.waitForStarted(10'000))
        return QStringLiteral("The API server double did not start: ") + m_apiServer.errorString();
    if (!QTest::qWaitFor([this] { return m_apiServer.canReadLine(); }, startTimeoutMs))
        return QStringLiteral("The API server double did not print its address within 30 s. ") +
               apiServerLog();
    const QJsonObject ready = QJsonDocument::fromJson(m_apiServer.readLine()).object();
    m_apiServerUrl = QUrl(ready.value(QStringLiteral("server")).toString());
    if (!m_apiServerUrl.isValid() || m_apiServerUrl.port() <= 0)
        return QStringLiteral("The API server double printed no address. ") + apiServerLog();
    return QString();
}

void TestWatchInterruption::stopApiServer()
{
    if (m_apiServer.state() == QProcess::NotRunning)
        return;
    m_apiServer.terminate();
    if (!m_apiServer.waitForFinished(5'000))
        m_apiServer.kill();
    m_apiServer.waitForFinished(5'000);
}

QString TestWatchInterruption::apiServerLog() const
{
    return QStringLiteral("API server double log:\n") +
           readFile(m_work.filePath(QStringLiteral("apiserver.log")));
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
    QVERIFY2(watch, qPrintable(apiServerLog()));
    const std::unique_ptr<TestHttpClient> otherWatch = openWatch();
    QVERIFY2(otherWatch, qPrintable(apiServerLog()));

    QCOMPARE(::kill(pid_t(m_apiServer.processId()), SIGUSR1), 0);

    QVERIFY2(watch->waitForDisconnected(), "the client of a dropped watch is still connected");
    QVERIFY2(otherWatch->waitForDisconnected(),
             "the client of the second dropped watch is still connected");
    QVERIFY(apiServerLog().contains(QStringLiteral("dropped the connections of 2 open watch")));
    QCOMPARE(listNamespaces(), 200);
    const std::unique_ptr<TestHttpClient> newWatch = openWatch();
    QVERIFY2(newWatch, "a watch after the dropped ones did not start");
}

void TestWatchInterruption::restartedApiServerServedAgain()
{
    const std::unique_ptr<TestHttpClient> watch = openWatch();
    QVERIFY2(watch, qPrintable(apiServerLog()));
    const quint16 port = quint16(m_apiServerUrl.port());

    // SIGKILL: the double gets no chance to end its responses, as in a crash.
    m_apiServer.kill();
    QVERIFY(m_apiServer.waitForFinished(5'000));
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
