#include "clusterproxy/CertificateRotationConfig.h"
#include "tls/LocalCertificate.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

namespace {

// Lines 1 to 4. The line numbers in invalidFile count from here.
const QByteArray apiServerSection = "api_server:\n"                           // 1
                                    "  url: https://kubernetes.default.svc\n" // 2
                                    "  certificate_authority: ca.crt\n"       // 3
                                    "  token_file: token\n";                  // 4

// A valid entry at lines 6 to 13, after "keys:" at line 5.
const QByteArray validEntry = "- name: web\n"                                       // 6
                              "  tls_secret_name: web-tls\n"                        // 7
                              "  create_data:\n"                                    // 8
                              "    server_name: web.team-a.svc\n"                   // 9
                              "    target_namespace: team-a\n"                      // 10
                              "    key_size: 3072\n"                                // 11
                              "    subject_alternative_names: [web.example.test]\n" // 12
                              "    delete_pods_labels: [app=web]\n";                // 13

} // namespace

class TestCertificateRotationConfig : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void fullFileRead();
    void defaultsApplied();
    void openUnisonValuesFile();
    void inClusterDefaultsUsed();
    void clusterProxyKeysAccepted();
    void unknownKeysWarned();
    void missingFileNamed();
    void invalidFile_data();
    void invalidFile();

private:
    QString write(const QByteArray &text);

    QTemporaryDir m_dir;
};

void TestCertificateRotationConfig::initTestCase()
{
    QVERIFY(m_dir.isValid());
    const Result<LocalCertificate> certificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(certificate, qPrintable(certificate.errorMessage()));
    QFile ca(m_dir.filePath(QStringLiteral("ca.crt")));
    QVERIFY(ca.open(QIODevice::WriteOnly));
    ca.write(certificate->certificatePem());
}

QString TestCertificateRotationConfig::write(const QByteArray &text)
{
    const QString path = m_dir.filePath(QStringLiteral("certs.yaml"));
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return QString();
    file.write(text);
    return path;
}

void TestCertificateRotationConfig::fullFileRead()
{
    const QString path =
        write(apiServerSection + "keys:\n" + validEntry +
              "- name: headlamp\n"
              "  import_into_ks: keypair\n"
              "  tls_secret_name: headlamp-tls\n"
              "  replace_if_exists: true\n"
              "  create_data:\n"
              "    ca_cert: true\n"
              "    key_size: 2048\n"
              "    server_name: headlamp.headlamp.svc\n"
              "    subject_alternative_names: [headlamp.example.test, 10.1.2.3, "
              "\"::1\", \"*.headlamp.svc\"]\n"
              "    target_namespace: headlamp\n"
              "    delete_pods_label: [app.kubernetes.io/name=headlamp]\n"
              "    delete_pod_labels: [tier=web, app.kubernetes.io/name=headlamp]\n"
              "    delete_pods_labels: [role=]\n");
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(path);
    QVERIFY2(config, qPrintable(config.errorMessage()));
    QCOMPARE(config->apiServer, QUrl(QStringLiteral("https://kubernetes.default.svc")));
    QCOMPARE(config->apiServerCaCertificates.size(), 1);
    QCOMPARE(config->serviceAccountTokenFile, QDir(m_dir.path()).filePath(QStringLiteral("token")));
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
    QCOMPARE(config->keys.size(), 2);

    const CertificateKey &web = config->keys.at(0);
    QCOMPARE(web.name, QStringLiteral("web"));
    QCOMPARE(web.secretName, QStringLiteral("web-tls"));
    QCOMPARE(web.replaceIfExists, false);
    QCOMPARE(web.caCertificateInChain, false);
    QCOMPARE(web.keySize, 3072);
    QCOMPARE(web.serverName, QStringLiteral("web.team-a.svc"));
    QCOMPARE(web.subjectAlternativeNames, QStringList{QStringLiteral("web.example.test")});
    QCOMPARE(web.targetNamespace, QStringLiteral("team-a"));
    QCOMPARE(web.deletePodsSelectors, QStringList{QStringLiteral("app=web")});

    const CertificateKey &headlamp = config->keys.at(1);
    QCOMPARE(headlamp.replaceIfExists, true);
    QCOMPARE(headlamp.caCertificateInChain, true);
    QCOMPARE(headlamp.keySize, 2048);
    QCOMPARE(headlamp.subjectAlternativeNames,
             (QStringList{QStringLiteral("headlamp.example.test"),
                          QStringLiteral("10.1.2.3"),
                          QStringLiteral("::1"),
                          QStringLiteral("*.headlamp.svc")}));
    // All three spellings are read, in this order, without duplicates.
    QCOMPARE(headlamp.deletePodsSelectors,
             (QStringList{QStringLiteral("role="),
                          QStringLiteral("app.kubernetes.io/name=headlamp"),
                          QStringLiteral("tier=web")}));
}

