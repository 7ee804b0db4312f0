#pragma once

#include "session/Session.h"

#include <QIcon>
#include <QObject>
#include <QSystemTrayIcon>

class QAction;
class QMenu;

namespace lamplighter {

// The tray icon: one picture per session state, a tooltip with the user and the token's expiry,
// and a menu with Sign in, Sign out and Quit.
class TrayIcon : public QObject {
    Q_OBJECT
public:
    explicit TrayIcon(Session *session, QObject *parent = nullptr);
    ~TrayIcon() override;

    void show();
    QMenu *menu() const { return m_menu; }
    QString toolTip() const;

    // Draws the icon for a state; the tray uses it and tests look at it.
    static QIcon iconFor(Session::State state);

private:
    void update();
    void showMessage(const QString &title, const QString &text, QSystemTrayIcon::MessageIcon icon);

    Session *m_session;
    QSystemTrayIcon *m_tray;
    QMenu *m_menu;
    QAction *m_statusAction;
    QAction *m_expiryAction;
    QAction *m_signInAction;
    QAction *m_cancelAction;
    QAction *m_signOutAction;
    QAction *m_copyKubeconfigAction;
};

} // namespace lamplighter
