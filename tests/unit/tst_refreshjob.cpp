#include "ProviderDouble.h"
#include "TestJwt.h"
#include "oidc/OidcClient.h"
#include "oidc/RefreshJob.h"

#include <QDateTime>
#include <QJsonDocument>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>
#include <QUrlQuery>

using namespace lamplighter;
using lamplighter::test::ProviderDouble;
using lamplighter::test::TestKey;
namespace TestJwt = lamplighter::test::TestJwt;

namespace {

const QString clientId = QStringLiteral("lamplighter");
const QString keyId = QStringLiteral("test-key-1");
const QString tokenPath = QStringLiteral("/token");
const qint64 originalAuthTime = 1'700'000'000;

} // namespace

class TestRefreshJob : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void refreshRotatesRefreshToken();
    void refreshKeepsRefreshTokenWithoutNewOne();
    void invalidGrantNeedsLogin();
    void otherSubjectRejected();
    void changedAuthTimeRejected();
    void expiredIdTokenRejected();
    void rotatedRefreshTokenKeptOnFailure();
    void missingIdTokenKeepsIdentity();
    void slowTokenEndpointTimesOut();
    void clockSkew_data();
    void clockSkew();
    void droppedConnectionIsTransient();
    void unreachableDiscoveryIsTransient();
    void missingDiscoveryIsNotTransient();
    void missingRefreshTokenNeedsLogin();
    void missingSubjectNeedsLogin();
    void cancelFinishesOnce();

private:
    ProviderConfig providerConfig() const;
    // Runs a refresh of currentTokens() and waits until it finishes.
    void runRefresh(RefreshJob *job);
    TokenSet currentTokens() const;
    QByteArray signIdToken(const QJsonObject &extraClaims) const;
    // Serves a token endpoint that returns a new ID token with extraClaims and, unless it is
    // empty, the refresh token newRefreshToken.
    void serveTokens(const QJsonObject &extraClaims, const QString &newRefreshToken);

    QTemporaryDir m_pkiDirectory;
    std::optional<TestKey> m_key;
    ProviderDouble *m_provider = nullptr;
    OidcClient *m_client = nullptr;
};

void TestRefreshJob::initTestCase()
{
    QVERIFY(m_pkiDirectory.isValid());
    m_key = TestKey::generateRsa(2048);
}

void TestRefreshJob::init()
{
    m_provider = new ProviderDouble(this);
    const QString started = m_provider->start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    m_provider->serveDiscovery();
    const QByteArray keySet =
        TestJwt::keySetJson({m_key->publicJwk(keyId, QStringLiteral("RS256"))});
    m_provider->setHandler(QStringLiteral("/jwks"), [keySet](const ProviderDouble::Request &) {
        ProviderDouble::Response response;
        response.body = keySet;
        return response;
    });

    m_client = new OidcClient(providerConfig(), this);
}

ProviderConfig TestRefreshJob::providerConfig() const
{
    ProviderConfig config;
    config.issuer = QUrl(m_provider->issuer());
    config.clientId = clientId;
    config.scopes = {
        QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("offline_access")};
    config.caCertificates = {m_provider->caCertificate()};
    return config;
}

void TestRefreshJob::cleanup()
{
    delete m_client;
    delete m_provider;
}

TokenSet TestRefreshJob::currentTokens() const
{
    TokenSet tokens;
    tokens.idToken = "old.id.token";
    tokens.accessToken = "old-access";
    tokens.refreshToken = "refresh-1";
    tokens.claims.issuer = m_provider->issuer();
    tokens.claims.subject = QStringLiteral("jane");
    tokens.claims.payload =
        QJsonDocument(QJsonObject{{QStringLiteral("sub"), QStringLiteral("jane")},
                                  {QStringLiteral("auth_time"), originalAuthTime}})
            .toJson(QJsonDocument::Compact);
    return tokens;
}

QByteArray TestRefreshJob::signIdToken(const QJsonObject &extraClaims) const
{
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    QJsonObject claims{
        {QStringLiteral("iss"), m_provider->issuer()},
        {QStringLiteral("sub"), QStringLiteral("jane")},
        {QStringLiteral("aud"), clientId},
        {QStringLiteral("iat"), now},
        {QStringLiteral("exp"), now + 300},
        {QStringLiteral("auth_time"), originalAuthTime},
    };
    for (auto it = extraClaims.begin(); it != extraClaims.end(); ++it)
        claims.insert(it.key(), it.value());
    return TestJwt::sign(TestJwt::header(QStringLiteral("RS256"), keyId), claims, *m_key);
}

