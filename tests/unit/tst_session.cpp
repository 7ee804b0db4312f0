#include "SessionCommands.h"
#include "SessionHarness.h"
#include "session/Session.h"

#include <QFile>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>
#include <optional>

using namespace lamplighter;
using lamplighter::test::SessionHarness;
using Endpoint = SessionHarness::TokenEndpoint;

namespace {

constexpr int waitMs = 10'000;

QList<Session::State> statesOf(const QSignalSpy &spy)
{
    QList<Session::State> states;
    for (const QList<QVariant> &arguments : spy)
        states.append(arguments.at(0).value<Session::State>());
    return states;
}

} // namespace

// The states of a signed-in session as refreshes succeed, fail and recover. The provider is
// ProviderDouble, and Session::refresh() starts each refresh, so no test waits for a timer.
class TestSession : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void signInPassesThroughSigningIn();
    void refreshPassesThroughRefreshing();
    void unreachableProviderGoesOffline();
    void offlineStatusKeepsIdentity();
    void offlineRetriesBackOff();
    void offlineRecoversOnRefresh();
    void rejectedRefreshFails();
    void endedGrantSignsOut();
    void refreshWithoutTokensIgnored();
    void occupiedProxyPortNamed();
    void refreshWithoutIdTokenKeepsIdentity();
    void expiredIdTokenWithoutNewOneSignsOut();
    void groupsOverageReportedOnce();
    void groupsScopeMissingReported();
    void logoutAllThroughControlHandler();

private:
    // Signs in and returns the session, or nullptr after a failed check.
    Session *signedInSession();
    // Runs Session::refresh() and waits for the state that follows Refreshing.
    Session::State refreshAndWait(Session *session);

    SessionHarness *m_harness = nullptr;
};

void TestSession::init()
{
    m_harness = new SessionHarness(this);
    const QString started = m_harness->start();
    QVERIFY2(started.isEmpty(), qPrintable(started));
}

void TestSession::cleanup()
{
    delete m_harness;
    m_harness = nullptr;
}

Session *TestSession::signedInSession()
{
    Session *session = m_harness->createSession();
    if (!session || !m_harness->signIn(session) || session->state() != Session::State::SignedIn)
        return nullptr;
    return session;
}

Session::State TestSession::refreshAndWait(Session *session)
{
    session->refresh();
    // A refresh that never ends leaves Refreshing, which the caller's comparison reports.
    const bool ended = QTest::qWaitFor(
        [session] { return session->state() != Session::State::Refreshing; }, waitMs);
    Q_UNUSED(ended);
    return session->state();
}

void TestSession::signInPassesThroughSigningIn()
{
    Session *session = m_harness->createSession();
    QVERIFY(session);
    QSignalSpy states(session, &Session::stateChanged);

    QVERIFY(m_harness->signIn(session));
    QCOMPARE(statesOf(states),
             (QList<Session::State>{Session::State::SigningIn, Session::State::SignedIn}));
    QCOMPARE(session->userName(), SessionHarness::userName());
    QVERIFY(session->expiresAt().isValid());
    QVERIFY(!session->nextRetryAt().isValid());
}

void TestSession::groupsOverageReportedOnce()
{
    m_harness->setGroups(SessionHarness::Groups::Overage);
    Session *session = m_harness->createSession();
    QVERIFY(session);
    QSignalSpy notices(session, &Session::notice);

    QVERIFY(m_harness->signIn(session));
    QVERIFY(session->groups().isEmpty());
    QCOMPARE(notices.size(), 1);
    const QString notice = notices.first().first().toString();
    QVERIFY2(notice.contains(QStringLiteral("\"groups\" claim in \"_claim_names\"")),
             qPrintable(notice));
    QVERIFY2(notice.contains(QStringLiteral("az_groups")), qPrintable(notice));

    // A refresh brings the same overage and no second notice.
    QCOMPARE(refreshAndWait(session), Session::State::SignedIn);
    QCOMPARE(notices.size(), 1);
}

void TestSession::groupsScopeMissingReported()
{
    // The harness requests the scopes openid and offline_access only.
    m_harness->setGroups(SessionHarness::Groups::LeftOut);
    Session *session = m_harness->createSession();
    QVERIFY(session);
    QSignalSpy notices(session, &Session::notice);

    QVERIFY(m_harness->signIn(session));
    QCOMPARE(notices.size(), 1);
    const QString notice = notices.first().first().toString();
    QVERIFY2(notice.contains(QStringLiteral("add groups to oidc.scopes")), qPrintable(notice));
}

void TestSession::refreshPassesThroughRefreshing()
{
    Session *session = signedInSession();
    QVERIFY(session);
    QSignalSpy states(session, &Session::stateChanged);
    QSignalSpy refreshed(session, &Session::tokensRefreshed);

    session->refresh();
    QCOMPARE(session->state(), Session::State::Refreshing);
    QVERIFY(refreshed.wait(waitMs));
    QCOMPARE(statesOf(states),
             (QList<Session::State>{Session::State::Refreshing, Session::State::SignedIn}));
    QCOMPARE(Session::stateName(Session::State::Refreshing), QStringLiteral("refreshing"));
}

