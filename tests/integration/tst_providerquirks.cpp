#include "FixtureServer.h"
#include "clusterproxy/ImpersonatingGate.h"
#include "oidc/ClaimSet.h"
#include "oidc/LoginJob.h"
#include "oidc/OidcClient.h"
#include "oidc/RefreshJob.h"

#include <QCryptographicHash>
#include <QEventLoop>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QSslConfiguration>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

// Signing in starts Chromium, which takes a few seconds. The browser script gives up after 60 s.
constexpr int loginTimeoutMs = 120'000;
constexpr int refreshTimeoutMs = 30'000;
// An Entra ID tenant id has the form of a UUID. This one is made up.
const QString entraTenantPath = QStringLiteral("/3f6a1c2e-8b4d-4e7a-9c15-2d0b7e9f4a61/v2.0");

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

} // namespace

// Signs in against the real OpenID provider (oidc-provider on 127.0.0.1) set up to behave like
// particular providers: Entra ID's groups overage and its two issuers, Okta's and Keycloak's
// issuers with paths and their groups that only a scope brings, Google's refresh without a new
// refresh token, and a refresh whose ID token names another subject. Headless Chromium completes
// the sign-in form.
class TestProviderQuirks : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanup();

    void groupsOverageRejectedClearly();
    void groupsOnlyWithGroupsScope();
    void refreshKeepsOnlyRefreshToken();
    void entraV1IssuerRejected();
    void entraTenantPathSignsIn();
    void pathIssuerSignsInAndRefreshes_data();
    void pathIssuerSignsInAndRefreshes();
    void refreshDifferentSubjectRejected();
    void pkceSentWithoutMetadata();

private:
    // Starts the provider with the given --quirk values, with --issuer-path when issuerPath is
    // not empty, and with extraArguments, and returns an empty string or why it failed.
    QString startProvider(const QStringList &quirks,
                          const QString &issuerPath = QString(),
                          const QStringList &extraArguments = QStringList());
    // Fetches the provider's discovery document, or returns an empty object after a warning.
    QJsonObject fetchDiscoveryDocument() const;
    // Runs a sign-in with the client's scopes and returns the finished job, failed or not, or
    // nullptr when it did not finish in time.
    LoginJob *runLogin(OidcClient &client);
    // Signs in with the client's scopes and returns the finished job, or nullptr after a failed
    // check.
    LoginJob *signIn(OidcClient &client);
    // Runs a refresh of tokens and returns the finished job, or nullptr when it did not finish.
    RefreshJob *runRefresh(OidcClient &client, const TokenSet &tokens);
    ProviderConfig providerConfig(const QStringList &scopes) const;
    QString logs() const;

    QTemporaryDir m_work;
    QString m_pki;
    QList<QSslCertificate> m_caCertificates;
    FixtureServer m_provider{QStringLiteral("provider"),
                             m_work.filePath(QStringLiteral("provider.log"))};
    QUrl m_issuer;
};

void TestProviderQuirks::initTestCase()
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

void TestProviderQuirks::cleanup()
{
    m_provider.stop();
}

QString TestProviderQuirks::startProvider(const QStringList &quirks,
                                          const QString &issuerPath,
                                          const QStringList &extraArguments)
{
    QStringList arguments;
    for (const QString &quirk : quirks)
        arguments << QStringLiteral("--quirk") << quirk;
    if (!issuerPath.isEmpty())
        arguments << QStringLiteral("--issuer-path") << issuerPath;
    arguments << extraArguments;
    const Result<QUrl> issuer = m_provider.startProvider(m_pki, arguments);
    if (!issuer.ok())
        return issuer.errorMessage();
    m_issuer = *issuer;
    return QString();
}

ProviderConfig TestProviderQuirks::providerConfig(const QStringList &scopes) const
{
    ProviderConfig config;
    config.issuer = m_issuer;
    config.clientId = QStringLiteral("lamplighter");
    config.scopes = scopes;
    config.caCertificates = m_caCertificates;
    return config;
}

