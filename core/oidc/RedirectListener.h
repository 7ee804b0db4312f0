#pragma once

#include "util/Result.h"
#include "util/TcpListener.h"

#include <QByteArray>
#include <QHash>
#include <QObject>
#include <QString>
#include <QUrl>
#include <chrono>

class QTcpSocket;
class QUrlQuery;

namespace lamplighter {

// The values that an authorization response must carry to end the sign-in.
struct AuthorizationExpectations {
    QByteArray state; // the state sent in the authorization request
    QString issuer;   // an "iss" parameter, when present, must equal it (RFC 9207)
    bool issuerRequired =
        false; // the provider advertised authorization_response_iss_parameter_supported
};

// The one-shot loopback HTTP listener that receives the authorization response from the browser.
//
// It listens on 127.0.0.1 and a port that the system picks, with the redirect URI
// http://127.0.0.1:<port>/callback. The URI names the IP literal and not "localhost" by default,
// as RFC 8252 recommends for native apps. Some providers accept only "localhost", so listen()
// can name it instead. It then also listens on ::1 on the
// same port, because a browser may resolve "localhost" to either address. The listener reads one
// request per connection, responds and closes the connection. Only a GET of /callback with the
// expected state ends the flow, with a code or with the provider's error. Any other request gets
// 400, 404 or 405 and the listener keeps waiting. After the flow ends it stops listening at once.
class RedirectListener : public QObject {
    Q_OBJECT
public:
    explicit RedirectListener(AuthorizationExpectations expectations, QObject *parent = nullptr);
    ~RedirectListener() override;

    // The host names that a redirect URI may use.
    enum class RedirectHost { Loopback4, Localhost };

    // Starts listening on 127.0.0.1 on a port that the system picks, and with
    // RedirectHost::Localhost on ::1 on the same port as well, when the system has IPv6.
    Status listen(RedirectHost host = RedirectHost::Loopback4);
    // Stops listening and drops the open connections; finished() is not emitted.
    void close();

    bool isListening() const { return m_listener.isListening(); }
    // Returns true when listen() with RedirectHost::Localhost also bound ::1.
    bool isListeningOnIpv6() const { return m_ipv6Listener.isListening(); }
    quint16 port() const { return m_listener.port(); }
    // http://127.0.0.1:<port>/callback, or http://localhost:<port>/callback; empty before
    // listen(), and kept after close().
    QUrl redirectUri() const { return m_redirectUri; }

    bool isFinished() const { return m_finished; }
    bool failed() const { return !m_result.ok(); }
    Error error() const { return m_result.ok() ? Error{} : m_result.error(); }
    // The authorization code; empty unless the flow ended with one.
    QByteArray code() const { return m_result.ok() ? m_result.value() : QByteArray(); }

    // Maximum size of a request line and its headers.
    static constexpr qsizetype maxRequestHeadBytes = 16 * 1024;
    // Maximum number of connections open at once; further ones are closed at once. Browsers open
    // a few connections ahead of use, so the limit is well above one.
    static constexpr int maxConnections = 16;
    // The time after which a connection that has not sent a whole request head is closed, so
    // that connections left open by a browser or another local program cannot use up the limit.
    static constexpr std::chrono::milliseconds defaultConnectionTimeout{30'000};
    // Sets the timeout for the connections accepted after the call.
    void setConnectionTimeout(std::chrono::milliseconds timeout) { m_connectionTimeout = timeout; }

Q_SIGNALS:
    // Emitted once, after the response page was sent to the browser that ended the flow.
    void finished();

private:
    // The HTTP response to one request and, for the request that ends the flow, the result of
    // the flow.
    struct Response {
        int status = 400;
        QString text;
        bool endsFlow = false;
        Result<QByteArray> result{QByteArray()};
    };

    void adoptConnection(int descriptor);
    void readRequest(QTcpSocket *socket);
    Response handleRequestHead(const QByteArray &head) const;
    Response handleCallback(const QUrlQuery &query) const;
    void sendResponse(QTcpSocket *socket, const Response &response);
    void endFlow(Result<QByteArray> result);

    AuthorizationExpectations m_expectations;
    // TcpListener and not QTcpServer, which in Qt 6.4 stops accepting for good after running out
    // of descriptors once, so that the sign-in would wait until it times out.
    TcpListener m_listener;     // on 127.0.0.1
    TcpListener m_ipv6Listener; // on ::1, for a redirect URI that names localhost
    QUrl m_redirectUri;
    QHash<QTcpSocket *, QByteArray> m_requestHeads; // connections still waiting for a response
    Result<QByteArray> m_result{QByteArray()};
    bool m_finished = false;
    std::chrono::milliseconds m_connectionTimeout = defaultConnectionTimeout;
};

} // namespace lamplighter
