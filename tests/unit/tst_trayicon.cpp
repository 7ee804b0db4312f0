#include "SessionHarness.h"
#include "TrayIcon.h"

#include <QAction>
#include <QApplication>
#include <QDir>
#include <QLockFile>
#include <QMenu>
#include <QPainter>
#include <QProcess>
#include <QScreen>
#include <QSignalSpy>
#include <QTest>

using namespace lamplighter;
using lamplighter::test::SessionHarness;
using Endpoint = SessionHarness::TokenEndpoint;

namespace {

constexpr int waitMs = 10'000;

QImage imageOf(const QIcon &icon)
{
    return icon.pixmap(QSize(22, 22)).toImage();
}

} // namespace

// The tray icon in every session state, with the session run against ProviderDouble: the icon,
// the tooltip, which menu actions are shown and enabled, and the notifications. With
// LAMPLIGHTER_TRAY_SCREENSHOTS set to a folder, menuScreenshots() also writes a picture of the
// tray and its open menu in each state there. tests/tools/screenshot-tray-menu --states runs it
// under Xvfb with a tray host.
class TestTrayIcon : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void iconsDistinctPerState();
    void iconCappedAtLargestSize();
    void iconPaintsSharpAtDoubleScale();
    void signedOutOffersSignIn();
    void signingInOffersCancel();
    void cancelEndsSigningIn();
    void signedInShowsUserAndExpiry();
    void refreshingShowsRefreshIcon();
    void offlineOffersRetry();
    void offlineNearExpiryNotified();
    void offlineFarFromExpiryQuiet();
    void failureNearExpiryNotifiedOnce();
    void refreshFailureNotifiedOnce();
    void endedSessionNotified();
    void portalAndWhoAmIEmitSignals();
    void configurationNotifications();
    void menuScreenshots();

private:
    Session *signedInSession();
    Session::State refreshAndWait(Session *session);
    QAction *action(const QString &text) const;
    QStringList visibleActionTexts() const;
    void verifyIcon(Session::State state) const;
    void saveScreenshot(const QString &name);
    QWidget *notificationBalloon() const;
    void saveNotificationScreenshot(const QString &name);
    void saveScreenArea(const QString &name, const QRect &area);

    SessionHarness *m_harness = nullptr;
    TrayIcon *m_tray = nullptr;
};

void TestTrayIcon::init()
{
    m_harness = new SessionHarness(this);
    const QString started = m_harness->start();
    QVERIFY2(started.isEmpty(), qPrintable(started));
}

void TestTrayIcon::cleanup()
{
    delete m_tray;
    m_tray = nullptr;
    delete m_harness;
    m_harness = nullptr;
}

Session *TestTrayIcon::signedInSession()
{
    Session *session = m_harness->createSession();
    if (!session)
        return nullptr;
    m_tray = new TrayIcon(session);
    if (!m_harness->signIn(session) || session->state() != Session::State::SignedIn)
        return nullptr;
    return session;
}

Session::State TestTrayIcon::refreshAndWait(Session *session)
{
    session->refresh();
    // A refresh that never ends leaves Refreshing, which the caller's comparison reports.
    const bool ended = QTest::qWaitFor(
        [session] { return session->state() != Session::State::Refreshing; }, waitMs);
    Q_UNUSED(ended);
    return session->state();
}

QAction *TestTrayIcon::action(const QString &text) const
{
    const QList<QAction *> actions = m_tray->menu()->actions();
    for (QAction *candidate : actions) {
        if (candidate->text() == text)
            return candidate;
    }
    // The test fails, and goes on with an action that is neither visible nor enabled.
    QTest::qFail(qPrintable(QStringLiteral("The tray menu has no action \"%1\"").arg(text)),
                 __FILE__,
                 __LINE__);
    auto *missing = new QAction(text, m_tray);
    missing->setVisible(false);
    missing->setEnabled(false);
    return missing;
}

QStringList TestTrayIcon::visibleActionTexts() const
{
    QStringList texts;
    const QList<QAction *> actions = m_tray->menu()->actions();
    for (const QAction *candidate : actions) {
        if (candidate->isVisible() && !candidate->isSeparator())
            texts.append(candidate->text());
    }
    return texts;
}

