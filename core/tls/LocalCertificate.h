#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QDateTime>
#include <QSslCertificate>
#include <QSslKey>

namespace lamplighter {

// The self-signed TLS certificate and private key of the local proxy's listener.
//
// Clients trust it through the kubeconfig's certificate-authority-data. A generated certificate
// names 127.0.0.1 and localhost in its subjectAltName. It is also marked as a CA, for verifiers
// that take only CA certificates as trust anchors. kubectl 1.32, curl with OpenSSL 3.0 and
// Node.js 20 accepted a self-signed server certificate without that mark in a manual check.
struct LocalCertificate {
    QSslCertificate certificate;
    QSslKey privateKey;

    QByteArray certificatePem() const;
    QByteArray privateKeyPem() const;

    // Returns true when the certificate is null, not yet valid at `now`, or expires within
    // 30 days of `now`.
    bool needsRenewal(const QDateTime &now) const;

    // Generates an EC P-256 key and a certificate valid from one hour before `now` for 397 days,
    // with a random 128-bit serial number.
    static Result<LocalCertificate> generate(const QDateTime &now);

    // Reads a PEM certificate and its PEM private key (PKCS#8 or SEC 1, unencrypted, EC or
    // RSA). Fails when either does not parse or the key does not belong to the certificate.
    static Result<LocalCertificate> fromPem(const QByteArray &certificatePem,
                                            const QByteArray &privateKeyPem);
};

} // namespace lamplighter
