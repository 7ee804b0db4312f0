#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QDateTime>
#include <QString>
#include <QStringList>

namespace lamplighter {

// A new certificate authority and a server certificate that it signed, in PEM, as the keys
// ca.crt, tls.crt and tls.key of a kubernetes.io/tls Secret store them.
//
// Each call creates a new CA. Its private key is discarded once it has signed the server
// certificate, so no one can sign with it later, and a renewal replaces ca.crt as well.
struct TlsSecretCertificate {
    QByteArray caCertificatePem;
    QByteArray certificatePem; // the server certificate, or it followed by the CA certificate
    QByteArray privateKeyPem;  // the server's RSA key, unencrypted PKCS#8

    // Generates RSA keys of `keySize` bits for the CA and the server. The server certificate
    // names `serverName` as its subject CN and, with `alternativeNames`, in its subjectAltName,
    // as IP entries for IP addresses and as DNS entries otherwise. Both certificates are valid
    // from one hour before `now` for 365 days. With `appendCaCertificate`, certificatePem also
    // contains the CA certificate after the server certificate.
    static Result<TlsSecretCertificate> generate(int keySize,
                                                 const QString &serverName,
                                                 const QStringList &alternativeNames,
                                                 bool appendCaCertificate,
                                                 const QDateTime &now);
};

} // namespace lamplighter
