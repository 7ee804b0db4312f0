#include "TrayIcon.h"

#include "Logging.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QIconEngine>
#include <QImage>
#include <QLocale>
#include <QMenu>
#include <QPainter>
#include <QResource>
#include <QStyle>
#include <QStyleOption>
#include <algorithm>
#include <iterator>
#include <utility>

// Registers the resource "icons". The linker drops the resources of a static library unless
// something refers to them, and Q_INIT_RESOURCE must be called outside any namespace.
static void initIconResources()
{
    Q_INIT_RESOURCE(icons);
}

namespace lamplighter {
namespace {

// The pixel sizes at which the build rendered each icon (ui/CMakeLists.txt), ascending.
constexpr int iconSizes[] = {LAMPLIGHTER_ICON_SIZES};

// Returns the name of the state's icon. The build rendered it as :/icons/NAME-SIZE.argb32.
QString iconName(Session::State state)
{
    switch (state) {
    case Session::State::Starting:
        return QStringLiteral("lamplighter-starting");
    case Session::State::SignedOut:
        return QStringLiteral("lamplighter-signed-out");
    case Session::State::SigningIn:
        return QStringLiteral("lamplighter-signing-in");
    case Session::State::SignedIn:
        return QStringLiteral("lamplighter-signed-in");
    case Session::State::Refreshing:
        return QStringLiteral("lamplighter-refreshing");
    case Session::State::Offline:
        return QStringLiteral("lamplighter-offline");
    case Session::State::Failed:
        return QStringLiteral("lamplighter-error");
    }
    return QString();
}

// Draws one of the icons that the build rendered into raw premultiplied ARGB32 pixels, at the
// smallest rendered size that is at least as large as the requested size, scaled when they
// differ. Reading PNG files instead would go through QImageReader, which loads every image
// format plugin of Qt, and Qt's SVG library with them.
class RenderedIconEngine : public QIconEngine {
public:
    explicit RenderedIconEngine(QString name)
        : m_name(std::move(name))
    {}

    QPixmap pixmap(const QSize &requested, QIcon::Mode mode, QIcon::State state) override
    {
        // Like Qt's own pixmap icons, never larger than the largest picture there is.
        const QSize size = actualSize(requested, mode, state);
        const int requestedSide = std::max(size.width(), size.height());
        const int *rendered =
            std::find_if(std::begin(iconSizes), std::end(iconSizes), [requestedSide](int side) {
                return side >= requestedSide;
            });
        const int side =
            rendered == std::end(iconSizes) ? iconSizes[std::size(iconSizes) - 1] : *rendered;
        const QResource resource(QStringLiteral(":/icons/%1-%2.argb32").arg(m_name).arg(side));
        const QByteArray pixels = resource.uncompressedData();
        if (pixels.size() != qsizetype(side) * side * 4) {
            qCWarning(lcApp) << "The icon resource" << resource.fileName() << "has" << pixels.size()
                             << "bytes, expected" << side * side * 4;
            return QPixmap();
        }
        QImage image(reinterpret_cast<const uchar *>(pixels.constData()),
                     side,
                     side,
                     side * 4,
                     QImage::Format_ARGB32_Premultiplied);
        image = side == size.width() && side == size.height()
                    ? image.copy()
                    : image.scaled(size, Qt::KeepAspectRatio, Qt::SmoothTransformation);
        QPixmap pixmap = QPixmap::fromImage(std::move(image));
        if (mode == QIcon::Disabled && qobject_cast<QApplication *>(QCoreApplication::instance())) {
            const QStyleOption option;
            pixmap = QApplication::style()->generatedIconPixmap(mode, pixmap, &option);
        }
        return pixmap;
    }

    // Draws at the painter's device pixel ratio, so that a 200 % screen gets a sharp picture.
    void paint(QPainter *painter, const QRect &rect, QIcon::Mode mode, QIcon::State state) override
    {
        const qreal ratio = painter->device() ? painter->device()->devicePixelRatio() : 1.0;
        QPixmap drawn = pixmap(rect.size() * ratio, mode, state);
        drawn.setDevicePixelRatio(ratio);
        painter->drawPixmap(rect, drawn);
    }

