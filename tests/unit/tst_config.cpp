#include "config/Config.h"

#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

namespace {

const char validConfig[] = R"(oidc:
  issuer: https://login.example.test/realms/main
  client_id: lamplighter
  scopes: openid email groups offline_access
  claims:
    sub: email
    groups: groups
clusters:
- name: prod
  server: https://api.prod.example.test:6443
  certificate_authority: ca.crt
- name: dev.eu-1
  server: https://dev.example.test
  mode: impersonation
proxy:
  port: 8443
login:
  browser: [firefox, --private-window]
  timeout_seconds: 120
)";

} // namespace

class TestConfig : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void validFileIsRead();
    void defaultsApply();
    void openUnisonBlocksAccepted();
    void invalidFile_data();
    void invalidFile();
    void missingFileNamesPath();

private:
    QString write(const QByteArray &text);
    std::unique_ptr<QTemporaryDir> m_dir;
};

void TestConfig::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    // A throwaway certificate so that certificate_authority can point at a real PEM file.
    QFile ca(m_dir->filePath(QStringLiteral("ca.crt")));
    QVERIFY(ca.open(QIODevice::WriteOnly));
    ca.write("-----BEGIN CERTIFICATE-----\n"
             "MIIBfjCCASOgAwIBAgIUWDLBnddGsAsCVeFm+kkdgrlWlrgwCgYIKoZIzj0EAwIw\n"
             "FDESMBAGA1UEAwwJdGVzdCByb290MB4XDTI2MDEwMTAwMDAwMFoXDTM2MDEwMTAw\n"
             "MDAwMFowFDESMBAGA1UEAwwJdGVzdCByb290MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
             "AQcDQgAE3ONYHvlPavdqHKyZqbnZ8cRT9oA5CHXJ0FGzDg97g6sNNl3NH3mMr5YF\n"
             "yCGQ/KOHbp6o63gRtwRmaG4y4l0o56NTMFEwHQYDVR0OBBYEFCVPxEcrlzFtD/cM\n"
             "pPT26UYZIUm6MB8GA1UdIwQYMBaAFCVPxEcrlzFtD/cMpPT26UYZIUm6MA8GA1Ud\n"
             "EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAJDvKr4Lh8MI5ExqKrMdb2Dy\n"
             "cNJ4BTh9xtxtyNZeYIjIAiEAuYY2WDmTYxxKQoYbEBOp1TZ4L1m9wqnkbFOuOfbG\n"
             "VIc=\n"
             "-----END CERTIFICATE-----\n");
}

QString TestConfig::write(const QByteArray &text)
{
    const QString path = m_dir->filePath(QStringLiteral("config.yaml"));
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return {};
    file.write(text);
    return path;
}

void TestConfig::validFileIsRead()
{
    const Result<Config> config = loadConfig(write(validConfig));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->provider.issuer,
             QUrl(QStringLiteral("https://login.example.test/realms/main")));
    QCOMPARE(config->provider.clientId, QStringLiteral("lamplighter"));
    QCOMPARE(config->provider.scopes,
             QStringList({QStringLiteral("openid"),
                          QStringLiteral("email"),
                          QStringLiteral("groups"),
                          QStringLiteral("offline_access")}));
    QCOMPARE(config->provider.userNameClaim, QStringLiteral("email"));
    QCOMPARE(config->clusters.size(), std::size_t(2));
    QCOMPARE(config->clusters[0].name, QStringLiteral("prod"));
    QCOMPARE(config->clusters[0].caCertificates.size(), 1);
    QCOMPARE(config->clusters[0].mode, ClusterMode::Oidc);
    QCOMPARE(config->clusters[1].mode, ClusterMode::Impersonation);
    QCOMPARE(config->proxy.port, quint16(8443));
    QCOMPARE(config->login.browserCommand,
             QStringList({QStringLiteral("firefox"), QStringLiteral("--private-window")}));
    QCOMPARE(config->login.timeout, std::chrono::seconds(120));
}

