#include "store/KeychainAccess.h"

#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

// The message framing, lamplighter-keychain's handling of invalid input, and the failures that
// HelperProcessKeychain reports when its helper does not do its job. The keychain operations
// themselves run through the helper in tst_secretstore.
class TestKeychainHelper : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void messageRoundTrip();
    void messageArrivesInPieces();
    void invalidHeaderRejected_data();
    void invalidHeaderRejected();
    void helperRejectsInvalidInput_data();
    void helperRejectsInvalidInput();
    void helperExitsAtEndOfInput();
    void helperNeedsService();
    void missingHelperMeansNoKeychain();
    void helperExitWithoutReplyFails();
    void helperInvalidReplyFails();
    void queuedOperationsAllFail();
    void silentHelperTimesOut();

private:
    KeychainReply readThrough(HelperProcessKeychain &keychain, const QString &key);
};

KeychainReply TestKeychainHelper::readThrough(HelperProcessKeychain &keychain, const QString &key)
{
    std::optional<KeychainReply> reply;
    keychain.read(key, [&reply](const KeychainReply &outcome) { reply = outcome; });
    if (!QTest::qWaitFor([&] { return reply.has_value(); }, 20'000))
        return {KeychainReply::Outcome::Failed, QStringLiteral("the test timed out"), {}};
    return *reply;
}

void TestKeychainHelper::messageRoundTrip()
{
    QByteArray secret;
    for (int i = 0; i < 256; ++i)
        secret.append(char(i));
    QByteArray buffer = keychainmessage::encode("write", "key with\nnewline", secret) +
                        keychainmessage::encode("read", "other", QByteArray());
    QString error;

    const std::optional<keychainmessage::Message> first = keychainmessage::take(buffer, error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QVERIFY(first.has_value());
    QCOMPARE(first->word, QByteArray("write"));
    QCOMPARE(first->first, QByteArray("key with\nnewline"));
    QCOMPARE(first->second, secret);

    const std::optional<keychainmessage::Message> second = keychainmessage::take(buffer, error);
    QVERIFY(second.has_value());
    QCOMPARE(second->word, QByteArray("read"));
    QCOMPARE(second->first, QByteArray("other"));
    QVERIFY(second->second.isEmpty());
    QVERIFY(buffer.isEmpty());
    QVERIFY(!keychainmessage::take(buffer, error).has_value());
    QVERIFY(error.isEmpty());
}

void TestKeychainHelper::messageArrivesInPieces()
{
    const QByteArray whole = keychainmessage::encode("done", "", "secret bytes");
    QByteArray buffer;
    QString error;
    for (qsizetype i = 0; i < whole.size() - 1; ++i) {
        buffer.append(whole.at(i));
        QVERIFY(!keychainmessage::take(buffer, error).has_value());
        QVERIFY2(error.isEmpty(), qPrintable(error));
    }
    buffer.append(whole.back());
    const std::optional<keychainmessage::Message> message = keychainmessage::take(buffer, error);
    QVERIFY(message.has_value());
    QCOMPARE(message->second, QByteArray("secret bytes"));
}

void TestKeychainHelper::invalidHeaderRejected_data()
{
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<QString>("reason");
    QTest::newRow("two fields") << QByteArray("read 3\nkey") << QStringLiteral("invalid header");
    QTest::newRow("negative length")
        << QByteArray("read -1 0\n") << QStringLiteral("invalid header");
    QTest::newRow("not a number") << QByteArray("read x 0\n") << QStringLiteral("invalid header");
    QTest::newRow("no word") << QByteArray(" 1 0\nk") << QStringLiteral("invalid header");
    QTest::newRow("key over the limit")
        << QByteArray("read 65537 0\n") << QStringLiteral("over the limits");
    QTest::newRow("secret over the limit")
        << QByteArray("write 1 4194305\n") << QStringLiteral("over the limits");
    QTest::newRow("header without its end")
        << QByteArray(80, 'a') << QStringLiteral("longer than 64 bytes");
}

void TestKeychainHelper::invalidHeaderRejected()
{
    QFETCH(QByteArray, input);
    QFETCH(QString, reason);
    QString error;
    QVERIFY(!keychainmessage::take(input, error).has_value());
    QVERIFY2(error.contains(reason), qPrintable(error));
}

void TestKeychainHelper::helperRejectsInvalidInput_data()
{
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<QString>("reason");
    QTest::newRow("unknown request")
        << keychainmessage::encode("list", "key", "") << QStringLiteral("unknown request \"list\"");
    QTest::newRow("invalid header") << QByteArray("read\n") << QStringLiteral("invalid header");
    QTest::newRow("input ends within a request")
        << QByteArray("write 3 10\nkeysec") << QStringLiteral("ended within a request");
}

// The helper rejects input that is not a request before it reaches the keychain, so these run
// without a D-Bus session.
void TestKeychainHelper::helperRejectsInvalidInput()
{
    QFETCH(QByteArray, input);
    QFETCH(QString, reason);
    QProcess helper;
    helper.start(QStringLiteral(LAMPLIGHTER_KEYCHAIN_HELPER),
                 {QStringLiteral("--service"), QStringLiteral("lamplighter-test")});
    QVERIFY(helper.waitForStarted(10'000));
    helper.write(input);
    helper.closeWriteChannel();
    QVERIFY(helper.waitForFinished(20'000));

    QCOMPARE(helper.exitStatus(), QProcess::NormalExit);
    QCOMPARE(helper.exitCode(), 2);
    QVERIFY(helper.readAllStandardOutput().isEmpty());
    const QString message = QString::fromUtf8(helper.readAllStandardError());
    QVERIFY2(message.startsWith(QStringLiteral("lamplighter-keychain: ")), qPrintable(message));
    QVERIFY2(message.contains(reason), qPrintable(message));
}

void TestKeychainHelper::helperExitsAtEndOfInput()
{
    QProcess helper;
    helper.start(QStringLiteral(LAMPLIGHTER_KEYCHAIN_HELPER),
                 {QStringLiteral("--service"), QStringLiteral("lamplighter-test")});
    QVERIFY(helper.waitForStarted(10'000));
    helper.closeWriteChannel();
    QVERIFY(helper.waitForFinished(20'000));
    QCOMPARE(helper.exitCode(), 0);
    QVERIFY(helper.readAllStandardError().isEmpty());
}

void TestKeychainHelper::helperNeedsService()
{
    QProcess helper;
    helper.start(QStringLiteral(LAMPLIGHTER_KEYCHAIN_HELPER), QStringList());
    QVERIFY(helper.waitForFinished(20'000));
    QCOMPARE(helper.exitCode(), 2);
    QVERIFY(helper.readAllStandardError().contains("--service is required"));
}

void TestKeychainHelper::missingHelperMeansNoKeychain()
{
    const QString missing = QStringLiteral("/nonexistent/lamplighter-keychain");
    HelperProcessKeychain keychain(QStringLiteral("lamplighter-test"), missing);
    const KeychainReply reply = readThrough(keychain, QStringLiteral("key"));
    QCOMPARE(reply.outcome, KeychainReply::Outcome::NoKeychain);
    QVERIFY2(reply.errorString.contains(missing + QStringLiteral(" failed to start")),
             qPrintable(reply.errorString));
}

void TestKeychainHelper::helperExitWithoutReplyFails()
{
    HelperProcessKeychain keychain(QStringLiteral("lamplighter-test"),
                                   QStringLiteral("/bin/false"));
    const KeychainReply reply = readThrough(keychain, QStringLiteral("key"));
    QCOMPARE(reply.outcome, KeychainReply::Outcome::Failed);
    QVERIFY2(reply.errorString.contains(
                 QStringLiteral("/bin/false exited with code 1 before it replied")),
             qPrintable(reply.errorString));
}

// `echo` prints its arguments, "--service lamplighter-test", which is no reply header.
void TestKeychainHelper::helperInvalidReplyFails()
{
    HelperProcessKeychain keychain(QStringLiteral("lamplighter-test"), QStringLiteral("/bin/echo"));
    const KeychainReply reply = readThrough(keychain, QStringLiteral("key"));
    QCOMPARE(reply.outcome, KeychainReply::Outcome::Failed);
    QVERIFY2(reply.errorString.contains(QStringLiteral("/bin/echo sent an invalid reply")),
             qPrintable(reply.errorString));
}

// Each operation waiting behind a failed one gets a helper of its own, and its own failure.
void TestKeychainHelper::queuedOperationsAllFail()
{
    HelperProcessKeychain keychain(QStringLiteral("lamplighter-test"),
                                   QStringLiteral("/bin/false"));
    QList<KeychainReply> replies;
    auto collect = [&replies](const KeychainReply &reply) {
        replies.append(reply);
    };
    keychain.write(QStringLiteral("first"), "secret", collect);
    keychain.read(QStringLiteral("second"), collect);
    keychain.remove(QStringLiteral("third"), collect);
    QVERIFY(replies.isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(replies.size(), 3, 20'000);
    for (const KeychainReply &reply : std::as_const(replies))
        QCOMPARE(reply.outcome, KeychainReply::Outcome::Failed);
}

// A helper that never replies, as one waiting for an unlock prompt would, is stopped after the
// timeout. The keychain is there, so the outcome is a failure and not "no keychain".
void TestKeychainHelper::silentHelperTimesOut()
{
    QTemporaryDir folder;
    QVERIFY(folder.isValid());
    const QString program = folder.filePath(QStringLiteral("silent-helper"));
    QFile script(program);
    QVERIFY(script.open(QIODevice::WriteOnly));
    script.write("#!/bin/sh\nexec sleep 60\n");
    script.close();
    QVERIFY(script.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner));

    HelperProcessKeychain keychain(QStringLiteral("lamplighter-test"), program);
    keychain.setOperationTimeout(std::chrono::milliseconds(300));
    const KeychainReply reply = readThrough(keychain, QStringLiteral("key"));
    QCOMPARE(reply.outcome, KeychainReply::Outcome::Failed);
    QVERIFY2(reply.errorString.contains(program + QStringLiteral(" did not reply within 0.3 s")),
             qPrintable(reply.errorString));
}

QTEST_GUILESS_MAIN(TestKeychainHelper)
#include "tst_keychainhelper.moc"
