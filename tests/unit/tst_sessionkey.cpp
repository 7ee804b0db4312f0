#include "proxy/SessionKey.h"

#include <QRegularExpression>
#include <QTest>

using namespace lamplighter;

class TestSessionKey : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void constantTimeEquals_data();
    void constantTimeEquals();
    void checkSessionKey_data();
    void checkSessionKey();
    void generatedKeysDiffer();
};

void TestSessionKey::constantTimeEquals_data()
{
    QTest::addColumn<QByteArray>("expected");
    QTest::addColumn<QByteArray>("presented");
    QTest::addColumn<bool>("equal");

    const QByteArray key = "q8Zr1vXb3kPn5sTd7wYf9hJc2mLg4aEe6uIo0yRt3Nx";
    QTest::newRow("same") << key << key << true;
    QTest::newRow("last byte differs") << key << key.left(key.size() - 1) + 'y' << false;
    QTest::newRow("first byte differs") << key << 'Z' + key.mid(1) << false;
    QTest::newRow("prefix") << key << key.left(10) << false;
    QTest::newRow("longer") << key << key + 'x' << false;
    QTest::newRow("empty presented") << key << QByteArray() << false;
    QTest::newRow("empty expected") << QByteArray() << QByteArray() << false;
    QTest::newRow("NUL padding is not a match")
        << QByteArray("abc") << QByteArray("abc\0", 4) << false;
}

void TestSessionKey::constantTimeEquals()
{
    QFETCH(QByteArray, expected);
    QFETCH(QByteArray, presented);
    QFETCH(bool, equal);
    QCOMPARE(lamplighter::constantTimeEquals(expected, presented), equal);
}

void TestSessionKey::checkSessionKey_data()
{
    QTest::addColumn<QList<QByteArray>>("authorization");
    QTest::addColumn<int>("expected");

    const QByteArray key = "session-key";
    QTest::newRow("accepted") << QList<QByteArray>{"Bearer " + key}
                              << int(SessionKeyCheck::Accepted);
    QTest::newRow("lowercase scheme")
        << QList<QByteArray>{"bearer " + key} << int(SessionKeyCheck::Accepted);
    QTest::newRow("extra spaces") << QList<QByteArray>{"  Bearer   " + key + "  "}
                                  << int(SessionKeyCheck::Accepted);
    QTest::newRow("no header") << QList<QByteArray>{} << int(SessionKeyCheck::Missing);
    QTest::newRow("basic scheme") << QList<QByteArray>{"Basic " + key}
                                  << int(SessionKeyCheck::Missing);
    QTest::newRow("scheme only") << QList<QByteArray>{"Bearer"} << int(SessionKeyCheck::Missing);
    QTest::newRow("wrong key") << QList<QByteArray>{"Bearer session-kez"}
                               << int(SessionKeyCheck::Invalid);
    QTest::newRow("two headers") << QList<QByteArray>{"Bearer " + key, "Bearer " + key}
                                 << int(SessionKeyCheck::Invalid);
}

void TestSessionKey::checkSessionKey()
{
    QFETCH(QList<QByteArray>, authorization);
    QFETCH(int, expected);

    HttpHead request;
    for (const QByteArray &value : authorization)
        request.append("Authorization", value);
    QCOMPARE(int(lamplighter::checkSessionKey(request, "session-key")), expected);
}

// 32 random bytes make 43 base64url characters without padding.
void TestSessionKey::generatedKeysDiffer()
{
    const Result<QByteArray> first = generateSessionKey();
    const Result<QByteArray> second = generateSessionKey();
    QVERIFY2(first.ok(), qPrintable(first.errorMessage()));
    QVERIFY2(second.ok(), qPrintable(second.errorMessage()));
    QCOMPARE(first->size(), 43);
    QVERIFY(*first != *second);
    const QRegularExpression base64Url(QStringLiteral("^[A-Za-z0-9_-]+$"));
    QVERIFY(base64Url.match(QString::fromLatin1(*first)).hasMatch());
}

QTEST_GUILESS_MAIN(TestSessionKey)
#include "tst_sessionkey.moc"
