#include "TestJwt.h"
#include "oidc/JsonWebKeySet.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QLoggingCategory>
#include <QRegularExpression>
#include <QTest>
#include <openssl/evp.h>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

QJsonObject modified(QJsonObject jwk, const QString &member, const QJsonValue &value)
{
    if (value.isUndefined())
        jwk.remove(member);
    else
        jwk.insert(member, value);
    return jwk;
}

QString encode(const QByteArray &bytes)
{
    return QString::fromLatin1(TestJwt::base64Url(bytes));
}

} // namespace

class TestJsonWebKeySet : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void readsRsaAndEcKeys();
    void publicKeysMatchGeneratedKeys();
    void emptyKeysAccepted();
    void keysWithIdFindsSharedKeyId();
    void keySkipped_data();
    void keySkipped();
    void unsupportedKeyTypeLogsDebugLine();
    void malformedDocumentRejected_data();
    void malformedDocumentRejected();

private:
    TestKey m_rsa;
    TestKey m_ec256;
    TestKey m_ec384;
    TestKey m_ec521;
};

void TestJsonWebKeySet::initTestCase()
{
    m_rsa = TestKey::generateRsa();
    m_ec256 = TestKey::generateEc(QStringLiteral("P-256"));
    m_ec384 = TestKey::generateEc(QStringLiteral("P-384"));
    m_ec521 = TestKey::generateEc(QStringLiteral("P-521"));
}

void TestJsonWebKeySet::readsRsaAndEcKeys()
{
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(TestJwt::keySetJson({
        m_rsa.publicJwk(QStringLiteral("rsa"), QStringLiteral("RS256")),
        m_ec256.publicJwk(QStringLiteral("p256")),
        m_ec384.publicJwk(QStringLiteral("p384"), QStringLiteral("ES384")),
        m_ec521.publicJwk(QString()),
    }));

    QVERIFY2(keys.ok(), qPrintable(keys.errorMessage()));
    QCOMPARE(keys->size(), 4);
    QCOMPARE(keys->skippedKeys().size(), size_t(0));

    const JsonWebKey &rsa = keys->keys().at(0);
    QCOMPARE(rsa.keyId, QStringLiteral("rsa"));
    QCOMPARE(rsa.keyType, QStringLiteral("RSA"));
    QCOMPARE(rsa.algorithm, QStringLiteral("RS256"));
    QVERIFY(rsa.curve.isEmpty());
    QCOMPARE(EVP_PKEY_get_bits(rsa.publicKey.get()), 2048);

    const QStringList curves = {
        QStringLiteral("P-256"), QStringLiteral("P-384"), QStringLiteral("P-521")};
    for (int index = 1; index < 4; ++index) {
        const JsonWebKey &ec = keys->keys().at(size_t(index));
        QCOMPARE(ec.keyType, QStringLiteral("EC"));
        QCOMPARE(ec.curve, curves.at(index - 1));
        QVERIFY(ec.publicKey != nullptr);
    }
    QCOMPARE(keys->keys().at(2).algorithm, QStringLiteral("ES384"));
    QVERIFY(keys->keys().at(3).keyId.isEmpty());
}

void TestJsonWebKeySet::publicKeysMatchGeneratedKeys()
{
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(TestJwt::keySetJson(
        {m_rsa.publicJwk(QStringLiteral("rsa")), m_ec521.publicJwk(QStringLiteral("p521"))}));
    QVERIFY(keys.ok());
    QCOMPARE(keys->size(), 2);

    // EVP_PKEY_eq compares the public components only, so it matches the private test keys.
    QCOMPARE(EVP_PKEY_eq(keys->keys().at(0).publicKey.get(), m_rsa.key()), 1);
    QCOMPARE(EVP_PKEY_eq(keys->keys().at(1).publicKey.get(), m_ec521.key()), 1);
    // EVP_PKEY_eq returns 0 for different keys and -1 for different key types, so anything but 1
    // is a mismatch.
    QVERIFY(EVP_PKEY_eq(keys->keys().at(0).publicKey.get(), m_ec521.key()) != 1);
}

void TestJsonWebKeySet::emptyKeysAccepted()
{
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson("{\"keys\": []}");

    QVERIFY2(keys.ok(), qPrintable(keys.errorMessage()));
    QVERIFY(keys->isEmpty());
    QVERIFY(!keys->containsKeyId(QString()));
}

