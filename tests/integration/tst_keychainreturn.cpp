#include "FixtureServer.h"
#include "session/Session.h"
#include "store/SecretStore.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QProcess>
#include <QProcessEnvironment>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <memory>
#include <optional>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

const QString keychainService = QStringLiteral("lamplighter-keychain-return-test");
const QString secretServiceName = QStringLiteral("org.freedesktop.secrets");
const QByteArray keyringPassword = QByteArrayLiteral("lamplighter-test");

// Signing in starts Chromium, which takes a few seconds. The browser script gives up after 60 s.
constexpr int signInTimeoutMs = 120'000;
constexpr int refreshTimeoutMs = 20'000;
// A refresh ends only once the store has taken its tokens, and a keychain call that gets no
// reply ends after GDBus's default call timeout of 25 s.
constexpr int refreshWithKeychainTimeoutMs = refreshTimeoutMs + 30'000;
// Session leaves its SecretStore at the default retry interval and offers no way to change it,
// so the test waits that long before the keychain is tried again.
constexpr int keychainRetryMs =
    int(std::chrono::milliseconds(SecretStore::defaultKeychainRetryInterval).count());

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

// Returns every file and folder under directory, hidden ones included, relative to it.
QStringList entriesUnder(const QString &directory)
{
    QStringList entries;
    QDirIterator it(directory,
                    QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot,
                    QDirIterator::Subdirectories);
    while (it.hasNext())
        entries.append(QDir(directory).relativeFilePath(it.next()));
    entries.sort();
    return entries;
}

// Returns the values of the "KIND VALUE" lines of the provider's --issued-secrets-file whose
// kind is a token.
QList<QByteArray> issuedTokens(const QString &path)
{
    QList<QByteArray> tokens;
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return tokens;
    while (!file.atEnd()) {
        const QList<QByteArray> fields = file.readLine().trimmed().split(' ');
        if (fields.size() == 2 && fields.at(0).endsWith("_token"))
            tokens.append(fields.at(1));
    }
    return tokens;
}

// Calls a D-Bus method on the session bus through dbus-send and returns its printed reply, or
// nullopt when the call fails.
std::optional<QByteArray> callSessionBus(const QStringList &arguments)
{
    QProcess dbusSend;
    dbusSend.start(QStringLiteral("dbus-send"),
                   QStringList{QStringLiteral("--session"), QStringLiteral("--print-reply")} +
                       arguments);
    if (!dbusSend.waitForFinished(10'000) || dbusSend.exitCode() != 0)
        return std::nullopt;
    return dbusSend.readAllStandardOutput();
}

// Asks the bus whether a program owns name. Returns nullopt when the call fails.
std::optional<bool> busNameHasOwner(const QString &name)
{
    const std::optional<QByteArray> reply =
        callSessionBus({QStringLiteral("--dest=org.freedesktop.DBus"),
                        QStringLiteral("/"),
                        QStringLiteral("org.freedesktop.DBus.NameHasOwner"),
                        QStringLiteral("string:") + name});
    if (!reply)
        return std::nullopt;
    if (reply->contains("boolean true"))
        return true;
    if (reply->contains("boolean false"))
        return false;
    return std::nullopt;
}

// Tells whether the Secret Service has a default collection, where QtKeychain stores entries.
bool secretServiceHasDefaultCollection()
{
    const std::optional<QByteArray> reply =
        callSessionBus({QStringLiteral("--dest=") + secretServiceName,
                        QStringLiteral("/org/freedesktop/secrets"),
                        QStringLiteral("org.freedesktop.Secret.Service.ReadAlias"),
                        QStringLiteral("string:default")});
    return reply && reply->contains("/org/freedesktop/secrets/collection/");
}

} // namespace

// A Session signs in while its D-Bus session has no Secret Service, so the tokens stay in
// memory, and then gnome-keyring starts on the same bus, and the tokens move into it. ctest runs
// this test through tests/tools/with-bare-session-bus, whose bus starts no service on request.
// HOME is an empty folder of the test, and nothing may appear in it: the keyring keeps its
// files elsewhere, and Lamplighter never writes tokens to a file.
class TestKeychainReturn : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();

    void signInKeepsTokensInMemory();
    void returningKeychainReceivesTokens();
    void newStoreReadsMovedTokens();
    void nothingWrittenToFiles();

private:
    QString logs() const;
    // Runs Session::refresh() and waits until it has ended.
    Session::State refreshAndWait();
    QByteArray currentIdToken();
    // Returns the files under the work folder, HOME included, that contain a token the provider
    // issued.
    QStringList filesWithTokens() const;

    QTemporaryDir m_work;
    QString m_home;
    QString m_secretsFile;
    FixtureServer m_provider{QStringLiteral("provider"),
                             m_work.filePath(QStringLiteral("provider.log"))};
    QProcess m_keyring;
    QUrl m_issuer;
    std::unique_ptr<Session> m_session;
    std::unique_ptr<QSignalSpy> m_notices;
    QList<QProcess *> m_browsers;
};

