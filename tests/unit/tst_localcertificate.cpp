#include "tls/LocalCertificate.h"

#include <QSignalSpy>
#include <QSslCertificateExtension>
#include <QSslConfiguration>
#include <QSslServer>
#include <QSslSocket>
#include <QTest>
#include <openssl/bio.h>
#include <openssl/pem.h>

using namespace lamplighter;

namespace {

// Rewrites a PEM private key in the PKCS#8 form ("BEGIN PRIVATE KEY") that `openssl genpkey`
// writes.
QByteArray toPkcs8(const QByteArray &keyPem)
{
    BIO *input = BIO_new_mem_buf(keyPem.constData(), static_cast<int>(keyPem.size()));
    EVP_PKEY *key = PEM_read_bio_PrivateKey(input, nullptr, nullptr, nullptr);
    BIO *output = BIO_new(BIO_s_mem());
    QByteArray pkcs8;
    if (key && PEM_write_bio_PKCS8PrivateKey(output, key, nullptr, nullptr, 0, nullptr, nullptr)) {
        char *data = nullptr;
        const long size = BIO_get_mem_data(output, &data);
        pkcs8 = QByteArray(data, static_cast<qsizetype>(size));
    }
    EVP_PKEY_free(key);
    BIO_free(output);
    BIO_free(input);
    return pkcs8;
}

} // namespace

class TestLocalCertificate : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void subjectAlternativeNames();
    void validityPeriod();
    void caAndKeyUsageExtensions();
    void serialNumbersDiffer();
    void keyMatchesCertificate_data();
    void keyMatchesCertificate();
    void pemRoundTrip();
    void pkcs8KeyAccepted();
    void garbagePemRejected_data();
    void garbagePemRejected();
    void mismatchedKeyRejected();
    void needsRenewal_data();
    void needsRenewal();

private:
    QDateTime m_now;
    LocalCertificate m_generated;
};

void TestLocalCertificate::initTestCase()
{
    m_now = QDateTime(QDate(2026, 12, 4), QTime(12, 0), Qt::UTC);
    const Result<LocalCertificate> generated = LocalCertificate::generate(m_now);
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_generated = *generated;
}

void TestLocalCertificate::subjectAlternativeNames()
{
    const auto names = m_generated.certificate.subjectAlternativeNames();
    QCOMPARE(names.values(QSsl::IpAddressEntry), QStringList{QStringLiteral("127.0.0.1")});
    QCOMPARE(names.values(QSsl::DnsEntry), QStringList{QStringLiteral("localhost")});
    QCOMPARE(names.size(), 2);
    QCOMPARE(m_generated.certificate.subjectInfo(QSslCertificate::CommonName),
             QStringList{QStringLiteral("Lamplighter local proxy")});
    QCOMPARE(m_generated.certificate.issuerDisplayName(),
             m_generated.certificate.subjectDisplayName());
}

void TestLocalCertificate::validityPeriod()
{
    QCOMPARE(m_generated.certificate.effectiveDate(), m_now.addSecs(-3600));
    QCOMPARE(m_generated.certificate.expiryDate(), m_now.addSecs(-3600).addDays(397));
    QCOMPARE(m_generated.certificate.version(), QByteArray("3"));
    QCOMPARE(m_generated.privateKey.algorithm(), QSsl::Ec);
    QCOMPARE(m_generated.privateKey.length(), 256);
}

void TestLocalCertificate::caAndKeyUsageExtensions()
{
    QVariant basicConstraints;
    QVariant keyUsage;
    QVariant extendedKeyUsage;
    bool basicConstraintsCritical = false;
    for (const QSslCertificateExtension &extension : m_generated.certificate.extensions()) {
        if (extension.name() == QLatin1String("basicConstraints")) {
            basicConstraints = extension.value();
            basicConstraintsCritical = extension.isCritical();
        } else if (extension.name() == QLatin1String("keyUsage")) {
            keyUsage = extension.value();
        } else if (extension.name() == QLatin1String("extendedKeyUsage")) {
            extendedKeyUsage = extension.value();
        }
    }

    QVERIFY(basicConstraintsCritical);
    QCOMPARE(basicConstraints.toMap().value(QStringLiteral("ca")).toBool(), true);
    QCOMPARE(
        keyUsage.toStringList(),
        (QStringList{QStringLiteral("Digital Signature"), QStringLiteral("Certificate Sign")}));
    QCOMPARE(extendedKeyUsage.toStringList(),
             QStringList{QStringLiteral("TLS Web Server Authentication")});
}

void TestLocalCertificate::serialNumbersDiffer()
{
    const Result<LocalCertificate> other = LocalCertificate::generate(m_now);
    QVERIFY2(other.ok(), qPrintable(other.errorMessage()));
    QVERIFY(other->certificate.serialNumber() != m_generated.certificate.serialNumber());

    // The serial is printed as colon-separated hex bytes: at most 16 bytes for 128 bits.
    const QList<QByteArray> serialBytes = m_generated.certificate.serialNumber().split(':');
    QVERIFY2(serialBytes.size() >= 8, m_generated.certificate.serialNumber().constData());
    QVERIFY2(serialBytes.size() <= 16, m_generated.certificate.serialNumber().constData());
}