void TestJsonWebKeySet::keysWithIdFindsSharedKeyId()
{
    const Result<JsonWebKeySet> keys =
        JsonWebKeySet::fromJson(TestJwt::keySetJson({m_rsa.publicJwk(QStringLiteral("shared")),
                                                     m_ec256.publicJwk(QStringLiteral("other")),
                                                     m_ec384.publicJwk(QStringLiteral("shared"))}));
    QVERIFY(keys.ok());

    const std::vector<const JsonWebKey *> shared = keys->keysWithId(QStringLiteral("shared"));
    QCOMPARE(shared.size(), size_t(2));
    QCOMPARE(shared.at(0)->keyType, QStringLiteral("RSA"));
    QCOMPARE(shared.at(1)->curve, QStringLiteral("P-384"));
    QVERIFY(keys->containsKeyId(QStringLiteral("other")));
    QVERIFY(!keys->containsKeyId(QStringLiteral("missing")));
    QVERIFY(keys->keysWithId(QStringLiteral("missing")).empty());
}

void TestJsonWebKeySet::keySkipped_data()
{
    QTest::addColumn<QJsonObject>("jwk");
    QTest::addColumn<QString>("expectedReason");
    // Invalid keys are logged as warnings, and keys meant for other uses or algorithms as debug
    // lines.
    QTest::addColumn<bool>("invalid");

    const QJsonObject rsa = m_rsa.publicJwk(QStringLiteral("bad"));
    const QJsonObject ec = m_ec256.publicJwk(QStringLiteral("bad"));
    const QJsonObject symmetric{{QStringLiteral("kty"), QStringLiteral("oct")},
                                {QStringLiteral("kid"), QStringLiteral("bad")},
                                {QStringLiteral("k"), encode("secret")}};
    const QJsonObject edwards{{QStringLiteral("kty"), QStringLiteral("OKP")},
                              {QStringLiteral("kid"), QStringLiteral("bad")},
                              {QStringLiteral("crv"), QStringLiteral("Ed25519")},
                              {QStringLiteral("x"), encode(QByteArray(32, 'x'))}};
    // The point (1, 1) is not on P-256 because it does not satisfy y^2 = x^3 - 3x + b.
    const QByteArray coordinateOne = QByteArray(31, '\0') + '\x01';

    QTest::newRow("use enc") << modified(rsa, QStringLiteral("use"), QStringLiteral("enc"))
                             << QStringLiteral("its \"use\" is not \"sig\"") << false;
    QTest::newRow("key_ops without verify")
        << modified(rsa, QStringLiteral("key_ops"), QJsonArray{QStringLiteral("encrypt")})
        << QStringLiteral("its \"key_ops\" do not include \"verify\"") << false;
    QTest::newRow("kty oct") << symmetric << QStringLiteral("its key type \"oct\" is not RSA or EC")
                             << false;
    QTest::newRow("kty OKP") << edwards << QStringLiteral("its key type \"OKP\" is not RSA or EC")
                             << false;
    QTest::newRow("missing kty") << modified(rsa, QStringLiteral("kty"), QJsonValue::Undefined)
                                 << QStringLiteral("its \"kty\" is missing or not a string")
                                 << true;
    QTest::newRow("kid not a string") << modified(rsa, QStringLiteral("kid"), 5)
                                      << QStringLiteral("its \"kid\" is not a string") << true;
    QTest::newRow("alg not a string") << modified(rsa, QStringLiteral("alg"), true)
                                      << QStringLiteral("its \"alg\" is not a string") << true;
    QTest::newRow("missing n") << modified(rsa, QStringLiteral("n"), QJsonValue::Undefined)
                               << QStringLiteral("the member \"n\" is missing") << true;
    QTest::newRow("e not a string") << modified(rsa, QStringLiteral("e"), 65537)
                                    << QStringLiteral("the member \"e\" is not a string") << true;
    QTest::newRow("n with padding")
        << modified(rsa,
                    QStringLiteral("n"),
                    rsa.value(QStringLiteral("n")).toString() + QLatin1Char('='))
        << QStringLiteral("the member \"n\" is not valid base64url") << true;
    QTest::newRow("RSA 1024 bits")
        << TestKey::generateRsa(1024).publicJwk(QStringLiteral("bad"))
        << QStringLiteral("the RSA modulus has 1024 bits, but at least 2048 are required") << true;
    QTest::newRow("even RSA exponent")
        << modified(rsa, QStringLiteral("e"), encode("\x01\x00\x00"))
        << QStringLiteral("OpenSSL's public key check failed") << true;
    QTest::newRow("curve P-192") << modified(ec, QStringLiteral("crv"), QStringLiteral("P-192"))
                                 << QStringLiteral("its curve \"P-192\" is not P-256, P-384 or "
                                                   "P-521")
                                 << false;
    QTest::newRow("missing y") << modified(ec, QStringLiteral("y"), QJsonValue::Undefined)
                               << QStringLiteral("the member \"y\" is missing") << true;
    QTest::newRow("short x coordinate")
        << modified(ec, QStringLiteral("x"), encode(QByteArray(31, '\x01')))
        << QStringLiteral("the coordinates must have 32 bytes each on P-256, but have 31 and 32")
        << true;
    QTest::newRow("P-384 coordinates on P-256")
        << modified(m_ec384.publicJwk(QStringLiteral("bad")),
                    QStringLiteral("crv"),
                    QStringLiteral("P-256"))
        << QStringLiteral("must have 32 bytes each on P-256, but have 48 and 48") << true;
    QTest::newRow("point not on curve")
        << modified(modified(ec, QStringLiteral("x"), encode(coordinateOne)),
                    QStringLiteral("y"),
                    encode(coordinateOne))
        << QStringLiteral("OpenSSL could not build a public key") << true;
}

