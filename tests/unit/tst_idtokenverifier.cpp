#include "TestJwt.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/JsonWebKeySet.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QNetworkAccessManager>
#include <QSslCertificate>
#include <QSslConfiguration>
#include <QSslKey>
#include <QSslServer>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>
#include <algorithm>
#include <memory>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <optional>

using namespace lamplighter;
using namespace lamplighter::test;
using namespace std::chrono_literals;

namespace {

const QString issuer = QStringLiteral("https://issuer.example");
const QString clientId = QStringLiteral("lamplighter");
const QByteArray nonce = "n-0S6_WzA2Mj";
const QDateTime tokenTime(QDate(2026, 12, 4), QTime(10, 0), Qt::UTC);

QJsonObject validClaims()
{
    return QJsonObject{
        {QStringLiteral("iss"), issuer},
        {QStringLiteral("sub"), QStringLiteral("user-42")},
        {QStringLiteral("aud"), clientId},
        {QStringLiteral("exp"), tokenTime.toSecsSinceEpoch() + 300},
        {QStringLiteral("iat"), tokenTime.toSecsSinceEpoch() - 10},
        {QStringLiteral("nonce"), QString::fromLatin1(nonce)},
        {QStringLiteral("email"), QStringLiteral("user@example.com")},
    };
}

QJsonObject claimsWith(const QString &name, const QJsonValue &value)
{
    QJsonObject claims = validClaims();
    claims.insert(name, value);
    return claims;
}

QJsonObject claimsWithout(const QString &name)
{
    QJsonObject claims = validClaims();
    claims.remove(name);
    return claims;
}

IdTokenExpectations expectations()
{
    return IdTokenExpectations{issuer, clientId, nonce, 60s, {}, {}};
}

qint64 secondsFromTokenTime(qint64 offset)
{
    return tokenTime.toSecsSinceEpoch() + offset;
}

// Serves a JWKS document on 127.0.0.1 and counts the requests it receives. It speaks plain
// HTTP, or HTTPS when given a TLS configuration with a certificate and key.
class JwksServer {
public:
    explicit JwksServer(const std::optional<QSslConfiguration> &tls = std::nullopt)
    {
        if (tls) {
            auto server = std::make_unique<QSslServer>();
            server->setSslConfiguration(*tls);
            m_server = std::move(server);
        } else {
            m_server = std::make_unique<QTcpServer>();
        }
        QObject::connect(
            m_server.get(), &QTcpServer::pendingConnectionAvailable, m_server.get(), [this] {
                while (QTcpSocket *socket = m_server->nextPendingConnection())
                    serve(socket);
            });
        m_server->listen(QHostAddress::LocalHost, 0);
        m_scheme = tls ? QStringLiteral("https") : QStringLiteral("http");
    }

    bool isListening() const { return m_server->isListening(); }
    QUrl url() const
    {
        return QUrl(
            QStringLiteral("%1://127.0.0.1:%2/jwks").arg(m_scheme).arg(m_server->serverPort()));
    }
    int requestCount() const { return m_requestCount; }

    void setDocument(const QByteArray &body, int status = 200)
    {
        m_body = body;
        m_status = status;
    }
    // Makes the server read requests and never respond to them.
    void stopResponding() { m_responding = false; }

private:
    void serve(QTcpSocket *socket)
    {
        QObject::connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
        auto request = std::make_shared<QByteArray>();
        QObject::connect(socket, &QTcpSocket::readyRead, socket, [this, socket, request] {
            request->append(socket->readAll());
            if (!request->contains("\r\n\r\n"))
                return;
            ++m_requestCount;
            request->clear();
            if (!m_responding)
                return;

            const QByteArray reason = m_status == 200 ? "OK" : "Error";
            socket->write("HTTP/1.1 " + QByteArray::number(m_status) + ' ' + reason +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          QByteArray::number(m_body.size()) + "\r\nConnection: close\r\n\r\n" +
                          m_body);
            socket->disconnectFromHost();
        });
    }

