#include "ProviderDouble.h"
#include "TestJwt.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/LoginJob.h"
#include "oidc/OidcClient.h"
#include "oidc/Pkce.h"

#include <QCryptographicHash>
#include <QDateTime>
#include <QFile>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSignalSpy>
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

QString queryValue(const QUrl &url, const QString &name)
{
    return QUrlQuery(url).queryItemValue(name, QUrl::FullyDecoded);
}

// Plays the browser's last step: a GET of the redirect URI with the given query, as the provider's
// redirect would make it. Returns the HTTP status of the redirect listener's response.
int followRedirect(const QUrl &redirectUri, const QByteArray &query)
{
    QTcpSocket socket;
    QByteArray response;
    QObject::connect(&socket, &QTcpSocket::readyRead, [&] { response += socket.readAll(); });
    socket.connectToHost(QHostAddress(redirectUri.host()),
                         static_cast<quint16>(redirectUri.port()));
    if (!QTest::qWaitFor([&] { return socket.state() == QAbstractSocket::ConnectedState; }, 5000))
        return -1;
    socket.write("GET " + redirectUri.path().toUtf8() + '?' + query + " HTTP/1.1\r\n\r\n");
    if (!QTest::qWaitFor([&] { return socket.state() == QAbstractSocket::UnconnectedState; },
                         10000))
        return -2;
    return response.split(' ').value(1).toInt();
}

QAbstractSocket::SocketError connectError(quint16 port)
{
    QTcpSocket socket;
    socket.connectToHost(QHostAddress(QHostAddress::LocalHost), port);
    const bool settled = QTest::qWaitFor(
        [&] {
            return socket.state() == QAbstractSocket::UnconnectedState ||
                   socket.state() == QAbstractSocket::ConnectedState;
        },
        5000);
    return settled ? socket.error() : QAbstractSocket::SocketTimeoutError;
}

} // namespace

class TestLoginJob : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void authorizationUrlCarriesPkceStateNonce();
    void endpointQueryKept();
    void localhostRedirectHostUsed();
    void offlineAccessRequestsConsent();
    void signInReturnsVerifiedTokens();
    void metadataFetchedOnce();
    void nonceMismatchFails();
    void tokenEndpointErrorFails();
    void providerErrorFails();
    void issuerMismatchFails();
    void forgedStateKeepsLoginPending();
    void cancelClosesListener();
    void cancelBeforeStartFinishes();
    void timeoutClosesListener();
    void browserCommandGetsUrl();
    void browserCommandFailureNamesCommand();
    void noBrowserFails();
    void httpIssuerFails();

private:
    ProviderConfig providerConfig() const;
    // Creates a login job, starts it and waits until the browser was asked to open a URL.
    LoginJob *startLogin(const LoginConfig &config = {});
    // Serves a token endpoint that checks the code and the PKCE verifier and returns an ID token
    // with the given nonce, or with the nonce of the authorization request when it is empty.
    void serveTokens(const QByteArray &nonceOverride = QByteArray());
    QByteArray signIdToken(const QJsonObject &extraClaims) const;

    QTemporaryDir m_pkiDirectory;
    std::optional<TestKey> m_key;
    ProviderDouble *m_provider = nullptr;
    OidcClient *m_client = nullptr;
    QList<QUrl> m_openedUrls;
};

void TestLoginJob::initTestCase()
{
    QVERIFY(m_pkiDirectory.isValid());
    m_key = TestKey::generateEc(QStringLiteral("P-256"));
}

void TestLoginJob::init()
{
    m_provider = new ProviderDouble(this);
    const QString started = m_provider->start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    m_provider->serveDiscovery();
    const QByteArray keySet =
        TestJwt::keySetJson({m_key->publicJwk(keyId, QStringLiteral("ES256"))});
    m_provider->setHandler(QStringLiteral("/jwks"), [keySet](const ProviderDouble::Request &) {
        ProviderDouble::Response response;
        response.body = keySet;
        return response;
    });

    m_openedUrls.clear();
    m_client = new OidcClient(providerConfig(), this);
    m_client->setUrlOpener([this](const QUrl &url) {
        m_openedUrls.append(url);
        return true;
    });
}

void TestLoginJob::cleanup()
{
    delete m_client;
    delete m_provider;
}

ProviderConfig TestLoginJob::providerConfig() const
{
    ProviderConfig config;
    config.issuer = QUrl(m_provider->issuer());
    config.clientId = clientId;
    config.scopes = {QStringLiteral("email"), QStringLiteral("groups")};
    config.caCertificates = {m_provider->caCertificate()};
    return config;
}

