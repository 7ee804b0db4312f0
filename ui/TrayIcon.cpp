#include "TrayIcon.h"

#include "Logging.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QLocale>
#include <QMenu>
#include <QPainter>
#include <QPainterPath>

namespace lamplighter {
namespace {

QColor colorFor(Session::State state)
{
    switch (state) {
    case Session::State::SignedIn:
        return QColor(0xf5, 0xb0, 0x1a); // a lit lamp
    case Session::State::SigningIn:
    case Session::State::Starting:
        return QColor(0x5b, 0x9b, 0xd5);
    case Session::State::Failed:
        return QColor(0xd9, 0x3f, 0x3f);
    case Session::State::SignedOut:
        break;
    }
    return QColor(0x8a, 0x8a, 0x8a);
}

QPixmap drawLamp(Session::State state, int size)
{
    QPixmap pixmap(size, size);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    const qreal unit = size / 16.0;

    // The glass: a rounded globe whose colour is the state.
    painter.setPen(QPen(QColor(0x30, 0x30, 0x30), unit * 0.8));
    painter.setBrush(colorFor(state));
    painter.drawEllipse(QRectF(3 * unit, 1 * unit, 10 * unit, 10 * unit));

    // The base of the lamp.
    painter.setBrush(QColor(0x40, 0x40, 0x40));
    painter.drawRoundedRect(QRectF(5 * unit, 11 * unit, 6 * unit, 4 * unit), unit, unit);

    // A mark inside the glass: a tick when signed in, a cross on failure, dots while busy.
    QPen mark(Qt::white, unit * 1.4, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin);
    painter.setPen(mark);
    painter.setBrush(Qt::NoBrush);
    switch (state) {
    case Session::State::SignedIn: {
        QPainterPath tick;
        tick.moveTo(5.5 * unit, 6 * unit);
        tick.lineTo(7.3 * unit, 8 * unit);
        tick.lineTo(10.5 * unit, 4 * unit);
        painter.drawPath(tick);
        break;
    }
    case Session::State::Failed:
        painter.drawLine(QPointF(6 * unit, 4 * unit), QPointF(10 * unit, 8 * unit));
        painter.drawLine(QPointF(10 * unit, 4 * unit), QPointF(6 * unit, 8 * unit));
        break;
    case Session::State::SigningIn:
    case Session::State::Starting:
        for (int i = 0; i < 3; ++i)
            painter.drawPoint(QPointF((5.8 + 2.2 * i) * unit, 6 * unit));
        break;
    case Session::State::SignedOut:
        painter.drawLine(QPointF(5.5 * unit, 6 * unit), QPointF(10.5 * unit, 6 * unit));
        break;
    }
    return pixmap;
}

} // namespace

QIcon TrayIcon::iconFor(Session::State state)
{
    QIcon icon;
    for (int size : {16, 22, 24, 32, 48, 64})
        icon.addPixmap(drawLamp(state, size));
    return icon;
}

TrayIcon::TrayIcon(Session *session, QObject *parent)
    : QObject(parent)
    , m_session(session)
    , m_tray(new QSystemTrayIcon(this))
    , m_menu(new QMenu)
{
    m_statusAction = m_menu->addAction(QString());
    m_statusAction->setEnabled(false);
    m_expiryAction = m_menu->addAction(QString());
    m_expiryAction->setEnabled(false);
    m_menu->addSeparator();
    m_signInAction = m_menu->addAction(tr("Sign in"), m_session, &Session::signIn);
    m_cancelAction = m_menu->addAction(tr("Cancel sign-in"), m_session, &Session::cancelSignIn);
    m_signOutAction = m_menu->addAction(tr("Sign out"), m_session, &Session::signOut);
    m_menu->addSeparator();
    m_copyKubeconfigAction = m_menu->addAction(tr("Copy kubeconfig path"), this, [this] {
        QApplication::clipboard()->setText(m_session->kubeconfigPath());
    });
    m_menu->addSeparator();
    m_menu->addAction(tr("Quit"), qApp, &QCoreApplication::quit);
    m_tray->setContextMenu(m_menu);

    connect(m_session, &Session::stateChanged, this, [this](Session::State state) {
        update();
        if (state == Session::State::Failed)
            showMessage(tr("Lamplighter"), m_session->errorMessage(), QSystemTrayIcon::Warning);
    });
    connect(m_session, &Session::tokensRefreshed, this, &TrayIcon::update);
    connect(m_session, &Session::notice, this, [this](const QString &message) {
        showMessage(tr("Lamplighter"), message, QSystemTrayIcon::Information);
    });
    connect(m_tray,
            &QSystemTrayIcon::activated,
            this,
            [this](QSystemTrayIcon::ActivationReason reason) {
                if (reason == QSystemTrayIcon::Trigger &&
                    m_session->state() == Session::State::SignedOut)
                    m_session->signIn();
            });
    update();
}

TrayIcon::~TrayIcon()
{
    delete m_menu;
}

void TrayIcon::show()
{
    m_tray->show();
}

QString TrayIcon::toolTip() const
{
    const QLocale locale;
    switch (m_session->state()) {
    case Session::State::Starting:
        return tr("Lamplighter: starting");
    case Session::State::SignedOut:
        return tr("Lamplighter: signed out");
    case Session::State::SigningIn:
        return tr("Lamplighter: signing in, finish in your browser");
    case Session::State::SignedIn:
        return tr("Lamplighter: signed in as %1\nToken valid until %2")
            .arg(m_session->userName(),
                 locale.toString(m_session->expiresAt().toLocalTime(), QLocale::ShortFormat));
    case Session::State::Failed:
        return tr("Lamplighter: %1").arg(m_session->errorMessage());
    }
    return {};
}

void TrayIcon::update()
{
    const Session::State state = m_session->state();
    m_tray->setIcon(iconFor(state));
    m_tray->setToolTip(toolTip());

    const bool signedIn = state == Session::State::SignedIn;
    const bool signingIn = state == Session::State::SigningIn;
    m_statusAction->setText(signedIn ? tr("Signed in as %1").arg(m_session->userName())
                                     : toolTip().section(QLatin1Char('\n'), 0, 0));
    m_expiryAction->setVisible(signedIn);
    m_expiryAction->setText(tr("Token valid until %1")
                                .arg(QLocale().toString(m_session->expiresAt().toLocalTime().time(),
                                                        QLocale::ShortFormat)));
    m_signInAction->setVisible(!signedIn && !signingIn);
    m_signInAction->setEnabled(state != Session::State::Starting);
    m_cancelAction->setVisible(signingIn);
    m_signOutAction->setVisible(signedIn);
    m_copyKubeconfigAction->setEnabled(!m_session->kubeconfigPath().isEmpty());
}

void TrayIcon::showMessage(const QString &title,
                           const QString &text,
                           QSystemTrayIcon::MessageIcon icon)
{
    if (QSystemTrayIcon::supportsMessages())
        m_tray->showMessage(title, text, icon);
}

} // namespace lamplighter
