#pragma once

#include "config/Config.h"

#include <QStringList>
#include <QWidget>
#include <vector>

class QComboBox;
class QGridLayout;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QStackedWidget;
class QToolButton;

namespace lamplighter {

// Returns whether a person with `groups` may see `app`. An app with no az_groups is for everyone.
// Otherwise one of the person's groups must equal one of them exactly, because Kubernetes and
// OpenUnison compare group names case-sensitively.
bool isAppVisibleTo(const AppConfig &app, const QStringList &groups);

// Returns the apps of `apps` that isAppVisibleTo() allows, in their configured order.
std::vector<AppConfig> visibleApps(const std::vector<AppConfig> &apps, const QStringList &groups);

// Returns a kubeconfig "users" list with one entry per cluster that makes kubectl run
// `lamplighter credential --cluster NAME`, as YAML for a person to paste into a kubeconfig of
// their own. Each entry is named lamplighter-NAME.
QString credentialPluginSnippet(const QStringList &clusterNames);

// The portal window: one badge per app the person may see, a Headlamp badge, a who-am-i badge
// and, unless kubeAuth is disabled, a Tokens badge that shows how to set up kubectl.
// An app named "headlamp" gets no badge of its own, because the Headlamp badge opens it.
class PortalWindow : public QWidget {
    Q_OBJECT
public:
    explicit PortalWindow(QWidget *parent = nullptr);

    void setApps(std::vector<AppConfig> apps);
    // Sets the signed-in person, whose groups decide which app badges show.
    void setIdentity(const QString &userName, const QStringList &groups);
    void setKubeconfigPath(const QString &path);
    void setClusterNames(const QStringList &names);
    // Shows or hides the Tokens badge, from openunison.kubeAuth.enabled.
    void setKubeAuthEnabled(bool enabled);

    // The names of the apps that have a badge now, in order.
    QStringList appBadgeNames() const;
    bool isTokensBadgeVisible() const;
    // Shows the page with the kubectl set-up, as the Tokens badge does.
    void showTokensPage();
    void showBadgesPage();
    // The credential plugin set-up shown, for the cluster chosen on the Tokens page.
    QString credentialPluginText() const;

Q_SIGNALS:
    void appRequested(const QString &appName);
    void headlampRequested();
    void whoAmIRequested();
    // The Sign in button, shown while no one is signed in, was clicked.
    void signInRequested();

private:
    QWidget *createBadgesPage();
    QWidget *createTokensPage();
    QToolButton *createBadge(const QString &label, const QIcon &icon, const QString &toolTip);
    void rebuildBadges();
    void updateIdentityText();
    void updateTokensPage();
    void updateSnippet();

    std::vector<AppConfig> m_apps;
    QString m_userName;
    QStringList m_groups;
    QString m_kubeconfigPath;
    QStringList m_clusterNames;
    bool m_kubeAuthEnabled = true;

    QStackedWidget *m_pages = nullptr;
    QLabel *m_identityLabel = nullptr;
    QPushButton *m_signInButton = nullptr;
    QGridLayout *m_badgeGrid = nullptr;
    QList<QToolButton *> m_appBadges;
    QToolButton *m_headlampBadge = nullptr;
    QToolButton *m_whoAmIBadge = nullptr;
    QToolButton *m_tokensBadge = nullptr;
    QLabel *m_emptyLabel = nullptr;
    QLineEdit *m_kubeconfigEdit = nullptr;
    QLabel *m_kubectlExample = nullptr;
    QComboBox *m_clusterCombo = nullptr;
    QPlainTextEdit *m_snippetEdit = nullptr;
};

} // namespace lamplighter
