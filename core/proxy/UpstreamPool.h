#pragma once

#include <QDeadlineTimer>
#include <QObject>
#include <QTimer>
#include <atomic>
#include <chrono>
#include <vector>

namespace lamplighter {

class UpstreamConnection;
struct ProxyLimits;
struct UpstreamCluster;

// The idle connections to the clusters that one thread keeps after their client connections
// closed. Every kubectl command is a new process with a new connection to the proxy, so without
// them every command would wait for a TCP and a TLS handshake with the API server.
//
// A connection is kept until a client connection takes it, its server closes it, it has been
// idle for the time given to keep(), or the pool is cleared. The pool keeps at most
// kMaxIdleConnections and closes the oldest to make room. Each request carries the person's
// token in its own head, so a kept connection carries no identity and any client of the thread
// may take it. Only idleCount() may be called from another thread.
//
// A server may close a kept connection while a request is on its way to it. ProxyConnection then
// sends a GET, HEAD or OPTIONS request without a body, other than an upgrade request, again on a
// new connection. Any other request fails with 502.
class UpstreamPool : public QObject {
public:
    static constexpr int kMaxIdleConnections = 16;

    explicit UpstreamPool(QObject *parent = nullptr);
    ~UpstreamPool() override;

    // Removes and returns an idle connection to the same server as `cluster`, under the same
    // cluster name and with the same CA certificates, that applies `limits`, or returns null.
    // The caller becomes its parent.
    UpstreamConnection *take(const UpstreamCluster &cluster, const ProxyLimits &limits);
    // Keeps `connection`, which must be reusable and have no other receivers of its signals,
    // for at most `idleTimeout`. The pool becomes its parent.
    void keep(UpstreamConnection *connection, std::chrono::milliseconds idleTimeout);
    // Closes every idle connection.
    void clear();

    int idleCount() const { return m_idleCount; }

private:
    struct Idle {
        UpstreamConnection *connection;
        QDeadlineTimer expiry;
    };

    void close(std::vector<Idle>::iterator idle);
    void closeExpired();
    void scheduleExpiry();

    std::vector<Idle> m_idle; // oldest first
    // A child, so that it moves with the pool to the thread the pool serves.
    QTimer m_expiryTimer;
    QDeadlineTimer m_expiryTimerFiresAt;
    std::atomic<int> m_idleCount = 0;
};

} // namespace lamplighter
