#include "ProxyServer.h"

#include "Logging.h"
#include "ProxyConnection.h"
#include "ProxySettings.h"
#include "RequestGate.h"
#include "UpstreamPool.h"
#include "tls/EpollWatcher.h"
#include "tls/TlsSocket.h"
#include "util/TcpListener.h"

#include <QMutex>
#include <QThread>
#include <QTimer>
#include <algorithm>
#include <unistd.h>
#include <unordered_map>
#include <utility>

namespace lamplighter {

namespace {

// Runs `function` on the thread of `context` and returns when it has run.
template <typename Function>
void runOnThreadOf(QObject *context, Function function)
{
    const bool sameThread = context->thread() == QThread::currentThread();
    QMetaObject::invokeMethod(
        context, function, sameThread ? Qt::DirectConnection : Qt::BlockingQueuedConnection);
}

} // namespace

// The connections of one thread, from their TLS handshake to their close. Its functions run on
// its own thread. The listener's thread uses only `load`.
class ProxyServer::Worker : public QObject {
public:
    Worker(ProxyServer *server, std::shared_ptr<RequestGate> gate)
        : m_server(server)
        , m_gate(std::move(gate))
        , m_upstreamPool(new UpstreamPool(this))
    {}

    // The number of handshakes and connections on this worker. The listener counts one up when
    // it hands a connection over.
    std::atomic<int> load = 0;

    void startHandshake(qintptr descriptor,
                        std::shared_ptr<const TlsContext> context,
                        std::shared_ptr<const ProxySettings> settings)
    {
        // Created here, on the worker's thread, which it serves. The sockets of this thread,
        // upstream connections included, register with it when they first wait.
        if (!m_watcher)
            m_watcher = new EpollWatcher(this);
        auto *socket = new TlsSocket(descriptor, std::move(context), this);
        connect(socket, &TlsSocket::encrypted, this, [this, socket, settings] {
            endHandshake(socket, settings, QString());
        });
        connect(socket, &TlsSocket::disconnected, this, [this, socket, settings] {
            endHandshake(socket, settings, socket->errorString());
        });
        // Stopped when the handshake ends. Qt 6.4 stops a timer with a search of the thread's
        // active timers, so a timer left running for every recent connection slowed each one.
        auto *handshakeTimer = new QTimer(socket);
        handshakeTimer->setSingleShot(true);
        connect(handshakeTimer, &QTimer::timeout, this, [this, socket, settings] {
            endHandshake(socket, settings, QStringLiteral("timed out"));
        });
        handshakeTimer->start(settings->limits.clientHandshakeTimeout);
        m_handshaking.emplace(socket, handshakeTimer);
    }

    void abortConnections()
    {
        // Sockets whose handshake failed wait for their deletion as children of this object
        // too, so only the set shows which handshakes are still running.
        for (const auto &[handshaking, handshakeTimer] : std::exchange(m_handshaking, {})) {
            handshakeTimer->stop();
            handshaking->disconnect(this);
            handshaking->abort();
            handshaking->deleteLater();
            handshakeEnded();
            --load;
        }
        for (ProxyConnection *connection :
             findChildren<ProxyConnection *>(Qt::FindDirectChildrenOnly))
            connection->abort();
        m_upstreamPool->clear();
    }

    // Called from any thread.
    int idleUpstreamConnections() const { return m_upstreamPool->idleCount(); }

private:
    // Hands a connection whose handshake succeeded to a ProxyConnection, or drops it with
    // `failure`.
    void endHandshake(TlsSocket *socket,
                      const std::shared_ptr<const ProxySettings> &settings,
                      const QString &failure)
    {
        socket->disconnect(this);
        const auto handshake = m_handshaking.find(socket);
        Q_ASSERT(handshake != m_handshaking.end());
        // Deleted later, because its timeout may be what ended the handshake.
        handshake->second->disconnect(this);
        handshake->second->stop();
        handshake->second->deleteLater();
        m_handshaking.erase(handshake);
        handshakeEnded();
        if (socket->state() != TlsSocket::State::Encrypted) {
            qCDebug(lcProxy).noquote()
                << QStringLiteral("TLS handshake with client port %1 failed: %2")
                       .arg(socket->peerPort())
                       .arg(failure);
            socket->abort();
            socket->deleteLater();
            --load;
            return;
        }
        ++m_server->m_openConnections;
        auto *connection = new ProxyConnection(socket, *settings, m_gate, m_upstreamPool, this);
        connect(connection, &ProxyConnection::closed, this, [this, connection] {
            --m_server->m_openConnections;
            --load;
            connection->deleteLater();
        });
    }

    void handshakeEnded()
    {
        --m_server->m_pendingHandshakes;
        // Only a paused listener needs the call. Queued to the listener's thread, it would wake
        // that thread for every new connection.
        if (!m_server->m_acceptingPaused)
            return;
        // The call is direct when the listener runs on this thread, and queued otherwise.
        QMetaObject::invokeMethod(m_server->m_listener,
                                  [server = m_server] { server->resumeAcceptingBelowLimit(); });
    }

