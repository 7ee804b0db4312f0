#pragma once

#include "HttpMessageParser.h"
#include "KubernetesStatus.h"
#include "ProxyLimits.h"
#include "UpstreamCluster.h"
#include "tls/TlsContext.h"

#include <QObject>
#include <QTimer>

namespace lamplighter {

class TlsSocket;

// One HTTP/1.1 connection over TLS to a cluster's API server, carrying one request at a time.
// It connects on the first request, verifies the server against the cluster's CA certificates
// and parses each response as it arrives, so that a watch reaches the client event by event.
// After a 101 response to an upgrade request the connection becomes a tunnel that passes bytes
// unchanged in both directions until either side closes.
class UpstreamConnection : public QObject {
    Q_OBJECT
public:
    // `tlsContext` contains the cluster's CA certificates, or the reason they cannot be used,
    // which the first request then reports.
    UpstreamConnection(const UpstreamCluster &cluster,
                       const Result<std::shared_ptr<const TlsContext>> &tlsContext,
                       const ProxyLimits &limits,
                       QObject *parent = nullptr);
    ~UpstreamConnection() override;

    const UpstreamCluster &cluster() const { return m_cluster; }
    // Returns true when the limits that this connection applies from now on, to its responses
    // and its write queue, are those of `limits`.
    bool appliesLimits(const ProxyLimits &limits) const;
    // Returns true when no request is in progress and the connection has not failed or been
    // closed, so the next request can use it.
    bool isReusable() const;
    // Returns true when the failure that failed() reported came before any byte of the response
    // arrived, on a connection that had carried an earlier response. The server has then most
    // likely closed the connection as idle while the request was on its way, and never acted on it.
    bool failedBeforeResponseOnReuse() const { return m_failedBeforeResponseOnReuse; }

    // Starts a request with its serialized head, connecting first when needed. The response to a
    // HEAD request has no body, even when its headers announce one.
    void sendRequestHead(const QByteArray &head, bool isHeadRequest);
    // Starts an upgrade request. A 101 response to it emits upgraded(), and any other response
    // is read as usual.
    void sendUpgradeRequestHead(const QByteArray &head);
    // Sends body bytes that are already framed (as chunks when the request is chunked), or
    // tunnel bytes after upgraded().
    void sendRequestBody(const QByteArray &data);
    // Closes a tunnel once every queued byte has been sent, because the client has closed its
    // side. This object becomes a child of `owner`, which outlives the client's connection, and
    // it deletes itself when the server's side has closed or after `timeout`.
    void closeTunnelAfterWrites(std::chrono::milliseconds timeout, QObject *owner);
    // Returns true from the moment more than ProxyLimits::maxQueuedBytes wait to be sent until
    // half of them have left. writeQueueDrained() marks the end.
    bool isWriteQueueFull() const { return m_writeQueueFull; }

    // Stops or resumes reading the response or the tunnel, for backpressure from a slow client.
    void setReadingPaused(bool paused);
    void abort();

Q_SIGNALS:
    // Emitted for each interim (1xx) response and then for the final response head.
    void responseHeadReceived(const HttpHead &head);
    void responseBodyReceived(const QByteArray &data);
    // `reusable` is false when the server asked to close or the body ended with the connection.
    void responseFinished(bool reusable);
    // Emitted for a 101 response to an upgrade request. From then on the server's bytes arrive
    // through tunnelDataReceived() and the connection is never reused.
    void upgraded(const HttpHead &head);
    void tunnelDataReceived(const QByteArray &data);
    // Emitted once when the server has closed the tunnel and every byte it sent was emitted.
    void tunnelClosed();
    // Emitted once when connecting, TLS verification, the response or the tunnel fails. The
    // connection is closed afterwards.
    void failed(const KubernetesStatus &status, const QString &logReason);
    // Emitted once when the server closes the connection, or it fails, between requests.
    void closedWhileIdle();
    void writeQueueDrained();

private:
    void connectToServer();
    void write(const QByteArray &data);
    qint64 queuedBytes() const;
    void readResponse();
    bool handleParsedResponse();
    bool handleSwitchingProtocols();
    void readTunnel();
    void finishResponse();
    void onEncrypted();
    void onSocketError();
    void onDisconnected();
    void onConnectTimeout();
    void onBytesWritten();
    void fail(int code, const QString &message, const QString &logReason);
    QString serverForMessages() const;

    UpstreamCluster m_cluster;
    ProxyLimits m_limits;
    QString m_tlsContextError;
    TlsSocket *m_socket;
    QTimer m_connectTimer;
    HttpMessageParser m_parser;
    QByteArray m_unparsed;
    bool m_encrypted = false;
    bool m_closed = false;
    bool m_peerClosed = false;
    bool m_requestActive = false;
    bool m_carriedResponse = false; // a response has ended on this connection
    bool m_responseStarted = false; // bytes of the current request's response have arrived
    bool m_failedBeforeResponseOnReuse = false;
    bool m_isHeadRequest = false;
    bool m_isUpgradeRequest = false;
    bool m_tunnel = false;
    bool m_finalHeadEmitted = false;
    bool m_readingPaused = false;
    bool m_writeQueueFull = false;
};

} // namespace lamplighter