void TestKeychainReturn::initTestCase()
{
    QVERIFY(m_work.isValid());
    QVERIFY2(!qEnvironmentVariableIsEmpty("DBUS_SESSION_BUS_ADDRESS"),
             "no D-Bus session; run this test through tests/tools/with-bare-session-bus");
    const std::optional<bool> secretServiceThere = busNameHasOwner(secretServiceName);
    QVERIFY2(secretServiceThere.has_value(), "dbus-send failed to ask the session bus");
    QVERIFY2(!*secretServiceThere,
             "a Secret Service is already on the bus; run this test through "
             "tests/tools/with-bare-session-bus");
    QVERIFY2(!QStandardPaths::findExecutable(QStringLiteral("gnome-keyring-daemon")).isEmpty(),
             "gnome-keyring-daemon is not on PATH; run scripts/install-deps");
    const Result<QString> node = findNode();
    QVERIFY2(node.ok(), qPrintable(node.errorMessage()));

    // Everything that Lamplighter would put under the person's home goes to an empty folder, and
    // the XDG variables must not lead elsewhere.
    m_home = m_work.filePath(QStringLiteral("home"));
    QVERIFY(QDir().mkpath(m_home));
    qputenv("HOME", m_home.toLocal8Bit());
    for (const char *variable :
         {"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"})
        qunsetenv(variable);
    qputenv("LAMPLIGHTER_TEST_ARTIFACTS",
            m_work.filePath(QStringLiteral("artifacts")).toLocal8Bit());

    const QString pki = m_work.filePath(QStringLiteral("pki"));
    const Result<QSslCertificate> ca = makeTestPki(pki);
    QVERIFY2(ca.ok(), qPrintable(ca.errorMessage()));
    const QList<QSslCertificate> caCertificates = {*ca};

    m_secretsFile = m_work.filePath(QStringLiteral("issued-secrets"));
    const Result<QUrl> issuer = m_provider.startProvider(pki,
                                                         {QStringLiteral("--id-token-ttl"),
                                                          QStringLiteral("300"),
                                                          QStringLiteral("--issued-secrets-file"),
                                                          m_secretsFile});
    QVERIFY2(issuer.ok(), qPrintable(issuer.errorMessage()));
    m_issuer = *issuer;

    Config config;
    config.provider.issuer = m_issuer;
    config.provider.clientId = QStringLiteral("lamplighter");
    config.provider.scopes = {QStringLiteral("openid"),
                              QStringLiteral("email"),
                              QStringLiteral("groups"),
                              QStringLiteral("offline_access")};
    config.provider.userNameClaim = QStringLiteral("email");
    config.provider.caCertificates = caCertificates;
    config.login.timeout = std::chrono::seconds(signInTimeoutMs / 1000);

    Session::Options options;
    options.serveProxy = false;
    options.refreshOnStart = false;
    options.kubeconfigPath = m_work.filePath(QStringLiteral("state/kubeconfig"));
    options.keychainService = keychainService;
    // Through lamplighter-keychain, as the tray runs its keychain operations.
    options.keychainHelperProgram = QStringLiteral(LAMPLIGHTER_KEYCHAIN_HELPER);
    options.urlOpener = [this](const QUrl &url) {
        // Chromium's own files go to a home of its own, so that HOME shows only Lamplighter's.
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        const QString browserHome = m_work.filePath(QStringLiteral("browser-home"));
        QDir().mkpath(browserHome);
        environment.insert(QStringLiteral("HOME"), browserHome);
        m_browsers.append(startBrowserLogin(
            url, m_work.filePath(QStringLiteral("browser.log")), this, environment));
        return true;
    };
    m_session = std::make_unique<Session>(config, options);
    m_notices = std::make_unique<QSignalSpy>(m_session.get(), &Session::notice);
    QSignalSpy started(m_session.get(), &Session::started);
    m_session->start();
    QVERIFY(started.wait(refreshTimeoutMs));
    QCOMPARE(m_session->state(), Session::State::SignedOut);
}

