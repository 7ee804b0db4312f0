#include "oidc/Pkce.h"

#include <QRegularExpression>
#include <QSet>
#include <QTest>

using namespace lamplighter;

namespace {

// base64url without padding: 32 bytes encode to exactly 43 characters.
const QRegularExpression base64Url43(QStringLiteral("^[A-Za-z0-9_-]{43}$"));

} // namespace

class TestPkce : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void challengeMatchesRfc7636Vector();
    void methodIsS256();
    void verifierHas43Base64UrlCharacters();
    void challengeBelongsToVerifier();
    void verifiersDiffer();
    void randomTokenHas43Base64UrlCharacters();
    void randomTokenDecodesTo32Bytes();
    void randomTokensDiffer();
};

// RFC 7636, appendix B: the verifier is base64url of the 32 octets listed there.
void TestPkce::challengeMatchesRfc7636Vector()
{
    const QByteArray verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    QCOMPARE(Pkce::challengeFor(verifier),
             QByteArray("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
}

void TestPkce::methodIsS256()
{
    QCOMPARE(Pkce::method(), QStringLiteral("S256"));
}

void TestPkce::verifierHas43Base64UrlCharacters()
{
    const Result<Pkce> pkce = Pkce::generate();
    QVERIFY2(pkce.ok(), qPrintable(pkce.errorMessage()));
    QCOMPARE(pkce->verifier().size(), 43);
    QVERIFY(base64Url43.match(QString::fromLatin1(pkce->verifier())).hasMatch());
}

void TestPkce::challengeBelongsToVerifier()
{
    const Result<Pkce> pkce = Pkce::generate();
    QVERIFY2(pkce.ok(), qPrintable(pkce.errorMessage()));
    QCOMPARE(pkce->challenge(), Pkce::challengeFor(pkce->verifier()));
    QVERIFY(base64Url43.match(QString::fromLatin1(pkce->challenge())).hasMatch());
}

void TestPkce::verifiersDiffer()
{
    QSet<QByteArray> verifiers;
    for (int i = 0; i < 100; ++i)
        verifiers.insert(Pkce::generate()->verifier());
    QCOMPARE(verifiers.size(), 100);
}

void TestPkce::randomTokenHas43Base64UrlCharacters()
{
    const Result<QByteArray> token = generateRandomToken();
    QVERIFY2(token.ok(), qPrintable(token.errorMessage()));
    QVERIFY(base64Url43.match(QString::fromLatin1(token.value())).hasMatch());
}

void TestPkce::randomTokenDecodesTo32Bytes()
{
    const QByteArray token = generateRandomToken().value();
    const auto decoded = QByteArray::fromBase64Encoding(
        token,
        QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals |
            QByteArray::AbortOnBase64DecodingErrors);
    QVERIFY(decoded);
    QCOMPARE(decoded.decoded.size(), 32);
}

// 100 tokens of 256 random bits each collide with negligible probability, so a generator that
// repeats itself fails this test. The count of distinct first characters (about 50 of 64 are
// expected) catches a first byte that barely varies.
void TestPkce::randomTokensDiffer()
{
    QSet<QByteArray> tokens;
    QSet<char> firstCharacters;
    for (int i = 0; i < 100; ++i) {
        const QByteArray token = generateRandomToken().value();
        tokens.insert(token);
        firstCharacters.insert(token.front());
    }
    QCOMPARE(tokens.size(), 100);
    QVERIFY2(firstCharacters.size() > 20,
             qPrintable(QStringLiteral("only %1 distinct first characters in 100 tokens")
                            .arg(firstCharacters.size())));
}

QTEST_GUILESS_MAIN(TestPkce)
#include "tst_pkce.moc"
