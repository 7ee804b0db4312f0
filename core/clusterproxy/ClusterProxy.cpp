#include "clusterproxy/ClusterProxy.h"

#include "Logging.h"
#include "clusterproxy/ImpersonatingGate.h"
#include "clusterproxy/NamespaceLister.h"
#include "oidc/Discovery.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/ProviderNetworkAccessManager.h"
#include "proxy/ProxyServer.h"
#include "proxy/ProxySettings.h"
#include "tls/TlsContext.h"

#include <QFile>
#include <QFileInfo>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QSslConfiguration>
#include <algorithm>

namespace lamplighter {

namespace {

// Discovery retries back off from 1 s to this bound while the issuer cannot be reached.
constexpr int kMaxRetrySeconds = 60;
// Kubernetes swaps projected and Secret files through a symlink, which a file watch can miss,
// so the files are also checked on this interval.
constexpr int kReloadIntervalMs = 30'000;
// How often /readyz of the API server is asked.
constexpr int kProbeIntervalMs = 10'000;

QDateTime modifiedTime(const QString &path)
{
    return QFileInfo(path).lastModified().toUTC();
}

} // namespace

ClusterProxy::ClusterProxy(ClusterProxyConfig config, QObject *parent)
    : QObject(parent)
    , m_config(std::move(config))
    , m_settings(std::make_shared<SharedProxySettings>())
    , m_network(new ProviderNetworkAccessManager(m_config.issuerCaCertificates, this))
    , m_apiServerNetwork(new QNetworkAccessManager(this))
{
    m_retryTimer.setSingleShot(true);
    connect(&m_retryTimer, &QTimer::timeout, this, &ClusterProxy::discoverIssuer);
    m_reloadTimer.setInterval(kReloadIntervalMs);
    connect(&m_reloadTimer, &QTimer::timeout, this, &ClusterProxy::reloadFiles);
    connect(&m_watcher, &QFileSystemWatcher::fileChanged, this, &ClusterProxy::reloadFiles);
    connect(&m_watcher, &QFileSystemWatcher::directoryChanged, this, &ClusterProxy::reloadFiles);
    m_probeTimer.setInterval(kProbeIntervalMs);
    connect(&m_probeTimer, &QTimer::timeout, this, &ClusterProxy::probeApiServer);
}

ClusterProxy::~ClusterProxy() = default;

Status ClusterProxy::start()
{
    // The gate starts without a verifier, which the issuer's discovery provides. Until then
    // requests get 503, and /readyz reports it.
    m_gate = std::make_shared<ImpersonatingGate>(m_config, nullptr);
    ProxySettings settings;
    settings.responseStarted = [gate = m_gate.get()](int code, bool forwarded, qint64 ms) {
        gate->metrics().recordResponse(code, forwarded, ms);
    };
    m_settings->publish(std::move(settings));
    // The connections stay on this thread, where the gate fetches the issuer's keys.
    m_server = new ProxyServer(m_settings, m_gate, this);
    m_lister = new NamespaceLister(m_config, this);
    m_gate->setNamespaceLister(m_lister);

    const Status tls = loadTlsFiles();
    if (!tls)
        return tls;
    const Status token = loadServiceAccountToken();
    if (!token)
        return token;

    const Status listening = m_server->listen(
        m_config.listenAddress, m_config.listenPort, QStringLiteral("cluster proxy"));
    if (!listening)
        return listening;
    qCInfo(lcProxy).noquote() << QStringLiteral(
                                     "Cluster proxy listening on %1:%2, forwarding to %3")
                                     .arg(m_config.listenAddress.toString())
                                     .arg(m_server->port())
                                     .arg(m_config.apiServer.toDisplayString());
    watchFiles();
    m_reloadTimer.start();
    m_probeTimer.start();
    probeApiServer();
    discoverIssuer();
    return Done{};
}

// Asks the API server's /readyz with the service account token, for the proxy's own /readyz.
void ClusterProxy::probeApiServer()
{
    const QUrl url = apiServerUrl(m_config, QStringLiteral("/readyz"));
    QNetworkRequest request(url);
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setCaCertificates(m_config.apiServerCaCertificates);
    request.setSslConfiguration(tls);
    request.setTransferTimeout(kProbeIntervalMs / 2);
    request.setRawHeader("Authorization", "Bearer " + m_serviceAccountToken);
    QNetworkReply *reply = m_apiServerNetwork->get(request);
    connect(reply, &QNetworkReply::finished, this, [this, reply, url] {
        reply->deleteLater();
        const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        QString problem;
        if (status == 0)
            problem = QStringLiteral("the API server at %1 cannot be reached: %2")
                          .arg(url.toDisplayString(), reply->errorString());
        else if (status != 200)
            problem = QStringLiteral("the API server's %1 returned HTTP status %2")
                          .arg(url.toDisplayString())
                          .arg(status);
        if (!problem.isEmpty() && problem != m_apiServerProblem)
            qCWarning(lcProxy).noquote() << QStringLiteral("Not ready: %1").arg(problem);
        m_apiServerProblem = problem;
        m_gate->setApiServerProblem(problem);
    });
}

quint16 ClusterProxy::port() const
{
    return m_server ? m_server->port() : 0;
}

void ClusterProxy::discoverIssuer()
{
    ++m_discoveryAttempts;
    delete m_discovery;
    m_discovery = new Discovery(m_network, m_config.issuer, this);
    connect(m_discovery, &Discovery::finished, this, &ClusterProxy::onDiscovered);
    m_discovery->start();
}

void ClusterProxy::onDiscovered()
{
    if (m_discovery->failed()) {
        qCWarning(lcOidc).noquote()
            << QStringLiteral("Discovery of issuer %1 failed: %2")
                   .arg(m_config.issuer.toString(), m_discovery->error().message);
        retryDiscoveryLater();
        return;
    }
    const QUrl jwksUri = m_discovery->metadata().jwksUri;
    m_verifier = new IdTokenVerifier(m_network, jwksUri, this);
    // Clients send tokens of their choosing, so an unknown key id may refetch the key set only
    // now and then; 10 s bounds both that load on the issuer and the 401s after a key rotation.
    m_verifier->setMinimumRefetchInterval(std::chrono::seconds(10));
    connect(m_verifier, &IdTokenVerifier::keysFetched, this, [this](const QString &error) {
        if (error.isEmpty()) {
            m_gate->setKeysLoaded(true);
            m_discoveryAttempts = 0;
        } else if (!m_verifier->hasKeys()) {
            retryDiscoveryLater();
        }
    });
    m_gate->setVerifier(m_verifier);
    m_verifier->prefetchKeys();
}

void ClusterProxy::retryDiscoveryLater()
{
    const int seconds = std::min(kMaxRetrySeconds, 1 << std::min(m_discoveryAttempts, 6));
    qCInfo(lcOidc).noquote()
        << QStringLiteral("Retrying the issuer's discovery in %1 s").arg(seconds);
    if (m_verifier) {
        m_verifier->deleteLater();
        m_verifier = nullptr;
        m_gate->setVerifier(nullptr);
    }
    m_retryTimer.start(seconds * 1000);
}

Status ClusterProxy::loadTlsFiles()
{
    const Result<std::shared_ptr<const TlsContext>> context =
        TlsContext::forServerFiles(m_config.tlsCertificateFile, m_config.tlsKeyFile);
    if (!context)
        return context.error();
    m_server->setTlsContext(*context);
    m_tlsFilesModified =
        std::max(modifiedTime(m_config.tlsCertificateFile), modifiedTime(m_config.tlsKeyFile));
    return Done{};
}

Status ClusterProxy::loadServiceAccountToken()
{
    QFile file(m_config.serviceAccountTokenFile);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("Cannot read the service account token file %1: %2")
                         .arg(m_config.serviceAccountTokenFile, file.errorString())};
    const QByteArray token = file.readAll().trimmed();
    if (token.isEmpty())
        return Error{QStringLiteral("The service account token file %1 is empty.")
                         .arg(m_config.serviceAccountTokenFile)};
    if (token != m_serviceAccountToken) {
        const bool first = m_serviceAccountToken.isEmpty();
        m_serviceAccountToken = token;
        m_gate->setServiceAccountToken(token);
        m_lister->setServiceAccountToken(token);
        if (!first)
            qCInfo(lcProxy) << "Read the rotated service account token";
    }
    return Done{};
}