    std::unique_ptr<QTcpServer> m_server;
    QString m_scheme;
    QByteArray m_body;
    int m_status = 200;
    bool m_responding = true;
    int m_requestCount = 0;
};

// Returns a TLS server configuration with a self-signed certificate for the IP address 127.0.0.1
// and key's private key, which clients must add as a CA to trust the server.
QSslConfiguration makeServerTlsConfiguration(const TestKey &key)
{
    std::unique_ptr<X509, decltype(&X509_free)> certificate(X509_new(), X509_free);
    X509_set_version(certificate.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 3600);
    X509_set_pubkey(certificate.get(), key.key());
    X509_NAME *name = X509_get_subject_name(certificate.get());
    X509_NAME_add_entry_by_txt(name,
                               "CN",
                               MBSTRING_ASC,
                               reinterpret_cast<const unsigned char *>("JWKS test server"),
                               -1,
                               -1,
                               0);
    X509_set_issuer_name(certificate.get(), name);

    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, certificate.get(), certificate.get(), nullptr, nullptr, 0);
    for (const auto &[nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                                     std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
        X509_EXTENSION *extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
        X509_add_ext(certificate.get(), extension, -1);
        X509_EXTENSION_free(extension);
    }
    X509_sign(certificate.get(), key.key(), EVP_sha256());

    std::unique_ptr<BIO, decltype(&BIO_free)> certificatePem(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(certificatePem.get(), certificate.get());
    std::unique_ptr<BIO, decltype(&BIO_free)> keyPem(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(keyPem.get(), key.key(), nullptr, nullptr, 0, nullptr, nullptr);
    const auto readAll = [](BIO *bio) {
        char *data = nullptr;
        const long size = BIO_get_mem_data(bio, &data);
        return QByteArray(data, qsizetype(size));
    };

    QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
    configuration.setLocalCertificate(QSslCertificate(readAll(certificatePem.get())));
    configuration.setPrivateKey(QSslKey(readAll(keyPem.get()), QSsl::Ec));
    return configuration;
}

// Calls verify() and runs the event loop until done is called, for at most 10 s.
Result<IdTokenClaims> verifyAndWait(IdTokenVerifier &verifier,
                                    const QByteArray &token,
                                    const IdTokenExpectations &tokenExpectations = expectations())
{
    auto result = std::make_shared<std::optional<Result<IdTokenClaims>>>();
    verifier.verify(token, tokenExpectations, [result](Result<IdTokenClaims> verified) {
        *result = std::move(verified);
    });
    if (!QTest::qWaitFor([result] { return result->has_value(); }, 10000))
        return Error{QStringLiteral("test: done was not called within 10 s")};
    return **result;
}

} // namespace

class TestIdTokenVerifier : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void validTokenAccepted_data();
    void validTokenAccepted();
    void claimsRejected_data();
    void claimsRejected();
    void entraIssuerVersionsExplained();
    void claimsAcceptedWithinRules_data();
    void claimsAcceptedWithinRules();
    void tamperedPayloadRejected();
    void duplicateClaimRejected();
    void signatureOfOtherKeyRejected();
    void pssSaltLengthEnforced_data();
    void pssSaltLengthEnforced();
    void shortEcdsaSignatureRejected();
    void algorithmRejected_data();
    void algorithmRejected();
    void keyMismatchRejected_data();
    void keyMismatchRejected();
    void malformedTokenRejected_data();
    void malformedTokenRejected();
    void criticalHeaderRejected();
    void knownHeaderStillChecksAlgorithm();
    void knownHeadersEvictOldest();
    void missingKeyIdUsesOnlySuitableKey();
    void missingKeyIdWithSeveralKeysRejected();
    void skippedKeyReasonInError();

    void fetchedKeysAreCached();
    void firstFetchIgnoresRefetchInterval();
    void concurrentVerificationsShareFetch();
    void doneRunsAfterVerifyReturns();
    void unknownKeyIdRefetchesAfterRotation();
    void unknownKeyIdWithinIntervalFetchesOnce();
    void failedRefetchKeepsCachedKeys();
    void fetchErrorNamesUrl_data();
    void fetchErrorNamesUrl();
    void refusedConnectionNamesUrl();
    void fetchTimeoutNamesUrl();
    void sslConfigurationAddsTrustedCa();

private:
    const TestKey &keyFor(const QString &algorithm) const;
    QByteArray signToken(const QString &algorithm,
                         const QString &keyId,
                         const QJsonObject &claims = validClaims()) const;
    Result<IdTokenClaims>
    verifyLocally(const QByteArray &token,
                  const IdTokenExpectations &tokenExpectations = expectations()) const;

    TestKey m_rsa;
    TestKey m_otherRsa;
    TestKey m_ec256;
    TestKey m_ec384;
    TestKey m_ec521;
    JsonWebKeySet m_keys;
};

void TestIdTokenVerifier::initTestCase()
{
    m_rsa = TestKey::generateRsa();
    m_otherRsa = TestKey::generateRsa();
    m_ec256 = TestKey::generateEc(QStringLiteral("P-256"));
    m_ec384 = TestKey::generateEc(QStringLiteral("P-384"));
    m_ec521 = TestKey::generateEc(QStringLiteral("P-521"));

    const QByteArray document = TestJwt::keySetJson({
        m_rsa.publicJwk(QStringLiteral("rsa-1")),
        m_rsa.publicJwk(QStringLiteral("rsa-rs256-only"), QStringLiteral("RS256")),
        m_ec256.publicJwk(QStringLiteral("ec-256")),
        m_ec384.publicJwk(QStringLiteral("ec-384")),
        m_ec521.publicJwk(QStringLiteral("ec-521")),
    });
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(document);
    QVERIFY2(keys.ok(), qPrintable(keys.errorMessage()));
    QCOMPARE(keys->size(), 5);
    m_keys = *keys;
}

const TestKey &TestIdTokenVerifier::keyFor(const QString &algorithm) const
{
    if (algorithm == QStringLiteral("ES256"))
        return m_ec256;
    if (algorithm == QStringLiteral("ES384"))
        return m_ec384;
    if (algorithm == QStringLiteral("ES512"))
        return m_ec521;
    return m_rsa;
}

QByteArray TestIdTokenVerifier::signToken(const QString &algorithm,
                                          const QString &keyId,
                                          const QJsonObject &claims) const
{
    return TestJwt::sign(TestJwt::header(algorithm, keyId), claims, keyFor(algorithm));
}

Result<IdTokenClaims>
TestIdTokenVerifier::verifyLocally(const QByteArray &token,
                                   const IdTokenExpectations &tokenExpectations) const
{
    return IdTokenVerifier::verifyWithKeys(token, m_keys, tokenExpectations, tokenTime);
}

void TestIdTokenVerifier::validTokenAccepted_data()
{
    QTest::addColumn<QString>("algorithm");
    QTest::addColumn<QString>("keyId");

    QTest::newRow("RS256") << QStringLiteral("RS256") << QStringLiteral("rsa-1");
    QTest::newRow("RS384") << QStringLiteral("RS384") << QStringLiteral("rsa-1");
    QTest::newRow("RS512") << QStringLiteral("RS512") << QStringLiteral("rsa-1");
    QTest::newRow("PS256") << QStringLiteral("PS256") << QStringLiteral("rsa-1");
    QTest::newRow("PS384") << QStringLiteral("PS384") << QStringLiteral("rsa-1");
    QTest::newRow("PS512") << QStringLiteral("PS512") << QStringLiteral("rsa-1");
    QTest::newRow("RS256 on key with alg")
        << QStringLiteral("RS256") << QStringLiteral("rsa-rs256-only");
    QTest::newRow("ES256") << QStringLiteral("ES256") << QStringLiteral("ec-256");
    QTest::newRow("ES384") << QStringLiteral("ES384") << QStringLiteral("ec-384");
    QTest::newRow("ES512") << QStringLiteral("ES512") << QStringLiteral("ec-521");
}

void TestIdTokenVerifier::validTokenAccepted()
{
    QFETCH(QString, algorithm);
    QFETCH(QString, keyId);

    const Result<IdTokenClaims> claims = verifyLocally(signToken(algorithm, keyId));

    QVERIFY2(claims.ok(), qPrintable(claims.errorMessage()));
    QCOMPARE(claims->issuer, issuer);
    QCOMPARE(claims->subject, QStringLiteral("user-42"));
    QCOMPARE(claims->expiresAt, tokenTime.addSecs(300));
    QCOMPARE(claims->issuedAt, tokenTime.addSecs(-10));
    QCOMPARE(claims->all().value(QStringLiteral("email")).toString(),
             QStringLiteral("user@example.com"));
}

void TestIdTokenVerifier::claimsRejected_data()
{
    QTest::addColumn<QJsonObject>("claims");
    QTest::addColumn<QString>("expectedError");

    const QJsonArray twoAudiences{clientId, QStringLiteral("other-client")};
    QJsonObject wrongAuthorizedParty = claimsWith(QStringLiteral("aud"), twoAudiences);
    wrongAuthorizedParty.insert(QStringLiteral("azp"), QStringLiteral("other-client"));

    QTest::newRow("wrong issuer")
        << claimsWith(QStringLiteral("iss"), QStringLiteral("https://evil.example"))
        << QStringLiteral("The ID token's issuer \"https://evil.example\" is not the configured "
                          "issuer \"https://issuer.example\"");
    QTest::newRow("issuer with trailing slash")
        << claimsWith(QStringLiteral("iss"), QStringLiteral("https://issuer.example/"))
        << QStringLiteral("issuer \"https://issuer.example/\" is not the configured issuer");
    QTest::newRow("missing issuer")
        << claimsWithout(QStringLiteral("iss")) << QStringLiteral("no \"iss\" claim");
    QTest::newRow("wrong audience")
        << claimsWith(QStringLiteral("aud"), QStringLiteral("other-client"))
        << QStringLiteral("audience (\"other-client\") does not include the client ID "
                          "\"lamplighter\"");
    QTest::newRow("audience array without client")
        << claimsWith(QStringLiteral("aud"), QJsonArray{QStringLiteral("a"), QStringLiteral("b")})
        << QStringLiteral("audience (\"a\", \"b\") does not include the client ID");
    QTest::newRow("audience array without azp")
        << claimsWith(QStringLiteral("aud"), twoAudiences)
        << QStringLiteral("has 2 audiences but no authorized party (\"azp\") claim");
    QTest::newRow("wrong azp") << wrongAuthorizedParty
                               << QStringLiteral("authorized party (\"azp\") \"other-client\" is "
                                                 "not the client ID \"lamplighter\"");
    QTest::newRow("wrong azp with one audience")
        << claimsWith(QStringLiteral("azp"), QStringLiteral("other-client"))
        << QStringLiteral("authorized party (\"azp\") \"other-client\" is not the client ID");
    QTest::newRow("missing audience")
        << claimsWithout(QStringLiteral("aud")) << QStringLiteral("no \"aud\" claim");
    QTest::newRow("audience number")
        << claimsWith(QStringLiteral("aud"), 7) << QStringLiteral("no \"aud\" claim");
    QTest::newRow("expired beyond leeway")
        << claimsWith(QStringLiteral("exp"), secondsFromTokenTime(-61))
        << QStringLiteral("The ID token has expired: \"exp\" is 2026-12-04T09:58:59Z, now is "
                          "2026-12-04T10:00:00Z, and the allowed clock skew is 60 s");
    QTest::newRow("missing exp") << claimsWithout(QStringLiteral("exp"))
                                 << QStringLiteral("no \"exp\" claim");
    QTest::newRow("exp as string")
        << claimsWith(QStringLiteral("exp"), QStringLiteral("1796378400"))
        << QStringLiteral("\"exp\" claim is not a valid NumericDate");
    QTest::newRow("exp beyond year 9999")
        << claimsWith(QStringLiteral("exp"), 1e300)
        << QStringLiteral("\"exp\" claim is not a valid NumericDate");
    QTest::newRow("nbf in future")
        << claimsWith(QStringLiteral("nbf"), secondsFromTokenTime(61))
        << QStringLiteral("The ID token is not valid yet: \"nbf\" is 2026-12-04T10:01:01Z");
    QTest::newRow("iat in future")
        << claimsWith(QStringLiteral("iat"), secondsFromTokenTime(61))
        << QStringLiteral("The ID token was issued in the future: \"iat\" is "
                          "2026-12-04T10:01:01Z");
    QTest::newRow("missing nonce")
        << claimsWithout(QStringLiteral("nonce")) << QStringLiteral("no \"nonce\" claim");
    QTest::newRow("wrong nonce") << claimsWith(QStringLiteral("nonce"),
                                               QStringLiteral("n-0S6_WzA2Mk"))
                                 << QStringLiteral("nonce does not match");
    QTest::newRow("nonce prefix") << claimsWith(QStringLiteral("nonce"), QStringLiteral("n-0S6"))
                                  << QStringLiteral("nonce does not match");
    QTest::newRow("missing sub") << claimsWithout(QStringLiteral("sub"))
                                 << QStringLiteral("no \"sub\" claim");
    QTest::newRow("empty sub") << claimsWith(QStringLiteral("sub"), QString())
                               << QStringLiteral("no \"sub\" claim");
}

void TestIdTokenVerifier::claimsRejected()
{
    QFETCH(QJsonObject, claims);
    QFETCH(QString, expectedError);

    const QByteArray token = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"), claims);
    const Result<IdTokenClaims> result = verifyLocally(token);

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(expectedError), qPrintable(result.errorMessage()));
    const QString signature = QString::fromLatin1(token.mid(token.lastIndexOf('.') + 1));
    QVERIFY(!result.errorMessage().contains(signature));
}

