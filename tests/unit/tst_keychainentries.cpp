#include "config/Config.h"
#include "session/Session.h"
#include "store/EntryFormats.h"
#include "store/SecretStore.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <QUuid>

using namespace lamplighter;

namespace {

constexpr int waitMs = 20'000;

const QString issuer = QStringLiteral("https://login.example.test/realms/main");

// An ID token that is not signed: a session restored from the keychain reads its claims without
// verifying them again.
QByteArray unsignedIdToken(const QString &subject)
{
    const QByteArray header =
        QByteArray(R"({"alg":"none"})")
            .toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
    const QJsonObject claims{
        {QStringLiteral("iss"), issuer},
        {QStringLiteral("sub"), subject},
        {QStringLiteral("iat"), QDateTime::currentSecsSinceEpoch()},
        {QStringLiteral("exp"), QDateTime::currentSecsSinceEpoch() + 3600},
    };
    const QByteArray payload =
        QJsonDocument(claims)
            .toJson(QJsonDocument::Compact)
            .toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
    return header + '.' + payload + ".c2lnbmF0dXJl";
}

// The tokens entry as releases before format versions wrote it: JSON without "version".
QByteArray unversionedTokens(const QString &subject, const QByteArray &refreshToken)
{
    const QJsonObject object{
        {QStringLiteral("id_token"), QString::fromLatin1(unsignedIdToken(subject))},
        {QStringLiteral("refresh_token"), QString::fromLatin1(refreshToken)},
        {QStringLiteral("access_token"), QStringLiteral("access-1")},
    };
    return QJsonDocument(object).toJson(QJsonDocument::Compact);
}

QString tokensKey(const QString &clientId)
{
    return QStringLiteral("tokens %1 %2").arg(issuer, clientId);
}

QByteArray configText(const QString &clientId)
{
    return QStringLiteral("oidc:\n  issuer: %1\n  client_id: %2\nclusters:\n- name: prod\n"
                          "  server: https://api.prod.example.test:6443\n")
        .arg(issuer, clientId)
        .toUtf8();
}

} // namespace

// The format versions of keychain entries, the entry index and `lamplighter logout --all`. ctest
// runs it inside a private D-Bus session with gnome-keyring (tests/tools/with-keyring), and the
// cases that check the keychain with secret-tool need that keyring.
class TestKeychainEntries : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();
    void tokensEntryVersions();
    void proxyKeyEntryVersions();
    void entryIndexVersions();
    void indexListsWrittenKeys();
    void removeAllRemovesUnlistedKnownKeys();
    void unversionedTokensMigrated();
    void newerTokensEntryKept();
    void unversionedProxyKeyMigrated();
    void logoutAllRemovesUnconfiguredProvider();
    void logoutAllRejectedElsewhere();

private:
    Status write(SecretStore &store, const QString &key, const QByteArray &secret);
    std::optional<QByteArray> read(SecretStore &store, const QString &key);
    Result<QStringList> readIndex(SecretStore &store);
    bool secretToolFinds(const QString &key);
    std::unique_ptr<Session> startSession(const QString &clientId, bool serveProxy = false);
    QString writeConfig(const QString &clientId);

    bool expectKeychain() const { return qgetenv("LAMPLIGHTER_EXPECT_KEYCHAIN") != "0"; }

    std::unique_ptr<QTemporaryDir> m_dir;
    QString m_service;
};

void TestKeychainEntries::initTestCase()
{
    // The proxy's certificate file goes to a folder of the test's own.
    QStandardPaths::setTestModeEnabled(true);
}

void TestKeychainEntries::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    // Each case gets a service of its own, so that no index or entry leaks into the next.
    m_service = QStringLiteral("lamplighter-entries-test-") + QUuid::createUuid().toString();
}

void TestKeychainEntries::cleanup()
{
    m_dir.reset();
}

Status TestKeychainEntries::write(SecretStore &store, const QString &key, const QByteArray &secret)
{
    std::optional<Status> outcome;
    store.write(key, secret, [&outcome](Status status) { outcome = status; });
    if (!QTest::qWaitFor([&] { return outcome.has_value(); }, waitMs))
        return Error{QStringLiteral("writing %1 timed out").arg(key)};
    return *outcome;
}

