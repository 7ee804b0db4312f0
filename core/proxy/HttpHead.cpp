#include "HttpHead.h"

#include <algorithm>

namespace lamplighter {

namespace {

bool nameEquals(const QByteArray &name, QByteArrayView other)
{
    return name.compare(other, Qt::CaseInsensitive) == 0;
}

void appendFields(QByteArray &text, const std::vector<HttpHeader> &headers)
{
    qsizetype size = text.size() + 2;
    for (const HttpHeader &header : headers)
        size += header.name.size() + header.value.size() + 4;
    text.reserve(size);
    for (const HttpHeader &header : headers) {
        text += header.name;
        text += ": ";
        text += header.value;
        text += "\r\n";
    }
    text += "\r\n";
}

} // namespace

bool HttpHead::contains(QByteArrayView name) const
{
    return count(name) > 0;
}

QByteArray HttpHead::value(QByteArrayView name) const
{
    for (const HttpHeader &header : headers) {
        if (nameEquals(header.name, name))
            return header.value;
    }
    return {};
}

QList<QByteArray> HttpHead::values(QByteArrayView name) const
{
    QList<QByteArray> result;
    for (const HttpHeader &header : headers) {
        if (nameEquals(header.name, name))
            result.append(header.value);
    }
    return result;
}

qsizetype HttpHead::count(QByteArrayView name) const
{
    return std::count_if(headers.begin(), headers.end(), [name](const HttpHeader &header) {
        return nameEquals(header.name, name);
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

void HttpHead::append(const QByteArray &name, const QByteArray &value)
{
    headers.push_back(HttpHeader{name, value});
}

void HttpHead::removeAll(QByteArrayView name)
{
    headers.erase(
        std::remove_if(headers.begin(),
                       headers.end(),
                       [name](const HttpHeader &header) { return nameEquals(header.name, name); }),
        headers.end());
}

void HttpHead::removeAllWithPrefix(QByteArrayView lowercasePrefix)
{
    headers.erase(std::remove_if(headers.begin(),
                                 headers.end(),
                                 [lowercasePrefix](const HttpHeader &header) {
                                     return header.name.size() >= lowercasePrefix.size() &&
                                            QByteArrayView(header.name)
                                                    .first(lowercasePrefix.size())
                                                    .compare(lowercasePrefix,
                                                             Qt::CaseInsensitive) == 0;
                                 }),
                  headers.end());
}

QByteArray HttpHead::serializeRequest() const
{
    QByteArray text = method + ' ' + target + " HTTP/1.1\r\n";
    appendFields(text, headers);
    return text;
}

QByteArray HttpHead::serializeResponse() const
{
    QByteArray text = "HTTP/1.1 " + QByteArray::number(statusCode) + ' ' + reasonPhrase + "\r\n";
    appendFields(text, headers);
    return text;
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

} // namespace lamplighter