void TestTrayIcon::verifyIcon(Session::State state) const
{
    QCOMPARE(imageOf(m_tray->icon()), imageOf(TrayIcon::iconFor(state)));
}

void TestTrayIcon::iconsDistinctPerState()
{
    const QList<Session::State> states{Session::State::Starting,
                                       Session::State::SignedOut,
                                       Session::State::SigningIn,
                                       Session::State::SignedIn,
                                       Session::State::Refreshing,
                                       Session::State::Offline,
                                       Session::State::Failed};
    for (Session::State state : states) {
        const QIcon icon = TrayIcon::iconFor(state);
        QVERIFY2(!icon.isNull(), qPrintable(Session::stateName(state)));
        for (int size : {16, 22, 24, 48}) {
            const QImage image = icon.pixmap(QSize(size, size)).toImage();
            QCOMPARE(image.size(), QSize(size, size));
            // An icon whose pixels failed to load draws nothing.
            QVERIFY2(image.pixelColor(size / 2, size / 2).alpha() > 0,
                     qPrintable(Session::stateName(state)));
        }
    }
    for (qsizetype i = 0; i < states.size(); ++i) {
        for (qsizetype j = i + 1; j < states.size(); ++j) {
            QVERIFY2(imageOf(TrayIcon::iconFor(states.at(i))) !=
                         imageOf(TrayIcon::iconFor(states.at(j))),
                     qPrintable(Session::stateName(states.at(i)) + QStringLiteral(" and ") +
                                Session::stateName(states.at(j))));
        }
    }
}

// The icons were rendered up to 128 pixels, and a larger request gets that size, not a copy
// scaled up to any size a caller asks for.
void TestTrayIcon::iconCappedAtLargestSize()
{
    const QIcon icon = TrayIcon::iconFor(Session::State::SignedIn);
    QCOMPARE(icon.actualSize(QSize(1000, 1000)), QSize(128, 128));
    QCOMPARE(icon.pixmap(QSize(1000, 1000)).size(), QSize(128, 128));
    QCOMPARE(icon.actualSize(QSize(40, 30)), QSize(30, 30));
}

// QIcon::paint() on a 200 % surface draws the 44-pixel rendering one to one, not the 22-pixel
// one stretched.
void TestTrayIcon::iconPaintsSharpAtDoubleScale()
{
    const QIcon icon = TrayIcon::iconFor(Session::State::SignedIn);
    QImage painted(44, 44, QImage::Format_ARGB32_Premultiplied);
    painted.fill(Qt::transparent);
    painted.setDevicePixelRatio(2.0);
    {
        QPainter painter(&painted);
        icon.paint(&painter, QRect(0, 0, 22, 22));
    }
    painted.setDevicePixelRatio(1.0);
    const QImage expected =
        icon.pixmap(QSize(44, 44)).toImage().convertToFormat(QImage::Format_ARGB32_Premultiplied);
    QCOMPARE(painted, expected);
}

void TestTrayIcon::signedOutOffersSignIn()
{
    Session *session = m_harness->createSession();
    QVERIFY(session);
    m_tray = new TrayIcon(session);

    verifyIcon(Session::State::SignedOut);
    QCOMPARE(m_tray->toolTip(), QStringLiteral("Lamplighter: signed out"));
    QCOMPARE(visibleActionTexts(),
             (QStringList{QStringLiteral("Signed out"),
                          QStringLiteral("Open portal…"),
                          QStringLiteral("Who am I…"),
                          QStringLiteral("Sign in"),
                          QStringLiteral("Copy kubeconfig path"),
                          QStringLiteral("Quit")}));
    QVERIFY(action(QStringLiteral("Sign in"))->isEnabled());
    QVERIFY(action(QStringLiteral("Open portal…"))->isEnabled());
    QVERIFY(!action(QStringLiteral("Who am I…"))->isEnabled());
    // The session runs no proxy here, so it writes no kubeconfig.
    QVERIFY(!action(QStringLiteral("Copy kubeconfig path"))->isEnabled());
}

