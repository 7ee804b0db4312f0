#include "FixtureServer.h"
#include "tls/ServerCertificateCheck.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;
using lamplighter::test::makeTestPki;

// checkServerCertificateChain() against two throwaway PKIs from tests/fixtures/make-test-pki.sh:
// the provider's certificate is issued by the first CA, for 127.0.0.1 and localhost.
class TestServerCertificateCheck : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void chainFromExtraCaAccepted_data();
    void chainFromExtraCaAccepted();
    void otherHostRejected_data();
    void otherHostRejected();
    void otherCaRejected();
    void systemFolderAloneDoesNotTrustTestCa();
    void systemFolderFromEnvironmentTrusted();
    void emptyChainRejected();

private:
    QTemporaryDir m_pki;
    QTemporaryDir m_otherPki;
    QList<QSslCertificate> m_providerChain;
    QSslCertificate m_ca;
    QSslCertificate m_otherCa;
};

void TestServerCertificateCheck::initTestCase()
{
    QVERIFY(m_pki.isValid());
    QVERIFY(m_otherPki.isValid());
    const Result<QSslCertificate> ca = makeTestPki(m_pki.path());
    QVERIFY2(ca.ok(), qPrintable(ca.errorMessage()));
    m_ca = ca.value();
    const Result<QSslCertificate> otherCa = makeTestPki(m_otherPki.path());
    QVERIFY2(otherCa.ok(), qPrintable(otherCa.errorMessage()));
    m_otherCa = otherCa.value();
    m_providerChain = QSslCertificate::fromPath(m_pki.filePath(QStringLiteral("provider.crt")));
    QCOMPARE(m_providerChain.size(), 1);
    QVERIFY(m_ca != m_otherCa);
}

void TestServerCertificateCheck::chainFromExtraCaAccepted_data()
{
    QTest::addColumn<QString>("host");
    QTest::newRow("IPv4 address") << QStringLiteral("127.0.0.1");
    QTest::newRow("DNS name") << QStringLiteral("localhost");
    QTest::newRow("DNS name in capitals") << QStringLiteral("LOCALHOST");
}

void TestServerCertificateCheck::chainFromExtraCaAccepted()
{
    QFETCH(QString, host);
    const Status checked = checkServerCertificateChain(m_providerChain, {m_ca}, host);
    QVERIFY2(checked.ok(), qPrintable(checked.errorMessage()));
}

void TestServerCertificateCheck::otherHostRejected_data()
{
    QTest::addColumn<QString>("host");
    QTest::addColumn<QString>("reason");
    QTest::newRow("DNS name") << QStringLiteral("evil.example")
                              << QStringLiteral("hostname mismatch");
    QTest::newRow("suffix of a name")
        << QStringLiteral("localhost.evil.example") << QStringLiteral("hostname mismatch");
    QTest::newRow("other loopback address")
        << QStringLiteral("127.0.0.2") << QStringLiteral("IP address mismatch");
    QTest::newRow("IPv6 loopback")
        << QStringLiteral("::1") << QStringLiteral("IP address mismatch");
}

void TestServerCertificateCheck::otherHostRejected()
{
    QFETCH(QString, host);
    QFETCH(QString, reason);
    const Status checked = checkServerCertificateChain(m_providerChain, {m_ca}, host);
    QVERIFY(!checked.ok());
    QCOMPARE(checked.errorMessage(), reason);
}

void TestServerCertificateCheck::otherCaRejected()
{
    const Status checked =
        checkServerCertificateChain(m_providerChain, {m_otherCa}, QStringLiteral("127.0.0.1"));
    QVERIFY(!checked.ok());
    QCOMPARE(checked.errorMessage(), QStringLiteral("unable to get local issuer certificate"));
}

void TestServerCertificateCheck::systemFolderAloneDoesNotTrustTestCa()
{
    const Status checked =
        checkServerCertificateChain(m_providerChain, {}, QStringLiteral("127.0.0.1"));
    QVERIFY(!checked.ok());
    QCOMPARE(checked.errorMessage(), QStringLiteral("unable to get local issuer certificate"));
}

// The system's certificates come from OpenSSL's hashed folder, which SSL_CERT_DIR replaces.
void TestServerCertificateCheck::systemFolderFromEnvironmentTrusted()
{
    QTemporaryDir folder;
    QVERIFY(folder.isValid());
    QVERIFY(QFile::copy(m_pki.filePath(QStringLiteral("ca.crt")),
                        folder.filePath(QStringLiteral("test-ca.pem"))));
    QProcess rehash;
    rehash.start(QStringLiteral("openssl"), {QStringLiteral("rehash"), folder.path()});
    QVERIFY(rehash.waitForFinished(30'000));
    QVERIFY2(rehash.exitCode() == 0, rehash.readAllStandardError().constData());

    const QByteArray saved = qgetenv("SSL_CERT_DIR");
    const bool wasSet = qEnvironmentVariableIsSet("SSL_CERT_DIR");
    qputenv("SSL_CERT_DIR", QFile::encodeName(folder.path()));
    const Status checked =
        checkServerCertificateChain(m_providerChain, {}, QStringLiteral("localhost"));
    if (wasSet)
        qputenv("SSL_CERT_DIR", saved);
    else
        qunsetenv("SSL_CERT_DIR");
    QVERIFY2(checked.ok(), qPrintable(checked.errorMessage()));
}

void TestServerCertificateCheck::emptyChainRejected()
{
    const Status checked = checkServerCertificateChain({}, {m_ca}, QStringLiteral("127.0.0.1"));
    QVERIFY(!checked.ok());
    QCOMPARE(checked.errorMessage(), QStringLiteral("the server sent no certificate"));
}

QTEST_GUILESS_MAIN(TestServerCertificateCheck)
#include "tst_servercertificatecheck.moc"
