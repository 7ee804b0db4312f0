#include "store/SecretStore.h"

#include <QDir>
#include <QDirIterator>
#include <QProcess>
#include <QScopeGuard>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QUuid>

using namespace lamplighter;

// Runs against a real Secret Service when one is there (ctest starts this test inside a private
// D-Bus session with gnome-keyring), and against none to check the in-memory fallback. Each of
// those runs twice: with the keychain in the test process, and through lamplighter-keychain as
// the tray uses it.
class TestSecretStore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void writeReadRemoveRoundTrip();
    void absentKeyReadsAsEmpty();
    void binarySecretSurvives();
    void noFileWithoutKeychain();
    void lockedKeychainThenUnlocked();

private:
    Status write(SecretStore &store, const QString &key, const QByteArray &secret);
    Result<std::optional<QByteArray>> read(SecretStore &store, const QString &key);
    Status remove(SecretStore &store, const QString &key);
    QString uniqueKey() const { return QStringLiteral("test-") + QUuid::createUuid().toString(); }
    // Returns the keychain that LAMPLIGHTER_TEST_KEYCHAIN_HELPER selects: the lamplighter-keychain
    // program it names, or this process when it is not set.
    std::unique_ptr<KeychainAccess> keychain() const;

    // LAMPLIGHTER_EXPECT_KEYCHAIN is "1" where ctest provides a keychain and "0" where it
    // deliberately provides none.
    bool expectKeychain() const { return qgetenv("LAMPLIGHTER_EXPECT_KEYCHAIN") != "0"; }
};

std::unique_ptr<KeychainAccess> TestSecretStore::keychain() const
{
    const QString service = QStringLiteral("lamplighter-test");
    const QString helper = qEnvironmentVariable("LAMPLIGHTER_TEST_KEYCHAIN_HELPER");
    if (helper.isEmpty())
        return std::make_unique<InProcessKeychain>(service);
    return std::make_unique<HelperProcessKeychain>(service, helper);
}

template <typename T, typename Start>
static T waitFor(Start start)
{
    std::optional<T> outcome;
    start([&outcome](T value) { outcome = std::move(value); });
    QTRY_VERIFY_WITH_TIMEOUT_RETURN(outcome.has_value(), 20000);
    return *outcome;
}

Status TestSecretStore::write(SecretStore &store, const QString &key, const QByteArray &secret)
{
    std::optional<Status> outcome;
    store.write(key, secret, [&outcome](Status status) { outcome = status; });
    if (!QTest::qWaitFor([&] { return outcome.has_value(); }, 20000))
        return Error{QStringLiteral("write timed out")};
    return *outcome;
}

Result<std::optional<QByteArray>> TestSecretStore::read(SecretStore &store, const QString &key)
{
    std::optional<Result<std::optional<QByteArray>>> outcome;
    store.read(key, [&outcome](Result<std::optional<QByteArray>> value) { outcome = value; });
    if (!QTest::qWaitFor([&] { return outcome.has_value(); }, 20000))
        return Error{QStringLiteral("read timed out")};
    return *outcome;
}

Status TestSecretStore::remove(SecretStore &store, const QString &key)
{
    std::optional<Status> outcome;
    store.remove(key, [&outcome](Status status) { outcome = status; });
    if (!QTest::qWaitFor([&] { return outcome.has_value(); }, 20000))
        return Error{QStringLiteral("remove timed out")};
    return *outcome;
}