void TestConfig::defaultsApply()
{
    const Result<Config> config = loadConfig(write("oidc:\n"
                                                   "  issuer: https://idp.example.test\n"
                                                   "  client_id: k\n"
                                                   "clusters:\n"
                                                   "- name: a\n"
                                                   "  server: https://a.example.test\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->provider.userNameClaim, QStringLiteral("sub"));
    QCOMPARE(config->provider.groupsClaim, QStringLiteral("groups"));
    QVERIFY(config->provider.scopes.contains(QStringLiteral("openid")));
    QVERIFY(config->provider.scopes.contains(QStringLiteral("offline_access")));
    QCOMPARE(config->proxy.port, quint16(0));
    QVERIFY(config->login.browserCommand.isEmpty());
    QCOMPARE(config->login.timeout, std::chrono::seconds(300));
}

void TestConfig::openUnisonBlocksAccepted()
{
    const Result<Config> config = loadConfig(write("enable_impersonation: true\n"
                                                   "openunison:\n"
                                                   "  apps: []\n"
                                                   "headlamp:\n"
                                                   "  enabled: false\n"
                                                   "oidc:\n"
                                                   "  issuer: https://idp.example.test\n"
                                                   "  client_id: k\n"
                                                   "  user_in_idtoken: true\n"
                                                   "  claims:\n"
                                                   "    display_name: name\n"
                                                   "clusters:\n"
                                                   "- name: a\n"
                                                   "  server: https://a.example.test\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
}

void TestConfig::invalidFile_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected");

    const QByteArray cluster = "clusters:\n- name: a\n  server: https://a.example.test\n";
    const QByteArray provider = "oidc:\n  issuer: https://idp.example.test\n  client_id: k\n";

    QTest::newRow("not yaml") << QByteArray("oidc: [unclosed\n")
                              << QStringLiteral("config.yaml:2:1: invalid YAML");
    QTest::newRow("not a mapping") << QByteArray("- a\n- b\n")
                                   << QStringLiteral("config.yaml:1:1: the file must be a YAML "
                                                     "mapping");
    QTest::newRow("oidc missing") << cluster << QStringLiteral("missing block \"oidc\"");
    QTest::newRow("issuer missing")
        << QByteArray("oidc:\n  client_id: k\n") + cluster
        << QStringLiteral("config.yaml:2:3: missing field \"oidc.issuer\"");
    QTest::newRow("issuer plain http")
        << QByteArray("oidc:\n  issuer: http://idp.example.test\n  client_id: k\n") + cluster
        << QStringLiteral("config.yaml:2:11: \"oidc.issuer\" must be an https URL");
    QTest::newRow("client id a list")
        << QByteArray("oidc:\n  issuer: https://idp.example.test\n  client_id: [a]\n") + cluster
        << QStringLiteral("config.yaml:3:14: \"oidc.client_id\" must be a string");
    QTest::newRow("unknown oidc key")
        << QByteArray("oidc:\n  issuer: https://idp.example.test\n  client_id: k\n"
                      "  clientid: k\n") +
               cluster
        << QStringLiteral("config.yaml:4:3: unknown field \"clientid\" in \"oidc\"");
    QTest::newRow("unknown top-level block")
        << provider + cluster + "logon:\n  timeout_seconds: 60\n"
        << QStringLiteral("config.yaml:7:1: unknown field \"logon\" in the file");
    QTest::newRow("unknown claim key")
        << QByteArray("oidc:\n  issuer: https://idp.example.test\n  client_id: k\n"
                      "  claims:\n    group: groups\n") +
               cluster
        << QStringLiteral("config.yaml:5:5: unknown field \"group\" in \"oidc.claims\"");
    QTest::newRow("ca file missing")
        << QByteArray("oidc:\n  issuer: https://idp.example.test\n  client_id: k\n"
                      "  ca_file: nowhere.pem\n") +
               cluster
        << QStringLiteral("config.yaml:4:12: cannot read \"oidc.ca_file\" file");
    QTest::newRow("no clusters") << provider << QStringLiteral("missing list \"clusters\"");
    QTest::newRow("empty clusters") << provider + "clusters: []\n"
                                    << QStringLiteral("config.yaml:4:11: \"clusters\" must be a "
                                                      "list of at least one cluster");
    QTest::newRow("cluster name invalid")
        << provider + "clusters:\n- name: Prod Cluster\n  server: https://a.example.test\n"
        << QStringLiteral("config.yaml:5:9: clusters[0].name \"Prod Cluster\" must be");
    QTest::newRow("cluster name twice")
        << provider + cluster + "- name: a\n  server: https://b.example.test\n"
        << QStringLiteral("config.yaml:7:9: cluster name \"a\" is used twice");
    QTest::newRow("cluster server missing")
        << provider + "clusters:\n- name: a\n"
        << QStringLiteral("config.yaml:5:3: missing field \"clusters[0].server\"");
    QTest::newRow("cluster mode unknown")
        << provider + cluster + "  mode: magic\n"
        << QStringLiteral("config.yaml:7:9: clusters[0].mode must be \"oidc\" or "
                          "\"impersonation\", got \"magic\"");
    QTest::newRow("ca data not base64")
        << provider + cluster + "  certificate_authority_data: '%%%'\n"
        << QStringLiteral("config.yaml:7:31: \"clusters[0].certificate_authority_data\" must be "
                          "base64");
    QTest::newRow("port out of range")
        << provider + cluster + "proxy:\n  port: 70000\n"
        << QStringLiteral("config.yaml:8:9: \"proxy.port\" must be a port number");
    QTest::newRow("browser not a list")
        << provider + cluster + "login:\n  browser: firefox\n"
        << QStringLiteral("config.yaml:8:12: \"login.browser\" must be a list");
    QTest::newRow("timeout too short")
        << provider + cluster + "login:\n  timeout_seconds: 1\n"
        << QStringLiteral("config.yaml:8:20: \"login.timeout_seconds\" must be a whole number");
}

void TestConfig::invalidFile()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);
    const Result<Config> config = loadConfig(write(text));
    QVERIFY(!config.ok());
    QVERIFY2(config.errorMessage().contains(expected),
             qPrintable(QStringLiteral("got: ") + config.errorMessage()));
    QVERIFY2(config.errorMessage().startsWith(m_dir->path()),
             qPrintable(QStringLiteral("the error must name the file: ") + config.errorMessage()));
}

void TestConfig::missingFileNamesPath()
{
    const QString path = m_dir->filePath(QStringLiteral("absent.yaml"));
    const Result<Config> config = loadConfig(path);
    QVERIFY(!config.ok());
    QVERIFY(config.errorMessage().startsWith(path));
    QVERIFY(config.errorMessage().contains(QStringLiteral("cannot read the configuration file")));
}

QTEST_GUILESS_MAIN(TestConfig)
#include "tst_config.moc"