void TestRefreshJob::serveTokens(const QJsonObject &extraClaims, const QString &newRefreshToken)
{
    QJsonObject body{{QStringLiteral("access_token"), QStringLiteral("new-access")},
                     {QStringLiteral("token_type"), QStringLiteral("Bearer")},
                     {QStringLiteral("id_token"), QString::fromLatin1(signIdToken(extraClaims))},
                     {QStringLiteral("expires_in"), 300}};
    if (!newRefreshToken.isEmpty())
        body.insert(QStringLiteral("refresh_token"), newRefreshToken);
    m_provider->setJson(tokenPath, body);
}

void TestRefreshJob::runRefresh(RefreshJob *job)
{
    QSignalSpy finished(job, &RefreshJob::finished);
    job->start();
    QCOMPARE(finished.size(), 0);
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10'000);
    QVERIFY(job->isFinished());
}

void TestRefreshJob::refreshRotatesRefreshToken()
{
    serveTokens({}, QStringLiteral("refresh-2"));
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY2(!job->failed(), qPrintable(job->error().message));
    const TokenSet tokens = job->tokens();
    QCOMPARE(tokens.refreshToken, QByteArray("refresh-2"));
    QCOMPARE(tokens.accessToken, QByteArray("new-access"));
    QVERIFY(tokens.idToken != currentTokens().idToken);
    QCOMPARE(tokens.claims.subject, QStringLiteral("jane"));
    QVERIFY(tokens.claims.expiresAt > QDateTime::currentDateTimeUtc());

    const QList<ProviderDouble::Request> requests = m_provider->requestsTo(tokenPath);
    QCOMPARE(requests.size(), 1);
    const QUrlQuery form = requests.first().form();
    QCOMPARE(form.queryItemValue(QStringLiteral("grant_type")), QStringLiteral("refresh_token"));
    QCOMPARE(form.queryItemValue(QStringLiteral("refresh_token")), QStringLiteral("refresh-1"));
    QCOMPARE(form.queryItemValue(QStringLiteral("client_id")), clientId);
    QCOMPARE(form.queryItemValue(QStringLiteral("scope"), QUrl::FullyDecoded),
             QStringLiteral("openid email offline_access"));
}

void TestRefreshJob::refreshKeepsRefreshTokenWithoutNewOne()
{
    serveTokens({}, QString());
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY2(!job->failed(), qPrintable(job->error().message));
    QCOMPARE(job->tokens().refreshToken, QByteArray("refresh-1"));
    QCOMPARE(job->tokens().accessToken, QByteArray("new-access"));
}

void TestRefreshJob::invalidGrantNeedsLogin()
{
    m_provider->setJson(
        tokenPath,
        {{QStringLiteral("error"), QStringLiteral("invalid_grant")},
         {QStringLiteral("error_description"), QStringLiteral("grant request is invalid")}},
        400);
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(job->needsLogin());
    QVERIFY(!job->isTransient());
    QVERIFY2(job->error().message.contains(QStringLiteral("invalid_grant")),
             qPrintable(job->error().message));
    QVERIFY(job->tokens().isEmpty());
}

void TestRefreshJob::otherSubjectRejected()
{
    serveTokens({{QStringLiteral("sub"), QStringLiteral("mallory")}}, QStringLiteral("refresh-2"));
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(job->needsLogin());
    const QString message = job->error().message;
    QVERIFY2(message.contains(QStringLiteral("\"mallory\"")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("\"jane\"")), qPrintable(message));
    QVERIFY(job->tokens().isEmpty());
}

void TestRefreshJob::changedAuthTimeRejected()
{
    serveTokens({{QStringLiteral("auth_time"), originalAuthTime + 60}},
                QStringLiteral("refresh-2"));
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY2(job->error().message.contains(QStringLiteral("auth_time")),
             qPrintable(job->error().message));
}

void TestRefreshJob::expiredIdTokenRejected()
{
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    serveTokens({{QStringLiteral("iat"), now - 7200}, {QStringLiteral("exp"), now - 3600}},
                QStringLiteral("refresh-2"));
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(!job->needsLogin());
    QVERIFY2(job->error().message.contains(QStringLiteral("expired")),
             qPrintable(job->error().message));
}