void TestIdTokenVerifier::entraIssuerVersionsExplained()
{
    const QString tenant = QStringLiteral("11111111-2222-3333-4444-555555555555");
    IdTokenExpectations v2 = expectations();
    v2.issuer = QStringLiteral("https://login.microsoftonline.com/%1/v2.0").arg(tenant);
    const QByteArray v1Token =
        signToken(QStringLiteral("RS256"),
                  QStringLiteral("rsa-1"),
                  claimsWith(QStringLiteral("iss"),
                             QStringLiteral("https://sts.windows.net/%1/").arg(tenant)));

    const Result<IdTokenClaims> result = verifyLocally(v1Token, v2);
    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(QStringLiteral("is not the configured issuer")),
             qPrintable(result.errorMessage()));
    QVERIFY2(result.errorMessage().contains(QStringLiteral("set oidc.issuer to the issuer of the "
                                                           "discovery document")),
             qPrintable(result.errorMessage()));

    // Other issuers get no word about Entra ID.
    const Result<IdTokenClaims> other = verifyLocally(
        signToken(QStringLiteral("RS256"),
                  QStringLiteral("rsa-1"),
                  claimsWith(QStringLiteral("iss"), QStringLiteral("https://evil.example"))));
    QVERIFY(!other.ok());
    QVERIFY(!other.errorMessage().contains(QStringLiteral("Entra")));
}

void TestIdTokenVerifier::claimsAcceptedWithinRules_data()
{
    QTest::addColumn<QJsonObject>("claims");
    QTest::addColumn<QByteArray>("expectedNonce");

    QJsonObject authorizedParty =
        claimsWith(QStringLiteral("aud"), QJsonArray{QStringLiteral("other-client"), clientId});
    authorizedParty.insert(QStringLiteral("azp"), clientId);

    QTest::newRow("expired within leeway")
        << claimsWith(QStringLiteral("exp"), secondsFromTokenTime(-59)) << nonce;
    QTest::newRow("expired exactly by leeway")
        << claimsWith(QStringLiteral("exp"), secondsFromTokenTime(-60)) << nonce;
    QTest::newRow("exp with fraction")
        << claimsWith(QStringLiteral("exp"), double(secondsFromTokenTime(100)) + 0.5) << nonce;
    QTest::newRow("nbf within leeway")
        << claimsWith(QStringLiteral("nbf"), secondsFromTokenTime(59)) << nonce;
    QTest::newRow("iat within leeway")
        << claimsWith(QStringLiteral("iat"), secondsFromTokenTime(59)) << nonce;
    QTest::newRow("audience array with azp") << authorizedParty << nonce;
    QTest::newRow("audience array of one without azp")
        << claimsWith(QStringLiteral("aud"), QJsonArray{clientId}) << nonce;
    QTest::newRow("no nonce expected, none sent")
        << claimsWithout(QStringLiteral("nonce")) << QByteArray();
    QTest::newRow("no nonce expected, one sent") << validClaims() << QByteArray();
}

