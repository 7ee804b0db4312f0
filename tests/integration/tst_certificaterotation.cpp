#include "clusterproxy/CertificateRotation.h"
#include "clusterproxy/CertificateRotationConfig.h"
#include "clusterproxy/KubernetesRestClient.h"
#include "clusterproxy/TlsSecretCertificate.h"
#include "util/OpenSslPointers.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSslCertificate>
#include <QSslKey>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <memory>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

using namespace lamplighter;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);
const QString clusterProxyBinary = QStringLiteral(LAMPLIGHTER_CLUSTER_PROXY_BINARY);
const QByteArray certsToken = "certs-rotation-token-8d1f0c";
const QByteArray adminToken = "certs-rotation-admin-token-2b7e91";
const QString certsAccount = QStringLiteral("system:serviceaccount:lamplighter:certs");
// The service account may manage Secrets and pods in team-a only, as the Role in
// packaging/kubernetes allows in its own namespace.
const QString allowedNamespace = QStringLiteral("team-a");
const QString deniedNamespace = QStringLiteral("team-b");
constexpr int startTimeoutMs = 30'000;

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

bool writeFile(const QString &path, const QByteArray &content)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(content) == content.size();
}

QByteArray decoded(const QJsonObject &secret, const QString &key)
{
    const QString value = secret.value(QStringLiteral("data")).toObject().value(key).toString();
    return QByteArray::fromBase64(value.toLatin1());
}

QString resourceVersion(const QJsonObject &object)
{
    return object.value(QStringLiteral("metadata"))
        .toObject()
        .value(QStringLiteral("resourceVersion"))
        .toString();
}

X509Pointer parseCertificate(const QByteArray &pem)
{
    const BioPointer bio(BIO_new_mem_buf(pem.constData(), int(pem.size())));
    return X509Pointer(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Returns an empty string when `certificatePem` verifies against `caPem` alone for TLS server
// use, or OpenSSL's reason otherwise.
QString verifyChain(const QByteArray &certificatePem, const QByteArray &caPem)
{
    const X509Pointer certificate = parseCertificate(certificatePem);
    const X509Pointer ca = parseCertificate(caPem);
    if (!certificate || !ca)
        return QStringLiteral("a certificate does not parse");
    const std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE_free>> store(X509_STORE_new());
    const std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX_free>> context(
        X509_STORE_CTX_new());
    if (!store || !context || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
        X509_STORE_CTX_init(context.get(), store.get(), certificate.get(), nullptr) != 1 ||
        X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER) != 1)
        return QStringLiteral("the verification context failed");
    if (X509_verify_cert(context.get()) != 1)
        return QString::fromLatin1(
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.get())));
    return QString();
}

bool keyMatchesCertificate(const QByteArray &keyPem, const QByteArray &certificatePem)
{
    const X509Pointer certificate = parseCertificate(certificatePem);
    const BioPointer bio(BIO_new_mem_buf(keyPem.constData(), int(keyPem.size())));
    const KeyPointer key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    return certificate && key && X509_check_private_key(certificate.get(), key.get()) == 1;
}

} // namespace

// `lamplighter-cluster-proxy certs` against the API server double of
// tests/fixtures/apiserver-double, with an RBAC table that gives its service account the rights
// of the Role in packaging/kubernetes in the namespace team-a only. An admin token sets up and
// inspects Secrets and pods.
class TestCertificateRotation : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();

    void firstRunCreatesVerifiableSecret();
    void caCertAppendsChain();
    void validSecretUnchanged();
    void expiringSecretReplaced();
    void unreadableSecretReplaced();
    void foreignSecretLeftAlone();
    void foreignSecretReplacedWhenAllowed();
    void forbiddenNamespaceNamed();
    void commandOnceExitStatus();

