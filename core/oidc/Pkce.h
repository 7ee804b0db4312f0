#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QString>

namespace lamplighter {

// A PKCE code verifier and its S256 code challenge (RFC 7636). The plain method is never used.
class Pkce {
public:
    // Generates a verifier from 32 random bytes, which base64url encodes to 43 characters.
    // Fails only when OpenSSL's random generator does.
    static Result<Pkce> generate();

    // Derives the S256 challenge for verifier: base64url(SHA-256(verifier)), without padding.
    static QByteArray challengeFor(const QByteArray &verifier);

    // The value of the code_challenge_method parameter, always "S256".
    static QString method();

    QByteArray verifier() const { return m_verifier; }
    QByteArray challenge() const { return m_challenge; }

private:
    explicit Pkce(QByteArray verifier);

    QByteArray m_verifier;
    QByteArray m_challenge;
};

// Generates a value for the state or nonce parameter: base64url of 32 random bytes, 43
// characters. Fails only when OpenSSL's random generator does.
Result<QByteArray> generateRandomToken();

} // namespace lamplighter
