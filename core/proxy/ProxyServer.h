#pragma once

#include "util/Result.h"

#include <QHostAddress>
#include <QObject>
#include <memory>

namespace lamplighter {

class RequestGate;
class TlsContext;
class TlsSocket;
struct ProxySettings;

// A TLS listener whose connections become ProxyConnections once their handshake succeeds. It
// bounds the handshakes in progress and the open connections with the settings' limits, and
// pauses accepting rather than queueing more handshakes. The local proxy and the cluster proxy
// share it and differ in their RequestGate.
class ProxyServer : public QObject {
    Q_OBJECT
public:
    ProxyServer(std::shared_ptr<const ProxySettings> settings,
                std::shared_ptr<RequestGate> gate,
                QObject *parent = nullptr);
    ~ProxyServer() override;

    // Sets the context of connections accepted afterwards: the server certificate and key.
    void setTlsContext(std::shared_ptr<const TlsContext> context);
    // Starts listening. `description` names the server in the error message, which also
    // suggests what to do.
    Status listen(const QHostAddress &address, quint16 port, const QString &description);
    bool isListening() const;
    quint16 port() const;
    // Aborts every open connection, tunnels included, and every handshake in progress.
    void abortConnections();
    // Stops listening and aborts every connection.
    void close();

private:
    class Listener;

    void acceptConnection(qintptr descriptor);
    void endHandshake(TlsSocket *socket, const QString &failure);

    std::shared_ptr<const ProxySettings> m_settings;
    std::shared_ptr<RequestGate> m_gate;
    std::shared_ptr<const TlsContext> m_tlsContext;
    Listener *m_listener;
    int m_openConnections = 0;
    int m_pendingHandshakes = 0;
};

} // namespace lamplighter