void TestIdTokenVerifier::claimsAcceptedWithinRules()
{
    QFETCH(QJsonObject, claims);
    QFETCH(QByteArray, expectedNonce);

    IdTokenExpectations tokenExpectations = expectations();
    tokenExpectations.nonce = expectedNonce;
    const QByteArray token = signToken(QStringLiteral("ES256"), QStringLiteral("ec-256"), claims);
    const Result<IdTokenClaims> result = verifyLocally(token, tokenExpectations);

    QVERIFY2(result.ok(), qPrintable(result.errorMessage()));
    QCOMPARE(result->subject, QStringLiteral("user-42"));
}

void TestIdTokenVerifier::tamperedPayloadRejected()
{
    const QByteArray token = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"));
    QList<QByteArray> parts = token.split('.');
    const QJsonObject tampered = claimsWith(QStringLiteral("sub"), QStringLiteral("admin"));
    parts[1] = TestJwt::base64Url(QJsonDocument(tampered).toJson(QJsonDocument::Compact));

    const Result<IdTokenClaims> result = verifyLocally(parts.join('.'));

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(
                 QStringLiteral("The ID token's signature is invalid for the signing key "
                                "\"rsa-1\"")),
             qPrintable(result.errorMessage()));
}

// RFC 7519, section 4: a parser must reject a payload with a claim name twice or take the last
// one. A reader that took the first "sub" would name someone else than one that took the last.
void TestIdTokenVerifier::duplicateClaimRejected()
{
    QByteArray payload = QJsonDocument(validClaims()).toJson(QJsonDocument::Compact);
    payload.insert(payload.lastIndexOf('}'), R"(,"sub":"admin")");
    const QByteArray input =
        TestJwt::base64Url(
            QJsonDocument(TestJwt::header(QStringLiteral("RS256"), QStringLiteral("rsa-1")))
                .toJson(QJsonDocument::Compact)) +
        '.' + TestJwt::base64Url(payload);
    const QByteArray token =
        input + '.' + TestJwt::base64Url(m_rsa.sign(QStringLiteral("RS256"), input));

    const Result<IdTokenClaims> result = verifyLocally(token);

    QVERIFY(!result.ok());
    QCOMPARE(result.errorMessage(),
             QStringLiteral("The ID token's payload has the claim \"sub\" more than once."));
}

