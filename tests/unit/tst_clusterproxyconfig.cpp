#include "clusterproxy/ClusterProxyConfig.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>
#include <exception>
#include <memory>

using namespace lamplighter;

namespace {

// A throwaway self-signed EC certificate, so that certificate_authority can name a real PEM file.
const char caPem[] = "-----BEGIN CERTIFICATE-----\n"
                     "MIIBfjCCASOgAwIBAgIUWDLBnddGsAsCVeFm+kkdgrlWlrgwCgYIKoZIzj0EAwIw\n"
                     "FDESMBAGA1UEAwwJdGVzdCByb290MB4XDTI2MDEwMTAwMDAwMFoXDTM2MDEwMTAw\n"
                     "MDAwMFowFDESMBAGA1UEAwwJdGVzdCByb290MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
                     "AQcDQgAE3ONYHvlPavdqHKyZqbnZ8cRT9oA5CHXJ0FGzDg97g6sNNl3NH3mMr5YF\n"
                     "yCGQ/KOHbp6o63gRtwRmaG4y4l0o56NTMFEwHQYDVR0OBBYEFCVPxEcrlzFtD/cM\n"
                     "pPT26UYZIUm6MB8GA1UdIwQYMBaAFCVPxEcrlzFtD/cMpPT26UYZIUm6MA8GA1Ud\n"
                     "EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAJDvKr4Lh8MI5ExqKrMdb2Dy\n"
                     "cNJ4BTh9xtxtyNZeYIjIAiEAuYY2WDmTYxxKQoYbEBOp1TZ4L1m9wqnkbFOuOfbG\n"
                     "VIc=\n"
                     "-----END CERTIFICATE-----\n";

// The smallest valid file, in lines 1 to 10. The rows of invalidFile count lines from it.
const QByteArray tlsSection = "tls:\n"                                        // 1
                              "  certificate: tls.crt\n"                      // 2
                              "  key: tls.key\n";                             // 3
const QByteArray issuerSection = "issuer:\n"                                  // 4
                                 "  url: https://login.example.test\n"        // 5
                                 "  client_id: lamplighter\n";                // 6
const QByteArray apiServerSection = "api_server:\n"                           // 7
                                    "  url: https://kubernetes.default.svc\n" // 8
                                    "  certificate_authority: ca.crt\n"       // 9
                                    "  token_file: token\n";                  // 10
const QByteArray minimalFile = tlsSection + issuerSection + apiServerSection;

// Every field set, with a mix of relative and absolute paths.
const char fullFile[] = R"(listen: 127.0.0.1:9443
tls:
  certificate: certs/tls.crt
  key: certs/tls.key
issuer:
  url: https://login.example.test/realms/main
  client_id: lamplighter
  audiences: [lamplighter, kubernetes]
  certificate_authority: pki/issuer-ca.crt
  allowed_algorithms: [RS256, ES256]
  required_claims:
    hd: example.test
    email_verified: "true"
  leeway_seconds: 30
claims:
  username: email
  username_prefix: "oidc:"
  groups: roles
  groups_prefix: "team:"
allowed_groups: [team:developers, team:admins]
api_server:
  url: https://kubernetes.default.svc:443
  certificate_authority: ca.crt
  token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
namespaces:
  mode: service
  verb: list
  resource: secrets
  admin_groups: [team:admins]
  service_url: https://namespaces.example.test/v1/namespaces
)";

} // namespace

class TestClusterProxyConfig : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();

    void fullFileIsRead();
    void defaultsApply();
    void relativePathsResolveAgainstFile();
    void invalidFile_data();
    void invalidFile();
    void nonScalarKeyRejected();
    void missingFileNamesPath();
    void extrasRead();
    void extraKeyRejected();

private:
    QString write(const QByteArray &text, const QString &name = QStringLiteral("config.yaml"));
    bool writeCa(const QString &relativePath);

    std::unique_ptr<QTemporaryDir> m_dir;
};