void TestKeychainReturn::cleanupTestCase()
{
    if (m_session)
        m_session->signOut();
    m_notices.reset();
    m_session.reset();
    for (QProcess *browser : std::as_const(m_browsers)) {
        if (browser->state() != QProcess::NotRunning) {
            browser->kill();
            browser->waitForFinished(5000);
        }
    }
    if (m_keyring.state() != QProcess::NotRunning) {
        m_keyring.terminate();
        if (!m_keyring.waitForFinished(5000))
            m_keyring.kill();
        m_keyring.waitForFinished(5000);
    }
    m_provider.stop();
}

QString TestKeychainReturn::logs() const
{
    return m_provider.log() + QStringLiteral("\nbrowser log:\n") +
           readFile(m_work.filePath(QStringLiteral("browser.log"))) +
           QStringLiteral("\ngnome-keyring log:\n") +
           readFile(m_work.filePath(QStringLiteral("keyring.log")));
}

Session::State TestKeychainReturn::refreshAndWait()
{
    // The previous refresh holds on until the store has taken its tokens, and until then
    // refresh() does nothing.
    const bool began = QTest::qWaitFor(
        [this] {
            m_session->refresh();
            return m_session->state() == Session::State::Refreshing;
        },
        refreshTimeoutMs);
    if (!began)
        return m_session->state();
    // A refresh that never ends stays in Refreshing, which the caller's comparison reports.
    const bool ended =
        QTest::qWaitFor([this] { return m_session->state() != Session::State::Refreshing; },
                        refreshWithKeychainTimeoutMs);
    Q_UNUSED(ended);
    return m_session->state();
}

QByteArray TestKeychainReturn::currentIdToken()
{
    std::optional<Session::IdTokenResult> result;
    m_session->requestFreshIdToken(
        [&result](const Session::IdTokenResult &outcome) { result = outcome; });
    if (!QTest::qWaitFor([&result] { return result.has_value(); }, refreshTimeoutMs))
        return QByteArray();
    return result->idToken;
}

QStringList TestKeychainReturn::filesWithTokens() const
{
    const QList<QByteArray> tokens = issuedTokens(m_secretsFile);
    QStringList found;
    const QString root = m_work.path();
    for (const QString &entry : entriesUnder(root)) {
        const QString path = root + QLatin1Char('/') + entry;
        if (path == m_secretsFile || !QFileInfo(path).isFile())
            continue;
        QFile file(path);
        if (!file.open(QIODevice::ReadOnly))
            continue;
        const QByteArray content = file.readAll();
        for (const QByteArray &token : tokens) {
            if (content.contains(token)) {
                found.append(entry);
                break;
            }
        }
    }
    return found;
}

void TestKeychainReturn::signInKeepsTokensInMemory()
{
    m_session->signIn();
    QTRY_VERIFY2_WITH_TIMEOUT(
        m_session->state() != Session::State::SigningIn, qPrintable(logs()), signInTimeoutMs);
    QVERIFY2(m_session->state() == Session::State::SignedIn,
             qPrintable(m_session->errorMessage() + QLatin1Char('\n') + logs()));
    QCOMPARE(m_session->userName(), QStringLiteral("jane@example.test"));
    QVERIFY(!currentIdToken().isEmpty());

    QVERIFY(m_session->tokensInMemoryOnly());
    QVERIFY(!m_session->tokensNotStoredReason().isEmpty());
    QStringList notices;
    for (const QList<QVariant> &arguments : std::as_const(*m_notices))
        notices.append(arguments.at(0).toString());
    const QString joined = notices.join(QLatin1Char('\n'));
    QVERIFY2(joined.contains(QStringLiteral("No keychain service answered")), qPrintable(joined));
    QVERIFY2(joined.contains(QStringLiteral("kept in memory")), qPrintable(joined));

    QCOMPARE(entriesUnder(m_home), QStringList());
    QVERIFY(!issuedTokens(m_secretsFile).isEmpty());
    QCOMPARE(filesWithTokens(), QStringList());
}