LoginJob *TestProviderQuirks::runLogin(OidcClient &client)
{
    LoginConfig loginConfig;
    loginConfig.browserCommand =
        browserLoginCommand(m_work.filePath(QStringLiteral("browser.log")));
    loginConfig.timeout = std::chrono::seconds(loginTimeoutMs / 1000);
    LoginJob *login = client.login(loginConfig);
    QSignalSpy finished(login, &LoginJob::finished);
    login->start();
    if (!QTest::qWaitFor([&finished] { return finished.size() == 1; }, loginTimeoutMs)) {
        qWarning().noquote() << "The sign-in did not finish." << logs();
        return nullptr;
    }
    return login;
}

LoginJob *TestProviderQuirks::signIn(OidcClient &client)
{
    LoginJob *login = runLogin(client);
    if (!login)
        return nullptr;
    if (login->failed()) {
        qWarning().noquote() << "The sign-in failed:" << login->error().message << logs();
        return nullptr;
    }
    return login;
}

RefreshJob *TestProviderQuirks::runRefresh(OidcClient &client, const TokenSet &tokens)
{
    RefreshJob *refresh = client.refresh(tokens);
    QSignalSpy finished(refresh, &RefreshJob::finished);
    refresh->start();
    if (!finished.wait(refreshTimeoutMs)) {
        qWarning().noquote() << "The refresh did not finish." << logs();
        return nullptr;
    }
    return refresh;
}

QJsonObject TestProviderQuirks::fetchDiscoveryDocument() const
{
    QNetworkAccessManager network;
    QNetworkRequest request(ProviderMetadata::discoveryUrl(m_issuer));
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setCaCertificates(m_caCertificates);
    request.setSslConfiguration(tls);
    QNetworkReply *reply = network.get(request);
    QEventLoop loop;
    connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
    loop.exec();
    reply->deleteLater();
    if (reply->error() != QNetworkReply::NoError) {
        qWarning() << "The GET of the discovery document failed:" << reply->errorString();
        return QJsonObject();
    }
    return QJsonDocument::fromJson(reply->readAll()).object();
}

QString TestProviderQuirks::logs() const
{
    return m_provider.log() + QStringLiteral("\nbrowser log:\n") +
           readFile(m_work.filePath(QStringLiteral("browser.log")));
}

// Entra ID names the groups of a user in many groups in "_claim_names" and leaves them out.
void TestProviderQuirks::groupsOverageRejectedClearly()
{
    const QString started = startProvider({QStringLiteral("groups-overage")});
    QVERIFY2(started.isEmpty(), qPrintable(started));
    OidcClient client(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("groups")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);

    const QJsonObject claims = login->tokens().claims.all();
    QVERIFY(!claims.contains(QStringLiteral("groups")));
    QVERIFY(
        claims.value(QStringLiteral("_claim_names")).toObject().contains(QStringLiteral("groups")));

    ClusterProxyConfig clusterProxy;
    clusterProxy.userNameClaim = QStringLiteral("email");
    clusterProxy.groupsClaim = QStringLiteral("groups");
    const Result<ClaimSet> parsed = ClaimSet::parse(login->tokens().claims.payload);
    QVERIFY2(parsed.ok(), qPrintable(parsed.errorMessage()));
    const Result<Impersonation> person = impersonationFromClaims(*parsed, clusterProxy);
    QVERIFY(!person.ok());
    QVERIFY2(person.errorMessage().contains(QStringLiteral("groups overage")),
             qPrintable(person.errorMessage()));
}

// Okta and Keycloak, like this provider, put groups in the ID token only when a scope requests
// them.
void TestProviderQuirks::groupsOnlyWithGroupsScope()
{
    const QString started = startProvider({});
    QVERIFY2(started.isEmpty(), qPrintable(started));

    OidcClient withoutScope(providerConfig({QStringLiteral("openid"), QStringLiteral("email")}));
    LoginJob *plain = signIn(withoutScope);
    QVERIFY(plain);
    QVERIFY(!plain->tokens().claims.all().contains(QStringLiteral("groups")));

    OidcClient withScope(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("groups")}));
    LoginJob *grouped = signIn(withScope);
    QVERIFY(grouped);
    QCOMPARE(grouped->tokens().claims.all().value(QStringLiteral("groups")).toArray().size(), 2);
}

