#include "HttpMessageParser.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace lamplighter {

namespace {

const char *messageNoun(HttpMessageParser::Type type)
{
    return type == HttpMessageParser::Type::Request ? "request" : "response";
}

// Returns true when `name` is a token (RFC 9110, section 5.6.2), the only valid field name.
bool isToken(const QByteArray &name)
{
    // One lookup per byte, because every field name of every message passes through here.
    static constexpr auto tokenBytes = [] {
        std::array<bool, 256> table{};
        for (int c = '0'; c <= '9'; ++c)
            table[size_t(c)] = true;
        for (int c = 'a'; c <= 'z'; ++c) {
            table[size_t(c)] = true;
            table[size_t(c - 'a' + 'A')] = true;
        }
        for (char c : std::string_view("!#$%&'*+-.^_`|~"))
            table[size_t(static_cast<unsigned char>(c))] = true;
        return table;
    }();
    if (name.isEmpty())
        return false;
    return std::all_of(
        name.begin(), name.end(), [](char c) { return tokenBytes[static_cast<unsigned char>(c)]; });
}

// Returns true when `value` contains a control character other than a tab, which RFC 9110,
// section 5.5, does not allow in a field value. http_parser 2.9 checks only from the second byte.
bool hasControlCharacter(const QByteArray &value)
{
    return std::any_of(value.begin(), value.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return (byte < 0x20 && byte != '\t') || byte == 0x7f;
    });
}

// Returns `value` without the spaces and tabs around it, which RFC 9110, section 5.5, does not
// count as part of a field value. http_parser keeps those at the end. The bytes are shared
// unless there is something to remove, which is rare.
QByteArray withoutOuterWhitespace(const QByteArray &value)
{
    const auto isWhitespace = [](char c) {
        return c == ' ' || c == '\t';
    };
    QByteArrayView kept(value);
    while (!kept.isEmpty() && isWhitespace(kept.front()))
        kept = kept.sliced(1);
    while (!kept.isEmpty() && isWhitespace(kept.back()))
        kept.chop(1);
    return kept.size() == value.size() ? value : kept.toByteArray();
}

bool responseStatusHasNoBody(int statusCode)
{
    return statusCode / 100 == 1 || statusCode == 204 || statusCode == 304;
}

} // namespace

// Adapters from http_parser's C callbacks to the parser object stored in http_parser::data.
// A nonzero return stops http_parser_execute with a callback error.
struct HttpMessageParser::Callbacks {
    // A field usually arrives in one piece, and constructing costs less than appending. A piece
    // equal to `previous` shares its bytes, and is copied if more of the field follows.
    static void
    appendBytes(QByteArray &target, const char *at, size_t length, const QByteArray *previous)
    {
        const QByteArrayView piece(at, static_cast<qsizetype>(length));
        if (!target.isEmpty())
            target.append(piece);
        else if (previous && *previous == piece)
            target = *previous;
        else
            target = piece.toByteArray();
    }

    // Returns the field at the same position in the previous message, or null.
    static const HttpHeader *previousField(const HttpMessageParser &owner)
    {
        const size_t index = owner.m_head.headers.size() - 1;
        return index < owner.m_previousHeaders.size() ? &owner.m_previousHeaders[index] : nullptr;
    }

    static HttpMessageParser &self(http_parser *parser)
    {
        return *static_cast<HttpMessageParser *>(parser->data);
    }

    static int onMessageBegin(http_parser *parser)
    {
        self(parser).m_started = true;
        return 0;
    }

    static int onUrl(http_parser *parser, const char *at, size_t length)
    {
        HttpMessageParser &owner = self(parser);
        owner.m_head.target.append(at, static_cast<qsizetype>(length));
        return owner.addHeadBytes(static_cast<qsizetype>(length)) ? 0 : 1;
    }

    static int onStatus(http_parser *parser, const char *at, size_t length)
    {
        HttpMessageParser &owner = self(parser);
        owner.m_head.reasonPhrase.append(at, static_cast<qsizetype>(length));
        return owner.addHeadBytes(static_cast<qsizetype>(length)) ? 0 : 1;
    }