std::optional<QByteArray> TestKeychainEntries::read(SecretStore &store, const QString &key)
{
    std::optional<Result<std::optional<QByteArray>>> outcome;
    store.read(key, [&outcome](Result<std::optional<QByteArray>> value) { outcome = value; });
    if (!QTest::qWaitFor([&] { return outcome.has_value(); }, waitMs) || !outcome->ok())
        return QByteArray("<read failed>");
    return outcome->value();
}

Result<QStringList> TestKeychainEntries::readIndex(SecretStore &store)
{
    std::optional<Result<QStringList>> outcome;
    store.readIndex([&outcome](Result<QStringList> keys) { outcome = keys; });
    if (!QTest::qWaitFor([&] { return outcome.has_value(); }, waitMs))
        return Error{QStringLiteral("reading the index timed out")};
    return *outcome;
}

// Returns whether secret-tool finds the entry that QtKeychain stores under key in m_service.
bool TestKeychainEntries::secretToolFinds(const QString &key)
{
    QProcess tool;
    tool.start(QStringLiteral("secret-tool"),
               {QStringLiteral("search"),
                QStringLiteral("--all"),
                QStringLiteral("server"),
                m_service,
                QStringLiteral("user"),
                key});
    if (!tool.waitForFinished(waitMs))
        return false;
    return tool.readAllStandardOutput().contains("attribute.user = " + key.toUtf8()) ||
           tool.readAllStandardError().contains("attribute.user = " + key.toUtf8());
}

QString TestKeychainEntries::writeConfig(const QString &clientId)
{
    const QString path = m_dir->filePath(QStringLiteral("config.yaml"));
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return {};
    file.write(configText(clientId));
    return path;
}

// Starts a one-shot session for clientId, as `lamplighter status` runs one, and waits until it
// has read the keychain.
std::unique_ptr<Session> TestKeychainEntries::startSession(const QString &clientId, bool serveProxy)
{
    Result<Config> config = loadConfig(writeConfig(clientId));
    if (!config) {
        qWarning().noquote() << config.errorMessage();
        return nullptr;
    }
    Session::Options options;
    options.serveProxy = serveProxy;
    options.refreshOnStart = false;
    options.kubeconfigPath = m_dir->filePath(QStringLiteral("kubeconfig"));
    options.keychainService = m_service;
    auto session = std::make_unique<Session>(std::move(config).value(), options);
    std::optional<Status> started;
    const QMetaObject::Connection connection = QObject::connect(
        session.get(), &Session::started, [&started](const Status &status) { started = status; });
    session->start();
    const bool ended = QTest::qWaitFor([&started] { return started.has_value(); }, waitMs);
    QObject::disconnect(connection);
    if (!ended)
        return nullptr;
    if (!started->ok()) {
        qWarning().noquote() << started->errorMessage();
        return nullptr;
    }
    return session;
}

void TestKeychainEntries::tokensEntryVersions()
{
    const QString key = tokensKey(QStringLiteral("client"));
    const DecodedEntry old = decodeTokensEntry(key, unversionedTokens(QStringLiteral("a"), "r1"));
    QCOMPARE(old.outcome, DecodedEntry::Outcome::Migrated);
    QCOMPARE(old.storedVersion, 1);
    QCOMPARE(old.fields.value(QStringLiteral("refresh_token")).toString(), QStringLiteral("r1"));
    QVERIFY(!old.fields.contains(QStringLiteral("version")));

    const QByteArray encoded = encodeTokensEntry(old.fields);
    QCOMPARE(QJsonDocument::fromJson(encoded).object().value(QStringLiteral("version")).toInt(),
             tokensEntryVersion);
    const DecodedEntry current = decodeTokensEntry(key, encoded);
    QCOMPARE(current.outcome, DecodedEntry::Outcome::Current);
    QCOMPARE(current.storedVersion, tokensEntryVersion);
    QCOMPARE(current.fields, old.fields);

    const DecodedEntry newer =
        decodeTokensEntry(key, R"({"version":3,"refresh_token":"r9","sealed":"x"})");
    QCOMPARE(newer.outcome, DecodedEntry::Outcome::TooNew);
    QCOMPARE(newer.storedVersion, 3);
    QVERIFY(newer.fields.isEmpty());
    QVERIFY2(newer.message.contains(key), qPrintable(newer.message));
    QVERIFY2(newer.message.contains(QStringLiteral("format version 3")), qPrintable(newer.message));
    QVERIFY2(newer.message.contains(QStringLiteral("up to version 2")), qPrintable(newer.message));
    QVERIFY2(newer.message.contains(QStringLiteral("newer Lamplighter")),
             qPrintable(newer.message));
    QVERIFY2(!newer.message.contains(QStringLiteral("r9")), "no token in the message");

    for (const QByteArray &invalid : {QByteArray("not json"),
                                      QByteArray("[1]"),
                                      QByteArray(R"({"version":"2"})"),
                                      QByteArray(R"({"version":1.5})"),
                                      QByteArray(R"({"version":0})")}) {
        const DecodedEntry entry = decodeTokensEntry(key, invalid);
        QVERIFY2(entry.outcome == DecodedEntry::Outcome::Invalid, invalid.constData());
        QVERIFY2(entry.message.contains(key), qPrintable(entry.message));
    }
}

