#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QString>
#include <memory>
#include <openssl/types.h>

namespace lamplighter::test {

// A key pair generated for a test. It signs JWS tokens and publishes its public half as a JWK.
// Every function aborts the test with qFatal when OpenSSL fails.
class TestKey {
public:
    // Generates an RSA key with a modulus of the given size in bits.
    static TestKey generateRsa(int bits = 2048);
    // Generates an EC key on the curve "P-256", "P-384" or "P-521".
    static TestKey generateEc(const QString &curve);

    // Returns the public JWK (RFC 7517) with "use" "sig", "kid" keyId unless it is empty, and
    // "alg" algorithm unless it is empty.
    QJsonObject publicJwk(const QString &keyId, const QString &algorithm = QString()) const;

    // Returns the public key as a PEM SubjectPublicKeyInfo, the bytes that an HMAC key
    // confusion attack uses as the secret.
    QByteArray publicKeyPem() const;

    // Signs data with a JWS algorithm (RS*, PS* or ES*) and returns the signature as a JWS
    // carries it, which for ES* is R and S as fixed-size big-endian numbers, not DER.
    QByteArray sign(const QString &algorithm, const QByteArray &data) const;

    // Signs data with PS256, PS384 or PS512 but with a salt of saltLength bytes, where JWS
    // requires the salt to be as long as the hash.
    QByteArray signRsaPss(const QString &algorithm, const QByteArray &data, int saltLength) const;

    EVP_PKEY *key() const { return m_key.get(); }

private:
    QByteArray
    signWithSaltLength(const QString &algorithm, const QByteArray &data, int saltLength) const;

    std::shared_ptr<EVP_PKEY> m_key;
    QString m_curve; // empty for RSA
};

// Builders of compact JWS tokens (RFC 7515, section 7.1) for tests.
namespace TestJwt {

// Encodes data as base64url without padding, independently of the production encoder.
QByteArray base64Url(const QByteArray &data);

// Returns a JWS header with "typ" "JWT", "alg" algorithm, and "kid" keyId unless it is empty.
QJsonObject header(const QString &algorithm, const QString &keyId = QString());

// Returns the token of header and claims, signed by key with the algorithm in header's "alg".
QByteArray sign(const QJsonObject &header, const QJsonObject &claims, const TestKey &key);

// Returns the token of header and claims with an HMAC signature (HS256, HS384 or HS512, taken
// from header's "alg") made with secret.
QByteArray signHmac(const QJsonObject &header, const QJsonObject &claims, const QByteArray &secret);

// Returns the token of header and claims with signature, base64url-encoded but otherwise as
// given, as its third part. Tests use it for unsigned and forged tokens.
QByteArray
compose(const QJsonObject &header, const QJsonObject &claims, const QByteArray &signature);

// Returns a JWKS document, {"keys": [...]}, that contains keys.
QByteArray keySetJson(const QList<QJsonObject> &keys);

} // namespace TestJwt

} // namespace lamplighter::test