void TestTrayIcon::signingInOffersCancel()
{
    Session *session = m_harness->createSession();
    QVERIFY(session);
    m_tray = new TrayIcon(session);
    QVERIFY(m_harness->beginSignIn(session));

    verifyIcon(Session::State::SigningIn);
    QVERIFY2(m_tray->toolTip().contains(QStringLiteral("finish in your browser")),
             qPrintable(m_tray->toolTip()));
    const QStringList visible = visibleActionTexts();
    QVERIFY2(visible.contains(QStringLiteral("Cancel sign-in")), qPrintable(visible.join(u',')));
    QVERIFY2(!visible.contains(QStringLiteral("Sign in")), qPrintable(visible.join(u',')));
    QVERIFY2(!visible.contains(QStringLiteral("Sign out")), qPrintable(visible.join(u',')));
    QVERIFY(!action(QStringLiteral("Who am I…"))->isEnabled());
}

void TestTrayIcon::cancelEndsSigningIn()
{
    Session *session = m_harness->createSession();
    QVERIFY(session);
    m_tray = new TrayIcon(session);
    QVERIFY(m_harness->beginSignIn(session));
    QSignalSpy notified(m_tray, &TrayIcon::notified);

    action(QStringLiteral("Cancel sign-in"))->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(session->state() != Session::State::SigningIn, waitMs);
    QCOMPARE(session->state(), Session::State::Failed);
    verifyIcon(Session::State::Failed);
    QVERIFY(action(QStringLiteral("Sign in"))->isVisible());
    QVERIFY(!action(QStringLiteral("Cancel sign-in"))->isVisible());
    QVERIFY(!action(QStringLiteral("Retry now"))->isVisible());
    QCOMPARE(notified.size(), 1);
    QCOMPARE(notified.first().at(0).toString(), QStringLiteral("Sign-in failed"));
}

void TestTrayIcon::signedInShowsUserAndExpiry()
{
    QVERIFY(signedInSession());

    verifyIcon(Session::State::SignedIn);
    const QString toolTip = m_tray->toolTip();
    QVERIFY2(toolTip.startsWith(
                 QStringLiteral("Lamplighter: signed in as %1\n").arg(SessionHarness::userName())),
             qPrintable(toolTip));
    QVERIFY2(toolTip.contains(QStringLiteral("Token valid until ")), qPrintable(toolTip));
    QCOMPARE(visibleActionTexts().value(0),
             QStringLiteral("Signed in as %1").arg(SessionHarness::userName()));
    QVERIFY2(visibleActionTexts().value(1).startsWith(QStringLiteral("Token valid until ")),
             qPrintable(visibleActionTexts().value(1)));
    QVERIFY(action(QStringLiteral("Sign out"))->isVisible());
    QVERIFY(!action(QStringLiteral("Sign in"))->isVisible());
    QVERIFY(!action(QStringLiteral("Retry now"))->isVisible());
    QVERIFY(action(QStringLiteral("Who am I…"))->isEnabled());
}

void TestTrayIcon::refreshingShowsRefreshIcon()
{
    Session *session = signedInSession();
    QVERIFY(session);
    QSignalSpy refreshed(session, &Session::tokensRefreshed);

    session->refresh();
    QCOMPARE(session->state(), Session::State::Refreshing);
    verifyIcon(Session::State::Refreshing);
    QVERIFY2(m_tray->toolTip().startsWith(QStringLiteral("Lamplighter: refreshing the token of ")),
             qPrintable(m_tray->toolTip()));
    QVERIFY(action(QStringLiteral("Sign out"))->isVisible());

    QVERIFY(refreshed.wait(waitMs));
    verifyIcon(Session::State::SignedIn);
}

