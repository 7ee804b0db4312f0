#pragma once

#include "oidc/OAuthProtocol.h"
#include "util/Result.h"

#include <QByteArray>
#include <QObject>
#include <QPointer>
#include <QString>
#include <QUrl>
#include <chrono>
#include <optional>

class QNetworkAccessManager;
class QNetworkReply;

namespace lamplighter {

// A successful token response (RFC 6749, section 5.1, and OpenID Connect Core 1.0, 3.1.3.3).
struct TokenResponse {
    QByteArray accessToken;
    QByteArray idToken;
    QByteArray refreshToken;                       // empty when the provider issued none
    std::optional<std::chrono::seconds> expiresIn; // of the access token
};

// One POST to the token endpoint. The response must contain an access_token, and an id_token
// unless setIdTokenRequired(false) was called before start(). An error response (RFC 6749,
// section 5.2) becomes an Error with its "error" and "error_description" and the endpoint URL, and
// never with the response body, which could contain tokens.
class TokenRequest : public QObject {
    Q_OBJECT
public:
    TokenRequest(QNetworkAccessManager *network,
                 QUrl tokenEndpoint,
                 FormParameters parameters,
                 QObject *parent = nullptr);
    ~TokenRequest() override;

    // A refresh response may leave out the id_token (OpenID Connect Core 1.0, section 12.2), so a
    // refresh calls this with false. The default is true.
    void setIdTokenRequired(bool required) { m_idTokenRequired = required; }
    // Sends the request. finished() is always emitted later, from the event loop.
    void start();
    // Stops the request. finished() is not emitted after this.
    void abort();

    bool failed() const { return !m_result.ok(); }
    Error error() const { return m_result.ok() ? Error{} : m_result.error(); }
    // The OAuth error code, such as "invalid_grant"; empty unless the provider sent one.
    QString oauthError() const { return m_oauthError; }
    // Tells whether the failure may pass on a later try: a network error, HTTP 5xx or 429.
    bool isTransient() const { return m_transient; }
    // Valid only when the request succeeded.
    TokenResponse response() const { return m_result.ok() ? m_result.value() : TokenResponse{}; }

    // Maximum size of a token response; real ones are a few KiB.
    static constexpr qint64 maxResponseBytes = 1024 * 1024;

Q_SIGNALS:
    void finished();

private:
    void handleReply();
    Result<TokenResponse> readErrorResponse(int httpStatus, const QByteArray &body);
    Result<TokenResponse> readTokenResponse(const QByteArray &body) const;
    void finish(Result<TokenResponse> result);

    QNetworkAccessManager *m_network;
    QUrl m_tokenEndpoint;
    FormParameters m_parameters;
    QPointer<QNetworkReply> m_reply;
    Result<TokenResponse> m_result{Error{QStringLiteral("The token request has not finished.")}};
    QString m_oauthError;
    bool m_transient = false;
    bool m_tooLarge = false;
    bool m_idTokenRequired = true;
};

} // namespace lamplighter
