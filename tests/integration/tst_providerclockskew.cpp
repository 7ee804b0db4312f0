#include "oidc/LoginJob.h"
#include "oidc/OidcClient.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);

// Signing in starts Chromium, which takes a few seconds. The browser script gives up after 60 s.
constexpr int loginTimeoutMs = 120'000;

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

} // namespace

// Signs in against the real OpenID provider (oidc-provider on 127.0.0.1) whose clock runs ahead of
// the desktop's or behind it, with headless Chromium completing the sign-in form. The provider's
// ID tokens live two minutes by its own clock, and oidc.clock_skew_seconds decides whether
// Lamplighter accepts them.
class TestProviderClockSkew : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanup();

    void signInWithSkew_data();
    void signInWithSkew();

private:
    // Starts the provider with its clock offsetSeconds ahead (or behind, when negative) and
    // returns an empty string or why it failed.
    QString startProvider(int offsetSeconds);
    QString logs() const;

    QTemporaryDir m_work;
    QString m_node;
    QString m_pki;
    QList<QSslCertificate> m_caCertificates;
    QProcess m_provider;
    QUrl m_issuer;
};

void TestProviderClockSkew::initTestCase()
{
    QVERIFY(m_work.isValid());
    m_node = QStandardPaths::findExecutable(QStringLiteral("node"));
    QVERIFY2(!m_node.isEmpty(), "node is not on PATH; run scripts/install-deps");
    QVERIFY2(QFile::exists(fixturesDirectory + QStringLiteral("/node_modules/oidc-provider")),
             "tests/fixtures/node_modules is missing; run npm ci in tests/fixtures");

    m_pki = m_work.filePath(QStringLiteral("pki"));
    QProcess makePki;
    makePki.start(fixturesDirectory + QStringLiteral("/make-test-pki.sh"), {m_pki});
    QVERIFY(makePki.waitForFinished(60'000));
    QVERIFY2(makePki.exitCode() == 0, makePki.readAllStandardError().constData());
    m_caCertificates = QSslCertificate::fromPath(m_pki + QStringLiteral("/ca.crt"));
    QCOMPARE(m_caCertificates.size(), 1);
    qputenv("LAMPLIGHTER_TEST_ARTIFACTS",
            m_work.filePath(QStringLiteral("artifacts")).toLocal8Bit());
}

void TestProviderClockSkew::cleanup()
{
    if (m_provider.state() == QProcess::NotRunning)
        return;
    m_provider.terminate();
    if (!m_provider.waitForFinished(5000))
        m_provider.kill();
    m_provider.waitForFinished(5000);
}

QString TestProviderClockSkew::startProvider(int offsetSeconds)
{
    m_provider.setProgram(m_node);
    // A negative value must follow an equals sign, or node's parseArgs takes it for an option.
    m_provider.setArguments({fixturesDirectory + QStringLiteral("/oidc-provider/server.mjs"),
                             QStringLiteral("--port"),
                             QStringLiteral("0"),
                             QStringLiteral("--cert"),
                             m_pki + QStringLiteral("/provider.crt"),
                             QStringLiteral("--key"),
                             m_pki + QStringLiteral("/provider.key"),
                             QStringLiteral("--id-token-ttl"),
                             QStringLiteral("120"),
                             QStringLiteral("--clock-offset=%1").arg(offsetSeconds)});
    m_provider.setStandardErrorFile(m_work.filePath(QStringLiteral("provider.log")),
                                    QIODevice::Append);
    m_provider.start();
    if (!m_provider.waitForStarted(10'000))
        return QStringLiteral("The provider did not start: ") + m_provider.errorString();
    if (!QTest::qWaitFor(
            [this] {
                return m_provider.canReadLine() || m_provider.state() == QProcess::NotRunning;
            },
            30'000))
        return QStringLiteral("The provider did not print its issuer within 30 s. ") + logs();
    const QJsonObject ready = QJsonDocument::fromJson(m_provider.readLine()).object();
    m_issuer = QUrl(ready.value(QStringLiteral("issuer")).toString());
    if (!m_issuer.isValid() || m_issuer.isEmpty())
        return QStringLiteral("The provider printed no issuer. ") + logs();
    return QString();
}

QString TestProviderClockSkew::logs() const
{
    return QStringLiteral("provider log:\n") +
           readFile(m_work.filePath(QStringLiteral("provider.log"))) +
           QStringLiteral("\nbrowser log:\n") +
           readFile(m_work.filePath(QStringLiteral("browser.log")));
}

void TestProviderClockSkew::signInWithSkew_data()
{
    QTest::addColumn<int>("offset");
    QTest::addColumn<int>("allowedSkew");
    QTest::addColumn<QString>("expectedError");

    QTest::newRow("5 min ahead, 6 min allowed") << 300 << 360 << QString();
    QTest::newRow("5 min behind, 6 min allowed") << -300 << 360 << QString();
    QTest::newRow("7 min ahead, 6 min allowed")
        << 420 << 360 << QStringLiteral("The ID token was issued in the future");
    // The ID token expired three minutes ago by the desktop's clock.
    QTest::newRow("5 min behind, default allowed")
        << -300 << 60 << QStringLiteral("The ID token has expired");
}

void TestProviderClockSkew::signInWithSkew()
{
    QFETCH(int, offset);
    QFETCH(int, allowedSkew);
    QFETCH(QString, expectedError);

    const QString started = startProvider(offset);
    QVERIFY2(started.isEmpty(), qPrintable(started));
    ProviderConfig config;
    config.issuer = m_issuer;
    config.clientId = QStringLiteral("lamplighter");
    config.scopes = {QStringLiteral("openid"), QStringLiteral("email")};
    config.caCertificates = m_caCertificates;
    config.clockSkew = std::chrono::seconds(allowedSkew);
    OidcClient client(config);

    LoginConfig loginConfig;
    loginConfig.browserCommand = {QStringLiteral("/bin/sh"),
                                  QStringLiteral("-c"),
                                  QStringLiteral("exec \"$1\" \"$2\" \"$3\" >> \"$0\" 2>&1"),
                                  m_work.filePath(QStringLiteral("browser.log")),
                                  m_node,
                                  fixturesDirectory + QStringLiteral("/browser-login.mjs")};
    loginConfig.timeout = std::chrono::seconds(loginTimeoutMs / 1000);
    LoginJob *login = client.login(loginConfig);
    QSignalSpy finished(login, &LoginJob::finished);
    login->start();
    QTRY_VERIFY2_WITH_TIMEOUT(finished.size() == 1, qPrintable(logs()), loginTimeoutMs);

    if (expectedError.isEmpty()) {
        QVERIFY2(!login->failed(), qPrintable(login->error().message + QLatin1Char('\n') + logs()));
        QCOMPARE(login->tokens().claims.subject, QStringLiteral("jane"));
        const qint64 issuedAt = login->tokens().claims.issuedAt.toSecsSinceEpoch();
        const qint64 desktopNow = QDateTime::currentSecsSinceEpoch();
        // The token carries the provider's time, which proves the offset took effect.
        QVERIFY2(
            qAbs(issuedAt - desktopNow - offset) < 60,
            qPrintable(QStringLiteral("iat %1, desktop time %2").arg(issuedAt).arg(desktopNow)));
        return;
    }
    QVERIFY(login->failed());
    const QString message = login->error().message;
    QVERIFY2(message.contains(expectedError), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("the allowed clock skew is %1 s").arg(allowedSkew)),
             qPrintable(message));
}

QTEST_GUILESS_MAIN(TestProviderClockSkew)
#include "tst_providerclockskew.moc"
