#include "TestSessionKey.h"
#include "proxy/LocalProxy.h"
#include "tls/LocalCertificate.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);
const QByteArray kIdToken = "eyJhbGciOiJSUzI1NiJ9.browser-app-token.signature";
constexpr int kBrowserTimeoutMs = 120'000;

bool writeFile(const QString &path, const QByteArray &data)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(data) == data.size();
}

} // namespace

// Headless Chromium opens an app through a launch URL of the local proxy. The app is the HTTPS
// double in tests/fixtures/app-double, which records the headers of every request it receives.
class TestAppBrowser : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();
    void chromiumSeesOnlyInjectedToken();

private:
    QList<QJsonObject> recordedRequests() const;

    QTemporaryDir m_dir;
    QString m_node;
    QProcess m_appDouble;
    quint16 m_appPort = 0;
    LocalCertificate m_appCertificate;
};

void TestAppBrowser::initTestCase()
{
    m_node = QStandardPaths::findExecutable(QStringLiteral("node"));
    QVERIFY2(!m_node.isEmpty(), "node is not on PATH; run scripts/install-deps");
    QVERIFY2(QFile::exists(fixturesDirectory + QStringLiteral("/node_modules/playwright-core")),
             "tests/fixtures/node_modules is missing; run npm ci in tests/fixtures");
    QVERIFY2(QFile::exists(QStringLiteral("/usr/bin/chromium")), "/usr/bin/chromium is missing");
    QVERIFY(m_dir.isValid());

    const Result<LocalCertificate> generated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_appCertificate = *generated;
    QVERIFY(
        writeFile(m_dir.filePath(QStringLiteral("app.crt")), m_appCertificate.certificatePem()));
    QVERIFY(writeFile(m_dir.filePath(QStringLiteral("app.key")), m_appCertificate.privateKeyPem()));

    m_appDouble.setProgram(m_node);
    m_appDouble.setArguments({fixturesDirectory + QStringLiteral("/app-double/server.mjs"),
                              m_dir.filePath(QStringLiteral("app.crt")),
                              m_dir.filePath(QStringLiteral("app.key")),
                              m_dir.filePath(QStringLiteral("requests.jsonl"))});
    m_appDouble.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    m_appDouble.start();
    QVERIFY2(m_appDouble.waitForStarted(10'000), qPrintable(m_appDouble.errorString()));
    QVERIFY(QTest::qWaitFor([this] { return m_appDouble.canReadLine(); }, 30'000));
    const QByteArray line = m_appDouble.readLine().trimmed();
    QVERIFY2(line.startsWith("listening "), line.constData());
    m_appPort = quint16(line.mid(int(qstrlen("listening "))).toUInt());
    QVERIFY(m_appPort != 0);
}

void TestAppBrowser::cleanupTestCase()
{
    if (m_appDouble.state() != QProcess::NotRunning) {
        m_appDouble.terminate();
        if (!m_appDouble.waitForFinished(5'000))
            m_appDouble.kill();
    }
}

QList<QJsonObject> TestAppBrowser::recordedRequests() const
{
    QFile file(m_dir.filePath(QStringLiteral("requests.jsonl")));
    QList<QJsonObject> requests;
    if (!file.open(QIODevice::ReadOnly))
        return requests;
    for (const QByteArray &line : file.readAll().split('\n')) {
        if (!line.trimmed().isEmpty())
            requests.append(QJsonDocument::fromJson(line).object());
    }
    return requests;
}

void TestAppBrowser::chromiumSeesOnlyInjectedToken()
{
    const Result<LocalCertificate> proxyCertificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY(proxyCertificate.ok());
    LocalProxy proxy;
    proxy.setServerCertificate(*proxyCertificate);
    proxy.setSessionKey(newTestSessionKey());
    UpstreamApp app;
    app.name = QStringLiteral("headlamp");
    app.upstream = UpstreamCluster{QStringLiteral("apps/headlamp"),
                                   QUrl(QStringLiteral("https://127.0.0.1:%1").arg(m_appPort)),
                                   {m_appCertificate.certificate}};
    app.injectToken = true;
    proxy.setApps({app});
    proxy.setIdToken(kIdToken);
    const Status listening = proxy.listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    const Result<QByteArray> ticket = proxy.createLaunchTicket(app.name);
    QVERIFY(ticket.ok());
    QProcess browser;
    browser.setProgram(m_node);
    browser.setArguments({fixturesDirectory + QStringLiteral("/app-double/open-app.mjs"),
                          proxy.launchUrl(app.name, ticket.value()).toString()});
    browser.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    browser.start();
    QVERIFY(browser.waitForStarted(10'000));
    // The proxy runs on this thread's event loop, so the wait must keep the loop running.
    QVERIFY(QTest::qWaitFor([&browser] { return browser.state() == QProcess::NotRunning; },
                            kBrowserTimeoutMs));
    const QByteArray output = browser.readAllStandardOutput();
    QCOMPARE(browser.exitCode(), 0);
    QVERIFY2(output.contains("loaded /apps/headlamp/ twice"), output.constData());
    // The browser has the app's token cookie, so it sent it with the second load.
    QVERIFY2(output.contains("headlamp-auth-main.0"), output.constData());
    QVERIFY2(output.contains("lamplighter-session"), output.constData());

    const QList<QJsonObject> requests = recordedRequests();
    int startPageLoads = 0;
    int apiCalls = 0;
    for (const QJsonObject &request : requests) {
        const QString target = request.value(QStringLiteral("target")).toString();
        const QJsonObject headers = request.value(QStringLiteral("headers")).toObject();
        const QString cookie = headers.value(QStringLiteral("cookie")).toString();
        QCOMPARE(headers.value(QStringLiteral("authorization")).toString(),
                 QStringLiteral("Bearer ") + QString::fromLatin1(kIdToken));
        QVERIFY2(!cookie.contains(QStringLiteral("headlamp-auth")), qPrintable(target));
        QVERIFY2(!cookie.contains(QStringLiteral("lamplighter-session")), qPrintable(target));
        QVERIFY2(!target.contains(QStringLiteral("ticket")), qPrintable(target));
        startPageLoads += target == QLatin1String("/") ? 1 : 0;
        apiCalls += target == QLatin1String("/api/data") ? 1 : 0;
    }
    QCOMPARE(startPageLoads, 2);
    QCOMPARE(apiCalls, 2);
}

QTEST_GUILESS_MAIN(TestAppBrowser)
#include "tst_appbrowser.moc"