void TestCertificateRotationConfig::defaultsApplied()
{
    const QString path = write(apiServerSection + "keys:\n"
                                                  "- name: web\n"
                                                  "  tls_secret_name: web-tls\n"
                                                  "  create_data:\n"
                                                  "    server_name: web.team-a.svc\n"
                                                  "    target_namespace: team-a\n");
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(path);
    QVERIFY2(config, qPrintable(config.errorMessage()));
    QCOMPARE(config->keys.size(), 1);
    QCOMPARE(config->keys.first().keySize, 2048);
    QCOMPARE(config->keys.first().replaceIfExists, false);
    QCOMPARE(config->keys.first().caCertificateInChain, false);
    QVERIFY(config->keys.first().subjectAlternativeNames.isEmpty());
    QVERIFY(config->keys.first().deletePodsSelectors.isEmpty());
}

void TestCertificateRotationConfig::openUnisonValuesFile()
{
    // An OpenUnison values file, whose own top-level keys get no warning.
    const QString path = write(apiServerSection + "network:\n"
                                                  "  openunison_host: login.example.test\n"
                                                  "enable_impersonation: true\n"
                                                  "openunison:\n"
                                                  "  apps: []\n"
                                                  "  keys:\n"
                                                  "  - name: headlamp-tls\n"
                                                  "    import_into_ks: keypair\n"
                                                  "    tls_secret_name: headlamp-tls\n"
                                                  "    replace_if_exists: true\n"
                                                  "    create_data:\n"
                                                  "      ca_cert: true\n"
                                                  "      key_size: 2048\n"
                                                  "      server_name: headlamp.headlamp.svc\n"
                                                  "      target_namespace: headlamp\n"
                                                  "      delete_pods_label:\n"
                                                  "      - app.kubernetes.io/name=headlamp\n");
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(path);
    QVERIFY2(config, qPrintable(config.errorMessage()));
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
    QCOMPARE(config->keys.size(), 1);
    QCOMPARE(config->keys.first().secretName, QStringLiteral("headlamp-tls"));
    QCOMPARE(config->keys.first().targetNamespace, QStringLiteral("headlamp"));
    QCOMPARE(config->keys.first().deletePodsSelectors,
             QStringList{QStringLiteral("app.kubernetes.io/name=headlamp")});
}

void TestCertificateRotationConfig::inClusterDefaultsUsed()
{
    // Without api_server, the service account's CA file is read, which this machine lacks
    // unless it runs in a pod.
    if (QFile::exists(QStringLiteral("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")))
        QSKIP("this machine has a service account CA file, so the default reads");
    const QString path = write("keys:\n" + validEntry);
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(path);
    QVERIFY(!config);
    QVERIFY2(config.errorMessage().contains(
                 QStringLiteral("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")),
             qPrintable(config.errorMessage()));
    QVERIFY2(config.errorMessage().contains(QStringLiteral("api_server.certificate_authority")),
             qPrintable(config.errorMessage()));
}

void TestCertificateRotationConfig::clusterProxyKeysAccepted()
{
    const QString path = write("listen: 0.0.0.0:8443\n"
                               "tls: {certificate: tls.crt, key: tls.key}\n"
                               "issuer: {url: https://login.example.test, client_id: lamplighter}\n"
                               "namespaces: {mode: none}\n" +
                               apiServerSection + "keys:\n" + validEntry);
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(path);
    QVERIFY2(config, qPrintable(config.errorMessage()));
    QVERIFY2(config->warnings.isEmpty(), qPrintable(config->warnings.join(QLatin1Char('\n'))));
    QCOMPARE(config->keys.size(), 1);
}

