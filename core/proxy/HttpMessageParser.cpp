#include "HttpMessageParser.h"

#include <algorithm>
#include <charconv>
// Boost 1.74's string_view header uses std::ostream without including it, so it comes first.
// clang-format off
#include <ostream>
// clang-format on
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <limits>
#include <string_view>

namespace lamplighter {

namespace {

const char *messageNoun(HttpMessageParser::Type type)
{
    return type == HttpMessageParser::Type::Request ? "request" : "response";
}

// Returns true when `text` is a decimal number that fits a qint64, as a length must to be
// forwarded.
bool isLength(QByteArrayView text)
{
    qint64 value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return !text.isEmpty() && error == std::errc() && end == text.data() + text.size() &&
           text.front() != '-';
}

QByteArrayView view(boost::beast::string_view text)
{
    return QByteArrayView(text.data(), static_cast<qsizetype>(text.size()));
}

// Returns `piece` as a byte array that shares the bytes of `previous` when the two are equal.
QByteArray sharedOrCopied(QByteArrayView piece, const QByteArray *previous)
{
    if (previous && *previous == piece)
        return *previous;
    return piece.toByteArray();
}

// Returns the method's name without allocating for the methods that Kubernetes clients send.
QByteArray methodName(boost::beast::http::verb method, QByteArrayView text)
{
    using boost::beast::http::verb;
    switch (method) {
    case verb::get:
        return QByteArrayLiteral("GET");
    case verb::head:
        return QByteArrayLiteral("HEAD");
    case verb::post:
        return QByteArrayLiteral("POST");
    case verb::put:
        return QByteArrayLiteral("PUT");
    case verb::patch:
        return QByteArrayLiteral("PATCH");
    case verb::delete_:
        return QByteArrayLiteral("DELETE");
    case verb::options:
        return QByteArrayLiteral("OPTIONS");
    default:
        return text.toByteArray();
    }
}

// Returns the major version digit of a request line that ends in an HTTP version other than 1.x,
// such as '2' for "PRI * HTTP/2.0", or 0. The line may stop right after the version or its CR,
// because Beast checks the version before the line end.
char otherMajorVersion(QByteArrayView head)
{
    qsizetype lineEnd = 0;
    while (lineEnd < head.size() && head[lineEnd] != '\r' && head[lineEnd] != '\n')
        ++lineEnd;
    const QByteArrayView line = head.first(lineEnd);
    const QByteArrayView version = line.sliced(line.lastIndexOf(' ') + 1);
    const auto isDigit = [](char c) {
        return c >= '0' && c <= '9';
    };
    if (version.size() != 8 || !version.startsWith("HTTP/") || !isDigit(version[5]) ||
        version[6] != '.' || !isDigit(version[7]) || version[5] == '1')
        return 0;
    return version[5];
}

// The error with which a callback stops Beast after it stored its own reason in the owner.
boost::system::error_code stoppedByCallback()
{
    return boost::beast::http::error::bad_field;
}

} // namespace

// Beast's parser for one message, which passes what it parses to the owner.
template <bool isRequest>
class HttpMessageParser::BeastParser final : public boost::beast::http::basic_parser<isRequest> {
public:
    using error_code = boost::system::error_code;
    using string_view = boost::beast::string_view;

    BeastParser(HttpMessageParser &owner, bool skipBody)
        : m_owner(owner)
    {
        // feed() sets the head limit before each call. A body passes through in pieces, so its
        // size needs no limit. boost::none would mean none, but Boost 1.74 compares each
        // Content-Length with the empty optional and rejects it, so the largest value is used.
        this->body_limit(std::numeric_limits<std::uint64_t>::max());
        // Parses the body right after the head, in the same call.
        this->eager(true);
        this->skip(skipBody);
    }

private:
    void on_request_impl(boost::beast::http::verb method,
                         string_view methodText,
                         string_view target,
                         int version,
                         error_code &) override
    {
        m_owner.setStartLine(methodName(method, view(methodText)), view(target), version);
    }

