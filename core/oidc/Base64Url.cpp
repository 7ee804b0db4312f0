#include "oidc/Base64Url.h"

namespace lamplighter {

namespace {

constexpr auto base64UrlOptions = QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals;

bool isBase64UrlCharacter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

} // namespace

QByteArray encodeBase64Url(const QByteArray &data)
{
    return data.toBase64(base64UrlOptions);
}

std::optional<QByteArray> decodeBase64Url(const QByteArray &text)
{
    for (const char c : text) {
        if (!isBase64UrlCharacter(c))
            return std::nullopt;
    }

    const auto decoded = QByteArray::fromBase64Encoding(
        text, base64UrlOptions | QByteArray::AbortOnBase64DecodingErrors);
    if (!decoded)
        return std::nullopt;

    // Comparing with the re-encoded bytes rejects a lone trailing character and non-zero unused
    // bits, so that each byte string has exactly one accepted encoding.
    if (encodeBase64Url(decoded.decoded) != text)
        return std::nullopt;
    return decoded.decoded;
}

} // namespace lamplighter
