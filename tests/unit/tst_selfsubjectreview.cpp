#include "WhoAmIDialog.h"
#include "kube/Kubeconfig.h"
#include "tls/LocalCertificate.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

// The parts of the who-am-i dialog that need no cluster: reading Lamplighter's kubeconfig and
// parsing SelfSubjectReview and Status bodies. tst_whoamidialog runs the dialog against the API
// server double.
class TestSelfSubjectReview : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void reviewParsed();
    void reviewWithoutOptionalFields();
    void invalidReview_data();
    void invalidReview();
    void statusMessage_data();
    void statusMessage();
    void endpointFromKubeconfig();
    void endpointOfNamedContext();
    void invalidKubeconfig_data();
    void invalidKubeconfig();
    void missingKubeconfig();

private:
    QString writeKubeconfig(const QByteArray &yaml);

    QTemporaryDir m_dir;
    LocalCertificate m_certificate;
    Kubeconfig m_kubeconfig;
};

void TestSelfSubjectReview::initTestCase()
{
    QVERIFY(m_dir.isValid());
    const Result<LocalCertificate> generated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_certificate = *generated;
    m_kubeconfig.contexts = {
        {QStringLiteral("prod"), QUrl(QStringLiteral("https://127.0.0.1:41000/clusters/prod"))},
        {QStringLiteral("lab"), QUrl(QStringLiteral("https://127.0.0.1:41000/clusters/lab"))}};
    m_kubeconfig.certificateAuthorityPem = m_certificate.certificatePem();
    m_kubeconfig.sessionKey = "session-key-for-test";
}

QString TestSelfSubjectReview::writeKubeconfig(const QByteArray &yaml)
{
    static int counter = 0;
    const QString path = m_dir.filePath(QStringLiteral("kubeconfig-%1").arg(++counter));
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(yaml) != yaml.size())
        qFatal("Failed to write %s", qPrintable(path));
    return path;
}

void TestSelfSubjectReview::reviewParsed()
{
    const QByteArray body = R"({"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1",
        "metadata":{"creationTimestamp":"2026-12-04T10:00:00Z"},
        "status":{"userInfo":{"username":"jane@example.com","uid":"u-1",
        "groups":["dev","system:authenticated"],
        "extra":{"b.example/team":["x","y"],"a.example/id":["1"]}}}})";

    const Result<ClusterUserInfo> info = parseSelfSubjectReview(body);

    QVERIFY2(info.ok(), qPrintable(info.errorMessage()));
    QCOMPARE(info->userName, QStringLiteral("jane@example.com"));
    QCOMPARE(info->uid, QStringLiteral("u-1"));
    QCOMPARE(info->groups,
             (QStringList{QStringLiteral("dev"), QStringLiteral("system:authenticated")}));
    QCOMPARE(info->extra.size(), 2);
    QCOMPARE(info->extra.firstKey(), QStringLiteral("a.example/id"));
    QCOMPARE(info->extra.value(QStringLiteral("b.example/team")),
             (QStringList{QStringLiteral("x"), QStringLiteral("y")}));
}

void TestSelfSubjectReview::reviewWithoutOptionalFields()
{
    const Result<ClusterUserInfo> info = parseSelfSubjectReview(
        R"({"kind":"SelfSubjectReview","status":{"userInfo":{"username":"system:anonymous"}}})");

    QVERIFY2(info.ok(), qPrintable(info.errorMessage()));
    QCOMPARE(info->userName, QStringLiteral("system:anonymous"));
    QVERIFY(info->uid.isEmpty());
    QVERIFY(info->groups.isEmpty());
    QVERIFY(info->extra.isEmpty());
}

void TestSelfSubjectReview::invalidReview_data()
{
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<QString>("expectedError");

    QTest::newRow("not JSON") << QByteArray("<html>proxy error</html>")
                              << QStringLiteral("not a JSON object");
    QTest::newRow("JSON array") << QByteArray("[]") << QStringLiteral("not a JSON object");
    QTest::newRow("Status") << QByteArray(R"({"kind":"Status","message":"m"})")
                            << QStringLiteral("has kind \"Status\"");
    QTest::newRow("no username")
        << QByteArray(R"({"kind":"SelfSubjectReview","status":{"userInfo":{"uid":"u"}}})")
        << QStringLiteral("no status.userInfo.username");
}

void TestSelfSubjectReview::invalidReview()
{
    QFETCH(QByteArray, body);
    QFETCH(QString, expectedError);

    const Result<ClusterUserInfo> info = parseSelfSubjectReview(body);

    QVERIFY(!info.ok());
    QVERIFY2(info.errorMessage().contains(expectedError), qPrintable(info.errorMessage()));
}