    void on_response_impl(int statusCode, string_view reason, int version, error_code &) override
    {
        m_owner.setStatusLine(statusCode, view(reason), version);
    }

    void on_field_impl(boost::beast::http::field,
                       string_view name,
                       string_view value,
                       error_code &ec) override
    {
        if (!m_owner.addField(view(name), view(value)))
            ec = stoppedByCallback();
    }

    void on_header_impl(error_code &ec) override
    {
        HttpBodyFraming framing = HttpBodyFraming::None;
        if (this->chunked())
            framing = HttpBodyFraming::Chunked;
        else if (this->content_length())
            framing = HttpBodyFraming::ContentLength;
        else if (this->need_eof())
            framing = HttpBodyFraming::UntilClose;
        // A response without a body may still name a length, which does not count then.
        if (!isRequest && (this->is_done() || this->skip()))
            framing = HttpBodyFraming::None;
        const qint64 length = framing == HttpBodyFraming::ContentLength
                                  ? static_cast<qint64>(*this->content_length())
                                  : 0;
        if (!m_owner.completeHead(framing, length, this->keep_alive()))
            ec = stoppedByCallback();
    }

    void on_body_init_impl(const boost::optional<std::uint64_t> &, error_code &) override {}

    std::size_t on_body_impl(string_view body, error_code &) override
    {
        m_owner.m_body.append(view(body));
        return body.size();
    }

    void on_chunk_header_impl(std::uint64_t, string_view, error_code &) override {}

    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code &) override
    {
        m_owner.m_body.append(view(body));
        return body.size();
    }

    void on_finish_impl(error_code &) override { m_owner.m_messageComplete = true; }

    HttpMessageParser &m_owner;
};

// Beast's parser types differ for requests and responses, and a parser parses one message, so
// each message gets a new one of the owner's type.
struct HttpMessageParser::Engine {
    std::optional<BeastParser<true>> request;
    std::optional<BeastParser<false>> response;

    template <typename Function>
    auto visit(Function function)
    {
        return request ? function(*request) : function(*response);
    }
};

HttpMessageParser::HttpMessageParser(Type type, Limits limits)
    : m_type(type)
    , m_limits(limits)
    , m_engine(std::make_unique<Engine>())
{
    startNextMessage();
}

HttpMessageParser::~HttpMessageParser() = default;

qsizetype HttpMessageParser::parse(QByteArrayView data)
{
    if (data.isEmpty() || m_messageComplete || m_error)
        return 0;
    // RFC 9112, section 2.2: a server should ignore empty lines before a request line, which
    // some clients send after a body.
    qsizetype skipped = 0;
    if (m_type == Type::Request && !m_started) {
        while (skipped < data.size() && (data[skipped] == '\r' || data[skipped] == '\n'))
            ++skipped;
        data = data.sliced(skipped);
        if (data.isEmpty())
            return skipped;
    }
    m_started = true;
    bool needMore = false;
    if (m_held.isEmpty()) {
        const qsizetype consumed = feed(data, &needMore);
        if (!needMore)
            return m_error ? 0 : skipped + consumed;
        m_held = data.sliced(consumed).toByteArray();
        checkHeldSize();
        return m_error ? 0 : skipped + data.size();
    }

    // The held bytes come first. Beast could not parse them before, so the message goes on past
    // them, and what it consumes covers all of them. Appending keeps a head that comes in many
    // small pieces from being copied once per piece.
    const qsizetype heldBefore = m_held.size();
    m_held.append(data);
    const qsizetype consumed = feed(m_held, &needMore);
    if (needMore) {
        m_held.remove(0, consumed);
        checkHeldSize();
        return m_error ? 0 : skipped + data.size();
    }
    m_held.clear();
    if (m_error || consumed >= heldBefore)
        return consumed - std::min(consumed, heldBefore);
    m_error = HttpParseError{400,
                             QStringLiteral("%1 ended before the bytes kept from earlier reads")
                                 .arg(QLatin1String(messageNoun(m_type)))};
    return 0;
}

