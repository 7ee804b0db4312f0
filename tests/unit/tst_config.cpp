#include "config/Config.h"

#include <QDir>
#include <QImage>
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
    void appsAreRead();
    void appDefaultsApply();
    void validFileHasNoWarnings();
    void openUnisonSwitchesRead();
    void openUnisonSwitchDefaults();
    void appOrgKeptAsText();
    void unknownKeyWarns_data();
    void unknownKeyWarns();
    void repeatedKeyRejected_data();
    void repeatedKeyRejected();
    void existingHeadlampValuesRead();
    void kubeAuthDisabledValuesRead();
    void valuesAloneMissOidc();
    void invalidFile_data();
    void invalidFile();
    void restartBlocksListChanges();
    void portalHeadlampChoiceRead();
    void missingFileNamesPath();
    void clockSkewRead();
    void redirectHostRead();
    void formatVersionRead_data();
    void formatVersionRead();
    void formatVersionRejected_data();
    void formatVersionRejected();

private:
    QString write(const QByteArray &text);
    QString writeWithFixture(const QString &valuesFile);
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

// Writes an OpenUnison values file from the fixtures, unchanged, followed by the oidc and clusters
// blocks that Lamplighter needs. Returns the path, or an empty string when a fixture is unreadable.
QString TestConfig::writeWithFixture(const QString &valuesFile)
{
    const QDir fixtures(QStringLiteral(LAMPLIGHTER_OPENUNISON_FIXTURES));
    QFile values(fixtures.filePath(valuesFile));
    QFile blocks(fixtures.filePath(QStringLiteral("lamplighter-blocks.yaml")));
    if (!values.open(QIODevice::ReadOnly) || !blocks.open(QIODevice::ReadOnly))
        return {};
    return write(values.readAll() + blocks.readAll());
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
    QCOMPARE(config->provider.clockSkew, std::chrono::seconds(60));
}

