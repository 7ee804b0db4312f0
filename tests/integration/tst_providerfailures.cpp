#include "FixtureServer.h"
#include "oidc/Base64Url.h"
#include "session/Session.h"

#include <QDeadlineTimer>
#include <QEventLoop>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QSignalSpy>
#include <QSslConfiguration>
#include <QTemporaryDir>
#include <QTest>
#include <csignal>
#include <memory>
#include <optional>
#include <sys/types.h>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

// Signing in starts Chromium, which takes a few seconds. The browser script gives up after 60 s.
constexpr int signInTimeoutMs = 120'000;
constexpr int refreshTimeoutMs = 20'000;
// Lamplighter gives up on a provider that sends no data for this long.
constexpr int transferTimeoutMs = 30'000;
// Lamplighter fetches the provider's key set again for an unknown key id at most this often.
constexpr int keySetRefetchIntervalMs = 60'000;

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

// Returns the "kid" of a JWS header, or an empty string when the token is malformed.
QString keyIdOf(const QByteArray &token)
{
    const std::optional<QByteArray> header = decodeBase64Url(token.split('.').value(0));
    if (!header)
        return QString();
    return QJsonDocument::fromJson(*header).object().value(QStringLiteral("kid")).toString();
}

} // namespace

// A signed-in Session against the real OpenID provider (oidc-provider on 127.0.0.1) while the
// provider goes down and comes back, stops responding, and rotates its signing keys. Headless
// Chromium signs in once, and every later step must work without a browser. ctest runs this test
// inside a private keychain session (tests/tools/with-keyring), so the tokens are in
// gnome-keyring.
class TestProviderFailures : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();

    void signInOnce();
    void downProviderGoesOffline();
    void offlineRetriesBackOff();
    void returningProviderRecovers();
    void silentProviderTimesOut();
    void rotatedKeysVerified();
    void refreshWithoutIdTokenKeepsIdentity();
    void noBrowserAfterSignIn();

private:
    QString providerLog() const;
    void signalProvider(int signal);
    // Runs Session::refresh() and waits until it has ended.
    Session::State refreshAndWait(int timeoutMs = refreshTimeoutMs);
    // Returns the ID token that requestFreshIdToken() hands out, or an empty array.
    QByteArray currentIdToken();
    // Sends a POST to a test endpoint of the provider and returns its JSON response.
    QJsonObject postToProvider(const QString &path, const QString &query);

    QTemporaryDir m_work;
    FixtureServer m_provider{QStringLiteral("provider"),
                             m_work.filePath(QStringLiteral("provider.log"))};
    QUrl m_issuer;
    QList<QSslCertificate> m_caCertificates;
    std::unique_ptr<Session> m_session;
    QList<QProcess *> m_browsers;
    QDateTime m_signedInExpiry;
    QDeadlineTimer m_keySetRefetchAllowed;
    QList<qint64> m_retryDelaysMs;
};

void TestProviderFailures::initTestCase()
{
    QVERIFY(m_work.isValid());
    const Result<QString> node = findNode();
    QVERIFY2(node.ok(), qPrintable(node.errorMessage()));

    const QString pki = m_work.filePath(QStringLiteral("pki"));
    const Result<QSslCertificate> ca = makeTestPki(pki);
    QVERIFY2(ca.ok(), qPrintable(ca.errorMessage()));
    m_caCertificates = {*ca};

    const Result<QUrl> issuer =
        m_provider.startProvider(pki, {QStringLiteral("--id-token-ttl"), QStringLiteral("300")});
    QVERIFY2(issuer.ok(), qPrintable(issuer.errorMessage()));
    m_issuer = *issuer;
    qputenv("LAMPLIGHTER_TEST_ARTIFACTS",
            m_work.filePath(QStringLiteral("artifacts")).toLocal8Bit());

    Config config;
    config.provider.issuer = m_issuer;
    config.provider.clientId = QStringLiteral("lamplighter");
    config.provider.scopes = {QStringLiteral("openid"),
                              QStringLiteral("email"),
                              QStringLiteral("groups"),
                              QStringLiteral("offline_access")};
    config.provider.userNameClaim = QStringLiteral("email");
    config.provider.caCertificates = m_caCertificates;
    config.login.timeout = std::chrono::seconds(signInTimeoutMs / 1000);

    Session::Options options;
    options.serveProxy = false;
    options.refreshOnStart = false;
    options.kubeconfigPath = m_work.filePath(QStringLiteral("state/kubeconfig"));
    options.keychainService = QStringLiteral("lamplighter-provider-failures-test");
    options.urlOpener = [this](const QUrl &url) {
        m_browsers.append(
            startBrowserLogin(url, m_work.filePath(QStringLiteral("browser.log")), this));
        return true;
    };
    m_session = std::make_unique<Session>(config, options);
    QSignalSpy started(m_session.get(), &Session::started);
    m_session->start();
    QVERIFY(started.wait(refreshTimeoutMs));
    QCOMPARE(m_session->state(), Session::State::SignedOut);
}

