#include "oidc/LoginJob.h"

#include "Logging.h"
#include "oidc/BrowserLauncher.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/OAuthProtocol.h"
#include "oidc/OidcClient.h"
#include "oidc/RedirectListener.h"
#include "oidc/TokenRequest.h"

#include <utility>

namespace lamplighter {

LoginJob::LoginJob(OidcClient *client, LoginConfig config)
    : QObject(client)
    , m_client(client)
    , m_config(std::move(config))
{
    m_timeout.setSingleShot(true);
    connect(&m_timeout, &QTimer::timeout, this, [this] {
        finishWithError(Error{QStringLiteral("Sign-in timed out after %1 s; try again.")
                                  .arg(m_config.timeout.count())});
    });
}

LoginJob::~LoginJob()
{
    stopWork();
}

void LoginJob::start()
{
    if (m_started) {
        qCWarning(lcOidc) << "A sign-in job was started twice; the second start is ignored";
        return;
    }
    m_started = true;
    if (m_finished)
        return;

    if (m_config.timeout.count() > 0)
        m_timeout.start(m_config.timeout);
    qCInfo(lcOidc).noquote() << "Starting sign-in at" << m_client->config().issuer.toString();
    m_client->fetchMetadata(
        this, [this](const Result<ProviderMetadata> &metadata) { handleMetadata(metadata); });
}

void LoginJob::cancel()
{
    finishWithError(Error{QStringLiteral("Sign-in was cancelled.")});
}

void LoginJob::handleMetadata(const Result<ProviderMetadata> &metadata)
{
    if (m_finished)
        return;
    if (!metadata) {
        finishWithError(metadata.error());
        return;
    }
    m_metadata = metadata.value();

    Result<Pkce> pkce = Pkce::generate();
    Result<QByteArray> state = generateRandomToken();
    Result<QByteArray> nonce = generateRandomToken();
    for (const QString &problem :
         {pkce.errorMessage(), state.errorMessage(), nonce.errorMessage()}) {
        if (!problem.isEmpty()) {
            finishWithError(Error{problem});
            return;
        }
    }
    m_pkce = pkce.value();
    m_state = state.value();
    m_nonce = nonce.value();

    const AuthorizationExpectations expectations{
        m_state, m_metadata->issuer, m_metadata->authorizationResponseIssParameterSupported};
    m_listener = new RedirectListener(expectations, this);
    connect(m_listener, &RedirectListener::finished, this, &LoginJob::handleAuthorizationResponse);
    const Status listening = m_listener->listen(m_config.redirectToLocalhost
                                                    ? RedirectListener::RedirectHost::Localhost
                                                    : RedirectListener::RedirectHost::Loopback4);
    if (!listening) {
        finishWithError(listening.error());
        return;
    }

    const Status opened = openBrowser();
    if (!opened)
        finishWithError(opened.error());
}

Status LoginJob::openBrowser()
{
    const BrowserLauncher launcher(m_config.browserCommand, m_client->urlOpener());
    return launcher.open(buildAuthorizationUrl());
}

QUrl LoginJob::buildAuthorizationUrl() const
{
    const QStringList scopes = m_client->scopes();
    FormParameters parameters{
        {QStringLiteral("response_type"), QStringLiteral("code")},
        {QStringLiteral("client_id"), m_client->config().clientId},
        {QStringLiteral("redirect_uri"), m_listener->redirectUri().toString()},
        {QStringLiteral("scope"), scopes.join(QLatin1Char(' '))},
        {QStringLiteral("state"), QString::fromLatin1(m_state)},
        {QStringLiteral("nonce"), QString::fromLatin1(m_nonce)},
        {QStringLiteral("code_challenge"), QString::fromLatin1(m_pkce->challenge())},
        {QStringLiteral("code_challenge_method"), Pkce::method()},
    };
    // OpenID Connect Core 1.0, section 11: a request for offline_access must carry
    // prompt=consent, or the provider may ignore that scope and issue no refresh token.
    if (scopes.contains(QStringLiteral("offline_access")))
        parameters.append({QStringLiteral("prompt"), QStringLiteral("consent")});

    // RFC 6749, section 3.1: a query that the endpoint URL already has must be kept.
    QUrl url = m_metadata->authorizationEndpoint;
    QString query = url.query(QUrl::FullyEncoded);
    if (!query.isEmpty())
        query.append(QLatin1Char('&'));
    query.append(QString::fromLatin1(encodeFormParameters(parameters)));
    url.setQuery(query, QUrl::StrictMode);
    return url;
}

void LoginJob::handleAuthorizationResponse()
{
    if (m_finished)
        return;
    if (m_listener->failed()) {
        finishWithError(m_listener->error());
        return;
    }

    const FormParameters parameters{
        {QStringLiteral("grant_type"), QStringLiteral("authorization_code")},
        {QStringLiteral("code"), QString::fromUtf8(m_listener->code())},
        {QStringLiteral("redirect_uri"), m_listener->redirectUri().toString()},
        {QStringLiteral("client_id"), m_client->config().clientId},
        {QStringLiteral("code_verifier"), QString::fromLatin1(m_pkce->verifier())},
    };
    m_tokenRequest =
        new TokenRequest(m_client->network(), m_metadata->tokenEndpoint, parameters, this);
    connect(m_tokenRequest, &TokenRequest::finished, this, &LoginJob::handleTokenResponse);
    m_tokenRequest->start();
}

void LoginJob::handleTokenResponse()
{
    if (m_finished)
        return;
    if (m_tokenRequest->failed()) {
        finishWithError(m_tokenRequest->error());
        return;
    }

    const TokenResponse response = m_tokenRequest->response();
    m_tokens.idToken = response.idToken;
    m_tokens.refreshToken = response.refreshToken;
    m_tokens.accessToken = response.accessToken;

    IdTokenVerifier *verifier = m_client->idTokenVerifier();
    IdTokenExpectations expectations;
    expectations.issuer = m_metadata->issuer;
    expectations.clientId = m_client->config().clientId;
    expectations.nonce = m_nonce;
    expectations.leeway = m_client->config().clockSkew;
    QPointer<LoginJob> self(this);
    verifier->verify(response.idToken, expectations, [self](Result<IdTokenClaims> claims) {
        if (self)
            self->handleIdTokenClaims(std::move(claims));
    });
}

void LoginJob::handleIdTokenClaims(Result<IdTokenClaims> claims)
{
    if (m_finished)
        return;
    if (!claims) {
        finishWithError(claims.error());
        return;
    }

    m_tokens.claims = std::move(claims).value();
    m_finished = true;
    stopWork();
    qCInfo(lcOidc).noquote() << QStringLiteral("Signed in as %1; the ID token expires at %2")
                                    .arg(m_tokens.claims.subject,
                                         m_tokens.claims.expiresAt.toString(Qt::ISODate));
    Q_EMIT finished();
}

void LoginJob::finishWithError(const Error &error)
{
    if (m_finished)
        return;
    m_finished = true;
    m_error = error;
    m_tokens = TokenSet{};
    stopWork();
    qCDebug(lcOidc).noquote() << "Sign-in ended without tokens:" << error.message;
    Q_EMIT finished();
}

void LoginJob::stopWork()
{
    m_timeout.stop();
    if (m_listener)
        m_listener->close();
    if (m_tokenRequest)
        m_tokenRequest->abort();
}

} // namespace lamplighter