// The provider has rotated the refresh token although the new ID token fails verification, so
// the next try must use the new refresh token, not the one the provider now treats as used.
void TestRefreshJob::rotatedRefreshTokenKeptOnFailure()
{
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    serveTokens({{QStringLiteral("iat"), now - 7200}, {QStringLiteral("exp"), now - 3600}},
                QStringLiteral("refresh-2"));
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(!job->needsLogin());
    QCOMPARE(job->rotatedRefreshToken(), QByteArray("refresh-2"));
    QVERIFY2(job->tokens().isEmpty(), "a failed refresh handed out tokens");

    serveTokens({{QStringLiteral("iat"), now - 7200}, {QStringLiteral("exp"), now - 3600}},
                QString());
    RefreshJob *unrotated = m_client->refresh(currentTokens());
    runRefresh(unrotated);
    QVERIFY(unrotated->failed());
    QVERIFY2(unrotated->rotatedRefreshToken().isEmpty(),
             "a refresh token the provider did not rotate was reported as rotated");
}

// OpenID Connect Core 1.0, section 12.2, lets a refresh response leave out the ID token. The
// identity then stays that of the current ID token, and the new access and refresh tokens are
// taken.
void TestRefreshJob::missingIdTokenKeepsIdentity()
{
    m_provider->setJson(tokenPath,
                        {{QStringLiteral("access_token"), QStringLiteral("new-access")},
                         {QStringLiteral("token_type"), QStringLiteral("Bearer")},
                         {QStringLiteral("refresh_token"), QStringLiteral("refresh-2")}});
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY2(!job->failed(), qPrintable(job->error().message));
    const TokenSet tokens = job->tokens();
    QCOMPARE(tokens.idToken, currentTokens().idToken);
    QCOMPARE(tokens.claims.subject, QStringLiteral("jane"));
    QCOMPARE(tokens.claims.issuer, m_provider->issuer());
    QCOMPARE(tokens.accessToken, QByteArray("new-access"));
    QCOMPARE(tokens.refreshToken, QByteArray("refresh-2"));
    // No key set was fetched, because there was no ID token to verify.
    QVERIFY(m_provider->requestsTo(QStringLiteral("/jwks")).isEmpty());
}

// The token endpoint accepts the connection and never responds, not even to the TLS handshake.
void TestRefreshJob::slowTokenEndpointTimesOut()
{
    QTcpServer silentServer;
    QList<QTcpSocket *> heldConnections;
    QVERIFY(silentServer.listen(QHostAddress::LocalHost));
    connect(&silentServer, &QTcpServer::newConnection, this, [&] {
        while (QTcpSocket *socket = silentServer.nextPendingConnection())
            heldConnections.append(socket);
    });
    const QString slowEndpoint =
        QStringLiteral("https://127.0.0.1:%1/token").arg(silentServer.serverPort());
    m_provider->serveDiscovery({{QStringLiteral("token_endpoint"), slowEndpoint}});
    m_client->network()->setTransferTimeout(500);

    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(job->isTransient());
    QVERIFY(!job->needsLogin());
    const QString message = job->error().message;
    QVERIFY2(message.contains(QStringLiteral("timed out")), qPrintable(message));
    QVERIFY2(message.contains(slowEndpoint), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("0.5 s")), qPrintable(message));
    QCOMPARE(heldConnections.size(), 1);
    qDeleteAll(heldConnections);
}

// The provider's clock is ahead of the desktop's (positive skew) or behind it (negative skew) by
// skew seconds, and oidc.clock_skew_seconds is allowedSkew.
void TestRefreshJob::clockSkew_data()
{
    QTest::addColumn<int>("skew");
    QTest::addColumn<int>("allowedSkew");
    QTest::addColumn<QString>("expectedError");

    QTest::newRow("5 min ahead, 6 min allowed") << 300 << 360 << QString();
    QTest::newRow("5 min behind, 6 min allowed") << -300 << 360 << QString();
    QTest::newRow("no skew, none allowed") << 0 << 0 << QString();
    QTest::newRow("5 min ahead, default allowed")
        << 300 << 60 << QStringLiteral("The ID token was issued in the future");
    QTest::newRow("5 min behind, default allowed")
        << -300 << 60 << QStringLiteral("The ID token has expired");
    QTest::newRow("7 min ahead, 6 min allowed")
        << 420 << 360 << QStringLiteral("The ID token was issued in the future");
    // The ID token expired two minutes after it was issued, so by seven minutes ago.
    QTest::newRow("9 min behind, 6 min allowed")
        << -540 << 360 << QStringLiteral("the allowed clock skew is 360 s");
}