void TestProviderFailures::cleanupTestCase()
{
    if (m_session)
        m_session->signOut();
    m_session.reset();
    for (QProcess *browser : std::as_const(m_browsers)) {
        if (browser->state() != QProcess::NotRunning) {
            browser->kill();
            browser->waitForFinished(5000);
        }
    }
    if (!m_provider.isRunning())
        return;
    // A provider stopped with SIGSTOP by a failed step must run again to handle SIGTERM.
    signalProvider(SIGCONT);
    m_provider.stop();
}

QString TestProviderFailures::providerLog() const
{
    return m_provider.log() + QStringLiteral("\nbrowser log:\n") +
           readFile(m_work.filePath(QStringLiteral("browser.log")));
}

void TestProviderFailures::signalProvider(int signal)
{
    const qint64 pid = m_provider.process().processId();
    QVERIFY(pid > 0);
    QCOMPARE(::kill(pid_t(pid), signal), 0);
}

Session::State TestProviderFailures::refreshAndWait(int timeoutMs)
{
    // The previous refresh holds on until the keychain has stored its tokens, and until then
    // refresh() does nothing.
    const bool began = QTest::qWaitFor(
        [this] {
            m_session->refresh();
            return m_session->state() == Session::State::Refreshing;
        },
        refreshTimeoutMs);
    if (!began)
        return m_session->state();
    // A refresh that never ends leaves Refreshing, which the caller's comparison reports.
    const bool ended = QTest::qWaitFor(
        [this] { return m_session->state() != Session::State::Refreshing; }, timeoutMs);
    Q_UNUSED(ended);
    return m_session->state();
}

QByteArray TestProviderFailures::currentIdToken()
{
    std::optional<Session::IdTokenResult> result;
    m_session->requestFreshIdToken(
        [&result](const Session::IdTokenResult &outcome) { result = outcome; });
    if (!QTest::qWaitFor([&result] { return result.has_value(); }, refreshTimeoutMs))
        return QByteArray();
    return result->idToken;
}

QJsonObject TestProviderFailures::postToProvider(const QString &path, const QString &query)
{
    QNetworkAccessManager network;
    QUrl url = m_issuer;
    url.setPath(path);
    url.setQuery(query);
    QNetworkRequest request(url);
    request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setCaCertificates(m_caCertificates);
    request.setSslConfiguration(tls);
    QNetworkReply *reply = network.post(request, QByteArray());
    QEventLoop loop;
    connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
    loop.exec();
    reply->deleteLater();
    if (reply->error() != QNetworkReply::NoError)
        qWarning() << "The POST to" << path << "failed:" << reply->errorString();
    return QJsonDocument::fromJson(reply->readAll()).object();
}