void TestSession::unreachableProviderGoesOffline()
{
    Session *session = signedInSession();
    QVERIFY(session);
    const QDateTime expiresAt = session->expiresAt();
    m_harness->setTokenEndpoint(Endpoint::DropConnection);

    QCOMPARE(refreshAndWait(session), Session::State::Offline);
    QVERIFY2(session->errorMessage().contains(QStringLiteral("cannot be reached")),
             qPrintable(session->errorMessage()));
    QVERIFY(session->nextRetryAt().isValid());
    // The current ID token stays in use until it expires.
    QCOMPARE(session->expiresAt(), expiresAt);
    QCOMPARE(session->userName(), SessionHarness::userName());
    QCOMPARE(Session::stateName(Session::State::Offline), QStringLiteral("offline"));
}

// `lamplighter status` while offline still names the person whose token the proxy serves.
void TestSession::offlineStatusKeepsIdentity()
{
    Session *session = signedInSession();
    QVERIFY(session);
    m_harness->setTokenEndpoint(Endpoint::DropConnection);
    QCOMPARE(refreshAndWait(session), Session::State::Offline);

    const QJsonObject status = describeSession(*session);

    QCOMPARE(status.value(QStringLiteral("state")).toString(), QStringLiteral("offline"));
    QCOMPARE(status.value(QStringLiteral("user")).toString(), SessionHarness::userName());
    QVERIFY(status.contains(QStringLiteral("expiresAt")));
}

void TestSession::offlineRetriesBackOff()
{
    Session *session = signedInSession();
    QVERIFY(session);
    m_harness->setTokenEndpoint(Endpoint::DropConnection);

    QList<qint64> delaysMs;
    for (int attempt = 0; attempt < 3; ++attempt) {
        const QDateTime before = QDateTime::currentDateTimeUtc();
        QCOMPARE(refreshAndWait(session), Session::State::Offline);
        const QDateTime after = QDateTime::currentDateTimeUtc();
        QVERIFY(session->nextRetryAt().isValid());
        // The delay is measured from before the refresh, so it includes the refresh itself.
        delaysMs.append(before.msecsTo(session->nextRetryAt()));
        QVERIFY(session->nextRetryAt() > after);
    }
    QVERIFY2(delaysMs.at(1) > delaysMs.at(0), qPrintable(QString::number(delaysMs.at(1))));
    QVERIFY2(delaysMs.at(2) > delaysMs.at(1), qPrintable(QString::number(delaysMs.at(2))));
}

void TestSession::offlineRecoversOnRefresh()
{
    Session *session = signedInSession();
    QVERIFY(session);
    m_harness->setTokenEndpoint(Endpoint::DropConnection);
    QCOMPARE(refreshAndWait(session), Session::State::Offline);

    m_harness->setTokenEndpoint(Endpoint::Issue);
    QSignalSpy states(session, &Session::stateChanged);
    QCOMPARE(refreshAndWait(session), Session::State::SignedIn);
    QCOMPARE(statesOf(states),
             (QList<Session::State>{Session::State::Refreshing, Session::State::SignedIn}));
    QVERIFY(!session->nextRetryAt().isValid());
    QVERIFY(session->errorMessage().isEmpty());
}

void TestSession::rejectedRefreshFails()
{
    Session *session = signedInSession();
    QVERIFY(session);
    m_harness->setTokenEndpoint(Endpoint::RejectClient);

    QCOMPARE(refreshAndWait(session), Session::State::Failed);
    QVERIFY2(session->errorMessage().contains(QStringLiteral("Refreshing the session failed")),
             qPrintable(session->errorMessage()));
    QVERIFY2(session->errorMessage().contains(QStringLiteral("invalid_client")),
             qPrintable(session->errorMessage()));
    // It keeps retrying, and the current ID token serves until then.
    QVERIFY(session->nextRetryAt().isValid());
    QVERIFY(session->expiresAt().isValid());
}

void TestSession::endedGrantSignsOut()
{
    Session *session = signedInSession();
    QVERIFY(session);
    m_harness->setTokenEndpoint(Endpoint::RejectGrant);

    QCOMPARE(refreshAndWait(session), Session::State::SignedOut);
    QVERIFY2(session->errorMessage().contains(QStringLiteral("sign in again")),
             qPrintable(session->errorMessage()));
    QVERIFY(!session->expiresAt().isValid());
    QVERIFY(!session->nextRetryAt().isValid());
}

void TestSession::refreshWithoutTokensIgnored()
{
    Session *session = m_harness->createSession();
    QVERIFY(session);
    QSignalSpy states(session, &Session::stateChanged);

    session->refresh();
    QCOMPARE(session->state(), Session::State::SignedOut);
    QVERIFY(!states.wait(200));
}

