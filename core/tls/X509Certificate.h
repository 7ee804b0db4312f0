#pragma once

#include "util/OpenSslPointers.h"

#include <QByteArray>
#include <QSslCertificate>
#include <openssl/x509.h>

namespace lamplighter {

// Returns OpenSSL's own copy of a Qt certificate, or null when OpenSSL cannot read it. It goes
// through DER, so it does not depend on which TLS backend Qt loaded.
inline X509Pointer toX509(const QSslCertificate &certificate)
{
    const QByteArray der = certificate.toDer();
    const auto *cursor = reinterpret_cast<const unsigned char *>(der.constData());
    return X509Pointer(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
}

} // namespace lamplighter