void TestTrayIcon::offlineOffersRetry()
{
    Session *session = signedInSession();
    QVERIFY(session);
    m_harness->setTokenEndpoint(Endpoint::DropConnection);
    QCOMPARE(refreshAndWait(session), Session::State::Offline);

    verifyIcon(Session::State::Offline);
    const QString toolTip = m_tray->toolTip();
    QVERIFY2(toolTip.startsWith(QStringLiteral("Lamplighter: offline, the identity provider cannot "
                                               "be reached\n")),
             qPrintable(toolTip));
    QVERIFY2(toolTip.contains(QStringLiteral("Token valid until ")), qPrintable(toolTip));
    QVERIFY2(toolTip.contains(QStringLiteral("Next try at ")), qPrintable(toolTip));
    QVERIFY(action(QStringLiteral("Retry now"))->isVisible());
    QVERIFY(action(QStringLiteral("Sign out"))->isVisible());
    QVERIFY(action(QStringLiteral("Who am I…"))->isEnabled());

    m_harness->setTokenEndpoint(Endpoint::Issue);
    action(QStringLiteral("Retry now"))->trigger();
    QTRY_COMPARE_WITH_TIMEOUT(session->state(), Session::State::SignedIn, waitMs);
    verifyIcon(Session::State::SignedIn);
    QVERIFY(!action(QStringLiteral("Retry now"))->isVisible());
}

void TestTrayIcon::offlineNearExpiryNotified()
{
    // Tokens that live less than the warning lead expire "soon" as soon as they are issued.
    m_harness->setIdTokenLifetime(std::chrono::seconds(TrayIcon::expiryWarningLead).count() / 2);
    Session *session = signedInSession();
    QVERIFY(session);
    QSignalSpy notified(m_tray, &TrayIcon::notified);
    m_harness->setTokenEndpoint(Endpoint::DropConnection);

    QCOMPARE(refreshAndWait(session), Session::State::Offline);
    QCOMPARE(notified.size(), 1);
    QCOMPARE(notified.first().at(0).toString(), QStringLiteral("Token expires soon"));
    QVERIFY2(notified.first().at(1).toString().contains(QStringLiteral("cannot be reached")),
             qPrintable(notified.first().at(1).toString()));

    // The same expiry is announced once, however often the retries fail.
    QCOMPARE(refreshAndWait(session), Session::State::Offline);
    QCOMPARE(notified.size(), 1);
}

void TestTrayIcon::offlineFarFromExpiryQuiet()
{
    Session *session = signedInSession();
    QVERIFY(session);
    QSignalSpy notified(m_tray, &TrayIcon::notified);
    m_harness->setTokenEndpoint(Endpoint::DropConnection);

    QCOMPARE(refreshAndWait(session), Session::State::Offline);
    QCOMPARE(notified.size(), 0);
}

void TestTrayIcon::failureNearExpiryNotifiedOnce()
{
    m_harness->setIdTokenLifetime(std::chrono::seconds(TrayIcon::expiryWarningLead).count() / 2);
    Session *session = signedInSession();
    QVERIFY(session);
    QSignalSpy notified(m_tray, &TrayIcon::notified);
    m_harness->setTokenEndpoint(Endpoint::RejectClient);

    // The failure's message gives the expiry, so no second warning repeats it.
    QCOMPARE(refreshAndWait(session), Session::State::Failed);
    QCOMPARE(notified.size(), 1);
    QCOMPARE(notified.first().at(0).toString(), QStringLiteral("Lamplighter"));
    QVERIFY2(notified.first().at(1).toString().contains(QStringLiteral("stays valid until")),
             qPrintable(notified.first().at(1).toString()));
}

void TestTrayIcon::refreshFailureNotifiedOnce()
{
    Session *session = signedInSession();
    QVERIFY(session);
    QSignalSpy notified(m_tray, &TrayIcon::notified);
    m_harness->setTokenEndpoint(Endpoint::RejectClient);

    QCOMPARE(refreshAndWait(session), Session::State::Failed);
    verifyIcon(Session::State::Failed);
    QCOMPARE(notified.size(), 1);
    QCOMPARE(notified.first().at(0).toString(), QStringLiteral("Lamplighter"));
    const QString message = notified.first().at(1).toString();
    QVERIFY2(
        message.startsWith(session->errorMessage() + QStringLiteral(" Lamplighter retries at ")),
        qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral(", and your token stays valid until ")),
             qPrintable(message));
    QVERIFY(action(QStringLiteral("Retry now"))->isVisible());
    QVERIFY(action(QStringLiteral("Sign in again"))->isVisible());
    QVERIFY(action(QStringLiteral("Sign out"))->isVisible());
    QVERIFY2(m_tray->toolTip().contains(session->errorMessage()), qPrintable(m_tray->toolTip()));

    QCOMPARE(refreshAndWait(session), Session::State::Failed);
    QCOMPARE(notified.size(), 1);
}

