#pragma once

#include <QList>
#include <QNetworkAccessManager>
#include <QSslCertificate>
#include <chrono>

namespace lamplighter {

// The network access manager for requests to the identity provider. Its https requests trust the
// system's CA certificates plus the extra ones given (oidc.ca_file), and each request fails when
// it transfers no data for the transfer timeout.
class ProviderNetworkAccessManager : public QNetworkAccessManager {
    Q_OBJECT
public:
    explicit ProviderNetworkAccessManager(QList<QSslCertificate> extraCaCertificates,
                                          QObject *parent = nullptr);

    static constexpr std::chrono::milliseconds defaultTransferTimeout{30'000};

protected:
    QNetworkReply *createRequest(Operation operation,
                                 const QNetworkRequest &request,
                                 QIODevice *outgoingData) override;

private:
    QList<QSslCertificate> m_caCertificates; // empty when no extra certificate is given
};

} // namespace lamplighter