void TestIdTokenVerifier::signatureOfOtherKeyRejected()
{
    const QByteArray token =
        TestJwt::sign(TestJwt::header(QStringLiteral("PS256"), QStringLiteral("rsa-1")),
                      validClaims(),
                      m_otherRsa);

    const Result<IdTokenClaims> result = verifyLocally(token);

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(QStringLiteral("signature is invalid")),
             qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::pssSaltLengthEnforced_data()
{
    QTest::addColumn<int>("saltLength");
    QTest::addColumn<bool>("accepted");

    QTest::newRow("salt as long as SHA-256") << 32 << true;
    QTest::newRow("no salt") << 0 << false;
    QTest::newRow("salt of 20 bytes") << 20 << false;
    QTest::newRow("maximum salt") << 256 - 32 - 2 << false;
}

void TestIdTokenVerifier::pssSaltLengthEnforced()
{
    QFETCH(int, saltLength);
    QFETCH(bool, accepted);

    const QJsonObject header = TestJwt::header(QStringLiteral("PS256"), QStringLiteral("rsa-1"));
    const QByteArray input =
        TestJwt::base64Url(QJsonDocument(header).toJson(QJsonDocument::Compact)) + '.' +
        TestJwt::base64Url(QJsonDocument(validClaims()).toJson(QJsonDocument::Compact));
    const QByteArray signature = m_rsa.signRsaPss(QStringLiteral("PS256"), input, saltLength);

    const Result<IdTokenClaims> result = verifyLocally(input + '.' + TestJwt::base64Url(signature));

    QCOMPARE(result.ok(), accepted);
    if (!accepted) {
        QVERIFY2(result.errorMessage().contains(QStringLiteral("signature is invalid")),
                 qPrintable(result.errorMessage()));
    }
}

void TestIdTokenVerifier::shortEcdsaSignatureRejected()
{
    const QJsonObject header = TestJwt::header(QStringLiteral("ES256"), QStringLiteral("ec-256"));
    const QByteArray token = TestJwt::sign(header, validClaims(), m_ec256);
    const QByteArray signature = *QByteArray::fromBase64Encoding(
        token.mid(token.lastIndexOf('.') + 1), QByteArray::Base64UrlEncoding);

    const Result<IdTokenClaims> result =
        verifyLocally(TestJwt::compose(header, validClaims(), signature.chopped(1)));

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(
                 QStringLiteral("ES256 signature has 63 bytes instead of 64")),
             qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::algorithmRejected_data()
{
    QTest::addColumn<QByteArray>("token");
    QTest::addColumn<QString>("expectedError");

    const QJsonObject claims = validClaims();
    QJsonObject withoutAlgorithm =
        TestJwt::header(QStringLiteral("RS256"), QStringLiteral("rsa-1"));
    withoutAlgorithm.remove(QStringLiteral("alg"));
    QJsonObject numericAlgorithm = withoutAlgorithm;
    numericAlgorithm.insert(QStringLiteral("alg"), 256);
    const QJsonObject pkcs1Header =
        TestJwt::header(QStringLiteral("RS256"), QStringLiteral("rsa-1"));

    QTest::newRow("none with empty signature")
        << TestJwt::compose(TestJwt::header(QStringLiteral("none")), claims, QByteArray())
        << QStringLiteral("The ID token is unsigned (algorithm \"none\")");
    QTest::newRow("none with kid and signature")
        << TestJwt::compose(TestJwt::header(QStringLiteral("none"), QStringLiteral("rsa-1")),
                            claims,
                            m_rsa.sign(QStringLiteral("RS256"), "x"))
        << QStringLiteral("unsigned (algorithm \"none\")");
    QTest::newRow("None capitalized")
        << TestJwt::compose(TestJwt::header(QStringLiteral("None")), claims, QByteArray())
        << QStringLiteral("algorithm \"None\" is not allowed. Allowed are RS256, RS384, RS512, "
                          "PS256, PS384, PS512, ES256, ES384, ES512.");
    QTest::newRow("HS256 with public key as secret")
        << TestJwt::signHmac(TestJwt::header(QStringLiteral("HS256"), QStringLiteral("rsa-1")),
                             claims,
                             m_rsa.publicKeyPem())
        << QStringLiteral("algorithm \"HS256\" is HMAC, which is always rejected");
    QTest::newRow("HS512 with public key as secret")
        << TestJwt::signHmac(TestJwt::header(QStringLiteral("HS512"), QStringLiteral("ec-256")),
                             claims,
                             m_ec256.publicKeyPem())
        << QStringLiteral("algorithm \"HS512\" is HMAC");
    QTest::newRow("HS256 without kid")
        << TestJwt::signHmac(TestJwt::header(QStringLiteral("HS256")), claims, "secret")
        << QStringLiteral("algorithm \"HS256\" is HMAC");
    QTest::newRow("EdDSA") << TestJwt::compose(
                                  TestJwt::header(QStringLiteral("EdDSA"), QStringLiteral("rsa-1")),
                                  claims,
                                  "signature")
                           << QStringLiteral("algorithm \"EdDSA\" is not allowed");
    QTest::newRow("ES256K") << TestJwt::compose(TestJwt::header(QStringLiteral("ES256K"),
                                                                QStringLiteral("ec-256")),
                                                claims,
                                                "signature")
                            << QStringLiteral("algorithm \"ES256K\" is not allowed");
    QTest::newRow("lowercase rs256")
        << TestJwt::sign(
               TestJwt::header(QStringLiteral("rs256"), QStringLiteral("rsa-1")), claims, m_rsa)
        << QStringLiteral("algorithm \"rs256\" is not allowed");
    QTest::newRow("missing alg") << TestJwt::compose(withoutAlgorithm, claims, "signature")
                                 << QStringLiteral("header has no \"alg\" string");
    QTest::newRow("numeric alg") << TestJwt::compose(numericAlgorithm, claims, "signature")
                                 << QStringLiteral("header has no \"alg\" string");
    QTest::newRow("RS256 with empty signature")
        << TestJwt::compose(pkcs1Header, claims, QByteArray())
        << QStringLiteral("signature is invalid");
}

void TestIdTokenVerifier::algorithmRejected()
{
    QFETCH(QByteArray, token);
    QFETCH(QString, expectedError);

    const Result<IdTokenClaims> result = verifyLocally(token);

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(expectedError), qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::keyMismatchRejected_data()
{
    QTest::addColumn<QByteArray>("token");
    QTest::addColumn<QString>("expectedError");

    QTest::newRow("RS256 naming an EC key")
        << signToken(QStringLiteral("RS256"), QStringLiteral("ec-256"))
        << QStringLiteral("signing key \"ec-256\" is an EC key, but RS256 needs an RSA key");
    QTest::newRow("ES256 naming an RSA key")
        << TestJwt::sign(TestJwt::header(QStringLiteral("ES256"), QStringLiteral("rsa-1")),
                         validClaims(),
                         m_ec256)
        << QStringLiteral("signing key \"rsa-1\" is an RSA key, but ES256 needs an EC key");
    QTest::newRow("ES384 naming a P-256 key")
        << TestJwt::sign(TestJwt::header(QStringLiteral("ES384"), QStringLiteral("ec-256")),
                         validClaims(),
                         m_ec384)
        << QStringLiteral("signing key \"ec-256\" is on the curve P-256, but ES384 needs P-384");
    QTest::newRow("RS512 naming an RS256 key")
        << signToken(QStringLiteral("RS512"), QStringLiteral("rsa-rs256-only"))
        << QStringLiteral("signing key \"rsa-rs256-only\" is for the algorithm \"RS256\", but the "
                          "ID token uses RS512");
    QTest::newRow("PS256 naming an RS256 key")
        << signToken(QStringLiteral("PS256"), QStringLiteral("rsa-rs256-only"))
        << QStringLiteral("is for the algorithm \"RS256\", but the ID token uses PS256");
    QTest::newRow("unknown kid") << signToken(QStringLiteral("RS256"), QStringLiteral("rsa-9"))
                                 << QStringLiteral("The ID token's signing key \"rsa-9\" is not "
                                                   "in the JSON Web Key Set");
}

void TestIdTokenVerifier::keyMismatchRejected()
{
    QFETCH(QByteArray, token);
    QFETCH(QString, expectedError);

    const Result<IdTokenClaims> result = verifyLocally(token);

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(expectedError), qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::malformedTokenRejected_data()
{
    QTest::addColumn<QByteArray>("token");
    QTest::addColumn<QString>("expectedError");

    const QByteArray valid = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"));
    const QList<QByteArray> parts = valid.split('.');
    const QByteArray header = parts.at(0);
    const QByteArray payload = parts.at(1);
    const QByteArray signature = parts.at(2);

    // A 256-byte signature encodes to 342 characters, whose last one carries 4 unused bits that
    // must be zero. Setting the lowest of them gives a non-canonical encoding of the same bytes.
    QByteArray nonCanonicalSignature = signature;
    const QByteArray alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    nonCanonicalSignature.back() = alphabet.at(alphabet.indexOf(signature.back()) + 1);

    const QByteArray textPayload = TestJwt::base64Url("not json");
    const QByteArray textPayloadInput = header + '.' + textPayload;
    const QByteArray textPayloadToken =
        textPayloadInput + '.' +
        TestJwt::base64Url(m_rsa.sign(QStringLiteral("RS256"), textPayloadInput));

    QTest::newRow("empty") << QByteArray() << QStringLiteral("The ID token is empty");
    QTest::newRow("two parts") << header + '.' + payload
                               << QStringLiteral("has 2 parts separated by \".\" instead of 3");
    QTest::newRow("four parts") << valid + '.' + signature
                                << QStringLiteral("has 4 parts separated by \".\" instead of 3");
    QTest::newRow("one part") << header << QStringLiteral("has 1 parts");
    QTest::newRow("JWE shape") << header + ".." + payload + ".." + signature
                               << QStringLiteral("has 5 parts");
    QTest::newRow("invalid base64url character in header")
        << "ey!" + header.mid(3) + '.' + payload + '.' + signature
        << QStringLiteral("header is empty or not valid base64url without padding");
    QTest::newRow("standard base64 in payload")
        << header + '.' + QByteArray(payload).replace('-', '+').replace('_', '/') + "+/." +
               signature
        << QStringLiteral("payload is empty or not valid base64url");
    QTest::newRow("padding in signature")
        << header + '.' + payload + '.' + signature + "=="
        << QStringLiteral("signature is empty or not valid base64url");
    QTest::newRow("non-canonical signature")
        << header + '.' + payload + '.' + nonCanonicalSignature
        << QStringLiteral("signature is empty or not valid base64url");
    // 342 + 1 characters: the last one carries 2 unused bits, and "B" sets one of them.
    QTest::newRow("non-canonical last group of three")
        << header + '.' + payload + '.' + signature + 'B'
        << QStringLiteral("signature is empty or not valid base64url");
    // 342 + 3 characters end with a group of one character, which cannot hold a whole byte.
    QTest::newRow("last group of one character")
        << header + '.' + payload + '.' + signature + "AAA"
        << QStringLiteral("signature is empty or not valid base64url");
    QTest::newRow("space in token") << header + ". " + payload + '.' + signature
                                    << QStringLiteral("payload is empty or not valid base64url");
    QTest::newRow("empty header") << '.' + payload + '.' + signature
                                  << QStringLiteral("header is empty");
    QTest::newRow("empty payload")
        << header + ".." + signature << QStringLiteral("payload is empty");
    QTest::newRow("header not JSON")
        << TestJwt::base64Url("{alg: RS256}") + '.' + payload + '.' + signature
        << QStringLiteral("header is not a JSON object");
    QTest::newRow("header JSON array")
        << TestJwt::base64Url("[\"RS256\"]") + '.' + payload + '.' + signature
        << QStringLiteral("header is not a JSON object");
    QTest::newRow("signed payload not JSON")
        << textPayloadToken << QStringLiteral("payload is not a JSON object");
}

void TestIdTokenVerifier::malformedTokenRejected()
{
    QFETCH(QByteArray, token);
    QFETCH(QString, expectedError);

    const Result<IdTokenClaims> result = verifyLocally(token);

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(expectedError), qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::criticalHeaderRejected()
{
    QJsonObject header = TestJwt::header(QStringLiteral("RS256"), QStringLiteral("rsa-1"));
    header.insert(QStringLiteral("crit"), QJsonArray{QStringLiteral("exp")});
    header.insert(QStringLiteral("exp"), secondsFromTokenTime(300));

    const Result<IdTokenClaims> result = verifyLocally(TestJwt::sign(header, validClaims(), m_rsa));

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(QStringLiteral("critical extensions (\"crit\")")),
             qPrintable(result.errorMessage()));
}

// A key set remembers the headers it has matched to a key. A remembered header must still
// meet each call's own algorithm list.
void TestIdTokenVerifier::knownHeaderStillChecksAlgorithm()
{
    const QByteArray token = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"));
    const Result<IdTokenClaims> first = verifyLocally(token);
    QVERIFY2(first.ok(), qPrintable(first.errorMessage()));

    IdTokenExpectations ecOnly = expectations();
    ecOnly.algorithms = QStringList{QStringLiteral("ES256")};
    const Result<IdTokenClaims> second = verifyLocally(token, ecOnly);

    QVERIFY(!second.ok());
    QVERIFY2(second.errorMessage().contains(QStringLiteral("\"RS256\" is not allowed here")),
             qPrintable(second.errorMessage()));
}

// More distinct headers than a key set remembers: each token still verifies with its own key,
// including the first one after it was forgotten.
void TestIdTokenVerifier::knownHeadersEvictOldest()
{
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(TestJwt::keySetJson(
        {m_rsa.publicJwk(QStringLiteral("rsa-1")), m_ec256.publicJwk(QStringLiteral("ec-256"))}));
    QVERIFY(keys.ok());

    QList<QByteArray> tokens;
    for (std::size_t index = 0; index <= JsonWebKeySet::maximumKnownHeaders; ++index) {
        const bool rsa = index % 2 == 0;
        QJsonObject header =
            TestJwt::header(rsa ? QStringLiteral("RS256") : QStringLiteral("ES256"),
                            rsa ? QStringLiteral("rsa-1") : QStringLiteral("ec-256"));
        header.insert(QStringLiteral("typ"), QStringLiteral("JWT-%1").arg(index));
        tokens.append(TestJwt::sign(header, validClaims(), rsa ? m_rsa : m_ec256));
    }
    tokens.append(tokens.front());

    for (const QByteArray &token : std::as_const(tokens)) {
        const Result<IdTokenClaims> result =
            IdTokenVerifier::verifyWithKeys(token, *keys, expectations(), tokenTime);
        QVERIFY2(result.ok(), qPrintable(result.errorMessage()));
    }
}

void TestIdTokenVerifier::missingKeyIdUsesOnlySuitableKey()
{
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(TestJwt::keySetJson(
        {m_rsa.publicJwk(QString()), m_ec256.publicJwk(QStringLiteral("ec-256"))}));
    QVERIFY(keys.ok());

    for (const QString &algorithm : {QStringLiteral("RS256"), QStringLiteral("ES256")}) {
        const QByteArray token = signToken(algorithm, QString());
        const Result<IdTokenClaims> result =
            IdTokenVerifier::verifyWithKeys(token, *keys, expectations(), tokenTime);
        QVERIFY2(result.ok(), qPrintable(algorithm + QStringLiteral(": ") + result.errorMessage()));
    }
}

void TestIdTokenVerifier::missingKeyIdWithSeveralKeysRejected()
{
    const Result<IdTokenClaims> severalKeys =
        verifyLocally(signToken(QStringLiteral("RS256"), QString()));
    QVERIFY(!severalKeys.ok());
    QVERIFY2(severalKeys.errorMessage().contains(
                 QStringLiteral("has no \"kid\", and the JSON Web Key Set has 2 keys for RS256, "
                                "so the signing key is ambiguous")),
             qPrintable(severalKeys.errorMessage()));

    const Result<JsonWebKeySet> ecOnly =
        JsonWebKeySet::fromJson(TestJwt::keySetJson({m_ec256.publicJwk(QStringLiteral("ec-256"))}));
    QVERIFY(ecOnly.ok());
    const Result<IdTokenClaims> noKey = IdTokenVerifier::verifyWithKeys(
        signToken(QStringLiteral("RS256"), QString()), *ecOnly, expectations(), tokenTime);
    QVERIFY(!noKey.ok());
    QVERIFY2(noKey.errorMessage().contains(QStringLiteral("has no key for RS256")),
             qPrintable(noKey.errorMessage()));
}

void TestIdTokenVerifier::skippedKeyReasonInError()
{
    const TestKey weakKey = TestKey::generateRsa(1024);
    const Result<JsonWebKeySet> keys =
        JsonWebKeySet::fromJson(TestJwt::keySetJson({weakKey.publicJwk(QStringLiteral("weak"))}));
    QVERIFY(keys.ok());

    const QByteArray token = TestJwt::sign(
        TestJwt::header(QStringLiteral("RS256"), QStringLiteral("weak")), validClaims(), weakKey);
    const Result<IdTokenClaims> result =
        IdTokenVerifier::verifyWithKeys(token, *keys, expectations(), tokenTime);

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(
                 QStringLiteral("signing key \"weak\" cannot be used because the RSA modulus has "
                                "1024 bits, but at least 2048 are required")),
             qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::fetchedKeysAreCached()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson({m_rsa.publicJwk(QStringLiteral("rsa-1"))}));
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    verifier.setClock([] { return tokenTime; });

    const Result<IdTokenClaims> first =
        verifyAndWait(verifier, signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1")));
    QVERIFY2(first.ok(), qPrintable(first.errorMessage()));
    QCOMPARE(server.requestCount(), 1);

    const Result<IdTokenClaims> second =
        verifyAndWait(verifier, signToken(QStringLiteral("PS512"), QStringLiteral("rsa-1")));
    QVERIFY2(second.ok(), qPrintable(second.errorMessage()));
    QCOMPARE(server.requestCount(), 1);

    const Result<IdTokenClaims> rejected = verifyAndWait(
        verifier,
        signToken(QStringLiteral("RS256"),
                  QStringLiteral("rsa-1"),
                  claimsWith(QStringLiteral("iss"), QStringLiteral("https://evil.example"))));
    QVERIFY(!rejected.ok());
    QVERIFY2(rejected.errorMessage().contains(QStringLiteral("is not the configured issuer")),
             qPrintable(rejected.errorMessage()));
    QCOMPARE(server.requestCount(), 1);
}

void TestIdTokenVerifier::firstFetchIgnoresRefetchInterval()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson({m_ec256.publicJwk(QStringLiteral("ec-256"))}));
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    verifier.setClock([] { return tokenTime; });
    verifier.setMinimumRefetchInterval(24h);

    const Result<IdTokenClaims> result =
        verifyAndWait(verifier, signToken(QStringLiteral("ES256"), QStringLiteral("ec-256")));

    QVERIFY2(result.ok(), qPrintable(result.errorMessage()));
    QCOMPARE(server.requestCount(), 1);
}

void TestIdTokenVerifier::concurrentVerificationsShareFetch()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson(
        {m_rsa.publicJwk(QStringLiteral("rsa-1")), m_ec384.publicJwk(QStringLiteral("ec-384"))}));
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    verifier.setClock([] { return tokenTime; });

    const QList<QByteArray> tokens = {
        signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1")),
        signToken(QStringLiteral("ES384"), QStringLiteral("ec-384")),
        signToken(QStringLiteral("ES384"), QStringLiteral("unknown")),
    };
    std::vector<std::optional<Result<IdTokenClaims>>> results(tokens.size());
    for (qsizetype index = 0; index < tokens.size(); ++index) {
        verifier.verify(tokens.at(index), expectations(), [&results, index](auto result) {
            results[size_t(index)] = std::move(result);
        });
    }
    QVERIFY(QTest::qWaitFor([&results] {
        return std::all_of(
            results.begin(), results.end(), [](const auto &result) { return result.has_value(); });
    }));

    QCOMPARE(server.requestCount(), 1);
    QVERIFY2(results[0]->ok(), qPrintable(results[0]->errorMessage()));
    QVERIFY2(results[1]->ok(), qPrintable(results[1]->errorMessage()));
    QVERIFY(!results[2]->ok());
    QVERIFY2(results[2]->errorMessage().contains(
                 QStringLiteral("has no signing key \"unknown\", even as fetched just now")),
             qPrintable(results[2]->errorMessage()));
}