// Picks up rotated files. A file that cannot be used keeps the previous one in force.
void ClusterProxy::reloadFiles()
{
    const Status token = loadServiceAccountToken();
    if (!token)
        qCWarning(lcProxy).noquote() << token.errorMessage();

    const QDateTime modified =
        std::max(modifiedTime(m_config.tlsCertificateFile), modifiedTime(m_config.tlsKeyFile));
    if (modified != m_tlsFilesModified) {
        const Status tls = loadTlsFiles();
        if (tls)
            qCInfo(lcTls) << "Reloaded the TLS certificate and key";
        else
            qCWarning(lcTls).noquote() << QStringLiteral("Keeping the previous TLS certificate: %1")
                                              .arg(tls.errorMessage());
    }
    watchFiles(); // a replaced file is no longer watched
}

void ClusterProxy::watchFiles()
{
    for (const QString &path :
         {m_config.tlsCertificateFile, m_config.tlsKeyFile, m_config.serviceAccountTokenFile}) {
        if (!m_watcher.files().contains(path) && QFileInfo::exists(path))
            m_watcher.addPath(path);
        const QString folder = QFileInfo(path).absolutePath();
        if (!m_watcher.directories().contains(folder))
            m_watcher.addPath(folder);
    }
}

} // namespace lamplighter
