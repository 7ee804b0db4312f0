#include "store/SecretStore.h"

#include <QSignalSpy>
#include <QTest>
#include <QUuid>

using namespace lamplighter;

// Runs against a real Secret Service when one is there (ctest starts this test inside a private
// D-Bus session with gnome-keyring), and against none to check the in-memory fallback.
class TestSecretStore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void writeReadRemoveRoundTrip();
    void absentKeyReadsAsEmpty();
    void binarySecretSurvives();

private:
    Status write(SecretStore &store, const QString &key, const QByteArray &secret);
    Result<std::optional<QByteArray>> read(SecretStore &store, const QString &key);
    Status remove(SecretStore &store, const QString &key);
    QString uniqueKey() const { return QStringLiteral("test-") + QUuid::createUuid().toString(); }

    // LAMPLIGHTER_EXPECT_KEYCHAIN is "1" where ctest provides a keychain and "0" where it
    // deliberately provides none.
    bool expectKeychain() const { return qgetenv("LAMPLIGHTER_EXPECT_KEYCHAIN") != "0"; }
};

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
    SecretStore store(QStringLiteral("lamplighter-test"));
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
    SecretStore store(QStringLiteral("lamplighter-test"));
    const auto value = read(store, uniqueKey());
    QVERIFY2(value.ok(), qPrintable(value.errorMessage()));
    QVERIFY(!value->has_value());
}

void TestSecretStore::binarySecretSurvives()
{
    SecretStore store(QStringLiteral("lamplighter-test"));
    const QString key = uniqueKey();
    QByteArray secret;
    for (int i = 0; i < 256; ++i)
        secret.append(char(i));
    QVERIFY(write(store, key, secret).ok());
    QCOMPARE(read(store, key)->value(), secret);
    QVERIFY(remove(store, key).ok());
}

QTEST_GUILESS_MAIN(TestSecretStore)
#include "tst_secretstore.moc"
