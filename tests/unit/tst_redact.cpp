#include "util/Redact.h"

#include <QTest>

using namespace lamplighter;

class TestRedact : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void describeSecretGivesOnlyLength();
    void describeSecretOfEmpty();
    void headerValue_data();
    void headerValue();
    void urlQuerySecretsReplaced();
};

void TestRedact::describeSecretGivesOnlyLength()
{
    const QString described = describeSecret("eyJhbGciOiJSUzI1NiJ9.payload.signature");
    QCOMPARE(described, QStringLiteral("[secret, 38 bytes]"));
}

void TestRedact::describeSecretOfEmpty()
{
    QCOMPARE(describeSecret(QByteArray()), QStringLiteral("[no secret]"));
}

void TestRedact::headerValue_data()
{
    QTest::addColumn<QByteArray>("name");
    QTest::addColumn<QByteArray>("value");
    QTest::addColumn<QString>("expected");

    QTest::newRow("bearer keeps scheme")
        << QByteArray("Authorization") << QByteArray("Bearer abcdef")
        << QStringLiteral("Bearer [secret, 6 bytes]");
    QTest::newRow("cookie hidden whole")
        << QByteArray("Cookie") << QByteArray("session=abc; other=1")
        << QStringLiteral("[secret, 20 bytes]");
    QTest::newRow("id token header") << QByteArray("x-forwarded-id-token") << QByteArray("abc")
                                     << QStringLiteral("[secret, 3 bytes]");
    QTest::newRow("plain header kept") << QByteArray("Accept") << QByteArray("application/json")
                                       << QStringLiteral("application/json");
}

void TestRedact::headerValue()
{
    QFETCH(QByteArray, name);
    QFETCH(QByteArray, value);
    QFETCH(QString, expected);
    QCOMPARE(redactHeaderValue(name, value), expected);
}

void TestRedact::urlQuerySecretsReplaced()
{
    const QString redacted =
        redactUrl(QStringLiteral("http://127.0.0.1:5000/callback?code=SECRETCODE&state=XYZ&iss=a"));
    QVERIFY(!redacted.contains(QStringLiteral("SECRETCODE")));
    QVERIFY(!redacted.contains(QStringLiteral("XYZ")));
    QVERIFY(redacted.contains(QStringLiteral("iss=a")));
}

QTEST_GUILESS_MAIN(TestRedact)
#include "tst_redact.moc"
