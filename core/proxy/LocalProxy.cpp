#include "LocalProxy.h"

#include "Logging.h"
#include "ProxyConnection.h"
#include "ProxyRoute.h"
#include "ProxySettings.h"
#include "util/Redact.h"

#include <QSslConfiguration>
#include <QSslServer>
#include <QSslSocket>
#include <QStringList>

namespace lamplighter {

LocalProxy::LocalProxy(QObject *parent)
    : QObject(parent)
    , m_server(new QSslServer(this))
    , m_settings(std::make_shared<ProxySettings>())
{
    m_settings->idTokenExpired = [this] {
        Q_EMIT idTokenExpired();
    };
    connect(
        m_server, &QSslServer::pendingConnectionAvailable, this, &LocalProxy::acceptConnections);
    connect(m_server,
            &QSslServer::errorOccurred,
            this,
            [this](QSslSocket *socket, QAbstractSocket::SocketError) {
                qCDebug(lcProxy).noquote()
                    << QStringLiteral("TLS handshake with client port %1 failed: %2")
                           .arg(socket->peerPort())
                           .arg(socket->errorString());
                // Qt 6.4's QSslServer pauses accepting while its pending connections, handshakes
                // included, reach the maximum, and resumes only when a handshake times out, not
                // when one fails. Without this, a few dozen dropped handshakes stop the proxy.
                m_server->resumeAccepting();
            });
}

LocalProxy::~LocalProxy()
{
    close();
}

void LocalProxy::setServerCertificate(const LocalCertificate &certificate)
{
    m_certificate = certificate;
    QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
    configuration.setLocalCertificate(certificate.certificate);
    configuration.setPrivateKey(certificate.privateKey);
    configuration.setPeerVerifyMode(QSslSocket::VerifyNone);
    configuration.setProtocol(QSsl::TlsV1_2OrLater);
    configuration.setAllowedNextProtocols({QByteArray(QSslConfiguration::NextProtocolHttp1_1)});
    m_server->setSslConfiguration(configuration);
}

void LocalProxy::setSessionKey(const QByteArray &key)
{
    m_settings->sessionKey = key;
}

void LocalProxy::setClusters(std::vector<UpstreamCluster> clusters)
{
    m_settings->clusters = std::move(clusters);
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
    if (m_settings->sessionKey.isEmpty())
        return Error{QStringLiteral("The local proxy cannot listen without a session key.")};

    m_server->setHandshakeTimeout(
        static_cast<int>(m_settings->limits.clientHandshakeTimeout.count()));
    m_server->setMaxPendingConnections(m_settings->limits.maxPendingHandshakes);
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
    for (ProxyConnection *connection : findChildren<ProxyConnection *>(Qt::FindDirectChildrenOnly))
        connection->abort();
}

void LocalProxy::acceptConnections()
{
    while (m_server->hasPendingConnections()) {
        auto *socket = qobject_cast<QSslSocket *>(m_server->nextPendingConnection());
        if (!socket)
            continue;
        if (m_openConnections >= m_settings->limits.maxClientConnections) {
            qCWarning(lcProxy) << "Closed a new client connection because" << m_openConnections
                               << "are open, the maximum";
            socket->abort();
            socket->deleteLater();
            continue;
        }
        ++m_openConnections;
        auto *connection = new ProxyConnection(socket, m_settings, this);
        connect(connection, &ProxyConnection::closed, connection, [this, connection] {
            --m_openConnections;
            connection->deleteLater();
        });
    }
}

} // namespace lamplighter
