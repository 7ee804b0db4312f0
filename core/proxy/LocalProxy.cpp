#include "LocalProxy.h"

#include "Logging.h"
#include "ProxyRoute.h"
#include "ProxyServer.h"
#include "ProxySettings.h"
#include "RequestAdmission.h"
#include "RequestGate.h"
#include "tls/TlsContext.h"
#include "util/Redact.h"

#include <QStringList>

namespace lamplighter {

// Admits requests by the local proxy's settings: the session key or a browser session, the
// route, and a valid ID token.
class LocalProxy::Gate : public RequestGate {
public:
    explicit Gate(std::shared_ptr<const SharedProxySettings> settings)
        : m_settings(std::move(settings))
    {}

    void admit(const HttpHead &request, Decide decide) override
    {
        // The admission points into these settings, so they are held until the decision.
        const std::shared_ptr<const ProxySettings> settings = m_settings->current();
        const RequestAdmission admission =
            admitRequest(request, *settings, QDateTime::currentDateTimeUtc());
        if (admission.idTokenExpired && settings->idTokenExpired)
            settings->idTokenExpired();
        decide(admission);
    }

private:
    std::shared_ptr<const SharedProxySettings> m_settings;
};

LocalProxy::LocalProxy(QObject *parent)
    : QObject(parent)
    , m_sharedSettings(std::make_shared<SharedProxySettings>())
    , m_gate(std::make_shared<Gate>(m_sharedSettings))
    , m_server(new ProxyServer(m_sharedSettings, m_gate, this))
{
    // A worker thread calls this, so receivers on the owner's thread get the signal queued.
    m_settings.idTokenExpired = [this] {
        Q_EMIT idTokenExpired();
    };
    publishSettings();
    m_server->setWorkerThreads(defaultProxyWorkerThreads());
}

void LocalProxy::publishSettings()
{
    m_sharedSettings->publish(m_settings);
}

LocalProxy::~LocalProxy()
{
    close();
    // Stops the worker threads while the settings and the signal they call into still exist.
    delete m_server;
}

void LocalProxy::setServerCertificate(const LocalCertificate &certificate)
{
    m_certificate = certificate;
    Result<std::shared_ptr<const TlsContext>> context =
        TlsContext::forServer(certificate.certificate, certificate.privateKey);
    m_serverContextError = context.errorMessage();
    m_server->setTlsContext(context ? *context : nullptr);
}

void LocalProxy::setSessionKey(const QByteArray &key)
{
    m_settings.sessionKey = key;
    publishSettings();
}

void LocalProxy::setClusters(std::vector<UpstreamCluster> clusters)
{
    m_settings.clusters = std::move(clusters);
    m_settings.clientTlsContexts->clear();
    publishSettings();
}

void LocalProxy::setApps(std::vector<UpstreamApp> apps)
{
    m_settings.apps = std::move(apps);
    publishSettings();
}

Result<QByteArray> LocalProxy::createLaunchTicket(const QString &appName)
{
    if (!m_settings.findApp(appName)) {
        QStringList names;
        for (const UpstreamApp &app : m_settings.apps)
            names.append(app.name);
        const QString configured =
            names.isEmpty()
                ? QStringLiteral("No apps are configured under openunison.apps.")
                : QStringLiteral("Configured apps: %1.").arg(names.join(QStringLiteral(", ")));
        return Error{QStringLiteral("App \"%1\" is not configured. %2").arg(appName, configured)};
    }
    const std::optional<QByteArray> ticket = m_settings.browserSessions->createTicket(
        appName, BrowserSessions::Clock::now(), m_settings.limits.launchTicketLifetime);
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
    m_settings.browserSessions->clear();
    // Open tunnels were admitted with the old credentials, so they end too.
    m_server->abortConnections();
}

void LocalProxy::setIdToken(const QByteArray &idToken, const QDateTime &expiresAt)
{
    m_settings.idToken = idToken;
    m_settings.idTokenExpiresAt = expiresAt;
    m_settings.unavailableReason.clear();
    publishSettings();
    qCDebug(lcProxy).noquote()
        << QStringLiteral("ID token for forwarded requests: %1").arg(describeSecret(idToken));
}

void LocalProxy::setUnavailable(const QString &reason)
{
    m_settings.idToken = BearerToken();
    m_settings.idTokenExpiresAt = QDateTime();
    m_settings.unavailableReason = reason;
    publishSettings();
}

void LocalProxy::setLimits(const ProxyLimits &limits)
{
    m_settings.limits = limits;
    publishSettings();
}

Status LocalProxy::listen(quint16 port)
{
    if (m_certificate.certificate.isNull() || m_certificate.privateKey.isNull())
        return Error{QStringLiteral("The local proxy cannot listen without a TLS certificate.")};
    if (!m_serverContextError.isEmpty())
        return Error{m_serverContextError};
    if (m_settings.sessionKey.isEmpty())
        return Error{QStringLiteral("The local proxy cannot listen without a session key.")};

    const Status listening =
        m_server->listen(QHostAddress::LocalHost, port, QStringLiteral("local proxy"));
    if (!listening)
        return listening;
    m_settings.port = m_server->port();
    publishSettings();
    qCInfo(lcProxy).noquote()
        << QStringLiteral("Local proxy listening on https://127.0.0.1:%1").arg(m_settings.port);
    return Done{};
}

quint16 LocalProxy::port() const
{
    return m_server->port();
}

void LocalProxy::setWorkerThreads(int count)
{
    m_server->setWorkerThreads(count);
}

int LocalProxy::workerThreads() const
{
    return m_server->workerThreads();
}

int LocalProxy::idleUpstreamConnections() const
{
    return m_server->idleUpstreamConnections();
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
    m_settings.port = 0;
    publishSettings();
    m_server->abortConnections();
}

} // namespace lamplighter