void TestTrayIcon::endedSessionNotified()
{
    Session *session = signedInSession();
    QVERIFY(session);
    QSignalSpy notified(m_tray, &TrayIcon::notified);
    m_harness->setTokenEndpoint(Endpoint::RejectGrant);

    QCOMPARE(refreshAndWait(session), Session::State::SignedOut);
    verifyIcon(Session::State::SignedOut);
    QCOMPARE(notified.size(), 1);
    QCOMPARE(notified.first().at(0).toString(), QStringLiteral("Signed out"));
    QVERIFY(action(QStringLiteral("Sign in"))->isVisible());
    QVERIFY(!action(QStringLiteral("Sign out"))->isVisible());
    QVERIFY(!action(QStringLiteral("Who am I…"))->isEnabled());
}

void TestTrayIcon::portalAndWhoAmIEmitSignals()
{
    QVERIFY(signedInSession());
    QSignalSpy portal(m_tray, &TrayIcon::portalRequested);
    QSignalSpy whoAmI(m_tray, &TrayIcon::whoAmIRequested);

    action(QStringLiteral("Open portal…"))->trigger();
    QCOMPARE(portal.size(), 1);
    QCOMPARE(whoAmI.size(), 0);
    action(QStringLiteral("Who am I…"))->trigger();
    QCOMPARE(portal.size(), 1);
    QCOMPARE(whoAmI.size(), 1);
}

void TestTrayIcon::configurationNotifications()
{
    Session *session = m_harness->createSession();
    QVERIFY(session);
    m_tray = new TrayIcon(session);
    QSignalSpy notified(m_tray, &TrayIcon::notified);

    m_tray->notifyConfigurationReloaded();
    m_tray->notifyConfigurationRejected(
        QStringLiteral("config.yaml:3:5: oidc.issuer must be an https URL"));
    QCOMPARE(notified.size(), 2);
    QCOMPARE(notified.at(0).at(1).toString(), QStringLiteral("The configuration was reloaded."));
    QCOMPARE(notified.at(1).at(1).toString(),
             QStringLiteral("The configuration was rejected: config.yaml:3:5: oidc.issuer must "
                            "be an https URL"));
}

void TestTrayIcon::saveScreenshot(const QString &name)
{
    m_tray->show();
    // The tray host embeds the icon a moment after show().
    QTest::qWait(500);
    const QRect iconGeometry = m_tray->geometry();
    QMenu *menu = m_tray->menu();
    // Above the icon, as a panel at the bottom of the screen places it.
    const QSize menuSize = menu->sizeHint();
    menu->popup(iconGeometry.isValid() ? QPoint(iconGeometry.right() + 1 - menuSize.width(),
                                                iconGeometry.top() - menuSize.height())
                                       : QPoint(0, 0));
    QVERIFY(QTest::qWaitForWindowExposed(menu));
    QTest::qWait(300);
    saveScreenArea(name, menu->geometry().united(iconGeometry));
    menu->hide();
}

QWidget *TestTrayIcon::notificationBalloon() const
{
    const QList<QWidget *> windows = QApplication::topLevelWidgets();
    for (QWidget *window : windows) {
        if (window->isVisible() && qstrcmp(window->metaObject()->className(), "QBalloonTip") == 0)
            return window;
    }
    return nullptr;
}