void TestSecretStore::writeReadRemoveRoundTrip()
{
    SecretStore store(keychain());
    QSignalSpy unavailable(&store, &SecretStore::keychainUnavailable);
    const QString key = uniqueKey();

    const Status written = write(store, key, "first secret");
    QVERIFY2(written.ok(), qPrintable(written.errorMessage()));
    QCOMPARE(store.isInMemoryOnly(), !expectKeychain());
    QCOMPARE(unavailable.count(), expectKeychain() ? 0 : 1);

    const auto readBack = read(store, key);
    QVERIFY2(readBack.ok(), qPrintable(readBack.errorMessage()));
    QVERIFY(readBack->has_value());
    QCOMPARE(readBack->value(), QByteArray("first secret"));

    QVERIFY(write(store, key, "second secret").ok());
    QCOMPARE(read(store, key)->value(), QByteArray("second secret"));

    QVERIFY(remove(store, key).ok());
    const auto afterRemove = read(store, key);
    QVERIFY(afterRemove.ok());
    QVERIFY(!afterRemove->has_value());
    QVERIFY2(remove(store, key).ok(), "removing an absent key succeeds");
}

void TestSecretStore::absentKeyReadsAsEmpty()
{
    SecretStore store(keychain());
    const auto value = read(store, uniqueKey());
    QVERIFY2(value.ok(), qPrintable(value.errorMessage()));
    QVERIFY(!value->has_value());
}

void TestSecretStore::binarySecretSurvives()
{
    SecretStore store(keychain());
    const QString key = uniqueKey();
    QByteArray secret;
    for (int i = 0; i < 256; ++i)
        secret.append(char(i));
    QVERIFY(write(store, key, secret).ok());
    QCOMPARE(read(store, key)->value(), secret);
    QVERIFY(remove(store, key).ok());
}