void TestLocalCertificate::keyMatchesCertificate_data()
{
    QTest::addColumn<QString>("peerName");
    QTest::newRow("IP address") << QStringLiteral("127.0.0.1");
    QTest::newRow("localhost") << QStringLiteral("localhost");
}

// A TLS handshake with the certificate as the only trusted CA proves that the key signs for the
// certificate and that OpenSSL accepts the self-signed leaf for both names.
void TestLocalCertificate::keyMatchesCertificate()
{
    QFETCH(QString, peerName);

    QSslServer server;
    QSslConfiguration serverConfiguration = QSslConfiguration::defaultConfiguration();
    serverConfiguration.setLocalCertificate(m_generated.certificate);
    serverConfiguration.setPrivateKey(m_generated.privateKey);
    server.setSslConfiguration(serverConfiguration);
    QVERIFY(server.listen(QHostAddress::LocalHost, 0));

    QSslSocket client;
    QSslConfiguration clientConfiguration = QSslConfiguration::defaultConfiguration();
    clientConfiguration.setCaCertificates({m_generated.certificate});
    client.setSslConfiguration(clientConfiguration);
    QSignalSpy errorSpy(&client, &QSslSocket::sslErrors);
    QSignalSpy encryptedSpy(&client, &QSslSocket::encrypted);
    client.connectToHostEncrypted(QStringLiteral("127.0.0.1"), server.serverPort(), peerName);

    QVERIFY(encryptedSpy.wait(10000));
    QCOMPARE(errorSpy.count(), 0);
}

void TestLocalCertificate::pemRoundTrip()
{
    const Result<LocalCertificate> read =
        LocalCertificate::fromPem(m_generated.certificatePem(), m_generated.privateKeyPem());
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->certificate, m_generated.certificate);
    QCOMPARE(read->privateKey, m_generated.privateKey);
    QVERIFY(m_generated.certificatePem().startsWith("-----BEGIN CERTIFICATE-----"));
    QVERIFY(m_generated.privateKeyPem().contains("PRIVATE KEY-----"));
}

void TestLocalCertificate::pkcs8KeyAccepted()
{
    const QByteArray pkcs8 = toPkcs8(m_generated.privateKeyPem());
    QVERIFY(pkcs8.startsWith("-----BEGIN PRIVATE KEY-----"));

    const Result<LocalCertificate> read =
        LocalCertificate::fromPem(m_generated.certificatePem(), pkcs8);
    QVERIFY2(read.ok(), qPrintable(read.errorMessage()));
    QCOMPARE(read->privateKey, m_generated.privateKey);
}

void TestLocalCertificate::garbagePemRejected_data()
{
    QTest::addColumn<QByteArray>("certificatePem");
    QTest::addColumn<QByteArray>("keyPem");
    QTest::addColumn<QString>("expectedMessage");

    const LocalCertificate valid = m_generated;
    QTest::newRow("empty certificate")
        << QByteArray() << valid.privateKeyPem() << QStringLiteral("not a valid PEM certificate");
    QTest::newRow("garbage certificate")
        << QByteArray("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
        << valid.privateKeyPem() << QStringLiteral("not a valid PEM certificate");
    QTest::newRow("key in place of certificate") << valid.privateKeyPem() << valid.privateKeyPem()
                                                 << QStringLiteral("not a valid PEM certificate");
    QTest::newRow("empty key") << valid.certificatePem() << QByteArray()
                               << QStringLiteral("not a valid unencrypted PEM key");
    QTest::newRow("garbage key")
        << valid.certificatePem()
        << QByteArray("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        << QStringLiteral("not a valid unencrypted PEM key");
}

void TestLocalCertificate::garbagePemRejected()
{
    QFETCH(QByteArray, certificatePem);
    QFETCH(QByteArray, keyPem);
    QFETCH(QString, expectedMessage);

    const Result<LocalCertificate> read = LocalCertificate::fromPem(certificatePem, keyPem);
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(expectedMessage), qPrintable(read.errorMessage()));
}

void TestLocalCertificate::mismatchedKeyRejected()
{
    const Result<LocalCertificate> other = LocalCertificate::generate(m_now);
    QVERIFY(other.ok());

    const Result<LocalCertificate> read =
        LocalCertificate::fromPem(m_generated.certificatePem(), other->privateKeyPem());
    QVERIFY(!read.ok());
    QVERIFY2(read.errorMessage().contains(QStringLiteral("does not match")),
             qPrintable(read.errorMessage()));
}

void TestLocalCertificate::needsRenewal_data()
{
    QTest::addColumn<QDateTime>("now");
    QTest::addColumn<bool>("expected");

    const QDateTime expiry = m_generated.certificate.expiryDate();
    QTest::newRow("just generated") << m_now << false;
    QTest::newRow("31 days before expiry") << expiry.addDays(-31) << false;
    QTest::newRow("30 days before expiry") << expiry.addDays(-30) << true;
    QTest::newRow("expired") << expiry.addSecs(1) << true;
    QTest::newRow("before not-before") << m_now.addSecs(-7200) << true;
}

void TestLocalCertificate::needsRenewal()
{
    QFETCH(QDateTime, now);
    QFETCH(bool, expected);
    QCOMPARE(m_generated.needsRenewal(now), expected);
}

QTEST_GUILESS_MAIN(TestLocalCertificate)
#include "tst_localcertificate.moc"
