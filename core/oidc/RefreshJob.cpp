#include "oidc/RefreshJob.h"

#include "Logging.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/OidcClient.h"
#include "oidc/TokenRequest.h"

#include <utility>

namespace lamplighter {

RefreshJob::RefreshJob(OidcClient *client, TokenSet current)
    : QObject(client)
    , m_client(client)
    , m_current(std::move(current))
{}

RefreshJob::~RefreshJob()
{
    if (m_tokenRequest)
        m_tokenRequest->abort();
}

void RefreshJob::start()
{
    if (m_started) {
        qCWarning(lcOidc) << "A token refresh job was started twice; the second start is ignored";
        return;
    }
    m_started = true;
    if (m_finished)
        return;

    const QString problem = m_current.refreshToken.isEmpty()
                                ? QStringLiteral("No refresh token is stored, so the tokens cannot "
                                                 "be refreshed; sign in again.")
                            : m_current.claims.subject.isEmpty()
                                ? QStringLiteral("The stored tokens lack the subject of their ID "
                                                 "token, so a refreshed ID token cannot be "
                                                 "checked against it; sign in again.")
                                : QString();
    if (!problem.isEmpty()) {
        m_needsLogin = true;
        QMetaObject::invokeMethod(
            this, [this, problem] { finishWithError(Error{problem}); }, Qt::QueuedConnection);
        return;
    }
    m_client->fetchMetadata(
        this, [this](const Result<ProviderMetadata> &metadata) { handleMetadata(metadata); });
}

void RefreshJob::cancel()
{
    finishWithError(Error{QStringLiteral("Token refresh was cancelled.")});
}

void RefreshJob::handleMetadata(const Result<ProviderMetadata> &metadata)
{
    if (m_finished)
        return;
    if (!metadata) {
        m_transient = m_client->lastMetadataFailureTransient();
        finishWithError(metadata.error());
        return;
    }
    m_metadata = metadata.value();

    const FormParameters parameters{
        {QStringLiteral("grant_type"), QStringLiteral("refresh_token")},
        {QStringLiteral("refresh_token"), QString::fromUtf8(m_current.refreshToken)},
        {QStringLiteral("client_id"), m_client->config().clientId},
        {QStringLiteral("scope"), m_client->scopes().join(QLatin1Char(' '))},
    };
    m_tokenRequest =
        new TokenRequest(m_client->network(), m_metadata->tokenEndpoint, parameters, this);
    m_tokenRequest->setIdTokenRequired(false);
    connect(m_tokenRequest, &TokenRequest::finished, this, &RefreshJob::handleTokenResponse);
    m_tokenRequest->start();
}

void RefreshJob::handleTokenResponse()
{
    if (m_finished)
        return;
    if (m_tokenRequest->failed()) {
        // RFC 6749, section 5.2: invalid_grant means the refresh token is expired, revoked or
        // already used, and only a new sign-in gets another.
        m_needsLogin = m_tokenRequest->oauthError() == QLatin1String("invalid_grant");
        m_transient = m_tokenRequest->isTransient();
        finishWithError(m_tokenRequest->error());
        return;
    }

    const TokenResponse response = m_tokenRequest->response();
    m_tokens.idToken = response.idToken;
    m_tokens.accessToken = response.accessToken;
    // Without a new refresh token the provider did not rotate it, so the old one stays valid.
    m_tokens.refreshToken =
        response.refreshToken.isEmpty() ? m_current.refreshToken : response.refreshToken;

    // OpenID Connect Core 1.0, section 12.2, lets the provider leave out the ID token. The
    // identity is then the one of the current ID token, which stays in use until it expires.
    if (response.idToken.isEmpty()) {
        m_tokens.idToken = m_current.idToken;
        finishWithClaims(m_current.claims);
        return;
    }

    // A refreshed ID token carries no nonce (OpenID Connect Core 1.0, section 12.2), so the
    // expectations leave it empty.
    IdTokenExpectations expectations;
    expectations.issuer = m_metadata->issuer;
    expectations.clientId = m_client->config().clientId;
    expectations.leeway = m_client->config().clockSkew;
    QPointer<RefreshJob> self(this);
    m_client->idTokenVerifier()->verify(
        response.idToken, expectations, [self](Result<IdTokenClaims> claims) {
            if (self)
                self->handleIdTokenClaims(std::move(claims));
        });
}

void RefreshJob::handleIdTokenClaims(Result<IdTokenClaims> claims)
{
    if (m_finished)
        return;
    if (!claims) {
        if (m_tokens.refreshToken != m_current.refreshToken)
            m_rotatedRefreshToken = m_tokens.refreshToken;
        finishWithError(claims.error());
        return;
    }
    const Status sameAuthentication = checkSameAuthentication(claims.value());
    if (!sameAuthentication) {
        m_needsLogin = true;
        finishWithError(sameAuthentication.error());
        return;
    }

    finishWithClaims(std::move(claims).value());
}

void RefreshJob::finishWithClaims(IdTokenClaims claims)
{
    m_tokens.claims = std::move(claims);
    m_finished = true;
    const QString idToken = m_tokens.idToken == m_current.idToken
                                ? QStringLiteral("The provider sent no new ID token, so the "
                                                 "current one stays in use")
                                : QStringLiteral("The new ID token is in use");
    qCInfo(lcOidc).noquote() << QStringLiteral("Refreshed the tokens of %1. %2 until %3. The "
                                               "refresh token was %4.")
                                    .arg(m_tokens.claims.subject,
                                         idToken,
                                         m_tokens.claims.expiresAt.toString(Qt::ISODate),
                                         m_tokens.refreshToken == m_current.refreshToken
                                             ? QStringLiteral("kept")
                                             : QStringLiteral("replaced"));
    Q_EMIT finished();
}

// OpenID Connect Core 1.0, section 12.2: the refreshed ID token must name the same subject, and an
// auth_time in it must still be the time of the original authentication.
Status RefreshJob::checkSameAuthentication(const IdTokenClaims &claims) const
{
    if (claims.subject != m_current.claims.subject) {
        return Error{QStringLiteral("The refreshed ID token is for the subject \"%1\" but the "
                                    "tokens being refreshed are for \"%2\"; sign in again.")
                         .arg(claims.subject, m_current.claims.subject)};
    }

    const QJsonValue previousAuthTime = m_current.claims.all().value(QStringLiteral("auth_time"));
    const QJsonValue authTime = claims.all().value(QStringLiteral("auth_time"));
    if (previousAuthTime.isDouble() && authTime.isDouble() &&
        previousAuthTime.toInteger() != authTime.toInteger()) {
        return Error{QStringLiteral("The refreshed ID token has an auth_time of %1, which differs "
                                    "from the original authentication at %2; sign in again.")
                         .arg(authTime.toInteger())
                         .arg(previousAuthTime.toInteger())};
    }
    return Done{};
}

void RefreshJob::finishWithError(const Error &error)
{
    if (m_finished)
        return;
    m_finished = true;
    m_error = error;
    m_tokens = TokenSet{};
    if (m_tokenRequest)
        m_tokenRequest->abort();
    qCDebug(lcOidc).noquote() << "Token refresh failed:" << error.message;
    Q_EMIT finished();
}

} // namespace lamplighter
