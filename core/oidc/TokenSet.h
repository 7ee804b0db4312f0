#pragma once

#include <QByteArray>
#include <QDateTime>
#include <QJsonDocument>
#include <QJsonObject>
#include <QString>

namespace lamplighter {

// Claims of an ID token whose signature and standard claims have been verified.
struct IdTokenClaims {
    QString issuer;
    QString subject;
    QDateTime expiresAt; // UTC, from "exp"
    QDateTime issuedAt;  // UTC, from "iat"; invalid when absent
    QByteArray payload;  // the JSON object of every claim, as sent

    // Parses payload into every claim. The cluster proxy reads single claims through ClaimSet
    // instead, which costs a fraction of this.
    QJsonObject all() const { return QJsonDocument::fromJson(payload).object(); }
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