void TestRefreshJob::clockSkew()
{
    QFETCH(int, skew);
    QFETCH(int, allowedSkew);
    QFETCH(QString, expectedError);

    ProviderConfig config = providerConfig();
    config.clockSkew = std::chrono::seconds(allowedSkew);
    delete m_client;
    m_client = new OidcClient(config, this);
    // The provider issues ID tokens that live two minutes by its own clock.
    const qint64 providerNow = QDateTime::currentSecsSinceEpoch() + skew;
    serveTokens({{QStringLiteral("iat"), providerNow}, {QStringLiteral("exp"), providerNow + 120}},
                QStringLiteral("refresh-2"));

    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    if (expectedError.isEmpty()) {
        QVERIFY2(!job->failed(), qPrintable(job->error().message));
        QCOMPARE(job->tokens().claims.subject, QStringLiteral("jane"));
        return;
    }
    QVERIFY(job->failed());
    QVERIFY(!job->needsLogin());
    QVERIFY2(job->error().message.contains(expectedError), qPrintable(job->error().message));
    QCOMPARE(job->rotatedRefreshToken(), QByteArray("refresh-2"));
}

void TestRefreshJob::droppedConnectionIsTransient()
{
    m_provider->setHandler(tokenPath, [](const ProviderDouble::Request &) {
        ProviderDouble::Response response;
        response.closeWithoutResponse = true;
        return response;
    });
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(job->isTransient());
    QVERIFY(!job->needsLogin());
}

// A provider that cannot be reached before its discovery document was ever read is offline, as
// one that drops the token request is.
void TestRefreshJob::unreachableDiscoveryIsTransient()
{
    m_provider->setHandler(QStringLiteral("/.well-known/openid-configuration"),
                           [](const ProviderDouble::Request &) {
                               ProviderDouble::Response response;
                               response.closeWithoutResponse = true;
                               return response;
                           });
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(job->isTransient());
    QVERIFY(!job->needsLogin());
}

void TestRefreshJob::missingDiscoveryIsNotTransient()
{
    m_provider->setHandler(QStringLiteral("/.well-known/openid-configuration"),
                           [](const ProviderDouble::Request &) {
                               ProviderDouble::Response response;
                               response.status = 404;
                               return response;
                           });
    RefreshJob *job = m_client->refresh(currentTokens());
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(!job->isTransient());
}

void TestRefreshJob::missingRefreshTokenNeedsLogin()
{
    TokenSet tokens = currentTokens();
    tokens.refreshToken.clear();
    RefreshJob *job = m_client->refresh(tokens);
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(job->needsLogin());
    QVERIFY(m_provider->requests().isEmpty());
}

void TestRefreshJob::missingSubjectNeedsLogin()
{
    TokenSet tokens = currentTokens();
    tokens.claims = IdTokenClaims{};
    RefreshJob *job = m_client->refresh(tokens);
    runRefresh(job);

    QVERIFY(job->failed());
    QVERIFY(job->needsLogin());
    QVERIFY2(job->error().message.contains(QStringLiteral("subject")),
             qPrintable(job->error().message));
    QVERIFY(m_provider->requests().isEmpty());
}

void TestRefreshJob::cancelFinishesOnce()
{
    serveTokens({}, QStringLiteral("refresh-2"));
    RefreshJob *job = m_client->refresh(currentTokens());
    QSignalSpy finished(job, &RefreshJob::finished);
    job->start();
    job->cancel();
    QCOMPARE(finished.size(), 1);
    QCOMPARE(job->error().message, QStringLiteral("Token refresh was cancelled."));
    QTest::qWait(300);
    QCOMPARE(finished.size(), 1);
    QVERIFY(job->tokens().isEmpty());
}

QTEST_GUILESS_MAIN(TestRefreshJob)
#include "tst_refreshjob.moc"
