#include "FixtureServer.h"
#include "oidc/LoginJob.h"
#include "oidc/OidcClient.h"

#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

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
    QString m_pki;
    QList<QSslCertificate> m_caCertificates;
    FixtureServer m_provider{QStringLiteral("provider"),
                             m_work.filePath(QStringLiteral("provider.log"))};
    QUrl m_issuer;
};

void TestProviderClockSkew::initTestCase()
{
    QVERIFY(m_work.isValid());
    const Result<QString> node = findNode();
    QVERIFY2(node.ok(), qPrintable(node.errorMessage()));

    m_pki = m_work.filePath(QStringLiteral("pki"));
    const Result<QSslCertificate> ca = makeTestPki(m_pki);
    QVERIFY2(ca.ok(), qPrintable(ca.errorMessage()));
    m_caCertificates = {*ca};
    qputenv("LAMPLIGHTER_TEST_ARTIFACTS",
            m_work.filePath(QStringLiteral("artifacts")).toLocal8Bit());
}

void TestProviderClockSkew::cleanup()
{
    m_provider.stop();
}

QString TestProviderClockSkew::startProvider(int offsetSeconds)
{
    // A negative value must follow an equals sign, or node's parseArgs takes it for an option.
    const Result<QUrl> issuer =
        m_provider.startProvider(m_pki,
                                 {QStringLiteral("--id-token-ttl"),
                                  QStringLiteral("120"),
                                  QStringLiteral("--clock-offset=%1").arg(offsetSeconds)});
    if (!issuer.ok())
        return issuer.errorMessage();
    m_issuer = *issuer;
    return QString();
}

QString TestProviderClockSkew::logs() const
{
    return m_provider.log() + QStringLiteral("\nbrowser log:\n") +
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
    loginConfig.browserCommand =
        browserLoginCommand(m_work.filePath(QStringLiteral("browser.log")));
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