void TestIdTokenVerifier::doneRunsAfterVerifyReturns()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson({m_rsa.publicJwk(QStringLiteral("rsa-1"))}));
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    verifier.setClock([] { return tokenTime; });
    const QByteArray token = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"));
    QVERIFY(verifyAndWait(verifier, token).ok());

    // The keys are cached now, so verification needs no network, yet done must still wait for
    // the event loop.
    int calls = 0;
    verifier.verify(token, expectations(), [&calls](const Result<IdTokenClaims> &result) {
        QVERIFY(result.ok());
        ++calls;
    });
    QCOMPARE(calls, 0);
    QTRY_COMPARE(calls, 1);
    QTest::qWait(50);
    QCOMPARE(calls, 1);
}

void TestIdTokenVerifier::unknownKeyIdRefetchesAfterRotation()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson({m_rsa.publicJwk(QStringLiteral("2026-11"))}));
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    QDateTime now = tokenTime;
    verifier.setClock([&now] { return now; });

    const QByteArray oldToken = signToken(QStringLiteral("RS256"), QStringLiteral("2026-11"));
    QVERIFY(verifyAndWait(verifier, oldToken).ok());
    QCOMPARE(server.requestCount(), 1);

    // The provider rotates to a new key, and a token signed with it arrives a minute later.
    server.setDocument(TestJwt::keySetJson({m_ec256.publicJwk(QStringLiteral("2026-12"))}));
    now = tokenTime.addSecs(61);
    const Result<IdTokenClaims> rotated =
        verifyAndWait(verifier, signToken(QStringLiteral("ES256"), QStringLiteral("2026-12")));

    QVERIFY2(rotated.ok(), qPrintable(rotated.errorMessage()));
    QCOMPARE(server.requestCount(), 2);

    const Result<IdTokenClaims> again =
        verifyAndWait(verifier, signToken(QStringLiteral("ES256"), QStringLiteral("2026-12")));
    QVERIFY2(again.ok(), qPrintable(again.errorMessage()));
    QCOMPARE(server.requestCount(), 2);
}