void TestKeychainEntries::proxyKeyEntryVersions()
{
    const QByteArray pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n"
                           "-----END PRIVATE KEY-----\n";
    const DecodedEntry old = decodeProxyKeyEntry(QStringLiteral("proxy-tls-key"), pem);
    QCOMPARE(old.outcome, DecodedEntry::Outcome::Migrated);
    QCOMPARE(old.storedVersion, 1);
    QCOMPARE(proxyKeyPem(old), pem);

    const QByteArray encoded = encodeProxyKeyEntry(pem);
    QVERIFY(!encoded.startsWith("-----BEGIN"));
    const DecodedEntry current = decodeProxyKeyEntry(QStringLiteral("proxy-tls-key"), encoded);
    QCOMPARE(current.outcome, DecodedEntry::Outcome::Current);
    QCOMPARE(proxyKeyPem(current), pem);

    QCOMPARE(decodeProxyKeyEntry(QStringLiteral("proxy-tls-key"), R"({"version":7})").outcome,
             DecodedEntry::Outcome::TooNew);
    QCOMPARE(decodeProxyKeyEntry(QStringLiteral("proxy-tls-key"), R"({"version":2})").outcome,
             DecodedEntry::Outcome::Invalid);
    QCOMPARE(decodeProxyKeyEntry(QStringLiteral("proxy-tls-key"), "garbage").outcome,
             DecodedEntry::Outcome::Invalid);
}

void TestKeychainEntries::entryIndexVersions()
{
    const QString key = SecretStore::entryIndexKey();
    const QByteArray encoded =
        encodeEntryIndex({QStringLiteral("b"), QStringLiteral("a"), QStringLiteral("b")});
    const DecodedEntry index = decodeEntryIndex(key, encoded);
    QCOMPARE(index.outcome, DecodedEntry::Outcome::Current);
    QCOMPARE(entryIndexKeys(index), QStringList({QStringLiteral("a"), QStringLiteral("b")}));

    QCOMPARE(decodeEntryIndex(key, R"({"version":2,"keys":[]})").outcome,
             DecodedEntry::Outcome::TooNew);
    QCOMPARE(decodeEntryIndex(key, R"({"keys":["a"]})").outcome, DecodedEntry::Outcome::Invalid);
    QCOMPARE(decodeEntryIndex(key, R"({"version":1,"keys":"a"})").outcome,
             DecodedEntry::Outcome::Invalid);
    QCOMPARE(decodeEntryIndex(key, R"({"version":1,"keys":[""]})").outcome,
             DecodedEntry::Outcome::Invalid);
}