void TestClusterProxyConfig::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    QVERIFY(writeCa(QStringLiteral("ca.crt")));
}

void TestClusterProxyConfig::extrasRead()
{
    const QString path = write(minimalFile + "claims:\n  extras:\n    scopes: scp\n"
                                             "    example.com/team: team\n");
    const Result<ClusterProxyConfig> config = loadClusterProxyConfig(path);
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    const QList<QPair<QString, QString>> expected = {
        {QStringLiteral("scopes"), QStringLiteral("scp")},
        {QStringLiteral("example.com/team"), QStringLiteral("team")}};
    QCOMPARE(config->extraClaims, expected);
}

// A key with an upper case letter or '_' would not survive as a header name.
void TestClusterProxyConfig::extraKeyRejected()
{
    const QString path = write(minimalFile + "claims:\n  extras:\n    Team_Name: team\n");
    const Result<ClusterProxyConfig> config = loadClusterProxyConfig(path);
    QVERIFY2(!config.ok(), "an invalid extra key was accepted");
    QCOMPARE(config.errorMessage(),
             path + QStringLiteral(":13:5: \"claims.extras\" key \"Team_Name\" must be lower "
                                   "case letters, digits, '.', '-' and '/'"));
}

QString TestClusterProxyConfig::write(const QByteArray &text, const QString &name)
{
    const QString path = m_dir->filePath(name);
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return {};
    file.write(text);
    return path;
}

bool TestClusterProxyConfig::writeCa(const QString &relativePath)
{
    const QString path = m_dir->filePath(relativePath);
    if (!QDir().mkpath(QFileInfo(path).absolutePath()))
        return false;
    QFile file(path);
    return file.open(QIODevice::WriteOnly | QIODevice::Truncate) && file.write(caPem) > 0;
}

void TestClusterProxyConfig::fullFileIsRead()
{
    QVERIFY(writeCa(QStringLiteral("pki/issuer-ca.crt")));
    const Result<ClusterProxyConfig> config = loadClusterProxyConfig(write(fullFile));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));

    QCOMPARE(config->listenAddress, QHostAddress(QStringLiteral("127.0.0.1")));
    QCOMPARE(config->listenPort, quint16(9443));
    QCOMPARE(config->tlsCertificateFile, m_dir->filePath(QStringLiteral("certs/tls.crt")));
    QCOMPARE(config->tlsKeyFile, m_dir->filePath(QStringLiteral("certs/tls.key")));

    QCOMPARE(config->issuer, QUrl(QStringLiteral("https://login.example.test/realms/main")));
    QCOMPARE(config->clientId, QStringLiteral("lamplighter"));
    QCOMPARE(config->audiences,
             QStringList({QStringLiteral("lamplighter"), QStringLiteral("kubernetes")}));
    QCOMPARE(config->issuerCaCertificates.size(), 1);
    QCOMPARE(config->issuerCaCertificates.first(), QSslCertificate(caPem));
    QCOMPARE(config->allowedAlgorithms,
             QStringList({QStringLiteral("RS256"), QStringLiteral("ES256")}));
    QCOMPARE(config->requiredClaims.size(), 2);
    QCOMPARE(config->requiredClaims.value(QStringLiteral("hd")), QStringLiteral("example.test"));
    QCOMPARE(config->requiredClaims.value(QStringLiteral("email_verified")),
             QStringLiteral("true"));
    QCOMPARE(config->leeway, std::chrono::seconds(30));

    QCOMPARE(config->userNameClaim, QStringLiteral("email"));
    QCOMPARE(config->userNamePrefix, QStringLiteral("oidc:"));
    QCOMPARE(config->groupsClaim, QStringLiteral("roles"));
    QCOMPARE(config->groupsPrefix, QStringLiteral("team:"));
    QCOMPARE(config->allowedGroups,
             QStringList({QStringLiteral("team:developers"), QStringLiteral("team:admins")}));

    QCOMPARE(config->apiServer, QUrl(QStringLiteral("https://kubernetes.default.svc:443")));
    QCOMPARE(config->apiServerCaCertificates.size(), 1);
    QCOMPARE(config->apiServerCaCertificates.first(), QSslCertificate(caPem));
    QCOMPARE(config->serviceAccountTokenFile,
             QStringLiteral("/var/run/secrets/kubernetes.io/serviceaccount/token"));

    QCOMPARE(config->namespaceListing, NamespaceListing::Service);
    QCOMPARE(config->namespaceVerb, QStringLiteral("list"));
    QCOMPARE(config->namespaceResource, QStringLiteral("secrets"));
    QCOMPARE(config->adminGroups, QStringList({QStringLiteral("team:admins")}));
    QCOMPARE(config->namespaceServiceUrl,
             QUrl(QStringLiteral("https://namespaces.example.test/v1/namespaces")));
}