void TestIdTokenVerifier::unknownKeyIdWithinIntervalFetchesOnce()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson({m_rsa.publicJwk(QStringLiteral("rsa-1"))}));
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    QDateTime now = tokenTime;
    verifier.setClock([&now] { return now; });
    QVERIFY(
        verifyAndWait(verifier, signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"))).ok());
    QCOMPARE(server.requestCount(), 1);

    const QByteArray unknown = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-9"));
    now = tokenTime.addSecs(100);
    const Result<IdTokenClaims> first = verifyAndWait(verifier, unknown);
    QVERIFY(!first.ok());
    QVERIFY2(first.errorMessage().contains(
                 QStringLiteral("The JSON Web Key Set from %1 has no signing key \"rsa-9\", even "
                                "as fetched just now")
                     .arg(server.url().toString())),
             qPrintable(first.errorMessage()));
    QCOMPARE(server.requestCount(), 2);

    now = tokenTime.addSecs(159);
    const Result<IdTokenClaims> second = verifyAndWait(verifier, unknown);
    QVERIFY(!second.ok());
    QVERIFY2(second.errorMessage().contains(
                 QStringLiteral("last requested at 2026-12-04T10:01:40Z and is requested "
                                "again at most every 60 s")),
             qPrintable(second.errorMessage()));
    QCOMPARE(server.requestCount(), 2);

    now = tokenTime.addSecs(160);
    QVERIFY(!verifyAndWait(verifier, unknown).ok());
    QCOMPARE(server.requestCount(), 3);
}

void TestIdTokenVerifier::failedRefetchKeepsCachedKeys()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson({m_rsa.publicJwk(QStringLiteral("rsa-1"))}));
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    QDateTime now = tokenTime;
    verifier.setClock([&now] { return now; });
    const QByteArray known = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"));
    QVERIFY(verifyAndWait(verifier, known).ok());

    // The refetch for the unknown key fails. The known key's token waits for that fetch and is
    // then verified with the cached set.
    server.setDocument("{\"error\": \"unavailable\"}", 503);
    now = tokenTime.addSecs(61);
    std::optional<Result<IdTokenClaims>> unknownResult;
    std::optional<Result<IdTokenClaims>> knownResult;
    verifier.verify(signToken(QStringLiteral("RS256"), QStringLiteral("rsa-2")),
                    expectations(),
                    [&unknownResult](auto result) { unknownResult = std::move(result); });
    verifier.verify(
        known, expectations(), [&knownResult](auto result) { knownResult = std::move(result); });
    QTRY_VERIFY(unknownResult.has_value() && knownResult.has_value());

    QCOMPARE(server.requestCount(), 2);
    QVERIFY(!unknownResult->ok());
    QVERIFY2(
        unknownResult->errorMessage().contains(
            QStringLiteral("Could not fetch the JSON Web Key Set from %1: the server responded "
                           "with HTTP status 503")
                .arg(server.url().toString())),
        qPrintable(unknownResult->errorMessage()));
    QVERIFY2(knownResult->ok(), qPrintable(knownResult->errorMessage()));
}