void TestConfig::clockSkewRead()
{
    const Result<Config> config = loadConfig(write("oidc:\n"
                                                   "  issuer: https://idp.example.test\n"
                                                   "  client_id: k\n"
                                                   "  clock_skew_seconds: 360\n"
                                                   "clusters:\n"
                                                   "- name: a\n"
                                                   "  server: https://a.example.test\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->provider.clockSkew, std::chrono::seconds(360));
    QVERIFY(config->warnings.isEmpty());
}

void TestConfig::redirectHostRead()
{
    const QByteArray base = "oidc:\n"
                            "  issuer: https://idp.example.test\n"
                            "  client_id: k\n"
                            "clusters:\n"
                            "- name: a\n"
                            "  server: https://a.example.test\n";
    const Result<Config> defaults = loadConfig(write(base));
    QVERIFY2(defaults.ok(), qPrintable(defaults.errorMessage()));
    QVERIFY(!defaults->login.redirectToLocalhost);

    const Result<Config> localhost =
        loadConfig(write(base + "login:\n  redirect_host: localhost\n"));
    QVERIFY2(localhost.ok(), qPrintable(localhost.errorMessage()));
    QVERIFY(localhost->login.redirectToLocalhost);
    QVERIFY(localhost->warnings.isEmpty());
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
    QCOMPARE(config->warnings.size(), 2);
    QVERIFY2(config->warnings[0].contains(QStringLiteral(
                 "config.yaml:9:3: \"oidc.user_in_idtoken\" is an OpenUnison setting")),
             qPrintable(config->warnings[0]));
    QVERIFY2(config->warnings[1].contains(QStringLiteral(
                 "config.yaml:11:5: \"oidc.claims.display_name\" is an OpenUnison setting")),
             qPrintable(config->warnings[1]));
}

void TestConfig::appsAreRead()
{
    // A PNG signature and the IHDR chunk of a 16x16 image, which is all the check reads.
    const QByteArray png =
        QByteArray("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0", 29)
            .toBase64();
    const Result<Config> config =
        loadConfig(write(QByteArray(validConfig) +
                         "openunison:\n"
                         "  kubeAuth:\n"
                         "    enabled: false\n"
                         "  apps:\n"
                         "  - name: headlamp\n"
                         "    label: Headlamp\n"
                         "    org: b1bf4c92-7220-4ad2-91af-ee0fe0af7312\n"
                         "    badgeUrl: https://headlamp.example.test/\n"
                         "    injectToken: true\n"
                         "    proxyTo: https://headlamp.example.test:8443/base${fullURI}\n"
                         "    az_groups: [admins, k8s-viewers]\n"
                         "    icon: " +
                         png +
                         "\n"
                         "    tokenHeader: X-Forwarded-Id-Token\n"
                         "    ca_file: ca.crt\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->apps.size(), std::size_t(1));
    const AppConfig &app = config->apps[0];
    QCOMPARE(app.name, QStringLiteral("headlamp"));
    QCOMPARE(app.label, QStringLiteral("Headlamp"));
    QCOMPARE(app.badgeUrl, QUrl(QStringLiteral("https://headlamp.example.test/")));
    QVERIFY(app.injectToken);
    QCOMPARE(app.proxyTo, QStringLiteral("https://headlamp.example.test:8443/base${fullURI}"));
    QCOMPARE(app.upstream, QUrl(QStringLiteral("https://headlamp.example.test:8443/base")));
    QCOMPARE(app.authorizedGroups,
             QStringList({QStringLiteral("admins"), QStringLiteral("k8s-viewers")}));
    QVERIFY(app.icon.startsWith("\x89PNG"));
    QCOMPARE(app.org, QStringLiteral("b1bf4c92-7220-4ad2-91af-ee0fe0af7312"));
    QCOMPARE(app.tokenHeader, AppTokenHeader::XForwardedIdToken);
    QVERIFY(app.caFile.endsWith(QStringLiteral("/ca.crt")));
    QCOMPARE(app.caCertificates.size(), 1);
}

void TestConfig::appDefaultsApply()
{
    const Result<Config> config = loadConfig(
        write(QByteArray(validConfig) + "openunison:\n"
                                        "  apps:\n"
                                        "  - name: dashboard\n"
                                        "    proxyTo: https://dash.example.test${fullURI}\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->apps.size(), std::size_t(1));
    const AppConfig &app = config->apps[0];
    QCOMPARE(app.label, QStringLiteral("dashboard"));
    QVERIFY(!app.injectToken);
    QVERIFY(app.badgeUrl.isEmpty());
    QVERIFY(app.icon.isEmpty());
    QCOMPARE(app.tokenHeader, AppTokenHeader::Authorization);
    QVERIFY(app.caCertificates.isEmpty());
    QVERIFY(app.org.isEmpty());
    QCOMPARE(app.upstream, QUrl(QStringLiteral("https://dash.example.test")));
}

void TestConfig::validFileHasNoWarnings()
{
    const Result<Config> config = loadConfig(write(validConfig));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
}

void TestConfig::openUnisonSwitchesRead()
{
    const Result<Config> config =
        loadConfig(write(QByteArray(validConfig) + "enable_impersonation: true\n"
                                                   "headlamp:\n"
                                                   "  enabled: false\n"
                                                   "openunison:\n"
                                                   "  kubeAuth:\n"
                                                   "    enabled: false\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QVERIFY(config->enableImpersonation);
    QVERIFY(!config->headlampEnabled);
    QVERIFY(!config->kubeAuthEnabled);
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
}

// The defaults are OpenUnison's: no impersonation, Headlamp and kubectl access on.
void TestConfig::openUnisonSwitchDefaults()
{
    const Result<Config> config =
        loadConfig(write(QByteArray(validConfig) + "enable_impersonation: False\n"
                                                   "headlamp: {}\n"
                                                   "openunison:\n"
                                                   "  kubeAuth: {}\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QVERIFY(!config->enableImpersonation);
    QVERIFY(config->headlampEnabled);
    QVERIFY(config->kubeAuthEnabled);

    const Result<Config> bare = loadConfig(write(validConfig));
    QVERIFY2(bare.ok(), qPrintable(bare.errorMessage()));
    QVERIFY(!bare->enableImpersonation);
    QVERIFY(bare->headlampEnabled);
    QVERIFY(bare->kubeAuthEnabled);
}

// YAML reads an unquoted 0042 as a number, but org keeps the text as written.
void TestConfig::appOrgKeptAsText()
{
    const Result<Config> config = loadConfig(
        write(QByteArray(validConfig) + "openunison:\n"
                                        "  apps:\n"
                                        "  - name: dashboard\n"
                                        "    org: 0042\n"
                                        "    proxyTo: https://dash.example.test${fullURI}\n"));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->apps.size(), std::size_t(1));
    QCOMPARE(config->apps[0].org, QStringLiteral("0042"));
}

void TestConfig::unknownKeyWarns_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected");

    const QByteArray provider = "oidc:\n  issuer: https://idp.example.test\n  client_id: k\n";
    const QByteArray cluster = "clusters:\n- name: a\n  server: https://a.example.test\n";
    const QByteArray app = provider + cluster +
                           "openunison:\n  apps:\n  - name: headlamp\n"
                           "    proxyTo: https://h.example.test${fullURI}\n";

    QTest::newRow("top-level block")
        << provider + cluster + "logon:\n  timeout_seconds: 60\n"
        << QStringLiteral("config.yaml:7:1: unknown field \"logon\" is ignored. Check its "
                          "spelling, or remove it.");
    QTest::newRow("oidc key") << provider + "  clientid: k\n" + cluster
                              << QStringLiteral(
                                     "config.yaml:4:3: unknown field \"oidc.clientid\" is ignored");
    QTest::newRow("claims key")
        << provider + "  claims:\n    group: groups\n" + cluster
        << QStringLiteral("config.yaml:5:5: unknown field \"oidc.claims.group\" is ignored");
    QTest::newRow("cluster key")
        << provider + cluster + "  sever: https://b.example.test\n"
        << QStringLiteral("config.yaml:7:3: unknown field \"clusters[0].sever\" is ignored");
    QTest::newRow("proxy key") << provider + cluster + "proxy:\n  prot: 8443\n"
                               << QStringLiteral("config.yaml:8:3: unknown field \"proxy.prot\"");
    QTest::newRow("login key") << provider + cluster + "login:\n  browsers: [firefox]\n"
                               << QStringLiteral("config.yaml:8:3: unknown field "
                                                 "\"login.browsers\"");
    QTest::newRow("app key")
        << app + "    inject_token: true\n"
        << QStringLiteral("config.yaml:11:5: unknown field \"openunison.apps[0].inject_token\" "
                          "is ignored");
    QTest::newRow("openunison keys")
        << provider + cluster + "openunison:\n  keys:\n  - name: headlamp-tls\n"
        << QStringLiteral("config.yaml:8:3: \"openunison.keys\" is an OpenUnison setting that "
                          "Lamplighter ignores");
    QTest::newRow("openunison non_secret_data")
        << provider + cluster + "openunison:\n  non_secret_data:\n    K8S_DB_SSO: oidc\n"
        << QStringLiteral("config.yaml:8:3: \"openunison.non_secret_data\" is an OpenUnison "
                          "setting that Lamplighter ignores");
    QTest::newRow("kubeAuth key")
        << provider + cluster + "openunison:\n  kubeAuth:\n    enabled: true\n    replicas: 2\n"
        << QStringLiteral("config.yaml:10:5: \"openunison.kubeAuth.replicas\" is an OpenUnison "
                          "setting");
    QTest::newRow("headlamp key")
        << provider + cluster + "headlamp:\n  enabled: true\n  image: headlamp:latest\n"
        << QStringLiteral("config.yaml:9:3: \"headlamp.image\" is an OpenUnison setting that "
                          "Lamplighter ignores");
    QTest::newRow("oidc client_secret")
        << provider + "  client_secret: s3cr3t-value\n" + cluster
        << QStringLiteral("config.yaml:4:3: \"oidc.client_secret\" is an OpenUnison setting");
    QTest::newRow("top-level OpenUnison block")
        << provider + cluster + "network:\n  openunison_host: login.example.test\n"
        << QStringLiteral("config.yaml:7:1: \"network\" is an OpenUnison setting that "
                          "Lamplighter ignores");
}

// An unread key loads with exactly one warning, which names the file, line, column and the key's
// dotted path.
void TestConfig::unknownKeyWarns()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);
    const Result<Config> config = loadConfig(write(text));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->warnings.size(), 1);
    const QString warning = config->warnings.first();
    QVERIFY2(warning.startsWith(m_dir->filePath(QStringLiteral("config.yaml:"))),
             qPrintable(QStringLiteral("the warning must name the file: ") + warning));
    QVERIFY2(warning.contains(expected), qPrintable(QStringLiteral("got: ") + warning));
    QVERIFY2(!warning.contains(QStringLiteral("s3cr3t")),
             qPrintable(QStringLiteral("the warning must not show the value: ") + warning));
}

// Two blocks of the same name, as when two OpenUnison snippets are pasted one after the other:
// yaml-cpp would keep only the first, so the file is rejected.
void TestConfig::repeatedKeyRejected_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected");

    QTest::newRow("top-level block")
        << QByteArray(validConfig) + "openunison:\n  apps: []\n"
                                     "openunison:\n  kubeAuth:\n    enabled: false\n"
        << QStringLiteral(":22:1: \"openunison\" appears a second "
                          "time in the file. Merge the two into one.");
    QTest::newRow("unknown key") << QByteArray(validConfig) +
                                        "openunison:\n  keys: []\n  keys: []\n"
                                 << QStringLiteral(":22:3: \"openunison.keys\" appears a second "
                                                   "time in \"openunison\"");
    QTest::newRow("read key") << QByteArray("oidc:\n  issuer: https://idp.example.test\n"
                                            "  client_id: a\n  client_id: b\n"
                                            "clusters:\n- name: a\n  server: https://a.test\n")
                              << QStringLiteral(":4:3: \"oidc.client_id\" appears a second time");
}

void TestConfig::repeatedKeyRejected()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);

    const Result<Config> config = loadConfig(write(text));

    QVERIFY(!config.ok());
    QVERIFY2(config.errorMessage().contains(expected), qPrintable(config.errorMessage()));
}

// The values block of OpenUnison's guide for an existing Headlamp, as published.
void TestConfig::existingHeadlampValuesRead()
{
    const QString path = writeWithFixture(QStringLiteral("existing-headlamp-values.yaml"));
    QVERIFY(!path.isEmpty());
    const Result<Config> config = loadConfig(path);
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
    QVERIFY(config->enableImpersonation);
    QVERIFY(!config->headlampEnabled);
    QVERIFY(config->kubeAuthEnabled);
    QCOMPARE(config->formatVersion, 1);

    QCOMPARE(config->apps.size(), std::size_t(1));
    const AppConfig &app = config->apps[0];
    QCOMPARE(app.name, QStringLiteral("headlamp"));
    QCOMPARE(app.label, QStringLiteral("Headlamp"));
    QCOMPARE(app.org, QStringLiteral("b1bf4c92-7220-4ad2-91af-ee0fe0af7312"));
    QCOMPARE(app.badgeUrl, QUrl(QStringLiteral("https://headlamp.mydomain.com/")));
    QVERIFY(app.injectToken);
    QCOMPARE(app.proxyTo, QStringLiteral("https://headlamp.headlamp.svc:80${fullURI}"));
    QCOMPARE(app.upstream, QUrl(QStringLiteral("https://headlamp.headlamp.svc:80")));
    QVERIFY(app.authorizedGroups.isEmpty());

    QVERIFY(app.icon.startsWith("\x89PNG\r\n\x1a\n"));
    QImage icon;
    QVERIFY(icon.loadFromData(app.icon, "PNG"));
    QVERIFY(!icon.isNull());
    QVERIFY(icon.width() > 0);
    QVERIFY(icon.height() > 0);
}

// The values block of OpenUnison's guide for Headlamp without kubectl access, as published.
void TestConfig::kubeAuthDisabledValuesRead()
{
    const QString path = writeWithFixture(QStringLiteral("kubeauth-disabled-values.yaml"));
    QVERIFY(!path.isEmpty());
    const Result<Config> config = loadConfig(path);
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
    QVERIFY(config->enableImpersonation);
    QVERIFY(!config->kubeAuthEnabled);
    QVERIFY(config->headlampEnabled);
    QVERIFY(config->apps.empty());
}

// A values file alone lacks the identity provider, and the error names the missing block.
void TestConfig::valuesAloneMissOidc()
{
    QFile values(QDir(QStringLiteral(LAMPLIGHTER_OPENUNISON_FIXTURES))
                     .filePath(QStringLiteral("kubeauth-disabled-values.yaml")));
    QVERIFY(values.open(QIODevice::ReadOnly));
    const Result<Config> config = loadConfig(write(values.readAll()));
    QVERIFY(!config.ok());
    QVERIFY2(config.errorMessage().contains(QStringLiteral("missing block \"oidc\"")),
             qPrintable(config.errorMessage()));
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
    QTest::newRow("ca file missing")
        << QByteArray("oidc:\n  issuer: https://idp.example.test\n  client_id: k\n"
                      "  ca_file: nowhere.pem\n") +
               cluster
        << QStringLiteral("config.yaml:4:12: cannot read \"oidc.ca_file\" file");
    QTest::newRow("portal headlamp unknown")
        << provider + cluster + "portal:\n  headlamp: tab\n"
        << QStringLiteral("config.yaml:8:13: \"portal.headlamp\" must be window or browser, got "
                          "\"tab\"");
    QTest::newRow("portal not a mapping")
        << provider + cluster + "portal: browser\n"
        << QStringLiteral("config.yaml:7:9: \"portal\" must be a mapping");
    QTest::newRow("no clusters") << provider << QStringLiteral("missing list \"clusters\"");
    QTest::newRow("empty clusters") << provider + "clusters: []\n"
                                    << QStringLiteral("config.yaml:4:11: \"clusters\" must be a "
                                                      "list of at least one cluster");
    QTest::newRow("cluster name invalid")
        << provider + "clusters:\n- name: Prod Cluster\n  server: https://a.example.test\n"
        << QStringLiteral("config.yaml:5:9: clusters[0].name \"Prod Cluster\" must be");
    QTest::newRow("cluster name ends with dash")
        << provider + "clusters:\n- name: prod-\n  server: https://a.example.test\n"
        << QStringLiteral("config.yaml:5:9: clusters[0].name \"prod-\" must be");
    QTest::newRow("cluster name starts with dot")
        << provider + "clusters:\n- name: .prod\n  server: https://a.example.test\n"
        << QStringLiteral("config.yaml:5:9: clusters[0].name \".prod\" must be");
    QTest::newRow("cluster name not ASCII")
        << provider + "clusters:\n- name: pr\xc3\xb6\n  server: https://a.example.test\n"
        << QStringLiteral("config.yaml:5:9: clusters[0].name \"pr\u00f6\" must be");
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
    QTest::newRow("redirect host not loopback")
        << provider + cluster + "login:\n  redirect_host: example.com\n"
        << QStringLiteral("config.yaml:8:18: \"login.redirect_host\" must be 127.0.0.1 or "
                          "localhost");
    QTest::newRow("timeout too short")
        << provider + cluster + "login:\n  timeout_seconds: 1\n"
        << QStringLiteral("config.yaml:8:20: \"login.timeout_seconds\" must be a whole number");
    const QString clockSkewError = QStringLiteral(
        "config.yaml:4:23: \"oidc.clock_skew_seconds\" must be a whole number from 0 to 900");
    QTest::newRow("negative clock skew")
        << provider + "  clock_skew_seconds: -5\n" + cluster << clockSkewError;
    QTest::newRow("clock skew over 15 minutes")
        << provider + "  clock_skew_seconds: 901\n" + cluster << clockSkewError;
    QTest::newRow("clock skew in minutes")
        << provider + "  clock_skew_seconds: 5m\n" + cluster << clockSkewError;
    QTest::newRow("clock skew as list")
        << provider + "  clock_skew_seconds: [60]\n" + cluster << clockSkewError;

    // Line 7 starts the "openunison" block, line 9 the first app.
    const QByteArray apps = provider + cluster + "openunison:\n  apps:\n";
    const QByteArray app = apps + "  - name: headlamp\n";
    const QByteArray proxyTo = "    proxyTo: https://h.example.test${fullURI}\n";
    QTest::newRow("openunison not a mapping")
        << provider + cluster + "openunison: [a]\n"
        << QStringLiteral("config.yaml:7:13: \"openunison\" must be a mapping");
    QTest::newRow("apps not a list")
        << provider + cluster + "openunison:\n  apps: headlamp\n"
        << QStringLiteral("config.yaml:8:9: \"openunison.apps\" must be a list");
    QTest::newRow("app not a mapping")
        << apps + "  - headlamp\n"
        << QStringLiteral("config.yaml:9:5: openunison.apps[0] must be a mapping");
    QTest::newRow("app name missing")
        << apps + "  - label: Headlamp\n" + proxyTo
        << QStringLiteral("config.yaml:9:5: missing field \"openunison.apps[0].name\"");
    QTest::newRow("app name upper case")
        << apps + "  - name: Headlamp\n" + proxyTo
        << QStringLiteral("config.yaml:9:11: openunison.apps[0].name \"Headlamp\" must be a DNS "
                          "label");
    QTest::newRow("app name with dot")
        << apps + "  - name: head.lamp\n" + proxyTo
        << QStringLiteral("config.yaml:9:11: openunison.apps[0].name \"head.lamp\" must be a DNS "
                          "label");
    QTest::newRow("app name of 64 characters")
        << apps + "  - name: " + QByteArray(64, 'a') + "\n" + proxyTo
        << QStringLiteral("config.yaml:9:11: openunison.apps[0].name \"%1\" must be a DNS label")
               .arg(QString(64, u'a'));
    QTest::newRow("app name twice")
        << app + proxyTo + "  - name: headlamp\n" + proxyTo
        << QStringLiteral("config.yaml:11:11: app name \"headlamp\" is used twice");
    QTest::newRow("proxyTo missing")
        << app << QStringLiteral("config.yaml:9:5: missing field \"openunison.apps[0].proxyTo\"");
    QTest::newRow("proxyTo without placeholder")
        << app + "    proxyTo: https://h.example.test/\n"
        << QStringLiteral("config.yaml:10:14: \"openunison.apps[0].proxyTo\" must end with "
                          "\"${fullURI}\"");
    QTest::newRow("proxyTo placeholder not last")
        << app + "    proxyTo: https://h.example.test${fullURI}/x\n"
        << QStringLiteral("config.yaml:10:14: \"openunison.apps[0].proxyTo\" must end with");
    QTest::newRow("proxyTo plain http")
        << app + "    proxyTo: http://h.example.test${fullURI}\n"
        << QStringLiteral("config.yaml:10:14: \"openunison.apps[0].proxyTo\" must be an https "
                          "URL");
    QTest::newRow("proxyTo with query")
        << app + "    proxyTo: https://h.example.test/?a=b${fullURI}\n"
        << QStringLiteral("config.yaml:10:14: \"openunison.apps[0].proxyTo\" must not have a "
                          "query");
    QTest::newRow("injectToken not a bool")
        << app + proxyTo + "    injectToken: yes please\n"
        << QStringLiteral("config.yaml:11:18: \"openunison.apps[0].injectToken\" must be true or "
                          "false");
    QTest::newRow("icon not base64")
        << app + proxyTo + "    icon: '%%%'\n"
        << QStringLiteral("config.yaml:11:11: \"openunison.apps[0].icon\" must be a "
                          "base64-encoded PNG image");
    QTest::newRow("icon not a PNG")
        << app + proxyTo + "    icon: aGVsbG8=\n"
        << QStringLiteral("config.yaml:11:11: \"openunison.apps[0].icon\" must be a "
                          "base64-encoded PNG image");
    // A PNG signature and an IHDR chunk for 30000x30000 pixels, without image data.
    const QByteArray hugePng = QByteArray("\x89PNG\r\n\x1a\n", 8) +
                               QByteArray("\0\0\0\x0dIHDR", 8) +
                               QByteArray("\0\0\x75\x30\0\0\x75\x30\x08\x06\0\0\0", 13);
    QTest::newRow("icon too large")
        << app + proxyTo + "    icon: " + hugePng.toBase64() + "\n"
        << QStringLiteral("config.yaml:11:11: \"openunison.apps[0].icon\" is a PNG of "
                          "30000x30000 pixels; icons must be at most 1024x1024");
    QTest::newRow("az_groups not a list")
        << app + proxyTo + "    az_groups: admins\n"
        << QStringLiteral("config.yaml:11:16: \"openunison.apps[0].az_groups\" must be a list");
    QTest::newRow("badgeUrl not a URL")
        << app + proxyTo + "    badgeUrl: headlamp\n"
        << QStringLiteral("config.yaml:11:15: \"openunison.apps[0].badgeUrl\" must be an http or "
                          "https URL");
    QTest::newRow("tokenHeader unknown")
        << app + proxyTo + "    tokenHeader: X-Auth\n"
        << QStringLiteral("config.yaml:11:18: openunison.apps[0].tokenHeader must be "
                          "\"Authorization\" or \"X-Forwarded-Id-Token\", got \"X-Auth\"");
    QTest::newRow("app ca file missing")
        << app + proxyTo + "    ca_file: nowhere.pem\n"
        << QStringLiteral("config.yaml:11:14: cannot read \"openunison.apps[0].ca_file\" file");
    QTest::newRow("org a list")
        << app + proxyTo + "    org: [a]\n"
        << QStringLiteral("config.yaml:11:10: \"openunison.apps[0].org\" must be a string");
    QTest::newRow("injectToken a list")
        << app + proxyTo + "    injectToken: [true]\n"
        << QStringLiteral("config.yaml:11:18: \"openunison.apps[0].injectToken\" must be true or "
                          "false, got a list");

    // Line 7 starts the OpenUnison switches.
    QTest::newRow("enable_impersonation not a bool")
        << provider + cluster + "enable_impersonation: maybe\n"
        << QStringLiteral("config.yaml:7:23: \"enable_impersonation\" must be true or false, got "
                          "\"maybe\"");
    QTest::newRow("enable_impersonation a mapping")
        << provider + cluster + "enable_impersonation:\n  on: true\n"
        << QStringLiteral("config.yaml:8:3: \"enable_impersonation\" must be true or false, got "
                          "a mapping");
    QTest::newRow("headlamp not a mapping")
        << provider + cluster + "headlamp: false\n"
        << QStringLiteral("config.yaml:7:11: \"headlamp\" must be a mapping");
    QTest::newRow("headlamp.enabled not a bool")
        << provider + cluster + "headlamp:\n  enabled: 'no'\n"
        << QStringLiteral("config.yaml:8:12: \"headlamp.enabled\" must be true or false, got "
                          "\"no\"");
    QTest::newRow("kubeAuth not a mapping")
        << provider + cluster + "openunison:\n  kubeAuth: false\n"
        << QStringLiteral("config.yaml:8:13: \"openunison.kubeAuth\" must be a mapping");
    QTest::newRow("kubeAuth.enabled not a bool")
        << provider + cluster + "openunison:\n  kubeAuth:\n    enabled: 0\n"
        << QStringLiteral("config.yaml:9:14: \"openunison.kubeAuth.enabled\" must be true or "
                          "false, got \"0\"");
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

// Without a portal block the in-cluster Headlamp opens in Lamplighter's window.
void TestConfig::portalHeadlampChoiceRead()
{
    const Result<Config> defaults = loadConfig(write(validConfig));
    QVERIFY2(defaults.ok(), qPrintable(defaults.errorMessage()));
    QVERIFY(!defaults->portal.headlampInBrowser);

    const Result<Config> browser =
        loadConfig(write(QByteArray(validConfig) + "portal:\n  headlamp: browser\n"));
    QVERIFY2(browser.ok(), qPrintable(browser.errorMessage()));
    QVERIFY(browser->portal.headlampInBrowser);
    QVERIFY2(browser->warnings.isEmpty(), qPrintable(browser->warnings.join(QLatin1Char('\n'))));
}

// A reload applies apps at once; the blocks that need a restart are named for the person.
void TestConfig::restartBlocksListChanges()
{
    const Result<Config> running = loadConfig(write(validConfig));
    QVERIFY2(running.ok(), qPrintable(running.errorMessage()));

    QCOMPARE(blocksNeedingRestart(*running, *running), QStringList());

    Config reloaded = *running;
    reloaded.apps.clear();
    QCOMPARE(blocksNeedingRestart(*running, reloaded), QStringList());

    reloaded.provider.clientId = QStringLiteral("another-client");
    reloaded.clusters.front().server = QUrl(QStringLiteral("https://other.example.test:6443"));
    reloaded.proxy.port = 4443;
    QCOMPARE(
        blocksNeedingRestart(*running, reloaded),
        (QStringList{QStringLiteral("oidc"), QStringLiteral("clusters"), QStringLiteral("proxy")}));

    Config fewerClusters = *running;
    fewerClusters.clusters.clear();
    QCOMPARE(blocksNeedingRestart(*running, fewerClusters),
             QStringList{QStringLiteral("clusters")});
}

// A file without "format_version" is version 1, the format of every file written before the key.
void TestConfig::formatVersionRead_data()
{
    QTest::addColumn<QByteArray>("prefix");
    QTest::newRow("missing") << QByteArray();
    QTest::newRow("null") << QByteArray("format_version:\n");
    QTest::newRow("1") << QByteArray("format_version: 1\n");
}

void TestConfig::formatVersionRead()
{
    QFETCH(QByteArray, prefix);
    const Result<Config> config = loadConfig(write(prefix + validConfig));
    QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
    QCOMPARE(config->formatVersion, 1);
    QCOMPARE(config->formatVersion, currentConfigFormatVersion);
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
    QCOMPARE(config->provider.clientId, QStringLiteral("lamplighter"));
}

void TestConfig::formatVersionRejected_data()
{
    QTest::addColumn<QByteArray>("prefix");
    QTest::addColumn<QString>("expected");
    QTest::newRow("too new")
        << QByteArray("format_version: 2\n")
        << QStringLiteral("config.yaml:1:17: \"format_version\" is 2, but this Lamplighter reads "
                          "format versions up to 1: the file was written by a newer Lamplighter.");
    QTest::newRow("far too new")
        << QByteArray("format_version: 40000\n")
        << QStringLiteral("\"format_version\" is 40000, but this Lamplighter reads format "
                          "versions up to 1");
    QTest::newRow("not a number")
        << QByteArray("format_version: one\n")
        << QStringLiteral("config.yaml:1:17: \"format_version\" must be a whole number from 1 to "
                          "1, got \"one\"");
    QTest::newRow("fraction") << QByteArray("format_version: 1.5\n")
                              << QStringLiteral("must be a whole number from 1 to 1, got \"1.5\"");
    QTest::newRow("zero") << QByteArray("format_version: 0\n")
                          << QStringLiteral("must be a whole number from 1 to 1, got \"0\"");
    QTest::newRow("negative") << QByteArray("format_version: -1\n")
                              << QStringLiteral("must be a whole number from 1 to 1, got \"-1\"");
    QTest::newRow("list") << QByteArray("format_version: [1]\n")
                          << QStringLiteral("must be a whole number from 1 to 1, got a list");
}

void TestConfig::formatVersionRejected()
{
    QFETCH(QByteArray, prefix);
    QFETCH(QString, expected);
    const Result<Config> config = loadConfig(write(prefix + validConfig));
    QVERIFY(!config.ok());
    QVERIFY2(config.errorMessage().contains(expected),
             qPrintable(QStringLiteral("got: ") + config.errorMessage()));
    QVERIFY2(config.errorMessage().startsWith(m_dir->path()),
             qPrintable(QStringLiteral("the error must name the file: ") + config.errorMessage()));
}

QTEST_GUILESS_MAIN(TestConfig)
#include "tst_config.moc"
