#include "oidc/Discovery.h"

#include "Logging.h"
#include "oidc/OAuthProtocol.h"

#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <utility>

namespace lamplighter {

Discovery::Discovery(QNetworkAccessManager *network, QUrl issuer, QObject *parent)
    : QObject(parent)
    , m_network(network)
    , m_issuer(std::move(issuer))
    , m_documentUrl(ProviderMetadata::discoveryUrl(m_issuer))
{}

Discovery::~Discovery()
{
    abort();
}

void Discovery::start()
{
    const Status issuerValid = ProviderMetadata::validateIssuer(m_issuer);
    if (!issuerValid) {
        QMetaObject::invokeMethod(
            this, [this, error = issuerValid.error()] { finish(error); }, Qt::QueuedConnection);
        return;
    }

    QNetworkRequest request(m_documentUrl);
    request.setRawHeader("Accept", "application/json");
    m_reply = m_network->get(request);
    connect(m_reply, &QNetworkReply::downloadProgress, this, [this](qint64 received, qint64) {
        if (received > maxDocumentBytes && m_reply) {
            m_tooLarge = true;
            m_reply->abort();
        }
    });
    connect(m_reply, &QNetworkReply::finished, this, &Discovery::handleReply);
    qCDebug(lcOidc) << "Fetching the discovery document" << m_documentUrl.toDisplayString();
}

void Discovery::abort()
{
    if (!m_reply)
        return;
    QNetworkReply *reply = m_reply;
    m_reply = nullptr;
    reply->disconnect(this);
    reply->abort();
    reply->deleteLater();
}

void Discovery::handleReply()
{
    QNetworkReply *reply = m_reply;
    m_reply = nullptr;
    reply->deleteLater();

    const QString url = m_documentUrl.toDisplayString();
    const QVariant status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute);
    const QByteArray body = reply->read(maxDocumentBytes + 1);

    if (m_tooLarge || body.size() > maxDocumentBytes) {
        finish(Error{QStringLiteral("The discovery document at %1 is larger than %2 bytes.")
                         .arg(url)
                         .arg(maxDocumentBytes)});
        return;
    }
    if (!status.isValid() && reply->error() == QNetworkReply::SslHandshakeFailedError) {
        finish(Error{QStringLiteral("Failed to fetch the discovery document from %1: %2. Check "
                                    "that oidc.ca_file in the configuration file names the CA "
                                    "that issued the provider's certificate.")
                         .arg(url, reply->errorString())});
        return;
    }
    if (!status.isValid()) {
        m_transient = isTransientNetworkError(reply->error());
        finish(Error{QStringLiteral("Failed to fetch the discovery document from %1: %2. Check "
                                    "the network connection and oidc.issuer in the "
                                    "configuration file.")
                         .arg(url, reply->errorString())});
        return;
    }
    if (status.toInt() != 200) {
        m_transient = status.toInt() >= 500 || status.toInt() == 429;
        finish(Error{QStringLiteral("The discovery document at %1 could not be fetched: HTTP "
                                    "status %2. Check oidc.issuer in the configuration file.")
                         .arg(url)
                         .arg(status.toInt())});
        return;
    }

    finish(ProviderMetadata::fromJson(body, m_issuer.toString(), m_documentUrl));
}

void Discovery::finish(Result<ProviderMetadata> result)
{
    m_result = std::move(result);
    m_finished = true;
    if (m_result.ok()) {
        qCInfo(lcOidc).noquote() << "Discovered the provider" << m_result.value().issuer;
    } else if (m_transient) {
        qCInfo(lcOidc).noquote() << m_result.error().message;
    } else {
        qCWarning(lcOidc).noquote() << m_result.error().message;
    }
    Q_EMIT finished();
}

} // namespace lamplighter