// Google returns no refresh token from a refresh, and the first one stays valid.
void TestProviderQuirks::refreshKeepsOnlyRefreshToken()
{
    const QString started = startProvider({QStringLiteral("refresh-without-refresh-token")});
    QVERIFY2(started.isEmpty(), qPrintable(started));
    OidcClient client(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("offline_access")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);
    TokenSet current = login->tokens();
    QVERIFY(!current.refreshToken.isEmpty());

    // Two refreshes in a row: the second proves that the kept refresh token still works.
    for (int round = 1; round <= 2; ++round) {
        RefreshJob *refresh = client.refresh(current);
        QSignalSpy finished(refresh, &RefreshJob::finished);
        refresh->start();
        QVERIFY2(finished.wait(refreshTimeoutMs), qPrintable(logs()));
        QVERIFY2(!refresh->failed(), qPrintable(refresh->error().message));
        QCOMPARE(refresh->tokens().refreshToken, current.refreshToken);
        QVERIFY(refresh->tokens().accessToken != current.accessToken);
        current = refresh->tokens();
    }
    QVERIFY2(readFile(m_work.filePath(QStringLiteral("provider.log")))
                 .contains(QStringLiteral("left the refresh_token out")),
             "the provider did not leave the refresh token out");
}

// Entra ID's v2.0 discovery document names https://login.microsoftonline.com/TENANT/v2.0, but
// its tokens can carry https://sts.windows.net/TENANT/, the issuer of its v1.0 endpoints. The
// provider copies the path shape of the two on loopback.
void TestProviderQuirks::entraV1IssuerRejected()
{
    const QString started = startProvider({QStringLiteral("entra-v1-issuer")}, entraTenantPath);
    QVERIFY2(started.isEmpty(), qPrintable(started));
    const QString v2Issuer = m_issuer.toString();
    QVERIFY2(v2Issuer.endsWith(entraTenantPath), qPrintable(v2Issuer));
    const QString v1Issuer = v2Issuer.chopped(int(QStringLiteral("v2.0").size()));

    OidcClient client(providerConfig({QStringLiteral("openid"), QStringLiteral("email")}));
    LoginJob *login = runLogin(client);
    QVERIFY(login);
    QVERIFY2(login->failed(), "the sign-in with a token of the v1.0 issuer succeeded");
    const QString message = login->error().message;
    // The v1.0 issuer is a prefix of the v2.0 one, so the quotes tell the two apart.
    QVERIFY2(message.contains(QStringLiteral("ID token's issuer \"%1\"").arg(v1Issuer)),
             qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("configured issuer \"%1\"").arg(v2Issuer)),
             qPrintable(message + QLatin1Char('\n') + logs()));
}

