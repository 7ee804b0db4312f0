#include "HttpHead.h"

#include <algorithm>
// Boost 1.74's string_view header uses std::ostream without including it, so it comes first.
// clang-format off
#include <ostream>
// clang-format on
#include <boost/beast/http/status.hpp>

namespace lamplighter {

bool HttpHead::contains(QByteArrayView name) const
{
    return std::any_of(headers.begin(), headers.end(), [name](const HttpHeader &header) {
        return fieldNameEquals(header.name, name);
    });
}

QByteArray HttpHead::value(QByteArrayView name) const
{
    for (const HttpHeader &header : headers) {
        if (fieldNameEquals(header.name, name))
            return header.value;
    }
    return {};
}

QList<QByteArray> HttpHead::values(QByteArrayView name) const
{
    QList<QByteArray> result;
    for (const HttpHeader &header : headers) {
        if (fieldNameEquals(header.name, name))
            result.append(header.value);
    }
    return result;
}

qsizetype HttpHead::count(QByteArrayView name) const
{
    return std::count_if(headers.begin(), headers.end(), [name](const HttpHeader &header) {
        return fieldNameEquals(header.name, name);
    });
}

QList<QByteArray> HttpHead::tokens(QByteArrayView name) const
{
    QList<QByteArray> result;
    for (const QByteArray &value : values(name)) {
        for (const QByteArray &token : value.split(',')) {
            const QByteArray trimmed = token.trimmed().toLower();
            if (!trimmed.isEmpty())
                result.append(trimmed);
        }
    }
    return result;
}

bool HttpHead::hasToken(QByteArrayView name, QByteArrayView token) const
{
    for (const HttpHeader &header : headers) {
        if (!fieldNameEquals(header.name, name))
            continue;
        for (QByteArrayView rest(header.value); !rest.isEmpty();) {
            const qsizetype comma = rest.indexOf(',');
            const QByteArrayView candidate = (comma < 0 ? rest : rest.first(comma)).trimmed();
            if (equalsIgnoringCase(candidate, token))
                return true;
            rest = comma < 0 ? QByteArrayView() : rest.sliced(comma + 1);
        }
    }
    return false;
}

HttpHead HttpHead::withoutFields() const
{
    HttpHead copy;
    copy.method = method;
    copy.target = target;
    copy.statusCode = statusCode;
    copy.reasonPhrase = reasonPhrase;
    copy.versionMinor = versionMinor;
    copy.framing = framing;
    copy.contentLength = contentLength;
    copy.keepAlive = keepAlive;
    return copy;
}

void HttpHead::append(const QByteArray &name, const QByteArray &value)
{
    headers.push_back(HttpHeader{name, value});
}

void HttpHead::removeAll(QByteArrayView name)
{
    headers.erase(std::remove_if(headers.begin(),
                                 headers.end(),
                                 [name](const HttpHeader &header) {
                                     return fieldNameEquals(header.name, name);
                                 }),
                  headers.end());
}

void HttpHead::removeAllWithPrefix(QByteArrayView lowercasePrefix)
{
    headers.erase(std::remove_if(headers.begin(),
                                 headers.end(),
                                 [lowercasePrefix](const HttpHeader &header) {
                                     return startsWithIgnoringCase(header.name, lowercasePrefix);
                                 }),
                  headers.end());
}

QByteArray HttpHead::serializeRequest() const
{
    return detail::serializeHead({method, " ", target, " HTTP/1.1\r\n"}, headers);
}

QByteArray HttpHead::serializeResponse() const
{
    return serializeResponseHead(statusCode, reasonPhrase, headers);
}

QByteArray encodeChunk(QByteArrayView data)
{
    if (data.isEmpty())
        return {};
    QByteArray chunk = QByteArray::number(data.size(), 16) + "\r\n";
    chunk.reserve(chunk.size() + data.size() + 2);
    chunk.append(data);
    chunk.append("\r\n");
    return chunk;
}

QByteArray lastChunk()
{
    return QByteArrayLiteral("0\r\n\r\n");
}

QByteArray standardReasonPhrase(int statusCode)
{
    namespace http = boost::beast::http;
    const http::status status = http::int_to_status(static_cast<unsigned>(statusCode));
    if (status == http::status::unknown)
        return {}; // Beast's phrase would be "<unknown-status>"
    const boost::beast::string_view reason = http::obsolete_reason(status);
    return QByteArray(reason.data(), static_cast<qsizetype>(reason.size()));
}

} // namespace lamplighter