void TestIdTokenVerifier::fetchErrorNamesUrl_data()
{
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<int>("status");
    QTest::addColumn<QString>("expectedError");

    QTest::newRow("HTTP 500") << QByteArray("{}") << 500
                              << QStringLiteral("Could not fetch the JSON Web Key Set from %1: the "
                                                "server responded with HTTP status 500 instead of "
                                                "200.");
    QTest::newRow("HTTP 404") << QByteArray("not found") << 404
                              << QStringLiteral("from %1: the server responded with HTTP status "
                                                "404");
    QTest::newRow("HTTP 204") << QByteArray() << 204
                              << QStringLiteral("from %1: the server responded with HTTP status "
                                                "204");
    QTest::newRow("not JSON") << QByteArray("<html></html>") << 200
                              << QStringLiteral("The JSON Web Key Set is not valid JSON: illegal "
                                                "value at offset 1. It was fetched from %1.");
    QTest::newRow("no keys array")
        << QByteArray("{\"issuer\": \"x\"}") << 200
        << QStringLiteral("has no \"keys\" array. It was fetched from %1.");
    QTest::newRow("larger than 1 MiB")
        << QByteArray(2 * 1024 * 1024, ' ') << 200
        << QStringLiteral("The JSON Web Key Set at %1 is larger than 1048576 bytes.");
}

void TestIdTokenVerifier::fetchErrorNamesUrl()
{
    QFETCH(QByteArray, body);
    QFETCH(int, status);
    QFETCH(QString, expectedError);

    JwksServer server;
    QVERIFY(server.isListening());
    server.setDocument(body, status);
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, server.url());
    verifier.setClock([] { return tokenTime; });

    const Result<IdTokenClaims> result =
        verifyAndWait(verifier, signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1")));

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(expectedError.arg(server.url().toString())),
             qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::refusedConnectionNamesUrl()
{
    QTcpServer closed;
    QVERIFY(closed.listen(QHostAddress::LocalHost, 0));
    const QUrl url(QStringLiteral("http://127.0.0.1:%1/jwks").arg(closed.serverPort()));
    closed.close();
    QNetworkAccessManager network;
    IdTokenVerifier verifier(&network, url);

    const Result<IdTokenClaims> result =
        verifyAndWait(verifier, signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1")));

    QVERIFY(!result.ok());
    QVERIFY2(
        result.errorMessage().startsWith(
            QStringLiteral("Could not fetch the JSON Web Key Set from %1: ").arg(url.toString())),
        qPrintable(result.errorMessage()));
    QVERIFY2(result.errorMessage().contains(QStringLiteral("refused")),
             qPrintable(result.errorMessage()));
}

void TestIdTokenVerifier::fetchTimeoutNamesUrl()
{
    JwksServer server;
    QVERIFY(server.isListening());
    server.stopResponding();
    QNetworkAccessManager network;
    network.setTransferTimeout(200);
    IdTokenVerifier verifier(&network, server.url());

    const Result<IdTokenClaims> result =
        verifyAndWait(verifier, signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1")));

    QVERIFY(!result.ok());
    QVERIFY2(result.errorMessage().contains(
                 QStringLiteral("Fetching the JSON Web Key Set from %1 timed out")
                     .arg(server.url().toString())),
             qPrintable(result.errorMessage()));
    QCOMPARE(server.requestCount(), 1);
}

void TestIdTokenVerifier::sslConfigurationAddsTrustedCa()
{
    const QSslConfiguration serverTls = makeServerTlsConfiguration(m_ec256);
    QVERIFY(!serverTls.localCertificate().isNull());
    QVERIFY(!serverTls.privateKey().isNull());
    JwksServer server(serverTls);
    QVERIFY(server.isListening());
    server.setDocument(TestJwt::keySetJson({m_rsa.publicJwk(QStringLiteral("rsa-1"))}));
    QNetworkAccessManager network;
    const QByteArray token = signToken(QStringLiteral("RS256"), QStringLiteral("rsa-1"));

    IdTokenVerifier untrusting(&network, server.url());
    untrusting.setClock([] { return tokenTime; });
    const Result<IdTokenClaims> untrusted = verifyAndWait(untrusting, token);
    QVERIFY(!untrusted.ok());
    QVERIFY2(untrusted.errorMessage().startsWith(
                 QStringLiteral("Could not fetch the JSON Web Key Set from %1: ")
                     .arg(server.url().toString())),
             qPrintable(untrusted.errorMessage()));
    QVERIFY2(untrusted.errorMessage().endsWith(
                 QStringLiteral("Check that the CA of the identity provider's certificate is "
                                "trusted.")),
             qPrintable(untrusted.errorMessage()));

    // A second manager, because Qt 6.4's manager keeps using its cached connection to the host,
    // set up without the CA, even for requests with another TLS configuration.
    QNetworkAccessManager trustingNetwork;
    IdTokenVerifier trusting(&trustingNetwork, server.url());
    trusting.setClock([] { return tokenTime; });
    QSslConfiguration clientTls = QSslConfiguration::defaultConfiguration();
    clientTls.addCaCertificate(serverTls.localCertificate());
    trusting.setSslConfiguration(clientTls);
    const Result<IdTokenClaims> trusted = verifyAndWait(trusting, token);
    QVERIFY2(trusted.ok(), qPrintable(trusted.errorMessage()));
}

QTEST_GUILESS_MAIN(TestIdTokenVerifier)
#include "tst_idtokenverifier.moc"
