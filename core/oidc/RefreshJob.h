#pragma once

#include "oidc/ProviderMetadata.h"
#include "oidc/TokenSet.h"
#include "util/Result.h"

#include <QObject>
#include <QPointer>
#include <optional>

namespace lamplighter {

class OidcClient;
class TokenRequest;

// Exchanges a refresh token for new tokens (RFC 6749, section 6, and OpenID Connect Core 1.0,
// section 12). A new ID token in the response must be for the same subject, so the current
// tokens must carry the verified claims of their ID token. A response without an ID token keeps
// the current ID token and its claims. A new refresh token replaces the old one; without one the
// old one is kept. One object per refresh; OidcClient::refresh() creates it.
class RefreshJob : public QObject {
    Q_OBJECT
public:
    RefreshJob(OidcClient *client, TokenSet current);
    ~RefreshJob() override;

    // Starts the refresh. finished() is always emitted later, from the event loop.
    void start();
    // Stops the refresh. Unless the job has finished already, it finishes with "Token refresh was
    // cancelled" and emits finished() before cancel() returns.
    void cancel();

    bool isFinished() const { return m_finished; }
    bool failed() const { return m_error.has_value(); }
    Error error() const { return m_error.value_or(Error{}); }
    // Tells whether the person must sign in again: the current tokens had no refresh token or no
    // subject, the provider rejected the refresh token (invalid_grant), or the new ID token is for
    // another subject or authentication.
    bool needsLogin() const { return m_needsLogin; }
    // Tells whether the failure may pass on a later try: a network error, HTTP 5xx or 429.
    bool isTransient() const { return m_transient; }
    // Valid only when the job succeeded.
    TokenSet tokens() const { return m_tokens; }
    // Returns the new refresh token of a refresh that failed after the provider responded, for
    // example because the new ID token could not be verified, and an empty array otherwise.
    // The provider may have revoked the old one already, so the caller must keep this one.
    QByteArray rotatedRefreshToken() const { return m_rotatedRefreshToken; }

Q_SIGNALS:
    // Emitted once, when the refresh succeeded, failed or was cancelled.
    void finished();

private:
    void handleMetadata(const Result<ProviderMetadata> &metadata);
    void handleTokenResponse();
    void handleIdTokenClaims(Result<IdTokenClaims> claims);
    void finishWithClaims(IdTokenClaims claims);
    Status checkSameAuthentication(const IdTokenClaims &claims) const;
    void finishWithError(const Error &error);

    QPointer<OidcClient> m_client;
    TokenSet m_current;
    std::optional<ProviderMetadata> m_metadata;
    TokenRequest *m_tokenRequest = nullptr;
    TokenSet m_tokens;
    QByteArray m_rotatedRefreshToken;
    std::optional<Error> m_error;
    bool m_needsLogin = false;
    bool m_transient = false;
    bool m_started = false;
    bool m_finished = false;
};

} // namespace lamplighter