void TestProviderFailures::signInOnce()
{
    m_session->signIn();
    QTRY_VERIFY2_WITH_TIMEOUT(m_session->state() != Session::State::SigningIn,
                              qPrintable(providerLog()),
                              signInTimeoutMs);
    QVERIFY2(m_session->state() == Session::State::SignedIn,
             qPrintable(m_session->errorMessage() + QLatin1Char('\n') + providerLog()));
    QCOMPARE(m_session->userName(), QStringLiteral("jane@example.test"));
    QCOMPARE(m_browsers.size(), 1);
    QVERIFY2(!m_session->tokensInMemoryOnly(),
             "the tokens are not in the keychain; run this test through tests/tools/with-keyring");
    m_signedInExpiry = m_session->expiresAt();
    // Signing in fetched the key set.
    m_keySetRefetchAllowed = QDeadlineTimer(keySetRefetchIntervalMs + 1000);
    QVERIFY(m_signedInExpiry > QDateTime::currentDateTimeUtc());
}

// The provider stops listening, so the refresh fails as offline. The current ID token, which has
// not expired, is still handed out.
void TestProviderFailures::downProviderGoesOffline()
{
    QVERIFY(m_session->state() == Session::State::SignedIn);
    const QByteArray idToken = currentIdToken();
    QVERIFY(!idToken.isEmpty());
    signalProvider(SIGUSR1);

    const QDateTime before = QDateTime::currentDateTimeUtc();
    QCOMPARE(refreshAndWait(), Session::State::Offline);
    const QString message = m_session->errorMessage();
    QVERIFY2(message.contains(QStringLiteral("cannot be reached")), qPrintable(message));
    QVERIFY2(message.contains(m_issuer.toString()), qPrintable(message));
    QVERIFY(m_session->nextRetryAt().isValid());
    m_retryDelaysMs.append(before.msecsTo(m_session->nextRetryAt()));

    QCOMPARE(m_session->expiresAt(), m_signedInExpiry);
    QCOMPARE(m_session->userName(), QStringLiteral("jane@example.test"));
    QCOMPARE(currentIdToken(), idToken);
}

void TestProviderFailures::offlineRetriesBackOff()
{
    QVERIFY(m_session->state() == Session::State::Offline);
    for (int attempt = 0; attempt < 2; ++attempt) {
        const QDateTime before = QDateTime::currentDateTimeUtc();
        QCOMPARE(refreshAndWait(), Session::State::Offline);
        QVERIFY(m_session->nextRetryAt().isValid());
        m_retryDelaysMs.append(before.msecsTo(m_session->nextRetryAt()));
    }
    QCOMPARE(m_retryDelaysMs.size(), 3);
    QVERIFY2(m_retryDelaysMs.at(1) > m_retryDelaysMs.at(0),
             qPrintable(QString::number(m_retryDelaysMs.at(1))));
    QVERIFY2(m_retryDelaysMs.at(2) > m_retryDelaysMs.at(1),
             qPrintable(QString::number(m_retryDelaysMs.at(2))));
}