    static int onHeaderField(http_parser *parser, const char *at, size_t length)
    {
        HttpMessageParser &owner = self(parser);
        if (owner.m_headComplete)
            return 0; // a trailer field

        if (!owner.m_lastCallbackWasField) {
            owner.m_head.headers.push_back(HttpHeader{});
            if (static_cast<int>(owner.m_head.headers.size()) > owner.m_limits.maxHeaderCount) {
                owner.m_error = HttpParseError{431,
                                               QStringLiteral("%1 has more than %2 header fields")
                                                   .arg(QLatin1String(messageNoun(owner.m_type)))
                                                   .arg(owner.m_limits.maxHeaderCount)};
                return 1;
            }
            owner.m_lastCallbackWasField = true;
            if (!owner.addHeadBytes(4)) // ": " and CRLF
                return 1;
        }
        const HttpHeader *previous = previousField(owner);
        appendBytes(
            owner.m_head.headers.back().name, at, length, previous ? &previous->name : nullptr);
        return owner.addHeadBytes(static_cast<qsizetype>(length)) ? 0 : 1;
    }

    static int onHeaderValue(http_parser *parser, const char *at, size_t length)
    {
        HttpMessageParser &owner = self(parser);
        if (owner.m_headComplete)
            return 0; // a trailer field

        owner.m_lastCallbackWasField = false;
        const HttpHeader *previous = previousField(owner);
        appendBytes(
            owner.m_head.headers.back().value, at, length, previous ? &previous->value : nullptr);
        return owner.addHeadBytes(static_cast<qsizetype>(length)) ? 0 : 1;
    }

    // Returns 1 to tell http_parser that a response has no body.
    static int onHeadersComplete(http_parser *parser)
    {
        HttpMessageParser &owner = self(parser);
        HttpHead &head = owner.m_head;
        for (HttpHeader &header : head.headers)
            header.value = withoutOuterWhitespace(header.value);
        head.versionMinor = parser->http_minor;
        head.keepAlive = http_should_keep_alive(parser) != 0;
        if (owner.m_type == Type::Request)
            head.method = http_method_str(static_cast<http_method>(parser->method));
        else
            head.statusCode = static_cast<int>(parser->status_code);

        owner.m_error = owner.validateHead();
        if (owner.m_error)
            return -1;

        owner.m_headComplete = true;
        head.framing = owner.bodyFraming();
        head.contentLength = head.framing == HttpBodyFraming::ContentLength
                                 ? static_cast<qint64>(parser->content_length)
                                 : 0;
        return owner.m_type == Type::Response && head.framing == HttpBodyFraming::None ? 1 : 0;
    }

    static int onBody(http_parser *parser, const char *at, size_t length)
    {
        self(parser).m_body.append(at, static_cast<qsizetype>(length));
        return 0;
    }

    // Pauses the parser so that http_parser_execute returns right after this message.
    static int onMessageComplete(http_parser *parser)
    {
        self(parser).m_messageComplete = true;
        http_parser_pause(parser, 1);
        return 0;
    }

    static const http_parser_settings &settings()
    {
        static const http_parser_settings instance = [] {
            http_parser_settings value;
            http_parser_settings_init(&value);
            value.on_message_begin = onMessageBegin;
            value.on_url = onUrl;
            value.on_status = onStatus;
            value.on_header_field = onHeaderField;
            value.on_header_value = onHeaderValue;
            value.on_headers_complete = onHeadersComplete;
            value.on_body = onBody;
            value.on_message_complete = onMessageComplete;
            return value;
        }();
        return instance;
    }
};

HttpMessageParser::HttpMessageParser(Type type, Limits limits)
    : m_type(type)
    , m_limits(limits)
{
    startNextMessage();
}

qsizetype HttpMessageParser::parse(QByteArrayView data)
{
    if (data.isEmpty() || m_messageComplete || m_error)
        return 0;
    const size_t consumed = http_parser_execute(
        &m_parser, &Callbacks::settings(), data.data(), static_cast<size_t>(data.size()));
    setErrorFromParser();
    return static_cast<qsizetype>(consumed);
}

void HttpMessageParser::parseEndOfStream()
{
    if (m_messageComplete || m_error)
        return;
    http_parser_execute(&m_parser, &Callbacks::settings(), nullptr, 0);
    setErrorFromParser();
}

void HttpMessageParser::startNextMessage(bool responseHasNoBody)
{
    http_parser_init(&m_parser, m_type == Type::Request ? HTTP_REQUEST : HTTP_RESPONSE);
    m_parser.data = this;
    // The two field lists take turns and keep their capacity, so that a kept-alive connection
    // does not allocate a list anew for every message.
    std::vector<HttpHeader> headers = std::move(m_previousHeaders);
    headers.clear();
    m_previousHeaders = std::move(m_head.headers);
    m_head = HttpHead{};
    m_head.headers = std::move(headers);
    m_body.clear();
    m_error.reset();
    m_headBytes = 0;
    m_lastCallbackWasField = false;
    m_responseHasNoBody = responseHasNoBody;
    m_started = false;
    m_headComplete = false;
    m_messageComplete = false;
}

