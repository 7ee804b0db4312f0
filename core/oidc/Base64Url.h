#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <optional>

namespace lamplighter {

// Encodes data as base64url without padding, the form JOSE uses (RFC 7515, section 2).
QByteArray encodeBase64Url(const QByteArray &data);

// Decodes base64url without padding (RFC 7515, section 2). Returns nothing when text contains
// padding or a character outside the base64url alphabet, or when it is not the canonical
// encoding: a length of 1 modulo 4, or unused bits that are not zero.
std::optional<QByteArray> decodeBase64Url(QByteArrayView text);

} // namespace lamplighter
