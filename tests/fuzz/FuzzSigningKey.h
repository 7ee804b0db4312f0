#pragma once

#include <QByteArray>
#include <openssl/types.h>

// The fixed RSA key with which the token targets sign ID tokens.

namespace lamplighter::fuzz {

// The "kid" of the fixed key in keySetJson() and in the headers of the seed tokens.
inline constexpr char kKeyId[] = "fuzz-rsa-1";

EVP_PKEY *signingKey();

// Signs `signingInput` with RSASSA-PKCS1-v1_5 and SHA-256, the JWS algorithm RS256.
QByteArray signRs256(const QByteArray &signingInput);

// Returns a compact JWS of `header` and `claims`, given as raw bytes and not checked, signed
// with RS256 by the fixed key whatever `header` names as "alg".
QByteArray signedToken(const QByteArray &header, const QByteArray &claims);

// Returns the JWKS document that publishes the fixed key as an RS256 signing key with kKeyId.
QByteArray keySetJson();

} // namespace lamplighter::fuzz