// Another program listens on the configured proxy port, so the session cannot serve.
void TestSession::occupiedProxyPortNamed()
{
    QTcpServer occupant;
    QVERIFY(occupant.listen(QHostAddress::LocalHost));
    const quint16 port = occupant.serverPort();
    QTemporaryDir home;
    QVERIFY(home.isValid());
    // The proxy's certificate goes below XDG_DATA_HOME, which must not be the user's own.
    const QByteArray previousDataHome = qgetenv("XDG_DATA_HOME");
    qputenv("XDG_DATA_HOME", home.filePath(QStringLiteral("data")).toLocal8Bit());
    const auto restoreDataHome = qScopeGuard([previousDataHome] {
        if (previousDataHome.isNull())
            qunsetenv("XDG_DATA_HOME");
        else
            qputenv("XDG_DATA_HOME", previousDataHome);
    });

    Config config;
    config.provider.issuer = QUrl(QStringLiteral("https://127.0.0.1:1"));
    config.provider.clientId = QStringLiteral("lamplighter");
    config.proxy.port = port;
    Session::Options options;
    options.kubeconfigPath = home.filePath(QStringLiteral("kubeconfig"));
    options.keychainService = QStringLiteral("lamplighter-test-occupied-port");
    Session session(config, options);
    std::optional<Status> outcome;
    connect(
        &session, &Session::started, this, [&outcome](const Status &status) { outcome = status; });
    session.start();

    QTRY_VERIFY_WITH_TIMEOUT(outcome.has_value(), waitMs);
    const Status status = *outcome;
    QVERIFY(!status.ok());
    const QString expected = QStringLiteral("127.0.0.1:%1").arg(port);
    QVERIFY2(status.errorMessage().contains(expected), qPrintable(status.errorMessage()));
    QVERIFY2(status.errorMessage().contains(QStringLiteral("Choose another port")),
             qPrintable(status.errorMessage()));
    QCOMPARE(session.state(), Session::State::Failed);
    QCOMPARE(session.errorMessage(), status.errorMessage());
    QVERIFY(!QFile::exists(options.kubeconfigPath));
    QVERIFY(occupant.isListening());
}

void TestSession::refreshWithoutIdTokenKeepsIdentity()
{
    Session *session = signedInSession();
    QVERIFY(session);
    const QDateTime expiresAt = session->expiresAt();
    m_harness->setTokenEndpoint(Endpoint::IssueWithoutIdToken);

    QCOMPARE(refreshAndWait(session), Session::State::SignedIn);
    QVERIFY2(session->errorMessage().isEmpty(), qPrintable(session->errorMessage()));
    QCOMPARE(session->expiresAt(), expiresAt);
    QCOMPARE(session->userName(), SessionHarness::userName());
    QCOMPARE(session->subject(), QStringLiteral("jane"));
}

// Once the kept ID token has expired, a refresh without a new one cannot help, so the session
// ends instead of refreshing in a loop.
void TestSession::expiredIdTokenWithoutNewOneSignsOut()
{
    m_harness->setIdTokenLifetime(1);
    Session *session = signedInSession();
    QVERIFY(session);
    QTRY_VERIFY_WITH_TIMEOUT(session->expiresAt() <= QDateTime::currentDateTimeUtc(), waitMs);
    m_harness->setTokenEndpoint(Endpoint::IssueWithoutIdToken);

    QCOMPARE(refreshAndWait(session), Session::State::SignedOut);
    const QString message = session->errorMessage();
    QVERIFY2(message.contains(QStringLiteral("without a new ID token")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("sign in again")), qPrintable(message));
    QVERIFY(!session->expiresAt().isValid());
}

// The running tray serves `lamplighter logout --all` as the control command "logout-all": it
// signs out and removes the tokens entry and the entry index, which it counts.
void TestSession::logoutAllThroughControlHandler()
{
    Session *session = signedInSession();
    QVERIFY(session);
    const ControlServer::Handler handler = makeControlHandler(session);
    std::optional<QJsonObject> reply;
    handler({{QStringLiteral("command"), logoutAllCommand}},
            [&reply](const QJsonObject &answer) { reply = answer; });
    QTRY_VERIFY_WITH_TIMEOUT(reply.has_value(), waitMs);
    QVERIFY2(reply->value(QStringLiteral("ok")).toBool(),
             qPrintable(reply->value(QStringLiteral("message")).toString()));
    QCOMPARE(reply->value(QStringLiteral("state")).toString(), QStringLiteral("signed out"));
    QCOMPARE(reply->value(QStringLiteral("removedEntries")).toInt(), 2);
    QVERIFY2(formatSessionDescription(*reply).contains(
                 QStringLiteral("Removed:     2 keychain entries\n")),
             qPrintable(formatSessionDescription(*reply)));
    QCOMPARE(session->state(), Session::State::SignedOut);

    // Nothing is left, so a second run removes nothing.
    reply.reset();
    handler({{QStringLiteral("command"), logoutAllCommand}},
            [&reply](const QJsonObject &answer) { reply = answer; });
    QTRY_VERIFY_WITH_TIMEOUT(reply.has_value(), waitMs);
    QCOMPARE(reply->value(QStringLiteral("removedEntries")).toInt(), 0);
}

QTEST_GUILESS_MAIN(TestSession)
#include "tst_session.moc"
