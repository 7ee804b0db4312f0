#pragma once

#include <QByteArray>
#include <QDateTime>
#include <QJsonObject>
#include <QString>

namespace lamplighter {

// Claims of an ID token whose signature and standard claims have been verified.
struct IdTokenClaims {
    QString issuer;
    QString subject;
    QDateTime expiresAt; // UTC, from "exp"
    QDateTime issuedAt;  // UTC, from "iat"; invalid when absent
    QJsonObject all;     // every claim of the payload, as sent
};

// The tokens of one signed-in person, as received from the token endpoint.
struct TokenSet {
    QByteArray idToken;
    QByteArray refreshToken; // empty when the provider issued none
    QByteArray accessToken;
    IdTokenClaims claims; // of idToken

    bool isEmpty() const { return idToken.isEmpty(); }
};

} // namespace lamplighter
