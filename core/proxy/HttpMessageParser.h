#pragma once

#include "HttpHead.h"

#include <QString>
#include <memory>
#include <optional>

namespace lamplighter {

// A parse failure: a short reason and the HTTP status a server should respond with.
struct HttpParseError {
    int statusCode = 400;
    QString reason; // short, safe to log and to show: it never contains header values
};

// Parses one HTTP/1.x message at a time with Boost.Beast's parser and keeps its head and the
// body bytes that have not been taken yet. Parsing stops at the end of each message, so bytes of
// a pipelined next message stay with the caller until startNextMessage(). Empty lines before a
// request are skipped.
//
// Beast rejects versions other than HTTP/1.0 and HTTP/1.1, field names that are not tokens and
// values with control characters. The parser also rejects a head over the limits. It rejects the
// framing shapes used for request smuggling too: more than one Content-Length, a Content-Length
// that is not a plain number below 2^63, Content-Length with Transfer-Encoding, and any
// Transfer-Encoding other than a single "chunked". An HTTP/1.1 request must have exactly one Host
// field. Trailer fields of chunked bodies are dropped.
class HttpMessageParser {
public:
    enum class Type { Request, Response };

    struct Limits {
        // Maximum bytes in the head: the start line and all header lines. A chunk size line of a
        // chunked body has the same limit.
        qsizetype maxHeadBytes = 64 * 1024;
        int maxHeaderCount = 100;
    };

    HttpMessageParser(Type type, Limits limits);
    ~HttpMessageParser();
    Q_DISABLE_COPY_MOVE(HttpMessageParser)

    // Parses bytes of the current message and returns how many it consumed. Until the message
    // is complete, that is all of them: a part that cannot be parsed yet, such as half a header
    // line, is kept until more bytes come. Consumes nothing once the message is complete or an
    // error occurred.
    qsizetype parse(QByteArrayView data);
    // Tells the parser that the peer closed the connection, which completes a response body
    // delimited by the close and is an error anywhere else inside a message.
    void parseEndOfStream();
    // Resets for the next message on the same connection. A response to a HEAD request has no
    // body even when it has a Content-Length, so the caller must pass `responseHasNoBody`.
    void startNextMessage(bool responseHasNoBody = false);

    bool isHeadComplete() const { return m_headComplete; }
    bool isMessageComplete() const { return m_messageComplete; }
    const std::optional<HttpParseError> &error() const { return m_error; }
    const HttpHead &head() const { return m_head; }
    // Returns the body bytes parsed since the last call, with chunk framing removed.
    QByteArray takeBody();

private:
    template <bool isRequest>
    class BeastParser;
    struct Engine;

    qsizetype feed(QByteArrayView data, bool *needMore);
    void checkHeldSize();
    void setStartLine(QByteArray method, QByteArrayView target, int version);
    void setStatusLine(int statusCode, QByteArrayView reasonPhrase, int version);
    bool addField(QByteArrayView name, QByteArrayView value);
    bool completeHead(HttpBodyFraming framing, qint64 contentLength, bool keepAlive);
    std::optional<HttpParseError> validateHead() const;
    HttpParseError errorFromBeast(const std::string &message, bool headerLimit) const;

    Type m_type;
    Limits m_limits;
    std::unique_ptr<Engine> m_engine;
    HttpHead m_head;
    // The fields of the previous message. A client or server on a kept-alive connection
    // usually repeats most of its fields, and a repeated one shares the earlier bytes instead of
    // allocating its own.
    std::vector<HttpHeader> m_previousHeaders;
    QByteArray m_previousReasonPhrase;
    QByteArray m_body;
    // Bytes of the current message that Beast could not parse yet, because an element such as a
    // header line or a chunk size line is not complete. They are parsed again with the next bytes.
    QByteArray m_held;
    // Bytes of the current head that Beast has taken, for the head limit.
    qsizetype m_headBytesTaken = 0;
    std::optional<HttpParseError> m_error;
    bool m_started = false; // a byte of the message other than a leading empty line has come
    bool m_headComplete = false;
    bool m_messageComplete = false;
};

} // namespace lamplighter