void TestSelfSubjectReview::statusMessage_data()
{
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<QString>("message");

    QTest::newRow("forbidden")
        << QByteArray(R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
                      R"("message":"selfsubjectreviews.authentication.k8s.io is forbidden",)"
                      R"("reason":"Forbidden","code":403})")
        << QStringLiteral("selfsubjectreviews.authentication.k8s.io is forbidden");
    QTest::newRow("not a Status") << QByteArray(R"({"message":"x"})") << QString();
    QTest::newRow("plain text") << QByteArray("Internal Server Error") << QString();
}

void TestSelfSubjectReview::statusMessage()
{
    QFETCH(QByteArray, body);
    QFETCH(QString, message);

    QCOMPARE(kubernetesStatusMessage(body), message);
}

void TestSelfSubjectReview::endpointFromKubeconfig()
{
    const QString path = writeKubeconfig(m_kubeconfig.toYaml());

    const Result<ProxyEndpoint> endpoint = readProxyEndpoint(path);

    QVERIFY2(endpoint.ok(), qPrintable(endpoint.errorMessage()));
    QCOMPARE(endpoint->server, QUrl(QStringLiteral("https://127.0.0.1:41000/clusters/prod")));
    QCOMPARE(endpoint->bearerToken, QByteArray("session-key-for-test"));
    QCOMPARE(endpoint->caCertificates.size(), 1);
    QCOMPARE(endpoint->caCertificates.first(), m_certificate.certificate);
}

void TestSelfSubjectReview::endpointOfNamedContext()
{
    const QString path = writeKubeconfig(m_kubeconfig.toYaml());

    const Result<ProxyEndpoint> endpoint = readProxyEndpoint(path, QStringLiteral("lab"));

    QVERIFY2(endpoint.ok(), qPrintable(endpoint.errorMessage()));
    QCOMPARE(endpoint->server, QUrl(QStringLiteral("https://127.0.0.1:41000/clusters/lab")));
}

void TestSelfSubjectReview::invalidKubeconfig_data()
{
    QTest::addColumn<QByteArray>("yaml");
    QTest::addColumn<QString>("context");
    QTest::addColumn<QString>("expectedError");

    const QByteArray valid = m_kubeconfig.toYaml();
    QTest::newRow("not YAML") << QByteArray("clusters: [unclosed") << QString()
                              << QStringLiteral("Invalid kubeconfig");
    QTest::newRow("a list") << QByteArray("- a\n- b\n") << QString()
                            << QStringLiteral("not a YAML mapping");
    QTest::newRow("no current context")
        << QByteArray(valid).replace("current-context: \"prod\"", "") << QString()
        << QStringLiteral("current-context is missing");
    QTest::newRow("unknown context")
        << valid << QStringLiteral("staging") << QStringLiteral("context staging not found");
    QTest::newRow("no token") << QByteArray(valid).replace("token: \"session-key-for-test\"",
                                                           "tokenFile: /run/token")
                              << QString()
                              << QStringLiteral("users[lamplighter].user.token is missing");
    QTest::newRow("http server")
        << QByteArray(valid).replace("https://127.0.0.1:41000/clusters/prod",
                                     "http://127.0.0.1:41000/clusters/prod")
        << QString() << QStringLiteral("clusters[prod].cluster.server is not an https URL");
    QTest::newRow("no CA data")
        << QByteArray(valid).replace("certificate-authority-data:", "certificate-authority:")
        << QString()
        << QStringLiteral("clusters[prod].cluster.certificate-authority-data is missing");
}

void TestSelfSubjectReview::invalidKubeconfig()
{
    QFETCH(QByteArray, yaml);
    QFETCH(QString, context);
    QFETCH(QString, expectedError);
    const QString path = writeKubeconfig(yaml);

    const Result<ProxyEndpoint> endpoint = readProxyEndpoint(path, context);

    QVERIFY(!endpoint.ok());
    QVERIFY2(endpoint.errorMessage().contains(path), qPrintable(endpoint.errorMessage()));
    QVERIFY2(endpoint.errorMessage().contains(expectedError), qPrintable(endpoint.errorMessage()));
    QVERIFY2(!endpoint.errorMessage().contains(QStringLiteral("session-key-for-test")),
             qPrintable(endpoint.errorMessage()));
}

void TestSelfSubjectReview::missingKubeconfig()
{
    const QString path = m_dir.filePath(QStringLiteral("no-such-kubeconfig"));

    const Result<ProxyEndpoint> endpoint = readProxyEndpoint(path);

    QVERIFY(!endpoint.ok());
    QVERIFY2(
        endpoint.errorMessage().startsWith(QStringLiteral("Failed to read the kubeconfig ") + path),
        qPrintable(endpoint.errorMessage()));
}

QTEST_GUILESS_MAIN(TestSelfSubjectReview)
#include "tst_selfsubjectreview.moc"