LoginJob *TestLoginJob::startLogin(const LoginConfig &config)
{
    LoginJob *job = m_client->login(config);
    job->start();
    const int opened = m_openedUrls.size();
    if (!QTest::qWaitFor([&] { return m_openedUrls.size() > opened || job->isFinished(); }, 10'000))
        qWarning("The login job neither opened the browser nor finished");
    return job;
}

QByteArray TestLoginJob::signIdToken(const QJsonObject &extraClaims) const
{
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    QJsonObject claims{
        {QStringLiteral("iss"), m_provider->issuer()},
        {QStringLiteral("sub"), QStringLiteral("jane")},
        {QStringLiteral("aud"), clientId},
        {QStringLiteral("iat"), now},
        {QStringLiteral("exp"), now + 300},
        {QStringLiteral("email"), QStringLiteral("jane@example.test")},
        {QStringLiteral("groups"), QJsonArray{QStringLiteral("developers")}},
    };
    for (auto it = extraClaims.begin(); it != extraClaims.end(); ++it)
        claims.insert(it.key(), it.value());
    return TestJwt::sign(TestJwt::header(QStringLiteral("ES256"), keyId), claims, *m_key);
}

void TestLoginJob::serveTokens(const QByteArray &nonceOverride)
{
    m_provider->setHandler(
        tokenPath, [this, nonceOverride](const ProviderDouble::Request &request) {
            ProviderDouble::Response response;
            const QUrlQuery form = request.form();
            const QUrl authorizationUrl = m_openedUrls.value(m_openedUrls.size() - 1);
            const QByteArray verifier =
                form.queryItemValue(QStringLiteral("code_verifier"), QUrl::FullyDecoded).toLatin1();
            const bool pkceMatches =
                Pkce::challengeFor(verifier) ==
                queryValue(authorizationUrl, QStringLiteral("code_challenge")).toLatin1();
            if (form.queryItemValue(QStringLiteral("code")) != QStringLiteral("the-code") ||
                !pkceMatches) {
                response.status = 400;
                response.body =
                    R"({"error":"invalid_grant","error_description":"PKCE or code mismatch"})";
                return response;
            }

            const QString nonce = nonceOverride.isEmpty()
                                      ? queryValue(authorizationUrl, QStringLiteral("nonce"))
                                      : QString::fromLatin1(nonceOverride);
            const QByteArray idToken = signIdToken({{QStringLiteral("nonce"), nonce}});
            response.body =
                QJsonDocument(
                    QJsonObject{{QStringLiteral("access_token"), QStringLiteral("access-1")},
                                {QStringLiteral("token_type"), QStringLiteral("Bearer")},
                                {QStringLiteral("id_token"), QString::fromLatin1(idToken)},
                                {QStringLiteral("refresh_token"), QStringLiteral("refresh-1")},
                                {QStringLiteral("expires_in"), 300}})
                    .toJson();
            return response;
        });
}

void TestLoginJob::authorizationUrlCarriesPkceStateNonce()
{
    LoginJob *job = startLogin();
    QCOMPARE(m_openedUrls.size(), 1);
    const QUrl url = m_openedUrls.first();

    QCOMPARE(url.adjusted(QUrl::RemoveQuery), m_provider->url(QStringLiteral("/authorize")));
    QCOMPARE(queryValue(url, QStringLiteral("response_type")), QStringLiteral("code"));
    QCOMPARE(queryValue(url, QStringLiteral("client_id")), clientId);
    QCOMPARE(queryValue(url, QStringLiteral("scope")), QStringLiteral("openid email groups"));
    QCOMPARE(queryValue(url, QStringLiteral("code_challenge_method")), QStringLiteral("S256"));
    QCOMPARE(queryValue(url, QStringLiteral("code_challenge")).size(), 43);
    QCOMPARE(queryValue(url, QStringLiteral("state")).size(), 43);
    QCOMPARE(queryValue(url, QStringLiteral("nonce")).size(), 43);
    QVERIFY(queryValue(url, QStringLiteral("state")) != queryValue(url, QStringLiteral("nonce")));
    QVERIFY(!QUrlQuery(url).hasQueryItem(QStringLiteral("prompt")));

    const QUrl redirectUri(queryValue(url, QStringLiteral("redirect_uri")));
    QCOMPARE(redirectUri.scheme(), QStringLiteral("http"));
    QCOMPARE(redirectUri.host(), QStringLiteral("127.0.0.1"));
    QVERIFY(redirectUri.port() > 0);
    QCOMPARE(redirectUri.path(), QStringLiteral("/callback"));
    QVERIFY(!job->isFinished());
    job->cancel();
}

void TestLoginJob::localhostRedirectHostUsed()
{
    LoginConfig config;
    config.redirectToLocalhost = true;
    LoginJob *job = startLogin(config);
    QCOMPARE(m_openedUrls.size(), 1);

    const QUrl redirectUri(queryValue(m_openedUrls.first(), QStringLiteral("redirect_uri")));
    QCOMPARE(redirectUri.host(), QStringLiteral("localhost"));
    QVERIFY(redirectUri.port() > 0);
    job->cancel();
}

void TestLoginJob::endpointQueryKept()
{
    m_provider->serveDiscovery(
        {{QStringLiteral("authorization_endpoint"),
          m_provider->issuer() + QStringLiteral("/authorize?tenant=a%2Bb")}});
    LoginJob *job = startLogin();
    QCOMPARE(m_openedUrls.size(), 1);
    QCOMPARE(queryValue(m_openedUrls.first(), QStringLiteral("tenant")), QStringLiteral("a+b"));
    QCOMPARE(queryValue(m_openedUrls.first(), QStringLiteral("response_type")),
             QStringLiteral("code"));
    job->cancel();
}

void TestLoginJob::offlineAccessRequestsConsent()
{
    ProviderConfig config = providerConfig();
    config.scopes = {QStringLiteral("openid"), QStringLiteral("offline_access")};
    delete m_client;
    m_client = new OidcClient(config, this);
    m_client->setUrlOpener([this](const QUrl &url) {
        m_openedUrls.append(url);
        return true;
    });

    LoginJob *job = startLogin();
    QCOMPARE(m_openedUrls.size(), 1);
    QCOMPARE(queryValue(m_openedUrls.first(), QStringLiteral("scope")),
             QStringLiteral("openid offline_access"));
    QCOMPARE(queryValue(m_openedUrls.first(), QStringLiteral("prompt")), QStringLiteral("consent"));
    job->cancel();
}

void TestLoginJob::signInReturnsVerifiedTokens()
{
    serveTokens();
    LoginJob *job = startLogin();
    QCOMPARE(m_openedUrls.size(), 1);
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl url = m_openedUrls.first();
    const QUrl redirectUri(queryValue(url, QStringLiteral("redirect_uri")));

    const int status = followRedirect(
        redirectUri, "code=the-code&state=" + queryValue(url, QStringLiteral("state")).toLatin1());
    QCOMPARE(status, 200);
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10'000);

    QVERIFY2(!job->failed(), qPrintable(job->error().message));
    const TokenSet tokens = job->tokens();
    QVERIFY(!tokens.idToken.isEmpty());
    QCOMPARE(tokens.accessToken, QByteArray("access-1"));
    QCOMPARE(tokens.refreshToken, QByteArray("refresh-1"));
    QCOMPARE(tokens.claims.subject, QStringLiteral("jane"));
    QCOMPARE(tokens.claims.issuer, m_provider->issuer());
    QCOMPARE(tokens.claims.all().value(QStringLiteral("email")).toString(),
             QStringLiteral("jane@example.test"));

    const QList<ProviderDouble::Request> tokenRequests = m_provider->requestsTo(tokenPath);
    QCOMPARE(tokenRequests.size(), 1);
    const QUrlQuery form = tokenRequests.first().form();
    QCOMPARE(form.queryItemValue(QStringLiteral("grant_type")),
             QStringLiteral("authorization_code"));
    QCOMPARE(form.queryItemValue(QStringLiteral("client_id")), clientId);
    QCOMPARE(QUrl(form.queryItemValue(QStringLiteral("redirect_uri"), QUrl::FullyDecoded)),
             redirectUri);
    QCOMPARE(connectError(static_cast<quint16>(redirectUri.port())),
             QAbstractSocket::ConnectionRefusedError);
}

void TestLoginJob::metadataFetchedOnce()
{
    LoginJob *first = startLogin();
    first->cancel();
    LoginJob *second = startLogin();
    QCOMPARE(m_openedUrls.size(), 2);
    second->cancel();
    QCOMPARE(m_provider->requestsTo(QStringLiteral("/.well-known/openid-configuration")).size(), 1);
    QVERIFY(m_client->metadata().has_value());
}

void TestLoginJob::nonceMismatchFails()
{
    serveTokens("a-nonce-from-another-request");
    LoginJob *job = startLogin();
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl url = m_openedUrls.first();

    followRedirect(QUrl(queryValue(url, QStringLiteral("redirect_uri"))),
                   "code=the-code&state=" + queryValue(url, QStringLiteral("state")).toLatin1());
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10'000);
    QVERIFY(job->failed());
    QVERIFY2(job->error().message.contains(QStringLiteral("nonce")),
             qPrintable(job->error().message));
    QVERIFY(job->tokens().isEmpty());
}

void TestLoginJob::tokenEndpointErrorFails()
{
    serveTokens();
    LoginJob *job = startLogin();
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl url = m_openedUrls.first();

    followRedirect(QUrl(queryValue(url, QStringLiteral("redirect_uri"))),
                   "code=a-wrong-code&state=" +
                       queryValue(url, QStringLiteral("state")).toLatin1());
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10'000);
    QVERIFY(job->failed());
    const QString message = job->error().message;
    QVERIFY2(message.contains(QStringLiteral("invalid_grant (PKCE or code mismatch)")),
             qPrintable(message));
    QVERIFY2(message.contains(m_provider->url(tokenPath).toString()), qPrintable(message));
    QVERIFY2(!message.contains(QStringLiteral("a-wrong-code")), qPrintable(message));
}

void TestLoginJob::providerErrorFails()
{
    LoginJob *job = startLogin();
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl url = m_openedUrls.first();

    const int status =
        followRedirect(QUrl(queryValue(url, QStringLiteral("redirect_uri"))),
                       "error=access_denied&error_description=End-User+aborted&state=" +
                           queryValue(url, QStringLiteral("state")).toLatin1());
    QCOMPARE(status, 400);
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10'000);
    QVERIFY(job->failed());
    QVERIFY2(job->error().message.contains(QStringLiteral("access_denied (End-User aborted)")),
             qPrintable(job->error().message));
    QVERIFY(m_provider->requestsTo(tokenPath).isEmpty());
}

void TestLoginJob::issuerMismatchFails()
{
    serveTokens();
    LoginJob *job = startLogin();
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl url = m_openedUrls.first();

    followRedirect(QUrl(queryValue(url, QStringLiteral("redirect_uri"))),
                   "code=the-code&iss=https%3A%2F%2Fevil.example.test&state=" +
                       queryValue(url, QStringLiteral("state")).toLatin1());
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10'000);
    QVERIFY(job->failed());
    QVERIFY2(job->error().message.contains(QStringLiteral("https://evil.example.test")),
             qPrintable(job->error().message));
    QVERIFY(m_provider->requestsTo(tokenPath).isEmpty());
}

// A page in the browser can send requests to the loopback listener, but not with the state of
// the pending sign-in, so its forged callback must neither end the sign-in nor reach the provider.
void TestLoginJob::forgedStateKeepsLoginPending()
{
    serveTokens();
    LoginJob *job = startLogin();
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl url = m_openedUrls.first();
    const QUrl redirectUri(queryValue(url, QStringLiteral("redirect_uri")));

    const int forgedStatus = followRedirect(redirectUri, "code=forged-code&state=forged-state");
    QCOMPARE(forgedStatus, 400);
    QTest::qWait(200);
    QCOMPARE(finished.size(), 0);
    QVERIFY(!job->isFinished());
    QVERIFY(m_provider->requestsTo(tokenPath).isEmpty());

    const int status = followRedirect(
        redirectUri, "code=the-code&state=" + queryValue(url, QStringLiteral("state")).toLatin1());
    QCOMPARE(status, 200);
    QTRY_COMPARE_WITH_TIMEOUT(finished.size(), 1, 10'000);
    QVERIFY2(!job->failed(), qPrintable(job->error().message));
    QCOMPARE(job->tokens().claims.subject, QStringLiteral("jane"));
    QCOMPARE(m_provider->requestsTo(tokenPath).size(), 1);
}

void TestLoginJob::cancelClosesListener()
{
    LoginJob *job = startLogin();
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl redirectUri(queryValue(m_openedUrls.first(), QStringLiteral("redirect_uri")));

    job->cancel();
    QCOMPARE(finished.size(), 1);
    QVERIFY(job->failed());
    QCOMPARE(job->error().message, QStringLiteral("Sign-in was cancelled."));
    QCOMPARE(connectError(static_cast<quint16>(redirectUri.port())),
             QAbstractSocket::ConnectionRefusedError);

    job->cancel();
    QCOMPARE(finished.size(), 1);
}

void TestLoginJob::cancelBeforeStartFinishes()
{
    LoginJob *job = m_client->login({});
    QSignalSpy finished(job, &LoginJob::finished);
    job->cancel();
    QCOMPARE(finished.size(), 1);
    job->start();
    QTest::qWait(100);
    QCOMPARE(finished.size(), 1);
    QVERIFY(m_openedUrls.isEmpty());
}

void TestLoginJob::timeoutClosesListener()
{
    LoginConfig config;
    config.timeout = std::chrono::seconds(1);
    LoginJob *job = startLogin(config);
    QSignalSpy finished(job, &LoginJob::finished);
    const QUrl redirectUri(queryValue(m_openedUrls.first(), QStringLiteral("redirect_uri")));

    QVERIFY(finished.wait(5000));
    QVERIFY(job->failed());
    QCOMPARE(job->error().message, QStringLiteral("Sign-in timed out after 1 s; try again."));
    QCOMPARE(connectError(static_cast<quint16>(redirectUri.port())),
             QAbstractSocket::ConnectionRefusedError);
}

// The command is a shell that writes its last argument, the authorization URL, to a file.
void TestLoginJob::browserCommandGetsUrl()
{
    QTemporaryDir directory;
    const QString output = directory.filePath(QStringLiteral("url.txt"));
    LoginConfig config;
    config.browserCommand = {QStringLiteral("/bin/sh"),
                             QStringLiteral("-c"),
                             QStringLiteral("printf %s \"$1\" > \"$0\""),
                             output};
    LoginJob *job = m_client->login(config);
    job->start();

    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(output) && QFile(output).size() > 0, 10'000);
    QFile file(output);
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QUrl url(QString::fromUtf8(file.readAll()));
    QCOMPARE(url.adjusted(QUrl::RemoveQuery), m_provider->url(QStringLiteral("/authorize")));
    QCOMPARE(queryValue(url, QStringLiteral("code_challenge_method")), QStringLiteral("S256"));
    QCOMPARE(queryValue(url, QStringLiteral("state")).size(), 43);
    QVERIFY(m_openedUrls.isEmpty());
    QVERIFY(!job->isFinished());
    job->cancel();
}

void TestLoginJob::browserCommandFailureNamesCommand()
{
    LoginConfig config;
    config.browserCommand = {QStringLiteral("/nonexistent/lamplighter-browser"),
                             QStringLiteral("--new-window")};
    LoginJob *job = m_client->login(config);
    QSignalSpy finished(job, &LoginJob::finished);
    job->start();
    QVERIFY(finished.wait(10'000));

    QVERIFY(job->failed());
    const QString message = job->error().message;
    QVERIFY2(message.contains(QStringLiteral("\"/nonexistent/lamplighter-browser --new-window\"")),
             qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("login.browser")), qPrintable(message));
    QVERIFY2(!message.contains(QStringLiteral("state=")), qPrintable(message));
}

void TestLoginJob::noBrowserFails()
{
    m_client->setUrlOpener({});
    LoginJob *job = m_client->login({});
    QSignalSpy finished(job, &LoginJob::finished);
    job->start();
    QVERIFY(finished.wait(10'000));

    QVERIFY(job->failed());
    QVERIFY2(job->error().message.contains(QStringLiteral("login.browser")),
             qPrintable(job->error().message));
}

void TestLoginJob::httpIssuerFails()
{
    ProviderConfig config = providerConfig();
    config.issuer.setScheme(QStringLiteral("http"));
    OidcClient client(config);
    client.setUrlOpener([this](const QUrl &url) {
        m_openedUrls.append(url);
        return true;
    });
    LoginJob *job = client.login({});
    QSignalSpy finished(job, &LoginJob::finished);
    job->start();
    QVERIFY(finished.wait(10'000));

    QVERIFY(job->failed());
    QVERIFY2(job->error().message.contains(QStringLiteral("must be an https URL")),
             qPrintable(job->error().message));
    QVERIFY(m_openedUrls.isEmpty());
    QVERIFY(m_provider->requests().isEmpty());
}

QTEST_GUILESS_MAIN(TestLoginJob)
#include "tst_loginjob.moc"
