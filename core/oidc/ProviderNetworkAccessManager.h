#pragma once

#include <QList>
#include <QNetworkAccessManager>
#include <QSslCertificate>
#include <chrono>

namespace lamplighter {

// The network access manager for requests to the identity provider, the key set's included. Its
// https requests trust the system's CA certificates plus the extra ones given (oidc.ca_file), and
// each request fails when it transfers no data for the transfer timeout.
class ProviderNetworkAccessManager : public QNetworkAccessManager {
    Q_OBJECT
public:
    explicit ProviderNetworkAccessManager(QList<QSslCertificate> extraCaCertificates,
                                          QObject *parent = nullptr);

    static constexpr std::chrono::milliseconds defaultTransferTimeout{30'000};

private:
    void checkWithExtraCaCertificates(QNetworkReply *reply, const QList<QSslError> &errors);

    QList<QSslCertificate> m_extraCaCertificates;
};

} // namespace lamplighter
