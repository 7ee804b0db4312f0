#pragma once

#include "session/Session.h"

#include <QDateTime>
#include <QIcon>
#include <QObject>
#include <QSystemTrayIcon>
#include <chrono>

class QAction;
class QMenu;

namespace lamplighter {

// The tray icon: one picture per session state, a tooltip with the user and the token's expiry,
// a menu with the portal, Who am I, sign-in and sign-out actions, and notifications for what the
// person must know about: failures, a token that expires soon and cannot be refreshed, and
// reloads of the configuration.
class TrayIcon : public QObject {
    Q_OBJECT
public:
    explicit TrayIcon(Session *session, QObject *parent = nullptr);
    ~TrayIcon() override;

    void show();
    QMenu *menu() const { return m_menu; }
    QIcon icon() const;
    QString toolTip() const;
    // The icon's place on the screen, or an empty rectangle when the tray host does not tell it.
    QRect geometry() const;

    // Returns the icon for a state, from the SVG files under resources/icons.
    static QIcon iconFor(Session::State state);

    // How long before expiry a token whose refresh failed is announced.
    static constexpr std::chrono::minutes expiryWarningLead{5};

public Q_SLOTS:
    // Tells the person that the configuration file was read again and is now in use. `detail`
    // follows the message when it is not empty.
    void notifyConfigurationReloaded(const QString &detail = QString());
    // Tells the person that a changed configuration file was rejected, and why.
    void notifyConfigurationRejected(const QString &message);
    // Shows a notification of another part of the app, such as a window that could not open.
    void notify(const QString &title, const QString &message);

Q_SIGNALS:
    void portalRequested();
    void whoAmIRequested();
    // Emitted for every notification, also when the desktop cannot show notifications.
    void notified(const QString &title, const QString &message);

private:
    static QIcon statusIconFor(Session::State state);
    void update();
    void handleStateChange(Session::State state);
    void warnIfExpiringUnrefreshed();
    QString expiryText() const;
    void showFailureWhileRetrying();
    void showMessage(const QString &title, const QString &text, QSystemTrayIcon::MessageIcon icon);

    Session *m_session;
    QSystemTrayIcon *m_tray;
    QMenu *m_menu;
    QAction *m_statusAction;
    QAction *m_expiryAction;
    QAction *m_portalAction;
    QAction *m_whoAmIAction;
    QAction *m_signInAction;
    QAction *m_cancelAction;
    QAction *m_retryAction;
    QAction *m_signOutAction;
    QAction *m_copyKubeconfigAction;
    Session::State m_previousState;
    QDateTime m_warnedExpiry;   // the expiry that was announced, so it is announced once
    QString m_announcedFailure; // the failure that was announced while retries repeat it
};

} // namespace lamplighter
