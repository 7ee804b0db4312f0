#include "oidc/ProviderNetworkAccessManager.h"

#include "Logging.h"
#include "tls/ServerCertificateCheck.h"

#include <QNetworkReply>
#include <QSslConfiguration>
#include <QSslError>

namespace lamplighter {

ProviderNetworkAccessManager::ProviderNetworkAccessManager(
    QList<QSslCertificate> extraCaCertificates, QObject *parent)
    : QNetworkAccessManager(parent)
    , m_extraCaCertificates(std::move(extraCaCertificates))
{
    setTransferTimeout(static_cast<int>(defaultTransferTimeout.count()));
    if (!m_extraCaCertificates.isEmpty())
        connect(this,
                &QNetworkAccessManager::sslErrors,
                this,
                &ProviderNetworkAccessManager::checkWithExtraCaCertificates);
}

// Qt's default TLS configuration looks the system's CA certificates up one by one as a chain
// needs them. A CA list set on a request turns that off and keeps every system certificate in
// memory: Debian's 144 took 2.1 MB of the tray's heap under heaptrack. So requests keep the
// default, and a chain that the system's certificates do not vouch for is checked again here,
// with the extra ones. That check repeats all of Qt's (signatures, dates, purpose and host
// name), so Qt's errors are ignored only when it passes.
void ProviderNetworkAccessManager::checkWithExtraCaCertificates(QNetworkReply *reply,
                                                                const QList<QSslError> &errors)
{
    // A request that names its own CA certificates trusts only those.
    if (reply->request().sslConfiguration().caCertificates() !=
        QSslConfiguration::defaultConfiguration().caCertificates())
        return;
    // The certificate names an internationalized host in its ASCII form.
    const QString host = reply->url().host(QUrl::EncodeUnicode);
    const QList<QSslCertificate> chain = reply->sslConfiguration().peerCertificateChain();
    const Status trusted = checkServerCertificateChain(chain, m_extraCaCertificates, host);
    if (trusted) {
        reply->ignoreSslErrors(errors);
        return;
    }
    // The error that Qt reports to the caller names only the first problem it found.
    qCWarning(lcOidc).noquote() << "The TLS certificate of" << host
                                << "is not trusted by the system's CA certificates or oidc.ca_file:"
                                << trusted.error().message;
}

} // namespace lamplighter