void TestProviderFailures::returningProviderRecovers()
{
    QVERIFY(m_session->state() == Session::State::Offline);
    signalProvider(SIGUSR2);
    // The provider logs the line once it listens again.
    QTRY_VERIFY_WITH_TIMEOUT(
        readFile(m_work.filePath(QStringLiteral("provider.log"))).contains(QStringLiteral("back:")),
        10'000);

    // ID tokens carry times in whole seconds, so a refresh in the same second as the sign-in
    // could return a token that expires at the same time.
    QTest::qWait(1100);
    QCOMPARE(refreshAndWait(), Session::State::SignedIn);
    QVERIFY2(m_session->errorMessage().isEmpty(), qPrintable(m_session->errorMessage()));
    QVERIFY(!m_session->nextRetryAt().isValid());
    QVERIFY(m_session->expiresAt() > m_signedInExpiry);
}

// The provider accepts the connection but sends nothing until Lamplighter gives up.
void TestProviderFailures::silentProviderTimesOut()
{
    QVERIFY(m_session->state() == Session::State::SignedIn);
    const QDateTime expiry = m_session->expiresAt();
    signalProvider(SIGSTOP);
    const Session::State state = refreshAndWait(transferTimeoutMs + refreshTimeoutMs);
    signalProvider(SIGCONT);

    QCOMPARE(state, Session::State::Offline);
    const QString message = m_session->errorMessage();
    QVERIFY2(message.contains(QStringLiteral("timed out")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("/token")), qPrintable(message));
    QCOMPARE(m_session->expiresAt(), expiry);

    QTest::qWait(1100);
    QCOMPARE(refreshAndWait(), Session::State::SignedIn);
    QVERIFY(m_session->expiresAt() > expiry);
}

// New keys sign from now on and the old ones leave the key set, so the refreshed ID token
// verifies only after Lamplighter has fetched the key set again.
void TestProviderFailures::rotatedKeysVerified()
{
    QVERIFY(m_session->state() == Session::State::SignedIn);
    const QByteArray before = currentIdToken();
    const QString oldKeyId = keyIdOf(before);
    QVERIFY(!oldKeyId.isEmpty());

    const QJsonObject rotation =
        postToProvider(QStringLiteral("/test/rotate-keys"), QStringLiteral("retire-old=true"));
    const QString newKeyId = rotation.value(QStringLiteral("signingKeyIds"))
                                 .toObject()
                                 .value(QStringLiteral("RS256"))
                                 .toString();
    QVERIFY2(!newKeyId.isEmpty(), qPrintable(providerLog()));
    QVERIFY(newKeyId != oldKeyId);

    // Within the refetch interval an unknown key id fails verification, so the refresh waits
    // until the interval since sign-in has passed.
    QTest::qWait(int(std::max<qint64>(m_keySetRefetchAllowed.remainingTime(), 1100)));
    QCOMPARE(refreshAndWait(), Session::State::SignedIn);
    const QByteArray after = currentIdToken();
    QCOMPARE(keyIdOf(after), newKeyId);
    QCOMPARE(m_session->userName(), QStringLiteral("jane@example.test"));
}

// The provider refreshes without an ID token. The session keeps the current one and its
// identity, and takes the new refresh token, which the next refresh must present.
void TestProviderFailures::refreshWithoutIdTokenKeepsIdentity()
{
    QVERIFY(m_session->state() == Session::State::SignedIn);
    const QByteArray idToken = currentIdToken();
    const QDateTime expiry = m_session->expiresAt();
    const QJsonObject leftOut =
        postToProvider(QStringLiteral("/test/refresh-id-token"), QStringLiteral("include=false"));
    QCOMPARE(leftOut.value(QStringLiteral("include")), QJsonValue(false));

    QCOMPARE(refreshAndWait(), Session::State::SignedIn);
    QVERIFY2(m_session->errorMessage().isEmpty(), qPrintable(m_session->errorMessage()));
    QVERIFY2(readFile(m_work.filePath(QStringLiteral("provider.log")))
                 .contains(QStringLiteral("left the id_token out of a refresh_token grant")),
             qPrintable(providerLog()));
    QCOMPARE(currentIdToken(), idToken);
    QCOMPARE(m_session->expiresAt(), expiry);
    QCOMPARE(m_session->userName(), QStringLiteral("jane@example.test"));

    const QJsonObject included =
        postToProvider(QStringLiteral("/test/refresh-id-token"), QStringLiteral("include=true"));
    QCOMPARE(included.value(QStringLiteral("include")), QJsonValue(true));
    QTest::qWait(1100);
    QCOMPARE(refreshAndWait(), Session::State::SignedIn);
    QVERIFY(currentIdToken() != idToken);
    QVERIFY(m_session->expiresAt() > expiry);
}

void TestProviderFailures::noBrowserAfterSignIn()
{
    QCOMPARE(m_browsers.size(), 1);
    const QString log = readFile(m_work.filePath(QStringLiteral("provider.log")));
    QCOMPARE(log.count(QStringLiteral("authorization_code grant succeeded")), 1);
    QVERIFY2(!log.contains(QStringLiteral("grant.error")), qPrintable(providerLog()));
}

QTEST_GUILESS_MAIN(TestProviderFailures)
#include "tst_providerfailures.moc"
