#include "FixtureServer.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/LoginJob.h"
#include "oidc/OidcClient.h"
#include "oidc/ProviderMetadata.h"
#include "oidc/RefreshJob.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonObject>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QUrlQuery>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);

// Signing in starts Chromium, which takes a few seconds; the browser script gives up after 60 s.
constexpr int loginTimeoutMs = 120'000;

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

} // namespace

// Signs in against the real OpenID provider (oidc-provider on 127.0.0.1) with headless Chromium
// completing the sign-in form, then refreshes the tokens.
class TestOidcLogin : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();

    void discoveryAcceptsProvider();
    void signInThenRefresh();

private:
    ProviderConfig providerConfig() const;
    // Returns the browser command: a shell that writes the authorization URL to m_urlFile and
    // then runs browser-login.mjs with it, its output going to m_urlFile + ".log".
    QStringList browserCommand() const;

    QTemporaryDir m_work;
    FixtureServer m_provider{QStringLiteral("provider"),
                             m_work.filePath(QStringLiteral("provider.log"))};
    QString m_node;
    QUrl m_issuer;
    QList<QSslCertificate> m_caCertificates;
    QString m_urlFile;
};

void TestOidcLogin::initTestCase()
{
    QVERIFY(m_work.isValid());
    const Result<QString> node = findNode();
    QVERIFY2(node.ok(), qPrintable(node.errorMessage()));
    m_node = *node;

    const QString pki = m_work.filePath(QStringLiteral("pki"));
    const Result<QSslCertificate> ca = makeTestPki(pki);
    QVERIFY2(ca.ok(), qPrintable(ca.errorMessage()));
    m_caCertificates = {*ca};

    const Result<QUrl> issuer =
        m_provider.startProvider(pki, {QStringLiteral("--id-token-ttl"), QStringLiteral("60")});
    QVERIFY2(issuer.ok(), qPrintable(issuer.errorMessage()));
    m_issuer = *issuer;

    m_urlFile = m_work.filePath(QStringLiteral("authorization-url.txt"));
    qputenv("LAMPLIGHTER_TEST_ARTIFACTS",
            m_work.filePath(QStringLiteral("artifacts")).toLocal8Bit());
}

void TestOidcLogin::cleanupTestCase()
{
    m_provider.stop();
}

ProviderConfig TestOidcLogin::providerConfig() const
{
    ProviderConfig config;
    config.issuer = m_issuer;
    config.clientId = QStringLiteral("lamplighter");
    config.scopes = {QStringLiteral("openid"),
                     QStringLiteral("email"),
                     QStringLiteral("profile"),
                     QStringLiteral("groups"),
                     QStringLiteral("offline_access")};
    config.caCertificates = m_caCertificates;
    return config;
}

QStringList TestOidcLogin::browserCommand() const
{
    return {
        QStringLiteral("/bin/sh"),
        QStringLiteral("-c"),
        QStringLiteral("printf %s \"$3\" > \"$0\" && exec \"$1\" \"$2\" \"$3\" >> \"$0.log\" 2>&1"),
        m_urlFile,
        m_node,
        fixturesDirectory + QStringLiteral("/browser-login.mjs")};
}