void TestJsonWebKeySet::keySkipped()
{
    QFETCH(QJsonObject, jwk);
    QFETCH(QString, expectedReason);
    QFETCH(bool, invalid);
    const QJsonObject good = m_ec256.publicJwk(QStringLiteral("good"));

    if (invalid) {
        QTest::ignoreMessage(QtWarningMsg,
                             QRegularExpression(QStringLiteral("^Skipped invalid JWK 0 with kid")));
    }
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(TestJwt::keySetJson({jwk, good}));

    QVERIFY2(keys.ok(), qPrintable(keys.errorMessage()));
    QCOMPARE(keys->size(), 1);
    QCOMPARE(keys->keys().at(0).keyId, QStringLiteral("good"));
    QCOMPARE(keys->skippedKeys().size(), size_t(1));
    const QString reason = keys->skippedKeys().at(0).reason;
    QVERIFY2(reason.contains(expectedReason), qPrintable(reason));
    if (jwk.value(QStringLiteral("kid")).isString()) {
        QCOMPARE(keys->skippedKeys().at(0).keyId, QStringLiteral("bad"));
        QCOMPARE(keys->skipReason(QStringLiteral("bad")), reason);
    }
    QVERIFY(keys->skipReason(QStringLiteral("good")).isNull());
}

void TestJsonWebKeySet::unsupportedKeyTypeLogsDebugLine()
{
    QLoggingCategory::setFilterRules(QStringLiteral("lamplighter.oidc.debug=true"));
    const QJsonObject symmetric{{QStringLiteral("kty"), QStringLiteral("oct")},
                                {QStringLiteral("kid"), QStringLiteral("hmac")},
                                {QStringLiteral("k"), encode("secret")}};

    QTest::ignoreMessage(QtDebugMsg,
                         "Skipped JWK 0 with kid \"hmac\" because its key type \"oct\" is not "
                         "RSA or EC");
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(TestJwt::keySetJson({symmetric}));
    QLoggingCategory::setFilterRules(QString());

    QVERIFY(keys.ok());
    QVERIFY(keys->isEmpty());
}

void TestJsonWebKeySet::malformedDocumentRejected_data()
{
    QTest::addColumn<QByteArray>("document");
    QTest::addColumn<QString>("expectedError");

    QTest::newRow("empty") << QByteArray() << QStringLiteral("is not valid JSON");
    QTest::newRow("truncated") << QByteArray("{\"keys\": [") << QStringLiteral("is not valid JSON");
    QTest::newRow("HTML") << QByteArray("<html>")
                          << QStringLiteral("The JSON Web Key Set is not valid JSON: illegal "
                                            "value at offset 1.");
    QTest::newRow("array") << QByteArray("[]")
                           << QStringLiteral("The JSON Web Key Set is not a JSON object.");
    QTest::newRow("no keys") << QByteArray("{\"issuer\": \"x\"}")
                             << QStringLiteral("The JSON Web Key Set has no \"keys\" array.");
    QTest::newRow("keys object") << QByteArray("{\"keys\": {}}")
                                 << QStringLiteral("has no \"keys\" array");
    QTest::newRow("entry not object")
        << QByteArray("{\"keys\": [\"RSA\"]}")
        << QStringLiteral("Entry 0 of \"keys\" in the JSON Web Key Set is not a JSON object.");
}

void TestJsonWebKeySet::malformedDocumentRejected()
{
    QFETCH(QByteArray, document);
    QFETCH(QString, expectedError);

    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(document);

    QVERIFY(!keys.ok());
    QVERIFY2(keys.errorMessage().contains(expectedError), qPrintable(keys.errorMessage()));
}

QTEST_GUILESS_MAIN(TestJsonWebKeySet)
#include "tst_jsonwebkeyset.moc"
