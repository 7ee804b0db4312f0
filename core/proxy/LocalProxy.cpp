#include "LocalProxy.h"

#include "Logging.h"
#include "ProxyConnection.h"
#include "ProxyRoute.h"
#include "ProxySettings.h"
#include "RequestAdmission.h"
#include "RequestGate.h"
#include "tls/TlsSocket.h"
#include "util/Redact.h"

#include <QStringList>
#include <QTcpServer>
#include <QTimer>
#include <unistd.h>

namespace lamplighter {

// A listener that hands over each accepted socket as a bare descriptor, for TlsSocket, instead
// of wrapping it in a QTcpSocket.
class LocalProxy::Listener : public QTcpServer {
public:
    explicit Listener(LocalProxy *proxy)
        : QTcpServer(proxy)
        , m_proxy(proxy)
    {}

protected:
    void incomingConnection(qintptr descriptor) override { m_proxy->acceptConnection(descriptor); }

private:
    LocalProxy *m_proxy;
};

// Admits requests by the local proxy's settings: the session key or a browser session, the
// route, and a valid ID token.
class LocalProxy::Gate : public RequestGate {
public:
    explicit Gate(std::shared_ptr<ProxySettings> settings)
        : m_settings(std::move(settings))
    {}

    void admit(const HttpHead &request, Decide decide) override
    {
        const RequestAdmission admission =
            admitRequest(request, *m_settings, QDateTime::currentDateTimeUtc());
        if (admission.idTokenExpired && m_settings->idTokenExpired)
            m_settings->idTokenExpired();
        decide(admission);
    }

private:
    std::shared_ptr<ProxySettings> m_settings;
};

LocalProxy::LocalProxy(QObject *parent)
    : QObject(parent)
    , m_server(new Listener(this))
    , m_settings(std::make_shared<ProxySettings>())
    , m_gate(std::make_shared<Gate>(m_settings))
{
    m_settings->idTokenExpired = [this] {
        Q_EMIT idTokenExpired();
    };
}

LocalProxy::~LocalProxy()
{
    close();
}

void LocalProxy::setServerCertificate(const LocalCertificate &certificate)
{
    m_certificate = certificate;
    Result<std::shared_ptr<const TlsContext>> context =
        TlsContext::forServer(certificate.certificate, certificate.privateKey);
    m_serverContextError = context.errorMessage();
    m_serverContext = context ? *context : nullptr;
}

void LocalProxy::setSessionKey(const QByteArray &key)
{
    m_settings->sessionKey = key;
}

void LocalProxy::setClusters(std::vector<UpstreamCluster> clusters)
{
    m_settings->clusters = std::move(clusters);
    m_settings->clientTlsContexts->clear();
}

void LocalProxy::setApps(std::vector<UpstreamApp> apps)
{
    m_settings->apps = std::move(apps);
}

Result<QByteArray> LocalProxy::createLaunchTicket(const QString &appName)
{
    if (!m_settings->findApp(appName)) {
        QStringList names;
        for (const UpstreamApp &app : m_settings->apps)
            names.append(app.name);
        const QString configured =
            names.isEmpty()
                ? QStringLiteral("No apps are configured under openunison.apps.")
                : QStringLiteral("Configured apps: %1.").arg(names.join(QStringLiteral(", ")));
        return Error{QStringLiteral("App \"%1\" is not configured. %2").arg(appName, configured)};
    }
    const std::optional<QByteArray> ticket = m_settings->browserSessions->createTicket(
        appName, BrowserSessions::Clock::now(), m_settings->limits.launchTicketLifetime);
    if (!ticket)
        return Error{QStringLiteral("Could not generate a launch ticket: the random generator "
                                    "failed.")};
    qCInfo(lcProxy).noquote()
        << QStringLiteral("Created a launch ticket for app \"%1\"").arg(appName);
    return *ticket;
}

QUrl LocalProxy::launchUrl(const QString &appName, const QByteArray &ticket) const
{
    return QUrl(QStringLiteral("https://127.0.0.1:%1").arg(port()) +
                    QString::fromLatin1(appPathPrefix(appName)) + QStringLiteral("?ticket=") +
                    QString::fromLatin1(ticket),
                QUrl::StrictMode);
}

void LocalProxy::endBrowserSessions()
{
    m_settings->browserSessions->clear();
    // Open tunnels were admitted with the old credentials, so they end too.
    const QList<ProxyConnection *> connections =
        findChildren<ProxyConnection *>(QString(), Qt::FindDirectChildrenOnly);
    for (ProxyConnection *connection : connections)
        connection->abort();
}

void LocalProxy::setIdToken(const QByteArray &idToken, const QDateTime &expiresAt)
{
    m_settings->idToken = idToken;
    m_settings->idTokenExpiresAt = expiresAt;
    m_settings->unavailableReason.clear();
    qCDebug(lcProxy).noquote()
        << QStringLiteral("ID token for forwarded requests: %1").arg(describeSecret(idToken));
}

void LocalProxy::setUnavailable(const QString &reason)
{
    m_settings->idToken.clear();
    m_settings->idTokenExpiresAt = QDateTime();
    m_settings->unavailableReason = reason;
}

void LocalProxy::setLimits(const ProxyLimits &limits)
{
    m_settings->limits = limits;
}

Status LocalProxy::listen(quint16 port)
{
    if (m_certificate.certificate.isNull() || m_certificate.privateKey.isNull())
        return Error{QStringLiteral("The local proxy cannot listen without a TLS certificate.")};
    if (!m_serverContext)
        return Error{m_serverContextError};
    if (m_settings->sessionKey.isEmpty())
        return Error{QStringLiteral("The local proxy cannot listen without a session key.")};

    if (!m_server->listen(QHostAddress::LocalHost, port)) {
        return Error{QStringLiteral("The local proxy could not listen on 127.0.0.1:%1: %2. "
                                    "Choose another port or stop the program that uses it.")
                         .arg(port)
                         .arg(m_server->errorString())};
    }
    m_settings->port = m_server->serverPort();
    qCInfo(lcProxy).noquote()
        << QStringLiteral("Local proxy listening on https://127.0.0.1:%1").arg(m_settings->port);
    return Done{};
}

quint16 LocalProxy::port() const
{
    return m_server->isListening() ? m_server->serverPort() : 0;
}

QUrl LocalProxy::clusterUrl(const QString &clusterName) const
{
    return QUrl(QStringLiteral("https://127.0.0.1:%1").arg(port()) +
                    QString::fromLatin1(clusterPathPrefix(clusterName)),
                QUrl::StrictMode);
}

void LocalProxy::close()
{
    if (m_server->isListening()) {
        m_server->close();
        qCInfo(lcProxy) << "Local proxy stopped listening";
    }
    m_settings->port = 0;
    for (TlsSocket *handshaking : findChildren<TlsSocket *>(Qt::FindDirectChildrenOnly)) {
        handshaking->disconnect(this);
        handshaking->abort();
        handshaking->deleteLater();
    }
    m_pendingHandshakes = 0;
    for (ProxyConnection *connection : findChildren<ProxyConnection *>(Qt::FindDirectChildrenOnly))
        connection->abort();
}

void LocalProxy::acceptConnection(qintptr descriptor)
{
    const ProxyLimits &limits = m_settings->limits;
    if (m_openConnections + m_pendingHandshakes >= limits.maxClientConnections) {
        qCWarning(lcProxy) << "Closed a new client connection because" << m_openConnections
                           << "are open and" << m_pendingHandshakes
                           << "are in their TLS handshake, the maximum together";
        ::close(static_cast<int>(descriptor));
        return;
    }
    auto *socket = new TlsSocket(descriptor, m_serverContext, this);
    ++m_pendingHandshakes;
    // Connections that wait in the kernel's backlog cost nothing until they are accepted.
    if (m_pendingHandshakes >= limits.maxPendingHandshakes)
        m_server->pauseAccepting();
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
void LocalProxy::endHandshake(TlsSocket *socket, const QString &failure)
{
    socket->disconnect(this);
    --m_pendingHandshakes;
    if (m_pendingHandshakes < m_settings->limits.maxPendingHandshakes && m_server->isListening())
        m_server->resumeAccepting();
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
