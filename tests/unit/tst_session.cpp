#include "SessionCommands.h"
#include "SessionHarness.h"
#include "session/Session.h"

#include <QSignalSpy>
#include <QTest>

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

QTEST_GUILESS_MAIN(TestSession)
#include "tst_session.moc"