    ProxyServer *m_server;
    std::shared_ptr<RequestGate> m_gate;
    // The sockets in their TLS handshake, each with the timer that bounds it.
    std::unordered_map<TlsSocket *, QTimer *> m_handshaking;
    EpollWatcher *m_watcher = nullptr;
    // Created with the worker, so that other threads may read its count.
    UpstreamPool *const m_upstreamPool;
};

ProxyServer::ProxyServer(std::shared_ptr<const SharedProxySettings> settings,
                         std::shared_ptr<RequestGate> gate,
                         QObject *parent)
    : QObject(parent)
    , m_settings(std::move(settings))
    , m_gate(std::move(gate))
{
    setWorkerThreads(0);
}

ProxyServer::~ProxyServer()
{
    close();
    stopWorkers();
}

void ProxyServer::setWorkerThreads(int count)
{
    Q_ASSERT(!isListening());
    stopWorkers();
    if (count <= 0) {
        auto *worker = new Worker(this, m_gate);
        worker->setParent(this);
        m_workers.push_back(worker);
        m_listener = newListener(worker);
        return;
    }
    for (int i = 0; i < count; ++i) {
        auto *thread = new QThread;
        thread->setObjectName(QStringLiteral("proxy worker %1").arg(i + 1));
        auto *worker = new Worker(this, m_gate);
        // The listener moves with the first worker. On the owner's thread, which is the tray's
        // in the app, new connections would wait while that thread is busy, and each one would
        // wake two threads.
        if (i == 0)
            m_listener = newListener(worker);
        worker->moveToThread(thread);
        // QThread runs the deferred deletions of its objects after its event loop ends, so the
        // worker is deleted on its own thread.
        connect(thread, &QThread::finished, worker, &QObject::deleteLater);
        thread->start();
        m_workers.push_back(worker);
        m_threads.push_back(thread);
    }
}

void ProxyServer::stopWorkers()
{
    abortConnections();
    for (QThread *thread : m_threads) {
        thread->quit();
        thread->wait();
        delete thread;
    }
    if (m_threads.empty()) {
        for (Worker *worker : m_workers)
            delete worker;
    }
    m_threads.clear();
    m_workers.clear();
    m_listener = nullptr; // deleted with the first worker
}

void ProxyServer::setTlsContext(std::shared_ptr<const TlsContext> context)
{
    const QMutexLocker locker(&m_tlsContextMutex);
    m_tlsContext = std::move(context);
}

std::shared_ptr<const TlsContext> ProxyServer::tlsContext() const
{
    const QMutexLocker locker(&m_tlsContextMutex);
    return m_tlsContext;
}

Status ProxyServer::listen(const QHostAddress &address, quint16 port, const QString &description)
{
    Q_ASSERT(thread() == QThread::currentThread());
    if (!tlsContext())
        return Error{
            QStringLiteral("The %1 cannot listen without a TLS certificate.").arg(description)};
    if (isListening())
        return Error{
            QStringLiteral("The %1 is already listening on port %2.").arg(description).arg(m_port)};
    bool listening = false;
    QString failure;
    runOnThreadOf(m_listener, [&] {
        // Cleared before the first connection can come, because only this thread sets it.
        m_acceptingPaused = false;
        const Status status = m_listener->listen(address, port);
        listening = status.ok();
        if (listening)
            m_port = m_listener->port();
        else
            failure = status.errorMessage();
    });
    if (!listening) {
        return Error{QStringLiteral("The %1 could not listen on %2:%3: %4. Choose another port or "
                                    "stop the program that uses it.")
                         .arg(description, address.toString())
                         .arg(port)
                         .arg(failure)};
    }
    return Done{};
}

bool ProxyServer::isListening() const
{
    return m_port != 0;
}

quint16 ProxyServer::port() const
{
    return m_port;
}

void ProxyServer::abortConnections()
{
    // A worker takes the connections handed to it before this call, because the events of one
    // thread are delivered in the order they were posted.
    for (Worker *worker : m_workers)
        runOnThreadOf(worker, [worker] { worker->abortConnections(); });
}

void ProxyServer::close()
{
    Q_ASSERT(thread() == QThread::currentThread());
    if (m_port != 0) {
        runOnThreadOf(m_listener, [this] { m_listener->close(); });
        m_port = 0;
    }
    abortConnections();
}

TcpListener *ProxyServer::newListener(QObject *parent)
{
    return new TcpListener(
        lcProxy, [this](int descriptor) { acceptConnection(descriptor); }, parent);
}

void ProxyServer::acceptConnection(int descriptor)
{
    const std::shared_ptr<const ProxySettings> settings = m_settings->current();
    const ProxyLimits &limits = settings->limits;
    const int open = m_openConnections;
    const int pending = m_pendingHandshakes;
    if (open + pending >= limits.maxClientConnections) {
        qCWarning(lcProxy) << "Closed a new client connection because" << open << "are open and"
                           << pending << "are in their TLS handshake, the maximum together";
        ::close(descriptor);
        return;
    }
    // Connections that wait in the kernel's backlog cost nothing until they are accepted.
    if (++m_pendingHandshakes >= limits.maxPendingHandshakes) {
        m_listener->pauseAccepting();
        m_acceptingPaused = true;
        // A handshake that ended before the flag was set did not call for a resume.
        resumeAcceptingBelowLimit();
    }

    Worker *worker = leastLoadedWorker();
    ++worker->load;
    QMetaObject::invokeMethod(worker, [worker, descriptor, context = tlsContext(), settings] {
        worker->startHandshake(descriptor, context, settings);
    });
}

int ProxyServer::idleUpstreamConnections() const
{
    int count = 0;
    for (const Worker *worker : m_workers)
        count += worker->idleUpstreamConnections();
    return count;
}

ProxyServer::Worker *ProxyServer::leastLoadedWorker() const
{
    return *std::min_element(
        m_workers.begin(), m_workers.end(), [](Worker *a, Worker *b) { return a->load < b->load; });
}

void ProxyServer::resumeAcceptingBelowLimit()
{
    if (m_acceptingPaused &&
        m_pendingHandshakes < m_settings->current()->limits.maxPendingHandshakes &&
        m_listener->isListening()) {
        m_acceptingPaused = false;
        m_listener->resumeAccepting();
    }
}

int defaultProxyWorkerThreads()
{
    return std::clamp(QThread::idealThreadCount(), 1, 2);
}

} // namespace lamplighter