// The same tenant path without the quirk: the discovery document and the tokens name the same
// issuer, which has a path.
void TestProviderQuirks::entraTenantPathSignsIn()
{
    const QString started = startProvider({}, entraTenantPath);
    QVERIFY2(started.isEmpty(), qPrintable(started));
    QVERIFY2(m_issuer.path() == entraTenantPath, qPrintable(m_issuer.toString()));

    OidcClient client(providerConfig({QStringLiteral("openid"), QStringLiteral("email")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);
    QCOMPARE(login->tokens().claims.all().value(QStringLiteral("iss")).toString(),
             m_issuer.toString());
}

void TestProviderQuirks::pathIssuerSignsInAndRefreshes_data()
{
    QTest::addColumn<QString>("issuerPath");
    QTest::newRow("Okta custom authorization server")
        << QStringLiteral("/oauth2/aus8k2xq9cVdL3tY5e7");
    QTest::newRow("Keycloak realm") << QStringLiteral("/realms/lamplighter");
}

// Okta custom authorization servers and Keycloak realms have issuers with paths, under which
// the discovery document and every endpoint sit. The provider returns 404 outside the path.
void TestProviderQuirks::pathIssuerSignsInAndRefreshes()
{
    QFETCH(QString, issuerPath);
    const QString started = startProvider({}, issuerPath);
    QVERIFY2(started.isEmpty(), qPrintable(started));
    QCOMPARE(m_issuer.path(), issuerPath);
    const QString issuer = m_issuer.toString();

    OidcClient client(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("offline_access")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);
    const TokenSet signedIn = login->tokens();
    QCOMPARE(signedIn.claims.all().value(QStringLiteral("iss")).toString(), issuer);
    QCOMPARE(signedIn.claims.subject, QStringLiteral("jane"));
    QVERIFY(!signedIn.refreshToken.isEmpty());

    // ID tokens carry times in whole seconds, so a refresh in the same second as the sign-in
    // could return a token that expires at the same time.
    QTest::qWait(1100);
    RefreshJob *refresh = runRefresh(client, signedIn);
    QVERIFY(refresh);
    QVERIFY2(!refresh->failed(), qPrintable(refresh->error().message + QLatin1Char('\n') + logs()));
    const TokenSet refreshed = refresh->tokens();
    QVERIFY(refreshed.idToken != signedIn.idToken);
    QCOMPARE(refreshed.claims.all().value(QStringLiteral("iss")).toString(), issuer);
    QCOMPARE(refreshed.claims.subject, QStringLiteral("jane"));
    QVERIFY(refreshed.claims.expiresAt > signedIn.claims.expiresAt);

    const QString providerLog = readFile(m_work.filePath(QStringLiteral("provider.log")));
    for (const QString &endpoint : {QStringLiteral("GET %1/.well-known/openid-configuration 200"),
                                    QStringLiteral("GET %1/jwks 200"),
                                    QStringLiteral("POST %1/token 200")}) {
        QVERIFY2(providerLog.contains(endpoint.arg(issuerPath)),
                 qPrintable(endpoint.arg(issuerPath) + QStringLiteral(" is not in the ") + logs()));
    }
    QVERIFY2(!providerLog.contains(QStringLiteral(" 404")), qPrintable(logs()));
}

// A refreshed ID token for another subject than the signed-in one must be rejected (OpenID
// Connect Core 1.0, section 12.2), so that a mixed-up refresh cannot switch the person.
void TestProviderQuirks::refreshDifferentSubjectRejected()
{
    const QString started = startProvider({QStringLiteral("refresh-different-sub")});
    QVERIFY2(started.isEmpty(), qPrintable(started));
    OidcClient client(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("offline_access")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);
    const TokenSet signedIn = login->tokens();
    QCOMPARE(signedIn.claims.subject, QStringLiteral("jane"));

    QTest::qWait(1100);
    RefreshJob *refresh = runRefresh(client, signedIn);
    QVERIFY(refresh);
    QVERIFY2(readFile(m_work.filePath(QStringLiteral("provider.log")))
                 .contains(QStringLiteral("the refreshed ID token carries another sub")),
             qPrintable(logs()));
    QVERIFY2(refresh->failed(), "the refresh with an ID token for another subject succeeded");
    const QString message = refresh->error().message;
    QVERIFY2(message.contains(QStringLiteral("\"other-jane\"")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("\"jane\"")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("sign in again")), qPrintable(message));
    QVERIFY(refresh->needsLogin());
    QVERIFY(!refresh->isTransient());
    // The job hands out none of the rejected tokens, not even the rotated refresh token.
    QVERIFY(refresh->tokens().isEmpty());
    QVERIFY(refresh->rotatedRefreshToken().isEmpty());
}

// Some providers accept PKCE but leave code_challenge_methods_supported out of their discovery
// document. The sign-in must still send an S256 code_challenge and then its code_verifier. The
// provider requires PKCE, so a sign-in without it fails, and its log shows what was sent.
void TestProviderQuirks::pkceSentWithoutMetadata()
{
    const QString logPath = m_work.filePath(QStringLiteral("provider.log"));
    // The log is shared by all tests of this run, so only the part after this offset is read.
    const qint64 logOffset = QFileInfo(logPath).size();
    // The provider appends each code_verifier that a successful token request carried to this
    // file, which the test reads but never prints.
    const QString secretsPath = m_work.filePath(QStringLiteral("pkce-issued-secrets.txt"));
    QFile::remove(secretsPath);
    const QString started = startProvider({QStringLiteral("no-pkce-metadata")},
                                          QString(),
                                          {QStringLiteral("--issued-secrets-file"), secretsPath});
    QVERIFY2(started.isEmpty(), qPrintable(started));

    const QJsonObject discovery = fetchDiscoveryDocument();
    QVERIFY2(discovery.contains(QStringLiteral("authorization_endpoint")), qPrintable(logs()));
    QVERIFY(!discovery.contains(QStringLiteral("code_challenge_methods_supported")));

    OidcClient client(providerConfig({QStringLiteral("openid"), QStringLiteral("email")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);
    QVERIFY(client.metadata().has_value());
    QVERIFY(!client.metadata()->codeChallengeMethodsSupported.has_value());

    QFile logFile(logPath);
    QVERIFY(logFile.open(QIODevice::ReadOnly));
    QVERIFY(logFile.seek(logOffset));
    const QString providerLog = QString::fromUtf8(logFile.readAll());
    QVERIFY2(providerLog.contains(QStringLiteral(
                 "discovery: left code_challenge_methods_supported out of the discovery document")),
             qPrintable(providerLog));
    QVERIFY2(providerLog.contains(QStringLiteral(
                 "token: authorization_code grant succeeded for client lamplighter")),
             qPrintable(providerLog));

    // The provider's line for the issued code names the PKCE parameters of its authorization
    // request.
    static const QRegularExpression codeIssued(
        QStringLiteral("authorization: code issued to client lamplighter, redirect URI \\S+, "
                       "code_challenge_method (\\S+), code_challenge (\\S+)\n"));
    QStringList methods;
    QStringList challenges;
    for (const QRegularExpressionMatch &match : codeIssued.globalMatch(providerLog)) {
        methods << match.captured(1);
        challenges << match.captured(2);
    }
    QVERIFY2(methods.size() == 1, qPrintable(providerLog));
    QCOMPARE(methods.first(), QStringLiteral("S256"));
    const QString challenge = challenges.first();
    // base64url of a SHA-256 hash without padding has 43 characters (RFC 7636, section 4.2).
    static const QRegularExpression challengeForm(QStringLiteral("^[A-Za-z0-9_-]{43}$"));
    QVERIFY2(challengeForm.match(challenge).hasMatch(), qPrintable(challenge));

    const QStringList secretLines =
        readFile(secretsPath).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QByteArrayList verifiers;
    for (const QString &line : secretLines) {
        if (line.startsWith(QStringLiteral("code_verifier ")))
            verifiers << line.mid(int(QStringLiteral("code_verifier ").size())).toLatin1();
    }
    QVERIFY2(verifiers.size() == 1,
             qPrintable(QStringLiteral("expected one code_verifier in the provider's "
                                       "--issued-secrets-file, found %1")
                            .arg(verifiers.size())));
    const QByteArray verifier = verifiers.first();
    // RFC 7636, section 4.1: 43 to 128 characters. The verifier itself is never printed.
    QVERIFY2(verifier.size() >= 43 && verifier.size() <= 128,
             qPrintable(QStringLiteral("code_verifier has %1 characters").arg(verifier.size())));
    const QByteArray expectedChallenge =
        QCryptographicHash::hash(verifier, QCryptographicHash::Sha256)
            .toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
    QVERIFY2(QString::fromLatin1(expectedChallenge) == challenge,
             qPrintable(QStringLiteral("the code_verifier of the token request does not match "
                                       "the code_challenge %1 of the authorization request")
                            .arg(challenge)));
}

QTEST_GUILESS_MAIN(TestProviderQuirks)
#include "tst_providerquirks.moc"