// The index lists every key written, keeps listing removed ones, and a second store (another
// process) reads the same list.
void TestKeychainEntries::indexListsWrittenKeys()
{
    SecretStore store(m_service);
    const Result<QStringList> empty = readIndex(store);
    QVERIFY2(empty.ok(), qPrintable(empty.errorMessage()));
    QVERIFY(empty->isEmpty());

    // Written without waiting in between, so that both index updates overlap.
    std::optional<Status> first;
    std::optional<Status> second;
    store.write(QStringLiteral("first"), "one", [&first](Status status) { first = status; });
    store.write(QStringLiteral("second"), "two", [&second](Status status) { second = status; });
    QTRY_VERIFY_WITH_TIMEOUT(first.has_value() && second.has_value(), waitMs);
    QVERIFY2(first->ok(), qPrintable(first->errorMessage()));
    QVERIFY2(second->ok(), qPrintable(second->errorMessage()));

    const QStringList expected{QStringLiteral("first"), QStringLiteral("second")};
    QCOMPARE(readIndex(store).value(), expected);
    std::optional<Status> removed;
    store.remove(QStringLiteral("first"), [&removed](Status status) { removed = status; });
    QTRY_VERIFY_WITH_TIMEOUT(removed.has_value(), waitMs);
    QVERIFY(removed->ok());
    QCOMPARE(readIndex(store).value(), expected);
    if (!expectKeychain())
        return; // each store keeps its own entries in memory, so none can share an index

    SecretStore otherProcess(m_service);
    QCOMPARE(readIndex(otherProcess).value(), expected);
    QVERIFY(write(otherProcess, QStringLiteral("third"), "three").ok());
    QVERIFY(write(store, QStringLiteral("fourth"), "four").ok());
    QCOMPARE(readIndex(store).value(),
             QStringList({QStringLiteral("first"),
                          QStringLiteral("fourth"),
                          QStringLiteral("second"),
                          QStringLiteral("third")}));
    QVERIFY(secretToolFinds(SecretStore::entryIndexKey()));
    QVERIFY(secretToolFinds(QStringLiteral("second")));
}

// removeAll() also removes keys that an older release wrote without an index, when the caller
// names them, and counts only the entries that were there.
void TestKeychainEntries::removeAllRemovesUnlistedKnownKeys()
{
    SecretStore store(m_service);
    QVERIFY(write(store, QStringLiteral("listed"), "one").ok());
    QVERIFY(write(store, QStringLiteral("unlisted"), "two").ok());
    // Takes a key out of the index again, as if a release before the index had written it.
    std::optional<Status> unlisted;
    const QByteArray index = encodeEntryIndex({QStringLiteral("listed")});
    store.write(SecretStore::entryIndexKey(), index, [&unlisted](Status s) { unlisted = s; });
    QTRY_VERIFY_WITH_TIMEOUT(unlisted.has_value(), waitMs);
    QCOMPARE(readIndex(store).value(), QStringList{QStringLiteral("listed")});

    std::optional<Result<int>> removed;
    store.removeAll({QStringLiteral("unlisted"), QStringLiteral("never-written")},
                    [&removed](Result<int> count) { removed = count; });
    QTRY_VERIFY_WITH_TIMEOUT(removed.has_value(), waitMs);
    QVERIFY2(removed->ok(), qPrintable(removed->errorMessage()));
    QCOMPARE(removed->value(), 3); // listed, unlisted and the index

    QCOMPARE(read(store, QStringLiteral("listed")), std::nullopt);
    QCOMPARE(read(store, QStringLiteral("unlisted")), std::nullopt);
    QCOMPARE(read(store, SecretStore::entryIndexKey()), std::nullopt);
    QVERIFY(readIndex(store)->isEmpty());
    if (expectKeychain()) {
        QVERIFY(!secretToolFinds(QStringLiteral("listed")));
        QVERIFY(!secretToolFinds(QStringLiteral("unlisted")));
        QVERIFY(!secretToolFinds(SecretStore::entryIndexKey()));
    }

    // A write after removeAll() lists its key again.
    QVERIFY(write(store, QStringLiteral("listed"), "again").ok());
    QCOMPARE(readIndex(store).value(), QStringList{QStringLiteral("listed")});
}

