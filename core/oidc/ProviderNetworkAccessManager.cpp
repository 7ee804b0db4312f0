#include "oidc/ProviderNetworkAccessManager.h"

#include <QNetworkRequest>
#include <QSslConfiguration>

namespace lamplighter {

ProviderNetworkAccessManager::ProviderNetworkAccessManager(
    QList<QSslCertificate> extraCaCertificates, QObject *parent)
    : QNetworkAccessManager(parent)
{
    setTransferTimeout(static_cast<int>(defaultTransferTimeout.count()));

    // Qt's default TLS configuration has an empty CA list and loads the system certificates on
    // demand. Setting a CA list turns that loading off, so the list names them explicitly.
    if (!extraCaCertificates.isEmpty())
        m_caCertificates = QSslConfiguration::systemCaCertificates() + extraCaCertificates;
}

// Every request passes through here, including those that IdTokenVerifier makes for the key set,
// so the extra CA certificates apply to all of them.
QNetworkReply *ProviderNetworkAccessManager::createRequest(Operation operation,
                                                           const QNetworkRequest &request,
                                                           QIODevice *outgoingData)
{
    if (m_caCertificates.isEmpty())
        return QNetworkAccessManager::createRequest(operation, request, outgoingData);

    QNetworkRequest trusting = request;
    QSslConfiguration tls = trusting.sslConfiguration();
    tls.setCaCertificates(m_caCertificates);
    trusting.setSslConfiguration(tls);
    return QNetworkAccessManager::createRequest(operation, trusting, outgoingData);
}

} // namespace lamplighter
