#pragma once

#include "config/Config.h"

#include <QObject>
#include <QPointer>

namespace lamplighter {

class PortalWindow;
class Session;
class WhoAmIDialog;

// The windows that the tray opens: the portal, the who-am-i dialog and Headlamp. Each is made
// on first use, so the tray costs no memory for windows that are never opened.
class DesktopWindows : public QObject {
    Q_OBJECT
public:
    DesktopWindows(Session *session, Config config, QObject *parent = nullptr);
    ~DesktopWindows() override;

    // Takes the apps, clusters and kubeAuth switch of a reloaded configuration.
    void setConfig(Config config);

    void showPortal();
    void showWhoAmI();
    // Starts Headlamp desktop when it is installed, otherwise the in-cluster Headlamp app in
    // lamplighter-headlamp-window through the local proxy.
    void openHeadlamp();
    void openApp(const QString &appName);

Q_SIGNALS:
    // A message for the person, such as why Headlamp did not open.
    void messageReady(const QString &title, const QString &text);

private:
    void updatePortal();
    // The app entry that serves the in-cluster Headlamp, or nullptr.
    const AppConfig *headlampApp() const;

    Session *m_session;
    Config m_config;
    QPointer<PortalWindow> m_portal;
    QPointer<WhoAmIDialog> m_whoAmI;
};

} // namespace lamplighter
