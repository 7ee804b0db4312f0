// DesktopWindows against a signed-in Session of SessionHarness: the portal it opens, how a
// reloaded configuration reaches it, and the messages for what cannot open.

#include "DesktopWindows.h"
#include "PortalWindow.h"
#include "SessionHarness.h"

#include <QApplication>
#include <QSignalSpy>
#include <QTest>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

AppConfig app(const QString &name, const QStringList &groups)
{
    AppConfig entry;
    entry.name = name;
    entry.label = name;
    entry.authorizedGroups = groups;
    return entry;
}

// A configuration with three apps, one of them for a group that the harness's user lacks.
Config threeApps()
{
    Config config;
    config.path = QStringLiteral("/config/lamplighter.yaml");
    config.apps = {app(QStringLiteral("grafana"), {}),
                   app(QStringLiteral("argocd"), {QStringLiteral("developers")}),
                   app(QStringLiteral("vault"), {QStringLiteral("admins")})};
    return config;
}

PortalWindow *findPortal()
{
    for (QWidget *widget : QApplication::topLevelWidgets()) {
        if (auto *portal = qobject_cast<PortalWindow *>(widget))
            return portal;
    }
    return nullptr;
}

} // namespace

class TestDesktopWindows : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void portalShowsAppsForGroups();
    void reloadedConfigReachesPortal();
    void unknownAppGivesMessage();
    void whoAmIWithoutClustersGivesMessage();
    void whoAmIWithoutProxyGivesMessage();

private:
    SessionHarness m_harness;
    Session *m_session = nullptr;
};

void TestDesktopWindows::initTestCase()
{
    const QString started = m_harness.start();
    QVERIFY2(started.isEmpty(), qPrintable(started));
    m_session = m_harness.createSession();
    QVERIFY(m_session);
    QVERIFY(m_harness.signIn(m_session));
}

void TestDesktopWindows::portalShowsAppsForGroups()
{
    DesktopWindows windows(m_session, threeApps());
    windows.showPortal();

    PortalWindow *portal = findPortal();
    QVERIFY(portal);
    QVERIFY(portal->isVisible());
    QCOMPARE(portal->appBadgeNames(),
             (QStringList{QStringLiteral("grafana"), QStringLiteral("argocd")}));
    QVERIFY(portal->isTokensBadgeVisible());
}

void TestDesktopWindows::reloadedConfigReachesPortal()
{
    DesktopWindows windows(m_session, threeApps());
    windows.showPortal();
    PortalWindow *portal = findPortal();
    QVERIFY(portal);

    Config reloaded = threeApps();
    reloaded.apps.erase(reloaded.apps.begin());
    reloaded.kubeAuthEnabled = false;
    windows.setConfig(reloaded);

    QCOMPARE(portal->appBadgeNames(), QStringList{QStringLiteral("argocd")});
    QVERIFY(!portal->isTokensBadgeVisible());
}

void TestDesktopWindows::unknownAppGivesMessage()
{
    DesktopWindows windows(m_session, threeApps());
    QSignalSpy messages(&windows, &DesktopWindows::messageReady);

    windows.openApp(QStringLiteral("missing"));

    QCOMPARE(messages.count(), 1);
    QCOMPARE(messages.at(0).at(0).toString(), QStringLiteral("Open missing"));
    QVERIFY2(!messages.at(0).at(1).toString().isEmpty(), "the message has no text");
}

void TestDesktopWindows::whoAmIWithoutClustersGivesMessage()
{
    DesktopWindows windows(m_session, threeApps());
    QSignalSpy messages(&windows, &DesktopWindows::messageReady);

    windows.showWhoAmI();

    QCOMPARE(messages.count(), 1);
    const QString text = messages.at(0).at(1).toString();
    QVERIFY2(text.contains(QStringLiteral("/config/lamplighter.yaml lists no clusters")),
             qPrintable(text));
}

// The harness's session runs no proxy and so writes no kubeconfig to read the proxy's address from.
void TestDesktopWindows::whoAmIWithoutProxyGivesMessage()
{
    Config config = threeApps();
    ClusterConfig cluster;
    cluster.name = QStringLiteral("prod");
    cluster.server = QUrl(QStringLiteral("https://api.prod.example.test:6443"));
    config.clusters.push_back(cluster);
    DesktopWindows windows(m_session, config);
    QSignalSpy messages(&windows, &DesktopWindows::messageReady);

    windows.showWhoAmI();

    QCOMPARE(messages.count(), 1);
    const QString text = messages.at(0).at(1).toString();
    QVERIFY2(text.contains(QStringLiteral("local proxy is not running, so cluster prod")),
             qPrintable(text));
}

QTEST_MAIN(TestDesktopWindows)
#include "tst_desktopwindows.moc"
