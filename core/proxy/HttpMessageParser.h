#pragma once

#include "HttpHead.h"

#include <QString>
#include <http_parser.h>
#include <optional>

namespace lamplighter {

// A parse failure: a short reason and the HTTP status a server should respond with.
struct HttpParseError {
    int statusCode = 400;
    QString reason; // short, safe to log and to show: it never contains header values
};

// Parses one HTTP/1.x message at a time with libhttp-parser and keeps its head and the body
// bytes that have not been taken yet. Parsing stops at the end of each message, so bytes of a
// pipelined next message stay with the caller until startNextMessage().
//
// Besides http_parser's own checks, the parser rejects a head that exceeds the limits or has an
// invalid header name. It also rejects the framing shapes used for request smuggling: more than
// one Content-Length, Content-Length with Transfer-Encoding, and any Transfer-Encoding other
// than a single "chunked". An HTTP/1.1 request must have exactly one Host field. Trailer
// fields of chunked bodies are dropped.
class HttpMessageParser {
public:
    enum class Type { Request, Response };

    struct Limits {
        // Maximum bytes in the request target plus all header lines (name, value, ": " and CRLF).
        qsizetype maxHeadBytes = 64 * 1024;
        int maxHeaderCount = 100;
    };

    HttpMessageParser(Type type, Limits limits);
    Q_DISABLE_COPY_MOVE(HttpMessageParser)

    // Parses bytes of the current message and returns how many it consumed. Consumes nothing
    // once the message is complete or an error occurred.
    qsizetype parse(QByteArrayView data);
    // Tells the parser that the peer closed the connection, which completes a response body
    // delimited by the close and is an error anywhere else inside a message.
    void parseEndOfStream();
    // Resets for the next message on the same connection. A response to a HEAD request has no
    // body even when it has a Content-Length, so the caller must pass `responseHasNoBody`.
    void startNextMessage(bool responseHasNoBody = false);

    bool hasStarted() const { return m_started; }
    bool isHeadComplete() const { return m_headComplete; }
    bool isMessageComplete() const { return m_messageComplete; }
    const std::optional<HttpParseError> &error() const { return m_error; }
    const HttpHead &head() const { return m_head; }
    // Returns the body bytes parsed since the last call, with chunk framing removed.
    QByteArray takeBody();

private:
    struct Callbacks;

    bool addHeadBytes(qsizetype count);
    std::optional<HttpParseError> validateHead() const;
    HttpBodyFraming bodyFraming() const;
    void setErrorFromParser();

    Type m_type;
    Limits m_limits;
    http_parser m_parser;
    HttpHead m_head;
    // The fields of the previous message. A client or server on a kept-alive connection
    // usually repeats most of its fields, and a repeated one shares the earlier bytes instead of
    // allocating its own.
    std::vector<HttpHeader> m_previousHeaders;
    QByteArray m_body;
    std::optional<HttpParseError> m_error;
    qsizetype m_headBytes = 0;
    bool m_lastCallbackWasField = false;
    bool m_responseHasNoBody = false;
    bool m_started = false;
    bool m_headComplete = false;
    bool m_messageComplete = false;
};

} // namespace lamplighter