void TestClusterProxyConfig::defaultsApply()
{
    const Result<ClusterProxyConfig> config = loadClusterProxyConfig(write(minimalFile));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));

    QCOMPARE(config->listenAddress, QHostAddress(QStringLiteral("0.0.0.0")));
    QCOMPARE(config->listenPort, quint16(8443));
    QCOMPARE(config->audiences, QStringList({QStringLiteral("lamplighter")}));
    QVERIFY2(config->issuerCaCertificates.isEmpty(),
             "without issuer.certificate_authority the system CAs must be used");
    QVERIFY2(config->allowedAlgorithms.isEmpty(),
             "without issuer.allowed_algorithms every supported algorithm must be accepted");
    QVERIFY(config->requiredClaims.isEmpty());
    QCOMPARE(config->leeway, std::chrono::seconds(60));
    QCOMPARE(config->userNameClaim, QStringLiteral("sub"));
    QCOMPARE(config->userNamePrefix, QString());
    QCOMPARE(config->groupsClaim, QStringLiteral("groups"));
    QCOMPARE(config->groupsPrefix, QString());
    QVERIFY2(config->allowedGroups.isEmpty(), "without allowed_groups everyone must be admitted");
    QCOMPARE(config->namespaceListing, NamespaceListing::None);
    QCOMPARE(config->namespaceVerb, QStringLiteral("get"));
    QCOMPARE(config->namespaceResource, QStringLiteral("pods"));
    QVERIFY(config->adminGroups.isEmpty());
    QVERIFY(config->namespaceServiceUrl.isEmpty());
}

void TestClusterProxyConfig::relativePathsResolveAgainstFile()
{
    // The file sits in a subfolder, and the working directory is elsewhere, so a path resolved
    // against either of those would differ from the expected one.
    QVERIFY(writeCa(QStringLiteral("etc/pki/issuer.crt")));
    QVERIFY(writeCa(QStringLiteral("etc/pki/api.crt")));
    QVERIFY(QDir(m_dir->path()).mkpath(QStringLiteral("etc")));
    QVERIFY(QDir::currentPath() != m_dir->filePath(QStringLiteral("etc")));
    const QByteArray text = "tls:\n"
                            "  certificate: tls/tls.crt\n"
                            "  key: tls/tls.key\n"
                            "issuer:\n"
                            "  url: https://login.example.test\n"
                            "  client_id: lamplighter\n"
                            "  certificate_authority: pki/issuer.crt\n"
                            "api_server:\n"
                            "  url: https://kubernetes.default.svc\n"
                            "  certificate_authority: pki/api.crt\n"
                            "  token_file: sa/token\n";
    const Result<ClusterProxyConfig> config =
        loadClusterProxyConfig(write(text, QStringLiteral("etc/proxy.yaml")));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));

    const QDir folder(m_dir->filePath(QStringLiteral("etc")));
    QCOMPARE(config->tlsCertificateFile, folder.filePath(QStringLiteral("tls/tls.crt")));
    QCOMPARE(config->tlsKeyFile, folder.filePath(QStringLiteral("tls/tls.key")));
    QCOMPARE(config->serviceAccountTokenFile, folder.filePath(QStringLiteral("sa/token")));
    QCOMPARE(config->issuerCaCertificates.size(), 1);
    QCOMPARE(config->apiServerCaCertificates.size(), 1);
}

