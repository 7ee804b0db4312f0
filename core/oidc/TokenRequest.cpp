#include "oidc/TokenRequest.h"

#include "Logging.h"
#include "util/Redact.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <utility>

namespace lamplighter {

namespace {

bool isTransientHttpStatus(int status)
{
    return status >= 500 || status == 429;
}

// Reads expires_in, which RFC 6749 defines as a number of seconds. Some providers send it as a
// string of digits, so that form is read too.
std::optional<std::chrono::seconds> readExpiresIn(const QJsonValue &value)
{
    qint64 seconds = -1;
    if (value.isDouble())
        seconds = value.toInteger(-1);
    else if (value.isString())
        seconds = value.toString().toLongLong();
    if (seconds <= 0)
        return std::nullopt;
    return std::chrono::seconds(seconds);
}

} // namespace

TokenRequest::TokenRequest(QNetworkAccessManager *network,
                           QUrl tokenEndpoint,
                           FormParameters parameters,
                           QObject *parent)
    : QObject(parent)
    , m_network(network)
    , m_tokenEndpoint(std::move(tokenEndpoint))
    , m_parameters(std::move(parameters))
{}

TokenRequest::~TokenRequest()
{
    abort();
}

void TokenRequest::start()
{
    QNetworkRequest request(m_tokenEndpoint);
    request.setHeader(QNetworkRequest::ContentTypeHeader,
                      QByteArrayLiteral("application/x-www-form-urlencoded"));
    request.setRawHeader("Accept", "application/json");
    // A redirect would send the code or refresh token to another URL, so none is followed.
    request.setAttribute(QNetworkRequest::RedirectPolicyAttribute,
                         QNetworkRequest::ManualRedirectPolicy);

    m_reply = m_network->post(request, encodeFormParameters(m_parameters));
    connect(m_reply, &QNetworkReply::downloadProgress, this, [this](qint64 received, qint64) {
        if (received > maxResponseBytes && m_reply) {
            m_tooLarge = true;
            m_reply->abort();
        }
    });
    connect(m_reply, &QNetworkReply::finished, this, &TokenRequest::handleReply);
    qCDebug(lcOidc) << "Sending a token request to" << m_tokenEndpoint.toDisplayString();
}

void TokenRequest::abort()
{
    if (!m_reply)
        return;
    QNetworkReply *reply = m_reply;
    m_reply = nullptr;
    reply->disconnect(this);
    reply->abort();
    reply->deleteLater();
}

void TokenRequest::handleReply()
{
    QNetworkReply *reply = m_reply;
    m_reply = nullptr;
    reply->deleteLater();

    const QString url = m_tokenEndpoint.toDisplayString();
    const QVariant status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute);
    // A reply ended by the transfer timeout is closed, and reading it would only warn.
    const QByteArray body = reply->isOpen() ? reply->read(maxResponseBytes + 1) : QByteArray();

    if (m_tooLarge || body.size() > maxResponseBytes) {
        finish(Error{QStringLiteral("The token response from %1 is larger than %2 bytes.")
                         .arg(url)
                         .arg(maxResponseBytes)});
        return;
    }
    if (!status.isValid()) {
        m_transient = isTransientNetworkError(reply->error());
        // abort() disconnects the reply first, so a cancelled reply that gets here was ended by
        // the network access manager's transfer timeout.
        if (reply->error() == QNetworkReply::OperationCanceledError) {
            finish(Error{QStringLiteral("The token request to %1 timed out: the identity provider "
                                        "sent no data for %2 s. Check that the provider is "
                                        "running and try again.")
                             .arg(url)
                             .arg(m_network->transferTimeout() / 1000.0)});
            return;
        }
        finish(Error{QStringLiteral("The token request to %1 failed: %2. Check the network "
                                    "connection and try again.")
                         .arg(url, reply->errorString())});
        return;
    }

    const int httpStatus = status.toInt();
    if (httpStatus == 200) {
        finish(readTokenResponse(body));
        return;
    }
    if (httpStatus >= 300 && httpStatus < 400) {
        finish(Error{QStringLiteral("The token endpoint %1 returned a redirect (HTTP status %2), "
                                    "which token requests must not follow. Check the identity "
                                    "provider's token_endpoint.")
                         .arg(url)
                         .arg(httpStatus)});
        return;
    }
    finish(readErrorResponse(httpStatus, body));
}

Result<TokenResponse> TokenRequest::readErrorResponse(int httpStatus, const QByteArray &body)
{
    m_transient = isTransientHttpStatus(httpStatus);
    const QString url = m_tokenEndpoint.toDisplayString();

    const QJsonObject object = QJsonDocument::fromJson(body).object();
    const QJsonValue error = object.value(QStringLiteral("error"));
    if (!error.isString() || error.toString().isEmpty()) {
        return Error{QStringLiteral("The token endpoint %1 returned HTTP status %2.")
                         .arg(url)
                         .arg(httpStatus)};
    }

    m_oauthError = error.toString();
    const QString description = object.value(QStringLiteral("error_description")).toString();
    return Error{QStringLiteral("The identity provider rejected the token request to %1: %2.")
                     .arg(url, describeOAuthError(m_oauthError, description))};
}

Result<TokenResponse> TokenRequest::readTokenResponse(const QByteArray &body) const
{
    const QString url = m_tokenEndpoint.toDisplayString();
    const QJsonDocument json = QJsonDocument::fromJson(body);
    if (!json.isObject()) {
        return Error{QStringLiteral("The token response from %1 is not a JSON object.").arg(url)};
    }
    const QJsonObject object = json.object();

    TokenResponse response;
    response.accessToken = object.value(QStringLiteral("access_token")).toString().toUtf8();
    if (response.accessToken.isEmpty()) {
        return Error{
            QStringLiteral("The token response from %1 contains no access_token.").arg(url)};
    }
    response.idToken = object.value(QStringLiteral("id_token")).toString().toUtf8();
    if (response.idToken.isEmpty() && m_idTokenRequired) {
        return Error{QStringLiteral("The token response from %1 contains no id_token. Check that "
                                    "oidc.scopes in the configuration file contains \"openid\".")
                         .arg(url)};
    }
    const QJsonValue refreshToken = object.value(QStringLiteral("refresh_token"));
    if (!refreshToken.isUndefined() && !refreshToken.isNull() && !refreshToken.isString()) {
        return Error{QStringLiteral("The token response from %1 contains a refresh_token that is "
                                    "not a string.")
                         .arg(url)};
    }
    response.refreshToken = refreshToken.toString().toUtf8();
    response.expiresIn = readExpiresIn(object.value(QStringLiteral("expires_in")));
    return response;
}

void TokenRequest::finish(Result<TokenResponse> result)
{
    m_result = std::move(result);
    if (m_result.ok()) {
        const TokenResponse &response = m_result.value();
        qCDebug(lcOidc).noquote() << "Token response from" << m_tokenEndpoint.toDisplayString()
                                  << "ID token" << describeSecret(response.idToken)
                                  << "refresh token" << describeSecret(response.refreshToken);
    } else {
        // The job that sent the request reports the failure; this line only helps debugging.
        qCDebug(lcOidc).noquote() << m_result.error().message;
    }
    Q_EMIT finished();
}

} // namespace lamplighter