// Passes `data` to Beast and returns the bytes it consumed. Sets `needMore` when Beast needs
// more bytes to go on with those it did not consume.
qsizetype HttpMessageParser::feed(QByteArrayView data, bool *needMore)
{
    const bool inHead = !m_headComplete;
    boost::system::error_code ec;
    const std::size_t consumed = m_engine->visit([&](auto &parser) {
        // Beast counts its head limit from where each call starts, and keeps the fields of a
        // head that is not complete yet, so the limit shrinks by what earlier calls took.
        if (inHead) {
            parser.header_limit(static_cast<std::uint32_t>(
                std::min<qsizetype>(m_limits.maxHeadBytes - m_headBytesTaken,
                                    std::numeric_limits<std::uint32_t>::max())));
        }
        return parser.put(
            boost::asio::const_buffer(data.data(), static_cast<std::size_t>(data.size())), ec);
    });
    *needMore = ec == boost::beast::http::error::need_more;
    // RFC 9110, section 15.6.6: 505 is the status for a major version the server does not speak.
    // Beast stops with bad_version at the start line, which is then at the start of `data`.
    const char otherMajor = ec == boost::beast::http::error::bad_version && m_type == Type::Request
                                ? otherMajorVersion(data)
                                : 0;
    if (otherMajor != 0 && !m_error) {
        m_error = HttpParseError{505,
                                 QStringLiteral("request uses HTTP/%1, and only HTTP/1.1 and "
                                                "HTTP/1.0 are supported")
                                     .arg(QLatin1Char(otherMajor))};
    } else if (ec && !*needMore && !m_error) {
        m_error = errorFromBeast(ec.message(), ec == boost::beast::http::error::header_limit);
    }
    if (inHead && !m_headComplete)
        m_headBytesTaken += static_cast<qsizetype>(consumed);
    return m_error ? 0 : static_cast<qsizetype>(consumed);
}

// Fails the message when the held bytes outgrow the limit: a head, or a chunk size line or
// trailer section, that goes on past it.
void HttpMessageParser::checkHeldSize()
{
    const qsizetype limit =
        m_headComplete ? m_limits.maxHeadBytes : m_limits.maxHeadBytes - m_headBytesTaken;
    if (m_held.size() <= limit)
        return;
    m_error =
        m_headComplete
            ? HttpParseError{400,
                             QStringLiteral(
                                 "%1 has a chunk line or trailer section longer than %2 bytes")
                                 .arg(QLatin1String(messageNoun(m_type)))
                                 .arg(m_limits.maxHeadBytes)}
            : errorFromBeast({}, true);
    m_held.clear();
}

void HttpMessageParser::parseEndOfStream()
{
    if (m_messageComplete || m_error)
        return;
    boost::system::error_code ec;
    m_engine->visit([&](auto &parser) {
        // A stream that ends before a message starts leaves no error: the caller knows whether
        // it expected one.
        if (parser.got_some())
            parser.put_eof(ec);
    });
    // Beast never saw the held bytes complete, so the message is cut off inside them.
    if (!ec && !m_held.isEmpty())
        ec = boost::beast::http::error::partial_message;
    if (ec)
        m_error = errorFromBeast(ec.message(), false);
}

