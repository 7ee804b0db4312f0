#pragma once

#include "util/Result.h"

#include <QHostAddress>
#include <QMutex>
#include <QObject>
#include <atomic>
#include <memory>
#include <vector>

class QThread;

namespace lamplighter {

class RequestGate;
class SharedProxySettings;
class TcpListener;
class TlsContext;
class TlsSocket;

// A TLS listener whose connections become ProxyConnections once their handshake succeeds. It
// bounds the handshakes in progress and the open connections with the settings' limits, and
// pauses accepting rather than queueing more handshakes. The local proxy and the cluster proxy
// share it and differ in their RequestGate.
//
// The connections run on this object's thread, or on worker threads (setWorkerThreads()), each
// connection on the worker that has the fewest. The listener runs on the first worker's thread.
// Call the functions of this class on this object's thread.
class ProxyServer : public QObject {
    Q_OBJECT
public:
    ProxyServer(std::shared_ptr<const SharedProxySettings> settings,
                std::shared_ptr<RequestGate> gate,
                QObject *parent = nullptr);
    ~ProxyServer() override;

    // Sets the number of threads that the connections run on. 0 keeps them on this object's
    // thread. With worker threads, the gate and the settings' callbacks are called on the
    // workers. Call it before listen().
    void setWorkerThreads(int count);
    int workerThreads() const { return int(m_threads.size()); }
    // Sets the context of connections accepted afterwards: the server certificate and key.
    void setTlsContext(std::shared_ptr<const TlsContext> context);
    // Starts listening. `description` names the server in the error message, which also
    // suggests what to do.
    Status listen(const QHostAddress &address, quint16 port, const QString &description);
    bool isListening() const;
    quint16 port() const;
    // Aborts every open connection, tunnels included, and every handshake in progress, and
    // returns when every worker has done so.
    void abortConnections();
    // Stops listening and aborts every connection.
    void close();
    // The connections to clusters kept open for the next client (UpstreamPool), on all workers.
    int idleUpstreamConnections() const;

private:
    class Worker;

    std::shared_ptr<const TlsContext> tlsContext() const;
    TcpListener *newListener(QObject *parent);
    // These three run on the listener's thread.
    void acceptConnection(int descriptor);
    Worker *leastLoadedWorker() const;
    void resumeAcceptingBelowLimit();
    void stopWorkers();

    std::shared_ptr<const SharedProxySettings> m_settings;
    std::shared_ptr<RequestGate> m_gate;
    // Set on this object's thread and read on the listener's.
    mutable QMutex m_tlsContextMutex;
    std::shared_ptr<const TlsContext> m_tlsContext;
    TcpListener *m_listener = nullptr; // a child of the first worker
    quint16 m_port = 0;                // while listening
    // One worker on this thread, or one on each of m_threads.
    std::vector<Worker *> m_workers;
    std::vector<QThread *> m_threads;
    // Changed by the workers as handshakes and connections end, read here to admit new ones.
    std::atomic<int> m_openConnections = 0;
    std::atomic<int> m_pendingHandshakes = 0;
    // Set by the listener's thread while it does not accept for the handshake limit, read by the
    // workers.
    std::atomic<bool> m_acceptingPaused = false;
};

// Returns the number of worker threads for the local proxy: two, or one on a machine with a
// single core. With two, requests use a second core, and the tray's own work on its thread does
// not hold up requests on open connections.
int defaultProxyWorkerThreads();

} // namespace lamplighter