void TestOidcLogin::discoveryAcceptsProvider()
{
    OidcClient client(providerConfig());
    std::optional<Result<ProviderMetadata>> metadata;
    client.fetchMetadata(&client,
                         [&](const Result<ProviderMetadata> &result) { metadata = result; });
    QTRY_VERIFY_WITH_TIMEOUT(metadata.has_value(), 30'000);

    QVERIFY2(metadata->ok(), qPrintable(metadata->errorMessage()));
    QCOMPARE(metadata->value().issuer, m_issuer.toString());
    QVERIFY(metadata->value().codeChallengeMethodsSupported.has_value());
    QVERIFY(metadata->value().codeChallengeMethodsSupported->contains(QStringLiteral("S256")));
    qInfo() << "authorization_response_iss_parameter_supported:"
            << metadata->value().authorizationResponseIssParameterSupported;
}

void TestOidcLogin::signInThenRefresh()
{
    OidcClient client(providerConfig());
    LoginConfig loginConfig;
    loginConfig.browserCommand = browserCommand();
    loginConfig.timeout = std::chrono::seconds(loginTimeoutMs / 1000);

    LoginJob *login = client.login(loginConfig);
    QSignalSpy loginFinished(login, &LoginJob::finished);
    login->start();
    QTRY_VERIFY2_WITH_TIMEOUT(
        loginFinished.size() == 1,
        qPrintable(readFile(m_urlFile + QStringLiteral(".log")) + m_provider.log()),
        loginTimeoutMs);
    QVERIFY2(!login->failed(),
             qPrintable(login->error().message + QLatin1Char('\n') +
                        readFile(m_urlFile + QStringLiteral(".log")) + m_provider.log()));

    const TokenSet signedIn = login->tokens();
    QVERIFY(!signedIn.idToken.isEmpty());
    QVERIFY(!signedIn.accessToken.isEmpty());
    QVERIFY(!signedIn.refreshToken.isEmpty());
    QCOMPARE(signedIn.claims.issuer, m_issuer.toString());
    QCOMPARE(signedIn.claims.subject, QStringLiteral("jane"));
    QCOMPARE(signedIn.claims.all().value(QStringLiteral("email")).toString(),
             QStringLiteral("jane@example.test"));
    QVERIFY(signedIn.claims.all().value(QStringLiteral("groups"))
                .toArray()
                .contains(QStringLiteral("developers")));

    // The nonce in the ID token is the one that the browser carried to the provider.
    const QUrl authorizationUrl(readFile(m_urlFile));
    const QUrlQuery authorizationQuery(authorizationUrl);
    QCOMPARE(authorizationQuery.queryItemValue(QStringLiteral("code_challenge_method")),
             QStringLiteral("S256"));
    QCOMPARE(signedIn.claims.all().value(QStringLiteral("nonce")).toString(),
             authorizationQuery.queryItemValue(QStringLiteral("nonce")));

    // ID tokens carry times in whole seconds, so a refresh in the same second could return a
    // token equal to the first one.
    QTest::qWait(1100);

    RefreshJob *refresh = client.refresh(signedIn);
    QSignalSpy refreshFinished(refresh, &RefreshJob::finished);
    refresh->start();
    QTRY_COMPARE_WITH_TIMEOUT(refreshFinished.size(), 1, 30'000);
    QVERIFY2(!refresh->failed(), qPrintable(refresh->error().message + m_provider.log()));

    const TokenSet refreshed = refresh->tokens();
    QVERIFY(!refreshed.idToken.isEmpty());
    QVERIFY(refreshed.idToken != signedIn.idToken);
    QVERIFY(refreshed.accessToken != signedIn.accessToken);
    QVERIFY(!refreshed.refreshToken.isEmpty());
    QVERIFY(refreshed.refreshToken != signedIn.refreshToken);
    QCOMPARE(refreshed.claims.subject, QStringLiteral("jane"));
    QVERIFY(refreshed.claims.issuedAt > signedIn.claims.issuedAt);

    // The provider rotates refresh tokens, so the first one is used up: presenting it again is
    // invalid_grant, which means the person has to sign in again.
    RefreshJob *reuse = client.refresh(signedIn);
    QSignalSpy reuseFinished(reuse, &RefreshJob::finished);
    reuse->start();
    QTRY_COMPARE_WITH_TIMEOUT(reuseFinished.size(), 1, 30'000);
    QVERIFY(reuse->failed());
    QVERIFY2(reuse->needsLogin(), qPrintable(reuse->error().message));
    QVERIFY(!reuse->isTransient());
}

QTEST_GUILESS_MAIN(TestOidcLogin)
#include "tst_oidclogin.moc"
