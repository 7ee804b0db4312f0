#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QList>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <vector>

namespace lamplighter {

struct HttpHeader {
    QByteArray name;
    QByteArray value;
};

// A header field as views of bytes held elsewhere, for a head written without an HttpHead.
struct HttpFieldView {
    QByteArrayView name;
    QByteArrayView value;
};

namespace detail {

// Writes a start line and the fields, HttpHeader or HttpFieldView elements, into one buffer
// sized up front, because a head is written for every request and response the proxy forwards.
template <typename Fields>
QByteArray serializeHead(std::initializer_list<QByteArrayView> startLine, const Fields &fields)
{
    qsizetype size = 2;
    for (QByteArrayView part : startLine)
        size += part.size();
    for (const auto &field : fields)
        size += QByteArrayView(field.name).size() + QByteArrayView(field.value).size() + 4;

    QByteArray text(size, Qt::Uninitialized);
    char *out = text.data();
    const auto put = [&out](QByteArrayView part) {
        if (part.isEmpty())
            return; // memcpy must not see the null data pointer of an empty array
        std::memcpy(out, part.data(), size_t(part.size()));
        out += part.size();
    };
    for (QByteArrayView part : startLine)
        put(part);
    for (const auto &field : fields) {
        put(field.name);
        put(": ");
        put(field.value);
        put("\r\n");
    }
    put("\r\n");
    return text;
}

} // namespace detail

// Writes an HTTP/1.1 response head, from the status line to the empty line, with `fields`, a
// range of HttpHeader or HttpFieldView elements.
template <typename Fields>
QByteArray serializeResponseHead(int statusCode, QByteArrayView reasonPhrase, const Fields &fields)
{
    char code[16];
    const auto converted = std::to_chars(std::begin(code), std::end(code), statusCode);
    return detail::serializeHead(
        {"HTTP/1.1 ", QByteArrayView(code, converted.ptr - code), " ", reasonPhrase, "\r\n"},
        fields);
}

// Framing of an HTTP/1.x message body (RFC 9112, section 6).
enum class HttpBodyFraming {
    None,
    ContentLength,
    Chunked,
    UntilClose, // a response without length that ends when the server closes the connection
};

// The start line and header fields of one HTTP/1.x request or response. Header names keep the
// case they arrived in. Every lookup ignores case.
struct HttpHead {
    QByteArray method;       // requests only
    QByteArray target;       // requests only, as sent: origin-form path and query
    int statusCode = 0;      // responses only
    QByteArray reasonPhrase; // responses only
    int versionMinor = 1;    // HTTP/1.<versionMinor>
    std::vector<HttpHeader> headers;
    HttpBodyFraming framing = HttpBodyFraming::None;
    qint64 contentLength = 0; // valid when framing is ContentLength
    bool keepAlive = true;

    bool contains(QByteArrayView name) const;
    // Returns the value of the first field with this name, or an empty array.
    QByteArray value(QByteArrayView name) const;
    QList<QByteArray> values(QByteArrayView name) const;
    qsizetype count(QByteArrayView name) const;
    // Returns the comma-separated tokens of every field with this name, trimmed and lowercased.
    QList<QByteArray> tokens(QByteArrayView name) const;
    // Returns true when a field with this name lists `token` among its comma-separated tokens,
    // ignoring case. Unlike tokens(), it allocates nothing.
    bool hasToken(QByteArrayView name, QByteArrayView token) const;

    // Returns a copy of this head without its fields, from which a proxy builds the head it
    // forwards. It copies every member but `headers`, so a new member belongs there too.
    HttpHead withoutFields() const;

    void append(const QByteArray &name, const QByteArray &value);
    void removeAll(QByteArrayView name);
    // Removes every field whose lowercased name starts with `lowercasePrefix`.
    void removeAllWithPrefix(QByteArrayView lowercasePrefix);

    // Serializes the head as HTTP/1.1 text ending with the empty line.
    QByteArray serializeRequest() const;
    QByteArray serializeResponse() const;
};

// Field names and the tokens in values are ASCII (RFC 9110, section 5.6.2), so case is folded
// for ASCII letters only. These run for every field of every message, so they are inline.
constexpr char asciiLower(char c)
{
    return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

// Returns true when `text` starts with `prefix`, ignoring ASCII case.
inline bool startsWithIgnoringCase(QByteArrayView text, QByteArrayView prefix)
{
    if (text.size() < prefix.size())
        return false;
    for (qsizetype i = 0; i < prefix.size(); ++i) {
        if (asciiLower(text[i]) != asciiLower(prefix[i]))
            return false;
    }
    return true;
}

inline bool equalsIgnoringCase(QByteArrayView text, QByteArrayView other)
{
    // The size check first: most lookups pass many fields of other lengths.
    return text.size() == other.size() && startsWithIgnoringCase(text, other);
}

// Compares two field names, ignoring case as HTTP does.
inline bool fieldNameEquals(QByteArrayView name, QByteArrayView other)
{
    return equalsIgnoringCase(name, other);
}

// Frames `data` as one chunk of a chunked body. Empty data gives an empty result, because an
// empty chunk would end the body.
QByteArray encodeChunk(QByteArrayView data);

// The last chunk of a chunked body, with no trailer fields.
QByteArray lastChunk();

// Returns the reason phrase that Beast has for a status code (those of RFC 7231), such as
// "Not Found" for 404, or an empty phrase for a code it has none for.
QByteArray standardReasonPhrase(int statusCode);

} // namespace lamplighter
