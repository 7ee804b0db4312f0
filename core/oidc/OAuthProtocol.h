#pragma once

#include <QByteArray>
#include <QList>
#include <QNetworkReply>
#include <QPair>
#include <QString>

// Helpers for the OAuth 2.0 wire format that the sign-in and refresh jobs share.

namespace lamplighter {

using FormParameters = QList<QPair<QString, QString>>;

// Encodes parameters as application/x-www-form-urlencoded (RFC 6749, appendix B), for a request
// body or a URL query. Every byte outside the unreserved set is percent-encoded, "+" included,
// so that a receiver that decodes "+" as a space reads the value unchanged.
QByteArray encodeFormParameters(const FormParameters &parameters);

// Formats an OAuth error (RFC 6749, sections 4.1.2.1 and 5.2) as "invalid_grant (Refresh token
// expired)" for a message. Characters outside printable ASCII, the set RFC 6749 allows, become
// "?" so that a provider cannot inject line breaks, and each part is cut to 300 characters.
// The text is not HTML-escaped.
QString describeOAuthError(const QString &error, const QString &description);

// Tells whether a request that failed with error at the network level (no HTTP status) may
// succeed when tried again later: a refused connection, a lost connection, a failed name lookup
// or a timeout. TLS and protocol errors are not transient, because retrying does not fix them.
bool isTransientNetworkError(QNetworkReply::NetworkError error);

} // namespace lamplighter
