#pragma once

#include "proxy/HttpHead.h"
#include "proxy/HttpMessageParser.h"

#include <QList>
#include <QObject>
#include <QSslCertificate>
#include <QSslSocket>
#include <optional>

// Returns the field names of `head` in their order.
QList<QByteArray> headerNames(const lamplighter::HttpHead &head);

// A response as the test client received it.
struct TestResponse {
    lamplighter::HttpHead head;
    QByteArray body;
};

// An HTTPS client for proxy tests that sends raw request bytes, so that tests can send
// malformed and pipelined requests, and parses the responses as they arrive.
class TestHttpClient : public QObject {
    Q_OBJECT
public:
    explicit TestHttpClient(const QSslCertificate &trustedCertificate, QObject *parent = nullptr);
    ~TestHttpClient() override;

    // Connects to 127.0.0.1:port and waits for the TLS handshake.
    bool connectToProxy(quint16 port);
    void send(const QByteArray &bytes);

    // Waits for the next complete response and removes it from the queue.
    std::optional<TestResponse> waitForResponse(int timeoutMs = 10000);
    // Waits until the body of the response in progress contains `text`.
    bool waitForPartialBody(const QByteArray &text, int timeoutMs = 10000);
    QByteArray partialBody() const { return m_partialBody; }
    qint64 bodyBytesReceived() const { return m_bodyBytesReceived; }
    bool waitForDisconnected(int timeoutMs = 10000);
    bool isConnected() const;

    // A paused client reads nothing, so the proxy's writes back up. The socket buffers at most
    // 64 KiB.
    void setReadingPaused(bool paused);
    // Keeps only the count of body bytes, not the bytes, for very large responses.
    void setDiscardingBody(bool discarding) { m_discardingBody = discarding; }

    // Builds a request with the Host the proxy expects and, unless `sessionKey` is empty, the
    // session key as bearer token. `extraHeaders` are complete "Name: value" lines.
    static QByteArray request(const QByteArray &method,
                              const QByteArray &target,
                              quint16 port,
                              const QByteArray &sessionKey,
                              const QList<QByteArray> &extraHeaders = {},
                              const QByteArray &body = {});

private:
    void readResponses();

    QSslSocket m_socket;
    lamplighter::HttpMessageParser m_parser;
    QByteArray m_unparsed;
    QByteArray m_partialBody;
    qint64 m_bodyBytesReceived = 0;
    QList<TestResponse> m_responses;
    bool m_readingPaused = false;
    bool m_discardingBody = false;
};