    QSize actualSize(const QSize &size, QIcon::Mode, QIcon::State) override
    {
        const int largest = iconSizes[std::size(iconSizes) - 1];
        const int side = std::clamp(std::min(size.width(), size.height()), 0, largest);
        return QSize(side, side);
    }

    QList<QSize> availableSizes(QIcon::Mode, QIcon::State) override
    {
        QList<QSize> sizes;
        for (int side : iconSizes)
            sizes.append(QSize(side, side));
        return sizes;
    }

    QIconEngine *clone() const override { return new RenderedIconEngine(m_name); }
    QString key() const override { return QStringLiteral("lamplighter-rendered"); }

private:
    QString m_name;
};

// Formats a UTC time for a person: the local time alone today, with the date on other days.
QString formatLocalTime(const QDateTime &utc)
{
    const QDateTime local = utc.toLocalTime();
    const QLocale locale;
    if (local.date() == QDate::currentDate())
        return locale.toString(local.time(), QLocale::ShortFormat);
    return locale.toString(local, QLocale::ShortFormat);
}

} // namespace

// Returns the state's icon for the status line, which is a disabled action because it only
// informs. A menu draws a disabled action's icon greyed out, so the disabled mode gets the
// coloured pictures too.
QIcon TrayIcon::statusIconFor(Session::State state)
{
    const QIcon coloured = iconFor(state);
    QIcon icon;
    for (int size : {16, 22, 24, 32, 48, 64}) {
        const QPixmap pixmap = coloured.pixmap(QSize(size, size));
        icon.addPixmap(pixmap, QIcon::Normal);
        icon.addPixmap(pixmap, QIcon::Disabled);
    }
    return icon;
}

QIcon TrayIcon::iconFor(Session::State state)
{
    static const bool registered = [] {
        initIconResources();
        return true;
    }();
    Q_UNUSED(registered);
    return QIcon(new RenderedIconEngine(iconName(state)));
}

TrayIcon::TrayIcon(Session *session, QObject *parent)
    : QObject(parent)
    , m_session(session)
    , m_tray(new QSystemTrayIcon(this))
    , m_menu(new QMenu)
    , m_previousState(session->state())
{
    m_statusAction = m_menu->addAction(QString());
    m_statusAction->setEnabled(false);
    m_expiryAction = m_menu->addAction(QString());
    m_expiryAction->setEnabled(false);
    m_menu->addSeparator();
    m_portalAction = m_menu->addAction(tr("Open portal…"), this, &TrayIcon::portalRequested);
    m_whoAmIAction = m_menu->addAction(tr("Who am I…"), this, &TrayIcon::whoAmIRequested);
    m_menu->addSeparator();
    m_signInAction = m_menu->addAction(tr("Sign in"), m_session, &Session::signIn);
    m_cancelAction = m_menu->addAction(tr("Cancel sign-in"), m_session, &Session::cancelSignIn);
    m_retryAction = m_menu->addAction(tr("Retry now"), m_session, &Session::refresh);
    m_signOutAction = m_menu->addAction(tr("Sign out"), m_session, &Session::signOut);
    m_menu->addSeparator();
    m_copyKubeconfigAction = m_menu->addAction(tr("Copy kubeconfig path"), this, [this] {
        QApplication::clipboard()->setText(m_session->kubeconfigPath());
    });
    m_menu->addSeparator();
    m_menu->addAction(tr("Quit"), qApp, &QCoreApplication::quit);
    m_tray->setContextMenu(m_menu);

    connect(m_session, &Session::stateChanged, this, &TrayIcon::handleStateChange);
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

QIcon TrayIcon::icon() const
{
    return m_tray->icon();
}

QRect TrayIcon::geometry() const
{
    return m_tray->geometry();
}

QString TrayIcon::expiryText() const
{
    const QDateTime expiresAt = m_session->expiresAt();
    if (expiresAt <= QDateTime::currentDateTimeUtc())
        return tr("Token expired at %1").arg(formatLocalTime(expiresAt));
    return tr("Token valid until %1").arg(formatLocalTime(expiresAt));
}

// Shows a failed refresh that Lamplighter retries. The message gives the token's expiry, so a
// separate warning that the token expires soon would only repeat it.
void TrayIcon::showFailureWhileRetrying()
{
    using namespace std::chrono;
    const QDateTime expiresAt = m_session->expiresAt();
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const QString token =
        expiresAt > now ? tr("your token stays valid until %1") : tr("your token expired at %1");
    showMessage(tr("Lamplighter"),
                tr("%1 Lamplighter retries at %2, and %3.")
                    .arg(m_session->errorMessage(),
                         formatLocalTime(m_session->nextRetryAt()),
                         token.arg(formatLocalTime(expiresAt))),
                QSystemTrayIcon::Warning);
    if (now.secsTo(expiresAt) <= seconds(expiryWarningLead).count())
        m_warnedExpiry = expiresAt;
}

QString TrayIcon::toolTip() const
{
    const bool hasToken = m_session->expiresAt().isValid();
    const QString retry = m_session->nextRetryAt().isValid()
                              ? tr("Next try at %1").arg(formatLocalTime(m_session->nextRetryAt()))
                              : QString();
    switch (m_session->state()) {
    case Session::State::Starting:
        return tr("Lamplighter: starting");
    case Session::State::SignedOut:
        if (!m_session->errorMessage().isEmpty())
            return tr("Lamplighter: signed out\n%1").arg(m_session->errorMessage());
        return tr("Lamplighter: signed out");
    case Session::State::SigningIn:
        return tr("Lamplighter: signing in; finish in your browser");
    case Session::State::SignedIn:
        return tr("Lamplighter: signed in as %1\n%2").arg(m_session->userName(), expiryText());
    case Session::State::Refreshing:
        return tr("Lamplighter: refreshing the token of %1\n%2")
            .arg(m_session->userName(), expiryText());
    case Session::State::Offline:
        return tr("Lamplighter: offline, the identity provider cannot be reached\n"
                  "Signed in as %1. %2. %3")
            .arg(m_session->userName(), expiryText(), retry);
    case Session::State::Failed:
        if (hasToken)
            return tr("Lamplighter: %1\nSigned in as %2. %3. %4")
                .arg(m_session->errorMessage(), m_session->userName(), expiryText(), retry);
        return tr("Lamplighter: %1").arg(m_session->errorMessage());
    }
    return {};
}

void TrayIcon::update()
{
    const Session::State state = m_session->state();
    const bool hasToken = m_session->expiresAt().isValid();
    const bool retrying =
        state == Session::State::Offline || (state == Session::State::Failed && hasToken);
    m_tray->setIcon(iconFor(state));
    m_tray->setToolTip(toolTip());

    switch (state) {
    case Session::State::Starting:
        m_statusAction->setText(tr("Starting…"));
        break;
    case Session::State::SignedOut:
        m_statusAction->setText(tr("Signed out"));
        break;
    case Session::State::SigningIn:
        m_statusAction->setText(tr("Signing in; finish in your browser"));
        break;
    case Session::State::SignedIn:
        m_statusAction->setText(tr("Signed in as %1").arg(m_session->userName()));
        break;
    case Session::State::Refreshing:
        m_statusAction->setText(tr("Refreshing the token of %1").arg(m_session->userName()));
        break;
    case Session::State::Offline:
        m_statusAction->setText(tr("Offline: the identity provider cannot be reached"));
        break;
    case Session::State::Failed:
        m_statusAction->setText(hasToken ? tr("Refreshing the token failed")
                                         : tr("Sign-in failed"));
        break;
    }
    m_statusAction->setIcon(statusIconFor(state));
    m_statusAction->setToolTip(m_session->errorMessage());

    m_expiryAction->setVisible(hasToken && state != Session::State::SigningIn);
    if (hasToken)
        m_expiryAction->setText(expiryText());

    m_whoAmIAction->setEnabled(hasToken && state != Session::State::SigningIn);
    m_signInAction->setVisible(state == Session::State::Starting ||
                               state == Session::State::SignedOut ||
                               state == Session::State::Failed);
    m_signInAction->setEnabled(state != Session::State::Starting);
    m_signInAction->setText(state == Session::State::Failed && hasToken ? tr("Sign in again")
                                                                        : tr("Sign in"));
    m_cancelAction->setVisible(state == Session::State::SigningIn);
    m_retryAction->setVisible(retrying);
    m_signOutAction->setVisible(hasToken && state != Session::State::SigningIn);
    m_copyKubeconfigAction->setEnabled(!m_session->kubeconfigPath().isEmpty());
}

void TrayIcon::handleStateChange(Session::State state)
{
    const Session::State previous = std::exchange(m_previousState, state);
    update();

    const QString error = m_session->errorMessage();
    if (state == Session::State::Failed && error != m_announcedFailure) {
        // Each retry that fails the same way would repeat the message, so it is shown once.
        if (previous == Session::State::SigningIn)
            showMessage(tr("Sign-in failed"), error, QSystemTrayIcon::Warning);
        else if (m_session->expiresAt().isValid() && m_session->nextRetryAt().isValid())
            showFailureWhileRetrying();
        else
            showMessage(tr("Lamplighter"), error, QSystemTrayIcon::Warning);
    }
    if (state == Session::State::SignedOut && !error.isEmpty() &&
        previous != Session::State::SignedOut)
        showMessage(tr("Signed out"), error, QSystemTrayIcon::Warning);

    if (state == Session::State::Failed)
        m_announcedFailure = error;
    else if (state != Session::State::Refreshing)
        m_announcedFailure.clear();
    warnIfExpiringUnrefreshed();
}

// Warns when a refresh failed less than expiryWarningLead before the token expires. The session
// retries at least once a minute, so the warning comes at most that late, and needs no timer.
void TrayIcon::warnIfExpiringUnrefreshed()
{
    using namespace std::chrono;
    const QDateTime expiresAt = m_session->expiresAt();
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const Session::State state = m_session->state();
    // A pending retry means that the last refresh failed and none has succeeded since. While a
    // retry is in flight the reason is not known yet, so the warning waits for its outcome.
    if (!expiresAt.isValid() || !m_session->nextRetryAt().isValid() ||
        expiresAt == m_warnedExpiry ||
        (state != Session::State::Offline && state != Session::State::Failed) ||
        now.secsTo(expiresAt) > seconds(expiryWarningLead).count())
        return;
    m_warnedExpiry = expiresAt;
    if (expiresAt <= now) {
        showMessage(tr("Token expired"),
                    tr("Your Kubernetes token expired at %1 and could not be refreshed. %2 "
                       "kubectl and Headlamp are rejected until a retry succeeds.")
                        .arg(formatLocalTime(expiresAt), m_session->errorMessage()),
                    QSystemTrayIcon::Warning);
        return;
    }
    showMessage(tr("Token expires soon"),
                tr("Your Kubernetes token expires at %1 and could not be refreshed. %2 Lamplighter "
                   "keeps retrying, but kubectl and Headlamp stop working at %1 unless a retry "
                   "succeeds.")
                    .arg(formatLocalTime(expiresAt), m_session->errorMessage()),
                QSystemTrayIcon::Warning);
}

void TrayIcon::notifyConfigurationReloaded(const QString &detail)
{
    QString text = tr("The configuration was reloaded.");
    if (!detail.isEmpty())
        text += QLatin1Char(' ') + detail;
    showMessage(tr("Configuration reloaded"), text, QSystemTrayIcon::Information);
}

void TrayIcon::notify(const QString &title, const QString &message)
{
    showMessage(title, message, QSystemTrayIcon::Information);
}

void TrayIcon::notifyConfigurationRejected(const QString &message)
{
    showMessage(tr("Configuration rejected"),
                tr("The configuration was rejected: %1").arg(message),
                QSystemTrayIcon::Warning);
}

void TrayIcon::showMessage(const QString &title,
                           const QString &text,
                           QSystemTrayIcon::MessageIcon icon)
{
    qCDebug(lcApp).noquote() << "Notification:" << title << "-" << text;
    Q_EMIT notified(title, text);
    if (QSystemTrayIcon::supportsMessages())
        m_tray->showMessage(title, text, icon);
}

} // namespace lamplighter