// A tokens entry without "version" restores the session and is written back in the current
// format.
void TestKeychainEntries::unversionedTokensMigrated()
{
    if (!expectKeychain())
        QSKIP("the session's store cannot read what another store kept in memory");
    const QString key = tokensKey(QStringLiteral("lamplighter"));
    const QByteArray original = unversionedTokens(QStringLiteral("alice"), "r1");
    {
        SecretStore olderRelease(m_service);
        QVERIFY(write(olderRelease, key, original).ok());
    }
    const std::unique_ptr<Session> session = startSession(QStringLiteral("lamplighter"));
    QVERIFY(session);
    QCOMPARE(session->state(), Session::State::SignedIn);
    QCOMPARE(session->subject(), QStringLiteral("alice"));

    SecretStore store(m_service);
    QTRY_VERIFY_WITH_TIMEOUT(QJsonDocument::fromJson(read(store, key).value_or(QByteArray()))
                                 .object()
                                 .contains(QStringLiteral("version")),
                             waitMs);
    const QJsonObject rewritten = QJsonDocument::fromJson(read(store, key).value()).object();
    QCOMPARE(rewritten.value(QStringLiteral("version")).toInt(), tokensEntryVersion);
    QCOMPARE(rewritten.value(QStringLiteral("refresh_token")).toString(), QStringLiteral("r1"));
    QCOMPARE(rewritten.value(QStringLiteral("access_token")).toString(),
             QStringLiteral("access-1"));
    QCOMPARE(rewritten.value(QStringLiteral("id_token")),
             QJsonDocument::fromJson(original).object().value(QStringLiteral("id_token")));
    QVERIFY(readIndex(store)->contains(key));

    // The migrated entry restores a second session as it is.
    const std::unique_ptr<Session> again = startSession(QStringLiteral("lamplighter"));
    QVERIFY(again);
    QCOMPARE(again->state(), Session::State::SignedIn);
    QCOMPARE(again->subject(), QStringLiteral("alice"));
}

// A tokens entry of a newer Lamplighter is neither used, replaced nor removed, and the session
// requests a sign-in with a message that gives the reason.
void TestKeychainEntries::newerTokensEntryKept()
{
    if (!expectKeychain())
        QSKIP("the session's store cannot read what another store kept in memory");
    const QString key = tokensKey(QStringLiteral("lamplighter"));
    const QByteArray newer = R"({"version":99,"sealed_tokens":"opaque"})";
    {
        SecretStore newerRelease(m_service);
        QVERIFY(write(newerRelease, key, newer).ok());
    }
    std::unique_ptr<Session> session = startSession(QStringLiteral("lamplighter"));
    QVERIFY(session);
    QCOMPARE(session->state(), Session::State::SignedOut);
    const QString message = session->errorMessage();
    QVERIFY2(message.contains(key), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("format version 99")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("newer Lamplighter")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("Sign in again")), qPrintable(message));
    QVERIFY2(session->tokensNotStoredReason().contains(QStringLiteral("newer Lamplighter")),
             qPrintable(session->tokensNotStoredReason()));

    session->signOut();
    session.reset();
    SecretStore store(m_service);
    QCOMPARE(read(store, key), std::optional<QByteArray>(newer));
    if (expectKeychain())
        QVERIFY(secretToolFinds(key));
}

// A proxy key stored as bare PEM keeps serving with the same certificate and is written back as
// a versioned entry.
void TestKeychainEntries::unversionedProxyKeyMigrated()
{
    if (!expectKeychain())
        QSKIP("the session's store cannot read what another store kept in memory");
    const QString key = QStringLiteral("proxy-tls-key");
    QFile::remove(Session::proxyCertificatePath());
    QByteArray certificate;
    QByteArray pem;
    {
        const std::unique_ptr<Session> first = startSession(QStringLiteral("lamplighter"), true);
        QVERIFY(first);
        QVERIFY(first->proxyPort() != 0);
        SecretStore store(m_service);
        const DecodedEntry stored = decodeProxyKeyEntry(key, read(store, key).value_or(""));
        QCOMPARE(stored.outcome, DecodedEntry::Outcome::Current);
        pem = proxyKeyPem(stored);
        QVERIFY(pem.startsWith("-----BEGIN"));
        // Stores it again as releases before format versions did.
        QVERIFY(write(store, key, pem).ok());
        QCOMPARE(read(store, key), std::optional<QByteArray>(pem));
        QFile file(Session::proxyCertificatePath());
        QVERIFY(file.open(QIODevice::ReadOnly));
        certificate = file.readAll();
    }

    const std::unique_ptr<Session> second = startSession(QStringLiteral("lamplighter"), true);
    QVERIFY(second);
    SecretStore store(m_service);
    QTRY_VERIFY_WITH_TIMEOUT(!read(store, key).value_or("-----BEGIN").startsWith("-----BEGIN"),
                             waitMs);
    const DecodedEntry rewritten = decodeProxyKeyEntry(key, read(store, key).value());
    QCOMPARE(rewritten.outcome, DecodedEntry::Outcome::Current);
    QCOMPARE(proxyKeyPem(rewritten), pem);
    QFile file(Session::proxyCertificatePath());
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll(), certificate);
    QVERIFY(readIndex(store)->contains(key));
}

