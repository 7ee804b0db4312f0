#pragma once

#include "util/Result.h"

#include <QList>
#include <QSslCertificate>
#include <QString>

namespace lamplighter {

// Checks a TLS server's certificate chain, the server's certificate first and then the
// intermediates it sent, as a client that trusts `anchors` and the system's CA certificates. The
// check covers every signature up to a trusted certificate, the validity dates, the TLS server
// purpose, and that the server's certificate names `host` (a DNS name or an IP address).
//
// The system's certificates are looked up in OpenSSL's hashed certificate folder one by one as
// the chain needs them, so a check keeps none of them in memory afterwards. Returns OpenSSL's
// reason when the chain is not trusted.
Status checkServerCertificateChain(const QList<QSslCertificate> &chain,
                                   const QList<QSslCertificate> &anchors,
                                   const QString &host);

} // namespace lamplighter
