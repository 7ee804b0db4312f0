#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QByteArrayView>
#include <QString>
#include <memory>
#include <openssl/types.h>
#include <vector>

namespace lamplighter {

// One public signing key of a JSON Web Key Set (RFC 7517), converted to an OpenSSL key.
struct JsonWebKey {
    QString keyId;                       // "kid"; empty when the JWK has none
    QString keyType;                     // "kty": "RSA" or "EC"
    QString algorithm;                   // "alg"; empty when the JWK has none
    QString curve;                       // "crv" of an EC key: "P-256", "P-384" or "P-521"
    std::shared_ptr<EVP_PKEY> publicKey; // never null
    // An OpenSSL context set up to verify signatures of `verifyAlgorithm` with publicKey, made on
    // first use: OpenSSL 3 spends more time setting one up than an RSA verification takes.
    mutable std::shared_ptr<EVP_PKEY_CTX> verifyContext;
    mutable const void *verifyAlgorithm = nullptr;
};

// A JWK that was left out of the set, and the reason for a log line or an error message.
struct SkippedJsonWebKey {
    QString keyId; // empty when the JWK has none
    QString reason;
};

// The public keys of a JSON Web Key Set document (RFC 7517, RFC 7518), as an issuer publishes
// them at its jwks_uri. Only RSA keys and EC keys on P-256, P-384 and P-521 are read.
// JWKs that are for encryption, of another key type, or invalid are skipped rather than failing
// the whole set, as RFC 7517, section 5 recommends. skippedKeys() lists them.
class JsonWebKeySet {
public:
    JsonWebKeySet() = default;

    // Parses a JWKS document. Returns an Error when the document is not JSON, has no "keys"
    // array, or an entry of "keys" is not an object.
    static Result<JsonWebKeySet> fromJson(const QByteArray &json);

    const std::vector<JsonWebKey> &keys() const { return m_keys; }
    const std::vector<SkippedJsonWebKey> &skippedKeys() const { return m_skippedKeys; }

    bool isEmpty() const { return m_keys.empty(); }
    qsizetype size() const { return qsizetype(m_keys.size()); }

    // Returns whether a usable key has this key id.
    bool containsKeyId(const QString &keyId) const;

    // Returns the usable keys with this key id, in document order. RFC 7517 allows several keys
    // to share a key id when their key types differ.
    std::vector<const JsonWebKey *> keysWithId(const QString &keyId) const;

    // Returns the reason the key with this id was skipped, or a null string when no skipped key
    // has this id.
    QString skipReason(const QString &keyId) const;

    // A JWS header that a verifier has read and matched to a key of this set. An issuer usually
    // signs all its tokens with one header, so remembering it spares reading it for each token.
    struct KnownHeader {
        QByteArray encoded;    // the header as tokens carry it, in base64url
        const void *algorithm; // the verifier's description of the header's "alg"
        std::size_t keyIndex;  // the key in keys() that verifies it
    };

    // Returns the remembered header with these encoded bytes, or nullptr.
    const KnownHeader *findKnownHeader(QByteArrayView encoded) const;

    // Remembers a header, forgetting the oldest when maximumKnownHeaders are remembered.
    void rememberHeader(KnownHeader header) const;

    static constexpr std::size_t maximumKnownHeaders = 8;

private:
    std::vector<JsonWebKey> m_keys;
    std::vector<SkippedJsonWebKey> m_skippedKeys;
    // Like JsonWebKey::verifyContext, changed by const verification: a key set is used by one
    // thread at a time.
    mutable std::vector<KnownHeader> m_knownHeaders;
};

} // namespace lamplighter
