#include "DesktopWindows.h"

#include "HeadlampLauncher.h"
#include "Logging.h"
#include "PortalWindow.h"
#include "WhoAmIDialog.h"
#include "oidc/BrowserLauncher.h"
#include "session/Session.h"

#include <QCoreApplication>
#include <QDesktopServices>
#include <QDir>
#include <QProcessEnvironment>

namespace lamplighter {

DesktopWindows::DesktopWindows(Session *session, Config config, QObject *parent)
    : QObject(parent)
    , m_session(session)
    , m_config(std::move(config))
{
    connect(m_session, &Session::stateChanged, this, &DesktopWindows::updatePortal);
}

DesktopWindows::~DesktopWindows()
{
    delete m_portal;
    delete m_whoAmI;
}

void DesktopWindows::setConfig(Config config)
{
    m_config = std::move(config);
    updatePortal();
}

void DesktopWindows::showPortal()
{
    if (!m_portal) {
        m_portal = new PortalWindow;
        m_portal->setAttribute(Qt::WA_DeleteOnClose);
        connect(m_portal, &PortalWindow::appRequested, this, &DesktopWindows::openApp);
        connect(m_portal, &PortalWindow::headlampRequested, this, &DesktopWindows::openHeadlamp);
        connect(m_portal, &PortalWindow::whoAmIRequested, this, &DesktopWindows::showWhoAmI);
        connect(m_portal, &PortalWindow::signInRequested, m_session, &Session::signIn);
        updatePortal();
    }
    m_portal->show();
    m_portal->raise();
    m_portal->activateWindow();
}

void DesktopWindows::updatePortal()
{
    if (!m_portal)
        return;
    QStringList clusterNames;
    for (const ClusterConfig &cluster : m_config.clusters)
        clusterNames.append(cluster.name);
    m_portal->setApps(m_config.apps);
    m_portal->setClusterNames(clusterNames);
    m_portal->setKubeAuthEnabled(m_config.kubeAuthEnabled);
    m_portal->setKubeconfigPath(m_session->kubeconfigPath());
    m_portal->setIdentity(m_session->userName(), m_session->groups());
}

void DesktopWindows::showWhoAmI()
{
    if (m_whoAmI) {
        m_whoAmI->raise();
        m_whoAmI->activateWindow();
        return;
    }
    if (m_config.clusters.empty()) {
        Q_EMIT messageReady(
            tr("Who am I"),
            tr("The configuration %1 lists no clusters to ask.").arg(m_config.path));
        return;
    }
    // The review goes to the first configured cluster, the current context of Lamplighter's
    // kubeconfig.
    const QString clusterName = m_config.clusters.front().name;
    if (m_session->kubeconfigPath().isEmpty()) {
        Q_EMIT messageReady(
            tr("Who am I"),
            tr("The local proxy is not running, so cluster %1 cannot be asked.").arg(clusterName));
        return;
    }
    const Result<ProxyEndpoint> endpoint =
        readProxyEndpoint(m_session->kubeconfigPath(), clusterName);
    if (!endpoint) {
        Q_EMIT messageReady(tr("Who am I"), endpoint.errorMessage());
        return;
    }
    const TokenSummary token{
        m_config.provider.issuer.toString(), m_session->subject(), m_session->expiresAt()};
    m_whoAmI = new WhoAmIDialog(clusterName, *endpoint, token);
    m_whoAmI->setAttribute(Qt::WA_DeleteOnClose);
    m_whoAmI->show();
}

const AppConfig *DesktopWindows::headlampApp() const
{
    for (const AppConfig &app : m_config.apps) {
        if (app.name == QLatin1String("headlamp"))
            return &app;
    }
    return nullptr;
}

void DesktopWindows::openHeadlamp()
{
    const QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    HeadlampLauncher::Settings settings;
    settings.searchPaths = HeadlampSearchPaths::forUser(environment, QDir::homePath());
    settings.kubeconfigs =
        headlampKubeconfigs(m_session->kubeconfigPath(), environment, QDir::homePath());
    settings.windowProgram =
        QCoreApplication::applicationDirPath() + QStringLiteral("/lamplighter-headlamp-window");
    settings.proxyCertificate = Session::proxyCertificatePath();
    const HeadlampLauncher launcher(settings);

    if (const std::optional<HeadlampDesktop> desktop = launcher.findDesktop()) {
        const Result<QString> started = launcher.startDesktop(*desktop);
        Q_EMIT messageReady(tr("Headlamp"), started ? *started : started.errorMessage());
        return;
    }
    if (!headlampApp()) {
        Q_EMIT messageReady(
            tr("Headlamp"),
            tr("Headlamp desktop is not installed, and %1 has no app named \"headlamp\" in "
               "openunison.apps for the in-cluster Headlamp. Install Headlamp desktop, or add the "
               "app entry.")
                .arg(m_config.path));
        return;
    }
    const Result<QUrl> launchUrl = m_session->createLaunchUrl(QStringLiteral("headlamp"));
    if (!launchUrl) {
        Q_EMIT messageReady(tr("Headlamp"), launchUrl.errorMessage());
        return;
    }
    const Status opened = launcher.openInCluster(*launchUrl,
                                                 m_config.portal.headlampInBrowser
                                                     ? HeadlampLauncher::InClusterView::Browser
                                                     : HeadlampLauncher::InClusterView::Window);
    if (!opened)
        Q_EMIT messageReady(tr("Headlamp"), opened.errorMessage());
}

void DesktopWindows::openApp(const QString &appName)
{
    const Result<QUrl> launchUrl = m_session->createLaunchUrl(appName);
    if (!launchUrl) {
        Q_EMIT messageReady(tr("Open %1").arg(appName), launchUrl.errorMessage());
        return;
    }
    // The launch URL carries a one-time ticket, so it goes to the browser and nowhere else.
    Status opened = Done{};
    if (!m_config.login.browserCommand.isEmpty()) {
        opened = BrowserLauncher(m_config.login.browserCommand, {}).open(*launchUrl);
    } else if (!QDesktopServices::openUrl(*launchUrl)) {
        opened = Error{tr("Failed to open the system browser for %1. Set login.browser in %2 to "
                          "a browser command.")
                           .arg(appName, m_config.path)};
    }
    if (!opened)
        Q_EMIT messageReady(tr("Open %1").arg(appName), opened.errorMessage());
}

} // namespace lamplighter