void HttpMessageParser::startNextMessage(bool responseHasNoBody)
{
    if (m_type == Type::Request)
        m_engine->request.emplace(*this, false);
    else
        m_engine->response.emplace(*this, responseHasNoBody);
    // The two field lists take turns and keep their capacity, so that a kept-alive connection
    // does not allocate a list anew for every message.
    std::vector<HttpHeader> headers = std::move(m_previousHeaders);
    headers.clear();
    m_previousReasonPhrase = m_head.reasonPhrase;
    m_previousHeaders = std::move(m_head.headers);
    m_head = HttpHead{};
    m_head.headers = std::move(headers);
    m_body.clear();
    m_held.clear();
    m_headBytesTaken = 0;
    m_error.reset();
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

void HttpMessageParser::setStartLine(QByteArray method, QByteArrayView target, int version)
{
    m_head.method = std::move(method);
    m_head.target = target.toByteArray();
    // Beast gives the version as ten times the major version plus the minor one, and rejects
    // any but HTTP/1.0 and HTTP/1.1.
    m_head.versionMinor = version % 10;
}

void HttpMessageParser::setStatusLine(int statusCode, QByteArrayView reasonPhrase, int version)
{
    m_head.statusCode = statusCode;
    m_head.reasonPhrase = sharedOrCopied(reasonPhrase, &m_previousReasonPhrase);
    m_head.versionMinor = version % 10;
}

// Adds a field of the head. Trailer fields of a chunked body come here too, and are dropped.
// Returns false when the head has too many fields.
bool HttpMessageParser::addField(QByteArrayView name, QByteArrayView value)
{
    if (m_headComplete)
        return true;
    if (static_cast<int>(m_head.headers.size()) >= m_limits.maxHeaderCount) {
        m_error = HttpParseError{431,
                                 QStringLiteral("%1 has more than %2 header fields")
                                     .arg(QLatin1String(messageNoun(m_type)))
                                     .arg(m_limits.maxHeaderCount)};
        return false;
    }
    const size_t index = m_head.headers.size();
    const HttpHeader *previous =
        index < m_previousHeaders.size() ? &m_previousHeaders[index] : nullptr;
    m_head.headers.push_back(
        HttpHeader{sharedOrCopied(name, previous ? &previous->name : nullptr),
                   sharedOrCopied(value, previous ? &previous->value : nullptr)});
    return true;
}

// Checks the complete head and records how its body is framed. Returns false when the head is
// invalid.
bool HttpMessageParser::completeHead(HttpBodyFraming framing, qint64 contentLength, bool keepAlive)
{
    m_error = validateHead();
    if (m_error)
        return false;
    m_headComplete = true;
    m_head.framing = framing;
    m_head.contentLength = contentLength;
    m_head.keepAlive = keepAlive;
    return true;
}

// Rejects the shapes that let two HTTP implementations disagree on where a body ends
// (request smuggling, RFC 9112 section 6.3).
std::optional<HttpParseError> HttpMessageParser::validateHead() const
{
    const auto noun = [this] {
        return QLatin1String(messageNoun(m_type));
    };
    // Beast has checked that every name is a token and that no value has a control character
    // other than tab. One pass counts the fields that frame the message, and Host.
    qsizetype contentLengths = 0;
    qsizetype transferEncodings = 0;
    qsizetype hosts = 0;
    for (const HttpHeader &header : m_head.headers) {
        if (fieldNameEquals(header.name, "Content-Length")) {
            // Beast takes a list of equal lengths ("5, 5"), which some servers reject, and
            // lengths up to 2^64 - 1, which do not fit the proxy's qint64.
            if (!isLength(header.value)) {
                return HttpParseError{
                    400, QStringLiteral("%1 has an invalid Content-Length").arg(noun())};
            }
            ++contentLengths;
        } else if (fieldNameEquals(header.name, "Transfer-Encoding")) {
            ++transferEncodings;
        } else if (fieldNameEquals(header.name, "Host")) {
            ++hosts;
        }
    }
    // A status code has three digits (RFC 9110, section 15).
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
        if (hosts == 0 && m_head.versionMinor >= 1)
            return HttpParseError{400, QStringLiteral("HTTP/1.1 request has no Host")};
    }
    return std::nullopt;
}

HttpParseError HttpMessageParser::errorFromBeast(const std::string &message, bool headerLimit) const
{
    const QLatin1String noun(messageNoun(m_type));
    // NOTE: Beast 1.74 also reports its header limit when a folded (obs-fold) value outgrows its
    // 4 KiB buffer for unfolding, so such a head gets this 431 although it is smaller.
    if (headerLimit) {
        return HttpParseError{
            431,
            QStringLiteral("%1 head is larger than %2 bytes").arg(noun).arg(m_limits.maxHeadBytes)};
    }
    // Beast's messages name what was wrong, such as "bad Content-Length", never the bytes.
    return HttpParseError{
        400, QStringLiteral("invalid HTTP %1: %2").arg(noun, QString::fromStdString(message))};
}

} // namespace lamplighter
