#pragma once

#include "HttpHead.h"
#include "util/Result.h"

#include <QByteArray>
#include <QByteArrayView>

namespace lamplighter {

// Generates a session key: 32 random bytes, base64url without padding, which clients send as
// their bearer token.
Result<QByteArray> generateSessionKey();

// Compares two secrets in time that depends only on their lengths, never on where they differ.
// Returns false when `expected` is empty.
bool constantTimeEquals(QByteArrayView expected, QByteArrayView presented);

enum class SessionKeyCheck {
    Accepted,
    Missing, // no Authorization header, another scheme, or an empty token
    Invalid, // a bearer token that is not the session key, or several Authorization headers
};

// Checks the request's "Authorization: Bearer <session key>" against `sessionKey`. As in
// kube-apiserver, the scheme matches case-insensitively and the value is trimmed.
SessionKeyCheck checkSessionKey(const HttpHead &request, const QByteArray &sessionKey);

} // namespace lamplighter