QByteArray HttpMessageParser::takeBody()
{
    QByteArray body;
    body.swap(m_body);
    return body;
}

bool HttpMessageParser::addHeadBytes(qsizetype count)
{
    m_headBytes += count;
    if (m_headBytes <= m_limits.maxHeadBytes)
        return true;
    m_error = HttpParseError{431,
                             QStringLiteral("%1 head is larger than %2 bytes")
                                 .arg(QLatin1String(messageNoun(m_type)))
                                 .arg(m_limits.maxHeadBytes)};
    return false;
}

// Rejects the shapes that let two HTTP implementations disagree on where a body ends
// (request smuggling, RFC 9112 section 6.3).
std::optional<HttpParseError> HttpMessageParser::validateHead() const
{
    const auto noun = [this] {
        return QLatin1String(messageNoun(m_type));
    };
    if (m_parser.http_major != 1)
        return HttpParseError{505, QStringLiteral("HTTP version is not 1.0 or 1.1")};
    // One pass checks the fields and counts those that frame the message, and Host, because
    // every message comes here.
    qsizetype contentLengths = 0;
    qsizetype transferEncodings = 0;
    qsizetype hosts = 0;
    for (const HttpHeader &header : m_head.headers) {
        // http_parser accepts "Name : value", which another server may read differently.
        if (!isToken(header.name))
            return HttpParseError{400, QStringLiteral("%1 has an invalid header name").arg(noun())};
        if (hasControlCharacter(header.value)) {
            return HttpParseError{
                400, QStringLiteral("%1 has a control character in a header value").arg(noun())};
        }
        if (fieldNameEquals(header.name, "Content-Length"))
            ++contentLengths;
        else if (fieldNameEquals(header.name, "Transfer-Encoding"))
            ++transferEncodings;
        else if (fieldNameEquals(header.name, "Host"))
            ++hosts;
    }
    // A status code has three digits (RFC 9110, section 15), and http_parser also takes "0".
    if (m_type == Type::Response && (m_head.statusCode < 100 || m_head.statusCode > 599))
        return HttpParseError{400, QStringLiteral("response has an invalid status code")};
    if (contentLengths > 1)
        return HttpParseError{400,
                              QStringLiteral("%1 has more than one Content-Length").arg(noun())};
    if (transferEncodings > 0 && contentLengths > 0) {
        return HttpParseError{
            400, QStringLiteral("%1 has both Content-Length and Transfer-Encoding").arg(noun())};
    }
    if (transferEncodings > 1 || (transferEncodings == 1 && m_head.tokens("Transfer-Encoding") !=
                                                                QList<QByteArray>{"chunked"})) {
        return HttpParseError{
            400, QStringLiteral("%1 has a Transfer-Encoding other than chunked").arg(noun())};
    }

    if (m_type == Type::Request) {
        if (hosts > 1)
            return HttpParseError{400, QStringLiteral("request has more than one Host")};
        if (hosts == 0 && m_parser.http_minor >= 1)
            return HttpParseError{400, QStringLiteral("HTTP/1.1 request has no Host")};
    }
    return std::nullopt;
}

HttpBodyFraming HttpMessageParser::bodyFraming() const
{
    if (m_type == Type::Response &&
        (m_responseHasNoBody || responseStatusHasNoBody(m_head.statusCode)))
        return HttpBodyFraming::None;
    if (m_parser.flags & F_CHUNKED)
        return HttpBodyFraming::Chunked;
    if (m_parser.flags & F_CONTENTLENGTH)
        return HttpBodyFraming::ContentLength;
    return m_type == Type::Request ? HttpBodyFraming::None : HttpBodyFraming::UntilClose;
}

void HttpMessageParser::setErrorFromParser()
{
    const http_errno code = HTTP_PARSER_ERRNO(&m_parser);
    if (code == HPE_OK || code == HPE_PAUSED || m_error)
        return;

    const QString description = QLatin1String(http_errno_description(code));
    if (code == HPE_HEADER_OVERFLOW) {
        m_error = HttpParseError{
            431, QStringLiteral("%1 head is too large").arg(QLatin1String(messageNoun(m_type)))};
        return;
    }
    m_error = HttpParseError{
        400,
        QStringLiteral("invalid HTTP %1: %2").arg(QLatin1String(messageNoun(m_type)), description)};
}

} // namespace lamplighter
