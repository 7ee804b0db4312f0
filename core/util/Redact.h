#pragma once

#include <QByteArray>
#include <QString>

namespace lamplighter {

// Describes a secret for a log line without revealing any of it: "[secret, 43 bytes]" or
// "[no secret]". Use it wherever a token, code, verifier, state, key or cookie would appear.
QString describeSecret(const QByteArray &secret);

// Returns the header value fit for a log: the value itself, unless the header carries
// credentials (Authorization, Cookie, Set-Cookie, Proxy-Authorization, X-Forwarded-Id-Token),
// in which case only the scheme and the length remain.
QString redactHeaderValue(const QByteArray &name, const QByteArray &value);

// Returns the URL fit for a log, with the values of query items that carry secrets
// (code, state, nonce, ticket, token, id_token, refresh_token, access_token, code_verifier)
// replaced.
QString redactUrl(const QString &url);

} // namespace lamplighter
