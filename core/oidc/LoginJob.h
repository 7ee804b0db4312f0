#pragma once

#include "config/Config.h"
#include "oidc/Pkce.h"
#include "oidc/ProviderMetadata.h"
#include "oidc/TokenSet.h"
#include "util/Result.h"

#include <QObject>
#include <QPointer>
#include <QTimer>
#include <QUrl>
#include <optional>

namespace lamplighter {

class OidcClient;
class RedirectListener;
class TokenRequest;

// Signs the person in with the authorization code flow in their browser: discovery, a loopback
// redirect listener, the browser, the token request with the PKCE verifier, and verification of
// the ID token. One object per sign-in; OidcClient::login() creates it.
class LoginJob : public QObject {
    Q_OBJECT
public:
    LoginJob(OidcClient *client, LoginConfig config);
    ~LoginJob() override;

    // Starts the sign-in. finished() is emitted later, from the event loop. LoginConfig::timeout
    // limits the whole sign-in; zero or less means no limit.
    void start();
    // Stops the sign-in and closes the redirect listener. Unless the job has finished already,
    // it finishes with "Sign-in was cancelled" and emits finished() before cancel() returns.
    void cancel();

    bool isFinished() const { return m_finished; }
    bool failed() const { return m_error.has_value(); }
    Error error() const { return m_error.value_or(Error{}); }
    // Valid only when the job succeeded.
    TokenSet tokens() const { return m_tokens; }

Q_SIGNALS:
    // Emitted once, when the sign-in succeeded, failed, timed out or was cancelled.
    void finished();

private:
    void handleMetadata(const Result<ProviderMetadata> &metadata);
    Status openBrowser();
    QUrl buildAuthorizationUrl() const;
    void handleAuthorizationResponse();
    void handleTokenResponse();
    void handleIdTokenClaims(Result<IdTokenClaims> claims);
    void finishWithError(const Error &error);
    void stopWork();

    QPointer<OidcClient> m_client;
    LoginConfig m_config;
    QTimer m_timeout;
    std::optional<ProviderMetadata> m_metadata;
    std::optional<Pkce> m_pkce;
    QByteArray m_state;
    QByteArray m_nonce;
    RedirectListener *m_listener = nullptr;
    TokenRequest *m_tokenRequest = nullptr;
    TokenSet m_tokens;
    std::optional<Error> m_error;
    bool m_started = false;
    bool m_finished = false;
};

} // namespace lamplighter