void TestTrayIcon::saveNotificationScreenshot(const QString &name)
{
    // Qt draws the notification itself when no notification service runs.
    QTRY_VERIFY_WITH_TIMEOUT(notificationBalloon(), waitMs);
    QTest::qWait(300);
    saveScreenArea(name, notificationBalloon()->geometry().united(m_tray->geometry()));
    // The balloon would cover the next picture until it times out after ten seconds.
    QTRY_VERIFY_WITH_TIMEOUT(!notificationBalloon(), 3 * waitMs);
}

// Writes the screen's content in area, with a margin, to NAME.png. ImageMagick's import reads
// the X server's picture, so the tray host's panel is in it too.
void TestTrayIcon::saveScreenArea(const QString &name, const QRect &area)
{
    QScreen *screen = QGuiApplication::primaryScreen();
    const QRect framed = area.adjusted(-40, -24, 24, 12).intersected(screen->geometry());
    const qreal ratio = screen->devicePixelRatio();
    const QString crop = QStringLiteral("%1x%2+%3+%4")
                             .arg(qRound(framed.width() * ratio))
                             .arg(qRound(framed.height() * ratio))
                             .arg(qRound(framed.x() * ratio))
                             .arg(qRound(framed.y() * ratio));
    const QString folder = qEnvironmentVariable("LAMPLIGHTER_TRAY_SCREENSHOTS");
    const QString path = QDir(folder).filePath(name + QStringLiteral(".png"));
    QProcess import;
    import.start(QStringLiteral("import"),
                 {QStringLiteral("-window"),
                  QStringLiteral("root"),
                  QStringLiteral("-crop"),
                  crop,
                  QStringLiteral("+repage"),
                  path});
    QVERIFY2(QTest::qWaitFor([&import] { return import.state() == QProcess::NotRunning; }, waitMs),
             "import did not finish");
    QVERIFY2(import.exitStatus() == QProcess::NormalExit && import.exitCode() == 0,
             import.readAllStandardError().constData());
    qInfo("Wrote %s", qPrintable(path));
}

void TestTrayIcon::menuScreenshots()
{
    const QString folder = qEnvironmentVariable("LAMPLIGHTER_TRAY_SCREENSHOTS");
    if (folder.isEmpty())
        QSKIP("LAMPLIGHTER_TRAY_SCREENSHOTS is not set");
    QVERIFY(QDir().mkpath(folder));
    QVERIFY2(QSystemTrayIcon::isSystemTrayAvailable(), "No tray host runs on this display");

    Session *session = m_harness->createSession();
    QVERIFY(session);
    m_tray = new TrayIcon(session);
    saveScreenshot(QStringLiteral("tray-menu-signed-out"));

    QVERIFY(m_harness->beginSignIn(session));
    saveScreenshot(QStringLiteral("tray-menu-signing-in"));
    QVERIFY(m_harness->completeSignIn(session));
    QCOMPARE(session->state(), Session::State::SignedIn);
    saveScreenshot(QStringLiteral("tray-menu-signed-in"));

    // A refresh waits while another process holds the refresh lock, so it stays in flight.
    QVERIFY(QDir().mkpath(m_harness->stateFolder()));
    QLockFile otherProcess(m_harness->stateFolder() + QStringLiteral("/refresh.lock"));
    QVERIFY(otherProcess.tryLock(0));
    session->refresh();
    QCOMPARE(session->state(), Session::State::Refreshing);
    saveScreenshot(QStringLiteral("tray-menu-refreshing"));
    otherProcess.unlock();
    QTRY_COMPARE_WITH_TIMEOUT(session->state(), Session::State::SignedIn, waitMs);

    m_harness->setTokenEndpoint(Endpoint::DropConnection);
    QCOMPARE(refreshAndWait(session), Session::State::Offline);
    saveScreenshot(QStringLiteral("tray-menu-offline"));

    m_harness->setTokenEndpoint(Endpoint::RejectClient);
    QCOMPARE(refreshAndWait(session), Session::State::Failed);
    saveNotificationScreenshot(QStringLiteral("tray-notification-refresh-failed"));
    saveScreenshot(QStringLiteral("tray-menu-error"));
}

QTEST_MAIN(TestTrayIcon)
#include "tst_trayicon.moc"