void TestCertificateRotationConfig::unknownKeysWarned()
{
    const QByteArray text = apiServerSection + "  proxy: none\n"              // 5, in api_server
                                               "keys:\n"                      // 6
                                               "- name: web\n"                // 7
                                               "  tls_secret_name: web-tls\n" // 8
                                               "  colour: blue\n"             // 9
                                               "  create_data:\n"             // 10
                                               "    server_name: web.team-a.svc\n" // 11
                                               "    target_namespace: team-a\n"    // 12
                                               "    sign_by_k8s_ca: false\n"       // 13
                                               "extra: 1\n";                       // 14
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(write(text));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    QCOMPARE(config->warnings.size(), 4);
    const QString all = config->warnings.join(QLatin1Char('\n'));
    QVERIFY2(all.contains(QStringLiteral(":5:3: unknown key \"proxy\" in api_server is ignored")),
             qPrintable(all));
    QVERIFY2(all.contains(QStringLiteral(":9:3: unknown key \"colour\" in keys[0] is ignored")),
             qPrintable(all));
    QVERIFY2(all.contains(QStringLiteral(
                 ":13:5: unknown key \"sign_by_k8s_ca\" in keys[0].create_data is ignored")),
             qPrintable(all));
    QVERIFY2(
        all.contains(QStringLiteral(":14:1: unknown key \"extra\" in the top level is ignored")),
        qPrintable(all));
    QCOMPARE(config->keys.size(), 1);
}

void TestCertificateRotationConfig::missingFileNamed()
{
    const QString path = m_dir.filePath(QStringLiteral("absent.yaml"));
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(path);
    QVERIFY(!config);
    QVERIFY2(config.errorMessage().startsWith(path + QStringLiteral(": cannot read")),
             qPrintable(config.errorMessage()));
}