// gnome-keyring starts on the session's bus, with its keyring files outside HOME. The store
// tries the keychain again on a write once its retry interval has passed, so the test refreshes
// until a refresh's write finds the keychain.
void TestKeychainReturn::returningKeychainReceivesTokens()
{
    QVERIFY(m_session->state() == Session::State::SignedIn);
    const QString runtimeDirectory = m_work.filePath(QStringLiteral("keyring-runtime"));
    QVERIFY(QDir().mkpath(runtimeDirectory));
    QVERIFY(QFile::setPermissions(runtimeDirectory,
                                  QFileDevice::ReadOwner | QFileDevice::WriteOwner |
                                      QFileDevice::ExeOwner));
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    environment.insert(QStringLiteral("HOME"), m_work.filePath(QStringLiteral("keyring-home")));
    environment.insert(QStringLiteral("XDG_DATA_HOME"),
                       m_work.filePath(QStringLiteral("keyring-data")));
    environment.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtimeDirectory);
    m_keyring.setProcessEnvironment(environment);
    m_keyring.setProcessChannelMode(QProcess::MergedChannels);
    m_keyring.setStandardOutputFile(m_work.filePath(QStringLiteral("keyring.log")));
    // With --unlock, gnome-keyring reads the password of the login keyring from stdin.
    m_keyring.start(QStringLiteral("gnome-keyring-daemon"),
                    {QStringLiteral("--foreground"),
                     QStringLiteral("--unlock"),
                     QStringLiteral("--components=secrets")});
    QVERIFY2(m_keyring.waitForStarted(10'000), qPrintable(m_keyring.errorString()));
    m_keyring.write(keyringPassword);
    m_keyring.closeWriteChannel();
    QTRY_VERIFY2_WITH_TIMEOUT(secretServiceHasDefaultCollection(), qPrintable(logs()), 10'000);

    // Long enough for two tries of the keychain, in case the first comes too early.
    const QDeadlineTimer deadline(2 * keychainRetryMs + refreshWithKeychainTimeoutMs);
    while (m_session->tokensInMemoryOnly() && !deadline.hasExpired()) {
        // Every refresh writes the new tokens. ID tokens carry times in whole seconds, so
        // refreshes a second apart return different ones.
        const Session::State state = refreshAndWait();
        QVERIFY2(state == Session::State::SignedIn,
                 qPrintable(Session::stateName(state) + QLatin1Char('\n') + logs()));
        QTest::qWait(3000);
    }
    QVERIFY2(!m_session->tokensInMemoryOnly(), qPrintable(logs()));
    QVERIFY2(m_session->tokensNotStoredReason().isEmpty(),
             qPrintable(m_session->tokensNotStoredReason()));
    QVERIFY2(m_notices->size() > 0, "the session emitted no notice");
    const QString lastNotice = m_notices->last().at(0).toString();
    QVERIFY2(lastNotice.contains(QStringLiteral("keychain responds again")),
             qPrintable(lastNotice));
}

// A second store, as another Lamplighter process would have, reads the tokens from gnome-keyring.
void TestKeychainReturn::newStoreReadsMovedTokens()
{
    QVERIFY(!m_session->tokensInMemoryOnly());
    const QByteArray idToken = currentIdToken();
    QVERIFY(!idToken.isEmpty());

    SecretStore store(keychainService);
    std::optional<Result<QStringList>> index;
    store.readIndex([&index](Result<QStringList> keys) { index = std::move(keys); });
    QTRY_VERIFY_WITH_TIMEOUT(index.has_value(), refreshTimeoutMs);
    QVERIFY2(index->ok(), qPrintable(index->errorMessage()));
    QVERIFY(!store.isInMemoryOnly());
    const QString tokensKey =
        QStringLiteral("tokens %1 lamplighter").arg(m_issuer.toString(QUrl::FullyEncoded));
    QVERIFY2(index->value().contains(tokensKey), qPrintable(index->value().join(u',')));

    std::optional<Result<std::optional<QByteArray>>> stored;
    store.read(tokensKey,
               [&stored](Result<std::optional<QByteArray>> entry) { stored = std::move(entry); });
    QTRY_VERIFY_WITH_TIMEOUT(stored.has_value(), refreshTimeoutMs);
    QVERIFY2(stored->ok(), qPrintable(stored->errorMessage()));
    QVERIFY(!store.isInMemoryOnly());
    QVERIFY(stored->value().has_value());
    QVERIFY2(stored->value()->contains(idToken),
             "the keychain entry does not contain the session's current ID token");
}

void TestKeychainReturn::nothingWrittenToFiles()
{
    QCOMPARE(entriesUnder(m_home), QStringList());
    const QStringList keyringFiles = entriesUnder(m_work.filePath(QStringLiteral("keyring-data")));
    QVERIFY2(keyringFiles.contains(QStringLiteral("keyrings/login.keyring")),
             qPrintable(keyringFiles.join(u',')));
    // gnome-keyring encrypts its keyring file, so no token shows in it either.
    QCOMPARE(filesWithTokens(), QStringList());
}

QTEST_GUILESS_MAIN(TestKeychainReturn)
#include "tst_keychainreturn.moc"