void TestClusterProxyConfig::invalidFile_data()
{
    // The expected message follows "<temporary folder>/". In it, %DIR% stands for that folder.
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected");

    const QString listenError =
        QStringLiteral("config.yaml:1:9: \"listen\" must be ADDRESS:PORT with an IP address and a "
                       "port from 0 to 65535, got \"%1\"");
    const QString supported =
        QStringLiteral("Supported are RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, "
                       "ES512.");

    QTest::newRow("issuer section missing")
        << tlsSection + apiServerSection
        << QStringLiteral("config.yaml:1:1: missing section \"issuer\"");
    QTest::newRow("tls section missing")
        << issuerSection + apiServerSection
        << QStringLiteral("config.yaml:1:1: missing section \"tls\"");
    QTest::newRow("issuer url plain http")
        << tlsSection + "issuer:\n  url: http://login.example.test\n  client_id: lamplighter\n" +
               apiServerSection
        << QStringLiteral("config.yaml:5:8: \"issuer.url\" must be an https URL, got "
                          "\"http://login.example.test\"");
    QTest::newRow("issuer client_id missing")
        << tlsSection + "issuer:\n  url: https://login.example.test\n" + apiServerSection
        << QStringLiteral("config.yaml:5:3: missing field \"issuer.client_id\"");
    QTest::newRow("unknown top-level key")
        << minimalFile + "logging: debug\n"
        << QStringLiteral("config.yaml:11:1: unknown field \"logging\" in the top level");
    QTest::newRow("unknown key in issuer")
        << tlsSection + issuerSection + "  client_secret: s3cret\n" + apiServerSection
        << QStringLiteral("config.yaml:7:3: unknown field \"client_secret\" in issuer");

    QTest::newRow("listen without address")
        << "listen: 8443\n" + minimalFile << listenError.arg(QStringLiteral("8443"));
    QTest::newRow("listen host name with port zero")
        << "listen: host:0\n" + minimalFile << listenError.arg(QStringLiteral("host:0"));
    QTest::newRow("listen host name") << "listen: not-an-ip:8443\n" + minimalFile
                                      << listenError.arg(QStringLiteral("not-an-ip:8443"));
    QTest::newRow("listen port above 65535") << "listen: 1.2.3.4:70000\n" + minimalFile
                                             << listenError.arg(QStringLiteral("1.2.3.4:70000"));

    QTest::newRow("algorithm HS256")
        << tlsSection + issuerSection + "  allowed_algorithms: [HS256]\n" + apiServerSection
        << QStringLiteral("config.yaml:7:24: \"issuer.allowed_algorithms[0]\" is HS256, which is "
                          "not supported. %1")
               .arg(supported);
    QTest::newRow("algorithm none")
        << tlsSection + issuerSection + "  allowed_algorithms:\n  - RS256\n  - none\n" +
               apiServerSection
        << QStringLiteral("config.yaml:9:5: \"issuer.allowed_algorithms[1]\" is none, which is "
                          "not supported. %1")
               .arg(supported);

    QTest::newRow("leeway above 600")
        << tlsSection + issuerSection + "  leeway_seconds: 601\n" + apiServerSection
        << QStringLiteral("config.yaml:7:19: \"issuer.leeway_seconds\" must be a whole number "
                          "from 0 to 600");
    QTest::newRow("leeway negative")
        << tlsSection + issuerSection + "  leeway_seconds: -1\n" + apiServerSection
        << QStringLiteral("config.yaml:7:19: \"issuer.leeway_seconds\" must be a whole number "
                          "from 0 to 600");
    QTest::newRow("leeway not a number")
        << tlsSection + issuerSection + "  leeway_seconds: 1m\n" + apiServerSection
        << QStringLiteral("config.yaml:7:19: \"issuer.leeway_seconds\" must be a whole number "
                          "from 0 to 600");

    QTest::newRow("username prefix a list")
        << minimalFile + "claims:\n  username_prefix: [oidc]\n"
        << QStringLiteral("config.yaml:12:20: \"claims.username_prefix\" must be a string");

    QTest::newRow("namespaces mode unknown")
        << minimalFile + "namespaces:\n  mode: everyone\n"
        << QStringLiteral("config.yaml:12:9: \"namespaces.mode\" must be all, test, service or "
                          "none, got \"everyone\"");
    QTest::newRow("service mode without service_url")
        << minimalFile + "namespaces:\n  mode: service\n"
        << QStringLiteral("config.yaml:12:3: missing field \"namespaces.service_url\"");

    QTest::newRow("issuer CA file missing")
        << tlsSection + issuerSection + "  certificate_authority: missing-ca.crt\n" +
               apiServerSection
        << QStringLiteral("config.yaml:7:26: cannot read \"issuer.certificate_authority\" file "
                          "%DIR%/missing-ca.crt: No such file or directory");
    QTest::newRow("api server CA file not PEM")
        << tlsSection + issuerSection +
               "api_server:\n  url: https://kubernetes.default.svc\n"
               "  certificate_authority: config.yaml\n  token_file: token\n"
        << QStringLiteral("config.yaml:9:26: \"api_server.certificate_authority\" file "
                          "%DIR%/config.yaml holds no PEM certificate");

    QTest::newRow("not YAML") << QByteArray("tls: [unclosed\n")
                              << QStringLiteral("config.yaml:2:1: invalid YAML: end of sequence "
                                                "flow not found");
    QTest::newRow("YAML but not a mapping")
        << QByteArray("just a sentence\n")
        << QStringLiteral("config.yaml:1:1: the file must be a YAML mapping");
}

