#pragma once

#include <QString>

namespace lamplighter {

// Returns the oldest error in OpenSSL's queue for this thread as text, or `fallback` when the
// queue is empty, and clears the queue so a later call does not see stale errors.
QString takeOpenSslError(const QString &fallback = QStringLiteral("unknown OpenSSL error"));

} // namespace lamplighter