// Runs a command, writing input to its standard input, and returns whether it exited with
// status 0. Its output goes to the test log.
static bool
runCommand(const QString &program, const QStringList &arguments, const QByteArray &input)
{
    QProcess process;
    process.setProcessChannelMode(QProcess::MergedChannels);
    process.start(program, arguments);
    if (!process.waitForStarted(10'000))
        return false;
    process.write(input);
    process.closeWriteChannel();
    if (!process.waitForFinished(30'000))
        return false;
    const QByteArray output = process.readAll().trimmed();
    if (!output.isEmpty())
        qInfo().noquote() << program << "printed:" << output;
    return process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0;
}

// Returns the files below folder, leaving out gnome-keyring's own keyring files and sockets.
static QStringList filesOutsideKeyring(const QString &folder)
{
    QStringList files;
    QDirIterator it(
        folder, QDir::Files | QDir::Hidden | QDir::System, QDirIterator::Subdirectories);
    while (it.hasNext()) {
        const QString path = it.next();
        if (!path.contains(QStringLiteral("/.local/share/keyrings/")) &&
            !path.contains(QStringLiteral("/.cache/keyring-")))
            files.append(path);
    }
    files.sort();
    return files;
}

// Without a keychain the secrets stay in memory, so neither the store nor QtKeychain's plain-file
// fallback may write them below the home folder.
void TestSecretStore::noFileWithoutKeychain()
{
    if (expectKeychain())
        QSKIP("Needs a session without a keychain");
    QTemporaryDir home;
    QVERIFY(home.isValid());
    const QByteArray previousHome = qgetenv("HOME");
    const auto restoreHome = qScopeGuard([previousHome] { qputenv("HOME", previousHome); });
    qputenv("HOME", home.path().toLocal8Bit());
    qunsetenv("XDG_CONFIG_HOME");
    qunsetenv("XDG_DATA_HOME");

    SecretStore store(keychain());
    QSignalSpy unavailable(&store, &SecretStore::keychainUnavailable);
    const QString key = uniqueKey();
    QVERIFY(write(store, key, "kept in memory").ok());

    QVERIFY(store.isInMemoryOnly());
    QCOMPARE(unavailable.size(), 1);
    const QString message = unavailable.first().first().toString();
    QVERIFY2(message.contains(QStringLiteral("No keychain service answered")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("Start a Secret Service")), qPrintable(message));
    QCOMPARE(read(store, key)->value(), QByteArray("kept in memory"));
    QCOMPARE(filesOutsideKeyring(home.path()), QStringList());
}

// The collection is locked: writes fail with a message and leave no file behind. Then
// gnome-keyring is replaced by an unlocked one, which ends the old daemon's D-Bus session as a
// restarted keychain would, and the store finds the keychain again.
void TestSecretStore::lockedKeychainThenUnlocked()
{
    if (!expectKeychain())
        QSKIP("Needs the keychain of tests/tools/with-keyring");
    const QString home = QString::fromLocal8Bit(qgetenv("HOME"));
    const QStringList filesBefore = filesOutsideKeyring(home);
    SecretStore store(keychain());
    store.setKeychainRetryInterval(std::chrono::milliseconds(0));
    QSignalSpy available(&store, &SecretStore::keychainAvailable);
    const QString key = uniqueKey();
    const QString otherKey = uniqueKey();
    QVERIFY(write(store, key, "before the lock").ok());

    QVERIFY(runCommand(QStringLiteral("dbus-send"),
                       {QStringLiteral("--session"),
                        QStringLiteral("--print-reply"),
                        QStringLiteral("--dest=org.freedesktop.secrets"),
                        QStringLiteral("/org/freedesktop/secrets"),
                        QStringLiteral("org.freedesktop.Secret.Service.Lock"),
                        QStringLiteral("array:objpath:/org/freedesktop/secrets/collection/login")},
                       QByteArray()));
    const Status lockedWrite = write(store, key, "while locked");
    QVERIFY(!lockedWrite.ok());
    const QString message = lockedWrite.errorMessage();
    QVERIFY2(message.contains(key), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("locked")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("Unlock the keychain and try again")),
             qPrintable(message));
    QVERIFY(!message.contains(QStringLiteral("while locked")));
    QVERIFY(!store.isInMemoryOnly());
    QCOMPARE(filesOutsideKeyring(home), filesBefore);

    QVERIFY(runCommand(QStringLiteral("gnome-keyring-daemon"),
                       {QStringLiteral("--replace"),
                        QStringLiteral("--unlock"),
                        QStringLiteral("--components=secrets")},
                       "lamplighter-test"));
    QVERIFY(write(store, key, "after the unlock").ok());
    QVERIFY(write(store, otherKey, "second secret").ok());
    QVERIFY(!store.isInMemoryOnly());
    QCOMPARE(read(store, key)->value(), QByteArray("after the unlock"));

    // A second store reads only from the keychain, so both secrets must have reached it.
    SecretStore reader(keychain());
    QCOMPARE(read(reader, key)->value(), QByteArray("after the unlock"));
    QCOMPARE(read(reader, otherKey)->value(), QByteArray("second secret"));
    QVERIFY(!reader.isInMemoryOnly());
    // The keys written while the store kept secrets in memory reached the keychain's index too.
    std::optional<Result<QStringList>> listed;
    reader.readIndex([&listed](Result<QStringList> keys) { listed = keys; });
    QTRY_VERIFY_WITH_TIMEOUT(listed.has_value(), 20000);
    QVERIFY2(listed->ok(), qPrintable(listed->errorMessage()));
    QVERIFY2(listed->value().contains(key), qPrintable(listed->value().join(u',')));
    QVERIFY2(listed->value().contains(otherKey), qPrintable(listed->value().join(u',')));
    // In this process, libsecret's connection to the replaced daemon fails once, so the store
    // keeps the secrets in memory until its retry. Each lamplighter-keychain process connects
    // afresh, so through the helper the keychain never looked gone.
    const bool throughHelper = qEnvironmentVariableIsSet("LAMPLIGHTER_TEST_KEYCHAIN_HELPER") &&
                               !qEnvironmentVariableIsEmpty("LAMPLIGHTER_TEST_KEYCHAIN_HELPER");
    QCOMPARE(available.size(), throughHelper ? 0 : 1);
    QCOMPARE(filesOutsideKeyring(home), filesBefore);

    QVERIFY(remove(store, key).ok());
    QVERIFY(remove(store, otherKey).ok());
}

QTEST_GUILESS_MAIN(TestSecretStore)
#include "tst_secretstore.moc"
