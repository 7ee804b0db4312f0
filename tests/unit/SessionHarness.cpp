#include "SessionHarness.h"

#include <QDateTime>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSignalSpy>
#include <QTcpSocket>
#include <QTest>
#include <QUrlQuery>

namespace lamplighter::test {
namespace {

const QString clientId = QStringLiteral("lamplighter");
const QString keyId = QStringLiteral("session-harness-key");
constexpr int waitMs = 10'000;

QString queryValue(const QUrl &url, const QString &key)
{
    return QUrlQuery(url).queryItemValue(key, QUrl::FullyDecoded);
}

// Sends the authorization response to the redirect listener as the browser would. Returns the
// HTTP status of the listener's reply, or a negative number when it did not reply.
int followRedirect(const QUrl &redirectUri, const QByteArray &query)
{
    QTcpSocket socket;
    QByteArray response;
    QObject::connect(&socket, &QTcpSocket::readyRead, [&] { response += socket.readAll(); });
    socket.connectToHost(QHostAddress(redirectUri.host()), quint16(redirectUri.port()));
    if (!QTest::qWaitFor([&] { return socket.state() == QAbstractSocket::ConnectedState; }, waitMs))
        return -1;
    socket.write("GET " + redirectUri.path().toUtf8() + '?' + query + " HTTP/1.1\r\n\r\n");
    if (!QTest::qWaitFor([&] { return socket.state() == QAbstractSocket::UnconnectedState; },
                         waitMs))
        return -2;
    return response.split(' ').value(1).toInt();
}

QByteArray oauthError(const char *code)
{
    return QJsonDocument(QJsonObject{{QStringLiteral("error"), QString::fromLatin1(code)}})
        .toJson(QJsonDocument::Compact);
}

} // namespace

SessionHarness::SessionHarness(QObject *parent)
    : QObject(parent)
{}

SessionHarness::~SessionHarness()
{
    m_session.reset();
}

QString SessionHarness::start()
{
    if (!m_directory.isValid())
        return QStringLiteral("Failed to create a temporary folder");
    m_key = TestKey::generateRsa(2048);
    m_provider = new ProviderDouble(this);
    const QString started = m_provider->start(m_directory.filePath(QStringLiteral("pki")));
    if (!started.isEmpty())
        return started;
    m_provider->serveDiscovery();
    const QByteArray keySet =
        TestJwt::keySetJson({m_key->publicJwk(keyId, QStringLiteral("RS256"))});
    m_provider->setHandler(QStringLiteral("/jwks"), [keySet](const ProviderDouble::Request &) {
        ProviderDouble::Response response;
        response.body = keySet;
        return response;
    });
    m_provider->setHandler(
        QStringLiteral("/token"),
        [this](const ProviderDouble::Request &request) { return respondToTokenRequest(request); });
    return QString();
}

Session *SessionHarness::createSession()
{
    Config config;
    config.provider.issuer = QUrl(m_provider->issuer());
    config.provider.clientId = clientId;
    config.provider.scopes = {QStringLiteral("openid"), QStringLiteral("offline_access")};
    config.provider.userNameClaim = QStringLiteral("email");
    config.provider.groupsClaim = QStringLiteral("groups");
    config.provider.caCertificates = {m_provider->caCertificate()};

    Session::Options options;
    options.serveProxy = false;
    options.refreshOnStart = false;
    options.kubeconfigPath = stateFolder() + QStringLiteral("/kubeconfig");
    options.keychainService = QStringLiteral("lamplighter-test-%1").arg(quintptr(this));
    options.urlOpener = [this](const QUrl &url) {
        m_openedUrls.append(url);
        return true;
    };
    m_session = std::make_unique<Session>(config, options);
    QSignalSpy started(m_session.get(), &Session::started);
    m_session->start();
    if (!started.wait(waitMs) || m_session->state() != Session::State::SignedOut)
        return nullptr;
    return m_session.get();
}

bool SessionHarness::beginSignIn(Session *session)
{
    const qsizetype opened = m_openedUrls.size();
    session->signIn();
    return QTest::qWaitFor([&] { return m_openedUrls.size() > opened; }, waitMs);
}

bool SessionHarness::completeSignIn(Session *session)
{
    if (m_openedUrls.isEmpty())
        return false;
    const QUrl url = m_openedUrls.last();
    const QUrl redirectUri(queryValue(url, QStringLiteral("redirect_uri")));
    const QByteArray query =
        "code=the-code&state=" + queryValue(url, QStringLiteral("state")).toLatin1();
    if (followRedirect(redirectUri, query) != 200)
        return false;
    return QTest::qWaitFor([session] { return session->state() != Session::State::SigningIn; },
                           waitMs);
}

ProviderDouble::Response
SessionHarness::respondToTokenRequest(const ProviderDouble::Request &request)
{
    ProviderDouble::Response response;
    switch (m_tokenEndpoint) {
    case TokenEndpoint::DropConnection:
        response.closeWithoutResponse = true;
        return response;
    case TokenEndpoint::RejectClient:
        response.status = 400;
        response.body = oauthError("invalid_client");
        return response;
    case TokenEndpoint::RejectGrant:
        response.status = 400;
        response.body = oauthError("invalid_grant");
        return response;
    case TokenEndpoint::Issue:
    case TokenEndpoint::IssueWithoutIdToken:
        break;
    }

    // An ID token for an authorization code carries the nonce of the authorization request, but
    // a refreshed one carries none (OpenID Connect Core 1.0, section 12.2).
    const bool codeGrant = request.form().queryItemValue(QStringLiteral("grant_type")) ==
                           QLatin1String("authorization_code");
    const QString nonce =
        codeGrant ? queryValue(m_openedUrls.value(m_openedUrls.size() - 1), QStringLiteral("nonce"))
                  : QString();
    ++m_refreshTokenNumber;
    QJsonObject body{
        {QStringLiteral("access_token"), QStringLiteral("access")},
        {QStringLiteral("token_type"), QStringLiteral("Bearer")},
        {QStringLiteral("id_token"), QString::fromLatin1(signIdToken(nonce))},
        {QStringLiteral("refresh_token"), QStringLiteral("refresh-%1").arg(m_refreshTokenNumber)},
        {QStringLiteral("expires_in"), m_idTokenLifetime},
    };
    if (!codeGrant && m_tokenEndpoint == TokenEndpoint::IssueWithoutIdToken)
        body.remove(QStringLiteral("id_token"));
    response.body = QJsonDocument(body).toJson(QJsonDocument::Compact);
    return response;
}

QByteArray SessionHarness::signIdToken(const QString &nonce) const
{
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    QJsonObject claims{
        {QStringLiteral("iss"), m_provider->issuer()},
        {QStringLiteral("sub"), QStringLiteral("jane")},
        {QStringLiteral("aud"), clientId},
        {QStringLiteral("iat"), now},
        {QStringLiteral("exp"), now + m_idTokenLifetime},
        {QStringLiteral("email"), userName()},
        {QStringLiteral("groups"), QJsonArray{QStringLiteral("developers")}},
    };
    if (!nonce.isEmpty())
        claims.insert(QStringLiteral("nonce"), nonce);
    if (m_groups != Groups::Claim)
        claims.remove(QStringLiteral("groups"));
    if (m_groups == Groups::Overage) {
        claims.insert(QStringLiteral("_claim_names"),
                      QJsonObject{{QStringLiteral("groups"), QStringLiteral("src1")}});
        claims.insert(
            QStringLiteral("_claim_sources"),
            QJsonObject{{QStringLiteral("src1"),
                         QJsonObject{{QStringLiteral("endpoint"),
                                      QStringLiteral("https://graph.example.test/groups")}}}});
    }
    return TestJwt::sign(TestJwt::header(QStringLiteral("RS256"), keyId), claims, *m_key);
}

} // namespace lamplighter::test