void TestClusterProxyConfig::invalidFile()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);

    const Result<ClusterProxyConfig> config = loadClusterProxyConfig(write(text));
    QVERIFY2(!config.ok(), "the file must be rejected");
    const QString expectedMessage =
        m_dir->path() + QLatin1Char('/') +
        QString(expected).replace(QStringLiteral("%DIR%"), m_dir->path());
    QCOMPARE(config.errorMessage(), expectedMessage);
}

void TestClusterProxyConfig::nonScalarKeyRejected()
{
    // A YAML key may itself be a list. The file must be rejected with a message, not an
    // exception that escapes loadClusterProxyConfig.
    const QString path = write("? [listen, tls]\n: x\n" + minimalFile);
    bool threw = false;
    QString message;
    try {
        const Result<ClusterProxyConfig> config = loadClusterProxyConfig(path);
        message = config.errorMessage();
    } catch (const std::exception &exception) {
        threw = true;
        message = QString::fromUtf8(exception.what());
    }
    QVERIFY2(!threw, qPrintable(QStringLiteral("exception escaped: ") + message));
    QVERIFY2(message.startsWith(path + QStringLiteral(":1:")), qPrintable(message));
}

void TestClusterProxyConfig::missingFileNamesPath()
{
    const QString path = m_dir->filePath(QStringLiteral("absent.yaml"));
    const Result<ClusterProxyConfig> config = loadClusterProxyConfig(path);
    QVERIFY2(!config.ok(), "a missing file must be rejected");
    QCOMPARE(config.errorMessage(),
             path + QStringLiteral(": cannot read the configuration file: No such file or "
                                   "directory"));
}

QTEST_GUILESS_MAIN(TestClusterProxyConfig)
#include "tst_clusterproxyconfig.moc"
