#pragma once

#include "HttpMessageParser.h"
#include "ProxyRoute.h"
#include "ProxySettings.h"
#include "RequestGate.h"

#include <QDeadlineTimer>
#include <QElapsedTimer>
#include <QObject>
#include <QPointer>
#include <QTimer>
#include <memory>

namespace lamplighter {

class KubernetesStatus;
class TlsSocket;
struct BrowserResponse;
class UpstreamConnection;
class UpstreamPool;
struct RequestAdmission;

// One client connection to the local proxy. It reads the client's requests one at a time and
// rejects each one or forwards it to its cluster. Requests to the same cluster share one
// upstream connection. Both bodies are streamed, never held whole, and a side that sends faster
// than the other receives is paused while more than ProxyLimits::maxQueuedBytes wait to be
// written. After a 101 response to an upgrade request (WebSocket or SPDY for exec, attach and
// port-forward) the connection becomes a tunnel: bytes pass unchanged in both directions, with
// the same bound, until either side closes.
class ProxyConnection : public QObject {
    Q_OBJECT
public:
    // Takes ownership of `client`, an encrypted socket. `gate` decides on every request. The
    // connection keeps the limits, the client TLS contexts and the responseStarted callback of
    // `settings`, and nothing else, so no copy of a token outlives a sign-out in it. It takes
    // its connections to the clusters from `pool` when it can, and leaves them there when it
    // closes. The pool must be on this thread. Without a pool, each connection to a cluster
    // lives as long as this object.
    ProxyConnection(TlsSocket *client,
                    const ProxySettings &settings,
                    std::shared_ptr<RequestGate> gate,
                    UpstreamPool *pool,
                    QObject *parent = nullptr);
    ~ProxyConnection() override;

    void abort();

Q_SIGNALS:
    // Emitted once the client connection has closed. The receiver may delete this object later.
    void closed();

private:
    // The request being handled and its response.
    struct Exchange {
        bool active = false;
        bool awaitingAdmission = false;
        QByteArray heldBody; // body bytes read before the admission
        QByteArray method;
        QByteArray target; // shares the bytes of the request head's target
        QString clusterName;
        QElapsedTimer elapsed;
        bool clientKeepAlive = true;
        bool clientSpeaksHttp11 = true;
        bool forwarding = false;
        bool upgradeRequested = false;
        bool requestChunked = false;
        // The head as sent to the cluster, kept only for a request that may be sent again.
        QByteArray resendableHead;
        bool requestComplete = false;
        bool responseStarted = false;
        bool responseComplete = false;
        HttpBodyFraming responseFraming = HttpBodyFraming::None;
        bool closeAfterResponse = false;
        int statusCode = 0;

        // The path for log lines, built only when a line is written.
        QString logPath() const { return targetPathForLog(target); }
    };

    void readClient();
    bool clientReadAllowed() const;
    bool handleParsedRequest();
    void startExchange();
    void onAdmission(const RequestAdmission &admission);
    void forwardBody(const QByteArray &body);
    void forwardRequest(const RequestAdmission &admission);
    void completeRequest();
    void rejectRequest(const KubernetesStatus &status, const QString &logReason, bool close);
    void rejectUnparsableRequest(int code, const QString &reason);
    void sendBrowserResponse(const BrowserResponse &response, const QString &logReason, bool close);

    void onResponseHead(const HttpHead &head);
    void onResponseBody(const QByteArray &data);
    void onResponseFinished(bool reusable);
    void onUpgraded(const HttpHead &head);
    void readTunnelFromClient();
    void onTunnelData(const QByteArray &data);
    void onTunnelClosed();
    void handOverTunnelOnClientClose();
    void logTunnelEnd(const QString &closedBy) const;
    void onUpstreamFailed(const KubernetesStatus &status, const QString &logReason);
    bool resendOnNewConnection(const QString &logReason);
    void sendRequestHead(const QByteArray &head);
    void finishExchange();
    void reportResponseStarted(int code, bool forwarded) const;

    UpstreamConnection *upstreamFor(const UpstreamCluster &cluster);
    void adoptUpstream(UpstreamConnection *connection);
    // Leaves a reusable connection to a cluster in the pool, and closes any other.
    void releaseUpstream();
    void dropUpstream();
    void writeToClient(const QByteArray &data);
    void pauseUpstreamWhileClientQueueFull();
    qint64 clientQueuedBytes() const;
    void onClientBytesWritten();
    void onClientDisconnected();
    void closeAfterWrites();
    // The wait that the connection's one timer bounds: for the rest of a request head, for the
    // client's next request, or, while closing, for the client to read the last bytes.
    enum class Deadline { None, RequestHead, Idle };
    void setDeadline(Deadline deadline);
    void onDeadlineTimer();
    void onHeaderTimeout();
    void onIdleTimeout();
    void logRejection(int code, const QString &reason) const;

    TlsSocket *m_client;
    const ProxyLimits m_limits;
    const std::shared_ptr<ClientTlsContexts> m_clientTlsContexts;
    const std::function<void(int code, bool forwarded, qint64 elapsedMs)> m_responseStarted;
    std::shared_ptr<RequestGate> m_gate;
    quint64 m_exchangeSerial = 0;
    bool m_admittingNow = false; // inside the gate's admit() call
    quint16 m_clientPort;
    HttpMessageParser m_parser;
    QByteArray m_unparsed;
    // Guarded, because the worker that owns the pool may delete it before this object.
    const QPointer<UpstreamPool> m_pool;
    UpstreamConnection *m_upstream = nullptr;
    Exchange m_exchange;
    Deadline m_deadline = Deadline::None;
    QDeadlineTimer m_deadlineAt;
    QTimer m_deadlineTimer;
    QDeadlineTimer m_deadlineTimerFiresAt;
    bool m_clientWriteQueueFull = false;
    bool m_tunnel = false;
    qint64 m_tunnelBytesToCluster = 0;
    qint64 m_tunnelBytesToClient = 0;
    bool m_closing = false;
    bool m_closed = false;
};

} // namespace lamplighter