void TestCertificateRotationConfig::invalidFile_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected");

    const QByteArray keys = apiServerSection + "keys:\n";
    const auto entryWith = [](const QByteArray &from, const QByteArray &to) {
        QByteArray entry = validEntry;
        return entry.replace(from, to);
    };
    QTest::newRow("keys not a list") << apiServerSection + "keys: {web: 1}\n"
                                     << QStringLiteral(":5:7: \"keys\" must be a list");
    QTest::newRow("entry not a mapping") << keys + "- web\n"
                                         << QStringLiteral(":6:3: \"keys[0]\" must be a mapping");
    QTest::newRow("name missing") << keys + entryWith("- name: web\n  tls", "- tls")
                                  << QStringLiteral("missing field \"keys[0].name\"");
    QTest::newRow("create_data missing") << keys + "- name: web\n  tls_secret_name: web-tls\n"
                                         << QStringLiteral("missing field \"keys[0].create_data\"");
    QTest::newRow("create_data a list")
        << keys + "- name: web\n  tls_secret_name: web-tls\n  create_data: [a]\n"
        << QStringLiteral(":8:16: \"keys[0].create_data\" must be a mapping");
    QTest::newRow("secret name invalid")
        << keys + entryWith("web-tls", "Web_TLS")
        << QStringLiteral(":7:20: \"keys[0].tls_secret_name\" must be a Secret name");
    QTest::newRow("replace_if_exists not a boolean")
        << keys + validEntry + "  replace_if_exists: sometimes\n"
        << QStringLiteral(":14:22: \"keys[0].replace_if_exists\" must be true or false");
    QTest::newRow("import_into_ks a list")
        << keys + validEntry + "  import_into_ks: [keypair]\n"
        << QStringLiteral(":14:19: \"keys[0].import_into_ks\" must be a string");
    QTest::newRow("ca_cert not a boolean")
        << keys + validEntry + "    ca_cert: 1\n"
        << QStringLiteral(":14:14: \"keys[0].create_data.ca_cert\" must be true or false");
    QTest::newRow("key_size too small")
        << keys + entryWith("3072", "1024")
        << QStringLiteral(":11:15: \"keys[0].create_data.key_size\" must be 2048, 3072 or 4096 "
                          "(RSA key bits), got \"1024\"");
    QTest::newRow("key_size a list")
        << keys + entryWith("key_size: 3072", "key_size: [3072]")
        << QStringLiteral("\"keys[0].create_data.key_size\" must be 2048, 3072 or 4096");
    QTest::newRow("server_name a list")
        << keys + entryWith("server_name: web.team-a.svc", "server_name: [web.team-a.svc]")
        << QStringLiteral(":9:18: \"keys[0].create_data.server_name\" must be a string");
    QTest::newRow("server_name an URL")
        << keys + entryWith("web.team-a.svc", "https://web.team-a.svc")
        << QStringLiteral("\"keys[0].create_data.server_name\" must be a DNS name, got "
                          "\"https://web.team-a.svc\"");
    QTest::newRow("server_name missing")
        << keys + entryWith("    server_name: web.team-a.svc\n", "")
        << QStringLiteral("missing field \"keys[0].create_data.server_name\"");
    QTest::newRow("alternative names not a list")
        << keys + entryWith("[web.example.test]", "web.example.test")
        << QStringLiteral(":12:32: \"keys[0].create_data.subject_alternative_names\" must be a "
                          "list");
    QTest::newRow("alternative name invalid")
        << keys + entryWith("[web.example.test]", "[web.example.test, \"bad name\"]")
        << QStringLiteral(":12:51: \"keys[0].create_data.subject_alternative_names[1]\" must be a "
                          "DNS name or an IP address, got \"bad name\"");
    QTest::newRow("namespace invalid")
        << keys + entryWith("target_namespace: team-a", "target_namespace: Team_A")
        << QStringLiteral(":10:23: \"keys[0].create_data.target_namespace\" must be a namespace "
                          "name");
    QTest::newRow("namespace missing")
        << keys + entryWith("    target_namespace: team-a\n", "")
        << QStringLiteral("missing field \"keys[0].create_data.target_namespace\"");
    QTest::newRow("selector without value")
        << keys + entryWith("delete_pods_labels: [app=web]", "delete_pods_label: [app]")
        << QStringLiteral(":13:25: \"keys[0].create_data.delete_pods_label[0]\" must be a label "
                          "selector KEY=VALUE, got \"app\"");
    QTest::newRow("selector a string")
        << keys + entryWith("delete_pods_labels: [app=web]", "delete_pod_labels: app=web")
        << QStringLiteral(":13:24: \"keys[0].create_data.delete_pod_labels\" must be a list");
    QTest::newRow("selector set-based")
        << keys + entryWith("[app=web]", "[\"app in (web)\"]")
        << QStringLiteral("must be a label selector KEY=VALUE, got \"app in (web)\"");
    QTest::newRow("api_server url http")
        << QByteArray(apiServerSection).replace("https://", "http://") + "keys:\n" + validEntry
        << QStringLiteral(":2:8: \"api_server.url\" must be an https URL");
    QTest::newRow("api_server a list") << QByteArray("api_server: [a]\nkeys: []\n")
                                       << QStringLiteral(":1:13: \"api_server\" must be a mapping");
    QTest::newRow("api_server token_file missing")
        << QByteArray(apiServerSection).replace("  token_file: token\n", "") + "keys: []\n"
        << QStringLiteral("missing field \"api_server.token_file\"");
    QTest::newRow("openunison not a mapping")
        << apiServerSection + "openunison: [keys]\n"
        << QStringLiteral(":5:13: \"openunison\" must be a mapping");
    QTest::newRow("openunison keys entry invalid")
        << apiServerSection + "openunison:\n  keys:\n  - name: web\n"
        << QStringLiteral("missing field \"openunison.keys[0].tls_secret_name\"");
    QTest::newRow("same Secret twice")
        << keys + validEntry + entryWith("- name: web\n", "- name: web-again\n")
        << QStringLiteral("two entries of \"keys\" manage the Secret team-a/web-tls");
    QTest::newRow("same name twice")
        << keys + validEntry + entryWith("web-tls", "other-tls")
        << QStringLiteral("two entries of \"keys\" have the name \"web\"");
    QTest::newRow("not a mapping")
        << QByteArray("- keys\n") << QStringLiteral("the file must be a YAML mapping");
    QTest::newRow("invalid YAML") << QByteArray("keys: [\n") << QStringLiteral("invalid YAML");
}

void TestCertificateRotationConfig::invalidFile()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);
    const QString path = write(text);
    const Result<CertificateRotationConfig> config = loadCertificateRotationConfig(path);
    QVERIFY2(!config, "the file was accepted");
    QVERIFY2(config.errorMessage().startsWith(path + QLatin1Char(':')),
             qPrintable(config.errorMessage()));
    QVERIFY2(config.errorMessage().contains(expected), qPrintable(config.errorMessage()));
}

QTEST_GUILESS_MAIN(TestCertificateRotationConfig)
#include "tst_certificaterotationconfig.moc"
