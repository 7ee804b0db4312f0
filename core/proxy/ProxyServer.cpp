#include "ProxyServer.h"

#include "Logging.h"
#include "ProxyConnection.h"
#include "ProxySettings.h"
#include "RequestGate.h"
#include "tls/TlsSocket.h"

#include <QTcpServer>
#include <QTimer>
#include <unistd.h>

namespace lamplighter {

// A listener that hands over each accepted socket as a bare descriptor, for TlsSocket, instead
// of wrapping it in a QTcpSocket.
class ProxyServer::Listener : public QTcpServer {
public:
    explicit Listener(ProxyServer *server)
        : QTcpServer(server)
        , m_server(server)
    {}

protected:
    void incomingConnection(qintptr descriptor) override { m_server->acceptConnection(descriptor); }

private:
    ProxyServer *m_server;
};

ProxyServer::ProxyServer(std::shared_ptr<const ProxySettings> settings,
                         std::shared_ptr<RequestGate> gate,
                         QObject *parent)
    : QObject(parent)
    , m_settings(std::move(settings))
    , m_gate(std::move(gate))
    , m_listener(new Listener(this))
{}

ProxyServer::~ProxyServer()
{
    close();
}

void ProxyServer::setTlsContext(std::shared_ptr<const TlsContext> context)
{
    m_tlsContext = std::move(context);
}

Status ProxyServer::listen(const QHostAddress &address, quint16 port, const QString &description)
{
    if (!m_tlsContext)
        return Error{
            QStringLiteral("The %1 cannot listen without a TLS certificate.").arg(description)};
    if (!m_listener->listen(address, port)) {
        return Error{QStringLiteral("The %1 could not listen on %2:%3: %4. Choose another port or "
                                    "stop the program that uses it.")
                         .arg(description, address.toString())
                         .arg(port)
                         .arg(m_listener->errorString())};
    }
    return Done{};
}

bool ProxyServer::isListening() const
{
    return m_listener->isListening();
}

quint16 ProxyServer::port() const
{
    return m_listener->isListening() ? m_listener->serverPort() : 0;
}

void ProxyServer::abortConnections()
{
    for (TlsSocket *handshaking : findChildren<TlsSocket *>(Qt::FindDirectChildrenOnly)) {
        handshaking->disconnect(this);
        handshaking->abort();
        handshaking->deleteLater();
    }
    m_pendingHandshakes = 0;
    for (ProxyConnection *connection : findChildren<ProxyConnection *>(Qt::FindDirectChildrenOnly))
        connection->abort();
}

void ProxyServer::close()
{
    if (m_listener->isListening())
        m_listener->close();
    abortConnections();
}

void ProxyServer::acceptConnection(qintptr descriptor)
{
    const ProxyLimits &limits = m_settings->limits;
    if (m_openConnections + m_pendingHandshakes >= limits.maxClientConnections) {
        qCWarning(lcProxy) << "Closed a new client connection because" << m_openConnections
                           << "are open and" << m_pendingHandshakes
                           << "are in their TLS handshake, the maximum together";
        ::close(static_cast<int>(descriptor));
        return;
    }
    auto *socket = new TlsSocket(descriptor, m_tlsContext, this);
    ++m_pendingHandshakes;
    // Connections that wait in the kernel's backlog cost nothing until they are accepted.
    if (m_pendingHandshakes >= limits.maxPendingHandshakes)
        m_listener->pauseAccepting();
    connect(
        socket, &TlsSocket::encrypted, this, [this, socket] { endHandshake(socket, QString()); });
    connect(socket, &TlsSocket::disconnected, this, [this, socket] {
        endHandshake(socket, socket->errorString());
    });
    QTimer::singleShot(limits.clientHandshakeTimeout, socket, [this, socket] {
        if (socket->state() == TlsSocket::State::Handshaking)
            endHandshake(socket, QStringLiteral("timed out"));
    });
}

// Hands a connection whose handshake succeeded to a ProxyConnection, or drops it with `failure`.
void ProxyServer::endHandshake(TlsSocket *socket, const QString &failure)
{
    socket->disconnect(this);
    --m_pendingHandshakes;
    if (m_pendingHandshakes < m_settings->limits.maxPendingHandshakes && m_listener->isListening())
        m_listener->resumeAccepting();
    if (socket->state() != TlsSocket::State::Encrypted) {
        qCDebug(lcProxy).noquote() << QStringLiteral("TLS handshake with client port %1 failed: %2")
                                          .arg(socket->peerPort())
                                          .arg(failure);
        socket->abort();
        socket->deleteLater();
        return;
    }
    ++m_openConnections;
    auto *connection = new ProxyConnection(socket, m_settings, m_gate, this);
    connect(connection, &ProxyConnection::closed, connection, [this, connection] {
        --m_openConnections;
        connection->deleteLater();
    });
}

} // namespace lamplighter