// `lamplighter logout --all` removes the tokens of a provider that the configuration no longer
// names, run as a separate process as a person would run it.
void TestKeychainEntries::logoutAllRemovesUnconfiguredProvider()
{
    if (!expectKeychain())
        QSKIP("`lamplighter logout --all` runs in its own process, which needs a keychain");
    // The binary uses the default service name, so this case shares the private keyring's
    // "lamplighter" service.
    m_service = QStringLiteral("lamplighter");
    const QString oldKey = tokensKey(QStringLiteral("old-client"));
    const QString currentKey = tokensKey(QStringLiteral("new-client"));
    {
        SecretStore store(m_service);
        QVERIFY(
            write(store,
                  oldKey,
                  encodeTokensEntry({{QStringLiteral("refresh_token"), QStringLiteral("r-old")}}))
                .ok());
        QVERIFY(write(store, currentKey, unversionedTokens(QStringLiteral("bob"), "r-new")).ok());
        QVERIFY(readIndex(store)->contains(oldKey));
    }
    QVERIFY(secretToolFinds(oldKey));
    QVERIFY(secretToolFinds(currentKey));

    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    // No running tray listens on a control socket in this folder, so the command runs here.
    environment.insert(QStringLiteral("XDG_RUNTIME_DIR"), m_dir->filePath(QStringLiteral("run")));
    environment.insert(QStringLiteral("XDG_DATA_HOME"), m_dir->filePath(QStringLiteral("data")));
    environment.insert(QStringLiteral("XDG_CACHE_HOME"), m_dir->filePath(QStringLiteral("cache")));
    QDir().mkpath(m_dir->filePath(QStringLiteral("run")));
    QFile::setPermissions(m_dir->filePath(QStringLiteral("run")),
                          QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
    QProcess logout;
    logout.setProcessEnvironment(environment);
    logout.start(QStringLiteral(LAMPLIGHTER_BINARY),
                 {QStringLiteral("--config"),
                  writeConfig(QStringLiteral("new-client")),
                  QStringLiteral("logout"),
                  QStringLiteral("--all")});
    QVERIFY(logout.waitForFinished(waitMs));
    const QString output = QString::fromUtf8(logout.readAllStandardOutput());
    const QString errors = QString::fromUtf8(logout.readAllStandardError());
    QVERIFY2(logout.exitCode() == 0, qPrintable(errors));
    QVERIFY2(output.contains(QStringLiteral("State:       signed out")), qPrintable(output));
    // The two tokens entries and the index.
    QVERIFY2(output.contains(QStringLiteral("Removed:     3 keychain entries")),
             qPrintable(output));

    QVERIFY(!secretToolFinds(oldKey));
    QVERIFY(!secretToolFinds(currentKey));
    QVERIFY(!secretToolFinds(SecretStore::entryIndexKey()));
    SecretStore store(m_service);
    QCOMPARE(read(store, oldKey), std::nullopt);
    QCOMPARE(read(store, currentKey), std::nullopt);
    QVERIFY(readIndex(store)->isEmpty());
}

void TestKeychainEntries::logoutAllRejectedElsewhere()
{
    QProcess status;
    status.start(QStringLiteral(LAMPLIGHTER_BINARY),
                 {QStringLiteral("status"), QStringLiteral("--all")});
    QVERIFY(status.waitForFinished(waitMs));
    QCOMPARE(status.exitCode(), 2);
    QVERIFY2(status.readAllStandardError().contains(
                 "The option --all applies only to the command \"logout\"."),
             "the error names the option and its command");
}

QTEST_GUILESS_MAIN(TestKeychainEntries)
#include "tst_keychainentries.moc"