private:
    // Writes a configuration with the api_server block and `keys`, and loads it.
    Result<CertificateRotationConfig> configWithKeys(const QByteArray &keys);
    // Returns one entry of `keys` in YAML, for `secret` in `namespaceName`.
    static QByteArray keyEntry(const QString &secret,
                               const QString &namespaceName,
                               const QByteArray &extraLines = {});
    Result<KubernetesResponse>
    adminRequest(const QByteArray &method, const QString &path, const QJsonObject &body = {});
    QJsonObject getSecret(const QString &name);
    void createSecret(const QJsonObject &secret);
    void createPod(const QString &name, const QString &app);
    // Returns whether the pod is gone or terminating.
    bool podDeleted(const QString &name);
    QString apiServerLog() const;

    QTemporaryDir m_work;
    QString m_pki;
    QProcess m_apiServer;
    QUrl m_apiServerUrl;
    QList<QSslCertificate> m_caCertificates;
    std::unique_ptr<KubernetesRestClient> m_admin;
    int m_configCount = 0;
};

void TestCertificateRotation::initTestCase()
{
    QVERIFY(m_work.isValid());
    const QString node = QStandardPaths::findExecutable(QStringLiteral("node"));
    QVERIFY2(!node.isEmpty(), "node is not on PATH; run scripts/install-deps");

    m_pki = m_work.filePath(QStringLiteral("pki"));
    QProcess makePki;
    makePki.start(fixturesDirectory + QStringLiteral("/make-test-pki.sh"), {m_pki});
    QVERIFY(makePki.waitForFinished(60'000));
    QVERIFY2(makePki.exitCode() == 0, makePki.readAllStandardError().constData());
    m_caCertificates = QSslCertificate::fromPath(m_pki + QStringLiteral("/ca.crt"));
    QCOMPARE(m_caCertificates.size(), 1);

    const QString tokens = m_work.filePath(QStringLiteral("tokens.csv"));
    QVERIFY(
        writeFile(tokens,
                  certsToken + ',' + certsAccount.toUtf8() +
                      ",certs-uid,\"system:serviceaccounts,system:serviceaccounts:lamplighter\"\n" +
                      adminToken + ",test-admin,admin-uid\n"));
    QVERIFY(writeFile(m_work.filePath(QStringLiteral("token")), certsToken + '\n'));

    const QJsonObject rbac{
        {QStringLiteral("bindings"),
         QJsonArray{
             QJsonObject{
                 {QStringLiteral("name"), QStringLiteral("certs")},
                 {QStringLiteral("namespaces"), QJsonArray{allowedNamespace}},
                 {QStringLiteral("subjects"),
                  QJsonArray{
                      QJsonObject{{QStringLiteral("kind"), QStringLiteral("ServiceAccount")},
                                  {QStringLiteral("namespace"), QStringLiteral("lamplighter")},
                                  {QStringLiteral("name"), QStringLiteral("certs")}}}},
                 {QStringLiteral("rules"),
                  QJsonArray{
                      QJsonObject{
                          {QStringLiteral("apiGroups"), QJsonArray{QString()}},
                          {QStringLiteral("resources"), QJsonArray{QStringLiteral("secrets")}},
                          {QStringLiteral("verbs"),
                           QJsonArray{QStringLiteral("get"),
                                      QStringLiteral("create"),
                                      QStringLiteral("update")}}},
                      QJsonObject{{QStringLiteral("apiGroups"), QJsonArray{QString()}},
                                  {QStringLiteral("resources"), QJsonArray{QStringLiteral("pods")}},
                                  {QStringLiteral("verbs"),
                                   QJsonArray{QStringLiteral("list"),
                                              QStringLiteral("delete"),
                                              QStringLiteral("deletecollection")}}}}}},
             QJsonObject{
                 {QStringLiteral("name"), QStringLiteral("test-admin")},
                 {QStringLiteral("clusterScope"), true},
                 {QStringLiteral("subjects"),
                  QJsonArray{QJsonObject{{QStringLiteral("kind"), QStringLiteral("User")},
                                         {QStringLiteral("name"), QStringLiteral("test-admin")}}}},
                 {QStringLiteral("rules"),
                  QJsonArray{
                      QJsonObject{{QStringLiteral("apiGroups"), QJsonArray{QStringLiteral("*")}},
                                  {QStringLiteral("resources"), QJsonArray{QStringLiteral("*")}},
                                  {QStringLiteral("verbs"), QJsonArray{QStringLiteral("*")}}}}}}}}};
    const QString rbacFile = m_work.filePath(QStringLiteral("rbac.json"));
    QVERIFY(writeFile(rbacFile, QJsonDocument(rbac).toJson()));

    m_apiServer.setProgram(node);
    m_apiServer.setArguments({fixturesDirectory + QStringLiteral("/apiserver-double/server.mjs"),
                              QStringLiteral("--port"),
                              QStringLiteral("0"),
                              QStringLiteral("--tls-cert-file"),
                              m_pki + QStringLiteral("/apiserver.crt"),
                              QStringLiteral("--tls-private-key-file"),
                              m_pki + QStringLiteral("/apiserver.key"),
                              QStringLiteral("--token-auth-file"),
                              tokens,
                              QStringLiteral("--rbac-file"),
                              rbacFile});
    m_apiServer.setStandardErrorFile(m_work.filePath(QStringLiteral("apiserver.log")));
    m_apiServer.start();
    QVERIFY2(m_apiServer.waitForStarted(10'000), qPrintable(m_apiServer.errorString()));
    QVERIFY2(QTest::qWaitFor([this] { return m_apiServer.canReadLine(); }, startTimeoutMs),
             qPrintable(QStringLiteral("The API server double did not print its address within "
                                       "30 s. ") +
                        apiServerLog()));
    const QJsonObject ready = QJsonDocument::fromJson(m_apiServer.readLine()).object();
    m_apiServerUrl = QUrl(ready.value(QStringLiteral("server")).toString());
    QVERIFY2(m_apiServerUrl.isValid() && m_apiServerUrl.port() > 0, qPrintable(apiServerLog()));

    m_admin = std::make_unique<KubernetesRestClient>(m_apiServerUrl, m_caCertificates);
    m_admin->setToken(adminToken);
}

void TestCertificateRotation::cleanupTestCase()
{
    m_admin.reset();
    if (m_apiServer.state() == QProcess::NotRunning)
        return;
    m_apiServer.terminate();
    if (!m_apiServer.waitForFinished(5'000))
        m_apiServer.kill();
    m_apiServer.waitForFinished(5'000);
}

QString TestCertificateRotation::apiServerLog() const
{
    return QStringLiteral("API server double log:\n") +
           readFile(m_work.filePath(QStringLiteral("apiserver.log")));
}

QByteArray TestCertificateRotation::keyEntry(const QString &secret,
                                             const QString &namespaceName,
                                             const QByteArray &extraLines)
{
    return "- name: " + secret.toUtf8() + "\n" + "  tls_secret_name: " + secret.toUtf8() + "\n" +
           extraLines + "  create_data:\n" + "    key_size: 2048\n" + "    server_name: web." +
           namespaceName.toUtf8() + ".svc\n" +
           "    subject_alternative_names: [web.example.test, 10.0.0.7]\n" +
           "    target_namespace: " + namespaceName.toUtf8() + "\n" +
           "    delete_pods_labels: [app=web]\n";
}

Result<CertificateRotationConfig> TestCertificateRotation::configWithKeys(const QByteArray &keys)
{
    const QString path = m_work.filePath(QStringLiteral("certs-%1.yaml").arg(++m_configCount));
    const QByteArray text = "api_server:\n  url: " + m_apiServerUrl.toString().toUtf8() +
                            "\n  certificate_authority: pki/ca.crt\n  token_file: token\n" +
                            "keys:\n" + keys;
    if (!writeFile(path, text))
        return Error{QStringLiteral("failed to write %1").arg(path)};
    return loadCertificateRotationConfig(path);
}

Result<KubernetesResponse> TestCertificateRotation::adminRequest(const QByteArray &method,
                                                                 const QString &path,
                                                                 const QJsonObject &body)
{
    KubernetesRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    return m_admin->send(request);
}

QJsonObject TestCertificateRotation::getSecret(const QString &name)
{
    const Result<KubernetesResponse> response = adminRequest(
        "GET", QStringLiteral("/api/v1/namespaces/%1/secrets/%2").arg(allowedNamespace, name));
    if (!response || response->status != 200)
        return {};
    return response->body;
}

void TestCertificateRotation::createSecret(const QJsonObject &secret)
{
    const Result<KubernetesResponse> response = adminRequest(
        "POST", QStringLiteral("/api/v1/namespaces/%1/secrets").arg(allowedNamespace), secret);
    QVERIFY2(response, qPrintable(response.errorMessage()));
    QVERIFY2(response->status == 201,
             QJsonDocument(response->body).toJson(QJsonDocument::Compact).constData());
}

void TestCertificateRotation::createPod(const QString &name, const QString &app)
{
    const QJsonObject pod{
        {QStringLiteral("apiVersion"), QStringLiteral("v1")},
        {QStringLiteral("kind"), QStringLiteral("Pod")},
        {QStringLiteral("metadata"),
         QJsonObject{{QStringLiteral("name"), name},
                     {QStringLiteral("labels"), QJsonObject{{QStringLiteral("app"), app}}}}},
        {QStringLiteral("spec"),
         QJsonObject{{QStringLiteral("containers"),
                      QJsonArray{QJsonObject{{QStringLiteral("name"), QStringLiteral("main")},
                                             {QStringLiteral("image"),
                                              QStringLiteral("registry.example.test/web:1")}}}}}}};
    const Result<KubernetesResponse> response = adminRequest(
        "POST", QStringLiteral("/api/v1/namespaces/%1/pods").arg(allowedNamespace), pod);
    QVERIFY2(response, qPrintable(response.errorMessage()));
    QVERIFY2(response->status == 201,
             QJsonDocument(response->body).toJson(QJsonDocument::Compact).constData());
}

bool TestCertificateRotation::podDeleted(const QString &name)
{
    const Result<KubernetesResponse> response = adminRequest(
        "GET", QStringLiteral("/api/v1/namespaces/%1/pods/%2").arg(allowedNamespace, name));
    if (!response)
        return false;
    if (response->status == 404)
        return true;
    return response->body.value(QStringLiteral("metadata"))
        .toObject()
        .contains(QStringLiteral("deletionTimestamp"));
}

void TestCertificateRotation::firstRunCreatesVerifiableSecret()
{
    const Result<CertificateRotationConfig> config =
        configWithKeys(keyEntry(QStringLiteral("first-tls"), allowedNamespace));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    CertificateRotation rotation(*config);
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const QList<Result<SecretAction>> results = rotation.runOnce(now);
    QCOMPARE(results.size(), 1);
    QVERIFY2(results.first(), qPrintable(results.first().errorMessage() + apiServerLog()));
    QCOMPARE(*results.first(), SecretAction::Created);

    const QJsonObject secret = getSecret(QStringLiteral("first-tls"));
    QCOMPARE(secret.value(QStringLiteral("type")).toString(), QStringLiteral("kubernetes.io/tls"));
    QCOMPARE(secret.value(QStringLiteral("metadata"))
                 .toObject()
                 .value(QStringLiteral("labels"))
                 .toObject()
                 .value(QStringLiteral("app.kubernetes.io/managed-by"))
                 .toString(),
             QStringLiteral("lamplighter-cluster-proxy"));
    const QByteArray ca = decoded(secret, QStringLiteral("ca.crt"));
    const QByteArray certificate = decoded(secret, QStringLiteral("tls.crt"));
    const QByteArray key = decoded(secret, QStringLiteral("tls.key"));
    QVERIFY(ca.startsWith("-----BEGIN CERTIFICATE-----"));
    QVERIFY(certificate.startsWith("-----BEGIN CERTIFICATE-----"));
    QVERIFY(key.startsWith("-----BEGIN PRIVATE KEY-----"));

    const QString verified = verifyChain(certificate, ca);
    QVERIFY2(verified.isEmpty(), qPrintable(verified));
    QVERIFY2(X509_check_ca(parseCertificate(ca).get()) == 1, "ca.crt is not a CA certificate");
    QVERIFY2(X509_check_ca(parseCertificate(certificate).get()) == 0,
             "tls.crt must not be a CA certificate");
    QVERIFY2(keyMatchesCertificate(key, certificate), "tls.key does not match tls.crt");
    QVERIFY2(!keyMatchesCertificate(key, ca), "the server key must not be the CA's key");

    const QSslCertificate server(certificate, QSsl::Pem);
    const auto names = server.subjectAlternativeNames();
    // QMultiMap::values() lists the last inserted name first, not the certificate's order.
    QStringList dnsNames = names.values(QSsl::DnsEntry);
    dnsNames.sort();
    QCOMPARE(dnsNames,
             (QStringList{QStringLiteral("web.example.test"), QStringLiteral("web.team-a.svc")}));
    QCOMPARE(names.values(QSsl::IpAddressEntry), QList<QString>{QStringLiteral("10.0.0.7")});
    QCOMPARE(server.subjectInfo(QSslCertificate::CommonName),
             QStringList{QStringLiteral("web.team-a.svc")});
    QVERIFY(server.expiryDate() > now.addDays(364));
    QCOMPARE(server.publicKey().length(), 2048);
}

void TestCertificateRotation::caCertAppendsChain()
{
    QByteArray entry = keyEntry(QStringLiteral("chain-tls"), allowedNamespace);
    entry.replace("  create_data:\n", "  create_data:\n    ca_cert: true\n");
    const Result<CertificateRotationConfig> config = configWithKeys(entry);
    QVERIFY2(config, qPrintable(config.errorMessage()));
    QVERIFY(config->keys.first().caCertificateInChain);
    CertificateRotation rotation(*config);
    const QList<Result<SecretAction>> results = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QVERIFY2(results.first(), qPrintable(results.first().errorMessage()));
    QCOMPARE(*results.first(), SecretAction::Created);

    const QJsonObject secret = getSecret(QStringLiteral("chain-tls"));
    const QByteArray ca = decoded(secret, QStringLiteral("ca.crt"));
    const QList<QSslCertificate> chain =
        QSslCertificate::fromData(decoded(secret, QStringLiteral("tls.crt")), QSsl::Pem);
    QCOMPARE(chain.size(), 2);
    QCOMPARE(chain.at(1), QSslCertificate(ca, QSsl::Pem));
    const QString verified = verifyChain(chain.at(0).toPem(), ca);
    QVERIFY2(verified.isEmpty(), qPrintable(verified));
    QVERIFY(keyMatchesCertificate(decoded(secret, QStringLiteral("tls.key")), chain.at(0).toPem()));
}

void TestCertificateRotation::validSecretUnchanged()
{
    const Result<CertificateRotationConfig> config =
        configWithKeys(keyEntry(QStringLiteral("kept-tls"), allowedNamespace));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    CertificateRotation rotation(*config);
    const QList<Result<SecretAction>> created = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QVERIFY2(created.first(), qPrintable(created.first().errorMessage()));
    QCOMPARE(*created.first(), SecretAction::Created);
    const QJsonObject before = getSecret(QStringLiteral("kept-tls"));
    createPod(QStringLiteral("kept-web"), QStringLiteral("web"));

    const QList<Result<SecretAction>> again = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QVERIFY2(again.first(), qPrintable(again.first().errorMessage()));
    QCOMPARE(*again.first(), SecretAction::Unchanged);
    const QJsonObject after = getSecret(QStringLiteral("kept-tls"));
    QVERIFY(!resourceVersion(before).isEmpty());
    QCOMPARE(resourceVersion(after), resourceVersion(before));
    QCOMPARE(decoded(after, QStringLiteral("tls.crt")), decoded(before, QStringLiteral("tls.crt")));
    QVERIFY2(!podDeleted(QStringLiteral("kept-web")), "a pass without a change deleted a pod");

    // 29 days before expiry the same Secret is due.
    const QSslCertificate certificate(decoded(after, QStringLiteral("tls.crt")), QSsl::Pem);
    const QList<Result<SecretAction>> late =
        rotation.runOnce(certificate.expiryDate().addDays(-29));
    QVERIFY2(late.first(), qPrintable(late.first().errorMessage()));
    QCOMPARE(*late.first(), SecretAction::Replaced);
}

void TestCertificateRotation::expiringSecretReplaced()
{
    // A Secret of ours whose certificate expires in 10 days.
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const Result<TlsSecretCertificate> old = TlsSecretCertificate::generate(
        2048, QStringLiteral("web.team-a.svc"), {}, false, now.addDays(-355));
    QVERIFY2(old, qPrintable(old.errorMessage()));
    QVERIFY(QSslCertificate(old->certificatePem).expiryDate() < now.addDays(11));
    createSecret(QJsonObject{
        {QStringLiteral("metadata"),
         QJsonObject{{QStringLiteral("name"), QStringLiteral("expiring-tls")},
                     {QStringLiteral("labels"),
                      QJsonObject{{QStringLiteral("app.kubernetes.io/managed-by"),
                                   QStringLiteral("lamplighter-cluster-proxy")},
                                  {QStringLiteral("team"), QStringLiteral("web")}}}}},
        {QStringLiteral("type"), QStringLiteral("kubernetes.io/tls")},
        {QStringLiteral("data"),
         QJsonObject{
             {QStringLiteral("tls.crt"), QString::fromLatin1(old->certificatePem.toBase64())},
             {QStringLiteral("tls.key"), QString::fromLatin1(old->privateKeyPem.toBase64())},
             {QStringLiteral("ca.crt"), QString::fromLatin1(old->caCertificatePem.toBase64())}}}});
    const QJsonObject before = getSecret(QStringLiteral("expiring-tls"));
    createPod(QStringLiteral("expiring-web-1"), QStringLiteral("web"));
    createPod(QStringLiteral("expiring-web-2"), QStringLiteral("web"));
    createPod(QStringLiteral("expiring-other"), QStringLiteral("other"));

    const Result<CertificateRotationConfig> config =
        configWithKeys(keyEntry(QStringLiteral("expiring-tls"), allowedNamespace));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    CertificateRotation rotation(*config);
    const QList<Result<SecretAction>> results = rotation.runOnce(now);
    QVERIFY2(results.first(), qPrintable(results.first().errorMessage() + apiServerLog()));
    QCOMPARE(*results.first(), SecretAction::Replaced);

    const QJsonObject after = getSecret(QStringLiteral("expiring-tls"));
    QVERIFY(resourceVersion(after) != resourceVersion(before));
    const QByteArray certificate = decoded(after, QStringLiteral("tls.crt"));
    QVERIFY(QSslCertificate(certificate).expiryDate() > now.addDays(364));
    const QString verified = verifyChain(certificate, decoded(after, QStringLiteral("ca.crt")));
    QVERIFY2(verified.isEmpty(), qPrintable(verified));
    QVERIFY(keyMatchesCertificate(decoded(after, QStringLiteral("tls.key")), certificate));
    // Labels that someone else added stay.
    QCOMPARE(after.value(QStringLiteral("metadata"))
                 .toObject()
                 .value(QStringLiteral("labels"))
                 .toObject()
                 .value(QStringLiteral("team"))
                 .toString(),
             QStringLiteral("web"));

    QVERIFY2(podDeleted(QStringLiteral("expiring-web-1")), "a pod with app=web was not deleted");
    QVERIFY2(podDeleted(QStringLiteral("expiring-web-2")), "a pod with app=web was not deleted");
    QVERIFY2(!podDeleted(QStringLiteral("expiring-other")), "a pod without app=web was deleted");
}

void TestCertificateRotation::unreadableSecretReplaced()
{
    createSecret(QJsonObject{
        {QStringLiteral("metadata"),
         QJsonObject{{QStringLiteral("name"), QStringLiteral("unreadable-tls")},
                     {QStringLiteral("labels"),
                      QJsonObject{{QStringLiteral("app.kubernetes.io/managed-by"),
                                   QStringLiteral("lamplighter-cluster-proxy")}}}}},
        {QStringLiteral("type"), QStringLiteral("kubernetes.io/tls")},
        {QStringLiteral("data"),
         QJsonObject{
             {QStringLiteral("tls.crt"), QString::fromLatin1(QByteArray("not PEM").toBase64())},
             {QStringLiteral("tls.key"), QString::fromLatin1(QByteArray("not PEM").toBase64())}}}});
    const Result<CertificateRotationConfig> config =
        configWithKeys(keyEntry(QStringLiteral("unreadable-tls"), allowedNamespace));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    CertificateRotation rotation(*config);
    const QList<Result<SecretAction>> results = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QVERIFY2(results.first(), qPrintable(results.first().errorMessage()));
    QCOMPARE(*results.first(), SecretAction::Replaced);
    const QJsonObject after = getSecret(QStringLiteral("unreadable-tls"));
    QVERIFY(!QSslCertificate(decoded(after, QStringLiteral("tls.crt"))).isNull());
}

void TestCertificateRotation::foreignSecretLeftAlone()
{
    const QJsonObject foreign{
        {QStringLiteral("metadata"),
         QJsonObject{{QStringLiteral("name"), QStringLiteral("foreign-tls")}}},
        {QStringLiteral("type"), QStringLiteral("Opaque")},
        {QStringLiteral("data"),
         QJsonObject{
             {QStringLiteral("note"), QString::fromLatin1(QByteArray("theirs").toBase64())}}}};
    createSecret(foreign);
    const QJsonObject before = getSecret(QStringLiteral("foreign-tls"));
    createPod(QStringLiteral("foreign-web"), QStringLiteral("web"));

    const Result<CertificateRotationConfig> config =
        configWithKeys(keyEntry(QStringLiteral("foreign-tls"), allowedNamespace));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    CertificateRotation rotation(*config);
    const QList<Result<SecretAction>> results = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QVERIFY2(results.first(), qPrintable(results.first().errorMessage()));
    QCOMPARE(*results.first(), SecretAction::LeftAlone);
    const QJsonObject after = getSecret(QStringLiteral("foreign-tls"));
    QCOMPARE(resourceVersion(after), resourceVersion(before));
    QCOMPARE(decoded(after, QStringLiteral("note")), QByteArray("theirs"));
    QVERIFY(!after.value(QStringLiteral("data")).toObject().contains(QStringLiteral("tls.crt")));
    QVERIFY2(!podDeleted(QStringLiteral("foreign-web")), "a pass without a change deleted a pod");
}

void TestCertificateRotation::foreignSecretReplacedWhenAllowed()
{
    createSecret(
        QJsonObject{{QStringLiteral("metadata"),
                     QJsonObject{{QStringLiteral("name"), QStringLiteral("taken-tls")}}},
                    {QStringLiteral("type"), QStringLiteral("Opaque")},
                    {QStringLiteral("data"),
                     QJsonObject{{QStringLiteral("note"),
                                  QString::fromLatin1(QByteArray("theirs").toBase64())}}}});
    createPod(QStringLiteral("taken-web"), QStringLiteral("web"));

    const Result<CertificateRotationConfig> config = configWithKeys(
        keyEntry(QStringLiteral("taken-tls"), allowedNamespace, "  replace_if_exists: true\n"));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    CertificateRotation rotation(*config);
    const QList<Result<SecretAction>> results = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QVERIFY2(results.first(), qPrintable(results.first().errorMessage() + apiServerLog()));
    QCOMPARE(*results.first(), SecretAction::Replaced);

    const QJsonObject after = getSecret(QStringLiteral("taken-tls"));
    // The API server does not let an update change the type, so it stays.
    QCOMPARE(after.value(QStringLiteral("type")).toString(), QStringLiteral("Opaque"));
    QVERIFY(!after.value(QStringLiteral("data")).toObject().contains(QStringLiteral("note")));
    const QByteArray certificate = decoded(after, QStringLiteral("tls.crt"));
    QVERIFY(keyMatchesCertificate(decoded(after, QStringLiteral("tls.key")), certificate));
    QVERIFY2(podDeleted(QStringLiteral("taken-web")), "a pod with app=web was not deleted");

    // Now labelled as ours, the next pass keeps it.
    const QList<Result<SecretAction>> again = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QVERIFY2(again.first(), qPrintable(again.first().errorMessage()));
    QCOMPARE(*again.first(), SecretAction::Unchanged);
}

void TestCertificateRotation::forbiddenNamespaceNamed()
{
    const Result<CertificateRotationConfig> config =
        configWithKeys(keyEntry(QStringLiteral("denied-tls"), deniedNamespace) +
                       keyEntry(QStringLiteral("allowed-tls"), allowedNamespace));
    QVERIFY2(config, qPrintable(config.errorMessage()));
    CertificateRotation rotation(*config);
    const QList<Result<SecretAction>> results = rotation.runOnce(QDateTime::currentDateTimeUtc());
    QCOMPARE(results.size(), 2);
    QVERIFY(!results.at(0));
    const QString message = results.at(0).errorMessage();
    QVERIFY2(message.contains(QStringLiteral("denied get on secrets in namespace team-b")),
             qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("HTTP 403")), qPrintable(message));
    // The API server's own message names the user and the resource.
    QVERIFY2(message.contains(QStringLiteral("secrets \"denied-tls\" is forbidden: User \"") +
                              certsAccount),
             qPrintable(message));
    // One failed entry does not stop the others.
    QVERIFY2(results.at(1), qPrintable(results.at(1).errorMessage()));
    QCOMPARE(*results.at(1), SecretAction::Created);
}

void TestCertificateRotation::commandOnceExitStatus()
{
    const QString path = m_work.filePath(QStringLiteral("command.yaml"));
    const QByteArray text = "api_server:\n  url: " + m_apiServerUrl.toString().toUtf8() +
                            "\n  certificate_authority: pki/ca.crt\n  token_file: token\n" +
                            "unexpected_key: 1\nkeys:\n" +
                            keyEntry(QStringLiteral("command-tls"), allowedNamespace);
    QVERIFY(writeFile(path, text));

    QProcess command;
    command.start(
        clusterProxyBinary,
        {QStringLiteral("certs"), QStringLiteral("--config"), path, QStringLiteral("--once")});
    QVERIFY(command.waitForFinished(60'000));
    QString log = QString::fromUtf8(command.readAllStandardError());
    QVERIFY2(command.exitCode() == 0, qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("unknown key \\\"unexpected_key\\\"")), qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("created Secret team-a/command-tls")), qPrintable(log));
    QVERIFY2(!log.contains(QStringLiteral("PRIVATE KEY")), "the log contains key material");
    QVERIFY2(!log.contains(QString::fromLatin1(certsToken)), "the log contains the token");

    const QByteArray denied = "api_server:\n  url: " + m_apiServerUrl.toString().toUtf8() +
                              "\n  certificate_authority: pki/ca.crt\n  token_file: token\n" +
                              "keys:\n" + keyEntry(QStringLiteral("command-tls"), deniedNamespace);
    QVERIFY(writeFile(path, denied));
    command.start(
        clusterProxyBinary,
        {QStringLiteral("certs"), QStringLiteral("--config"), path, QStringLiteral("--once")});
    QVERIFY(command.waitForFinished(60'000));
    log = QString::fromUtf8(command.readAllStandardError());
    QVERIFY2(command.exitCode() == 1, qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("denied get on secrets in namespace team-b")),
             qPrintable(log));

    command.start(clusterProxyBinary,
                  {QStringLiteral("certs"),
                   QStringLiteral("--config"),
                   m_work.filePath(QStringLiteral("missing.yaml")),
                   QStringLiteral("--once")});
    QVERIFY(command.waitForFinished(60'000));
    QCOMPARE(command.exitCode(), 2);
}

QTEST_GUILESS_MAIN(TestCertificateRotation)
#include "tst_certificaterotation.moc"
