#include "ProviderDouble.h"
#include "TestJwt.h"
#include "WhoAmIDialog.h"
#include "kube/Kubeconfig.h"
#include "proxy/LocalProxy.h"
#include "tls/LocalCertificate.h"

#include <QApplication>
#include <QClipboard>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);
const QByteArray staticToken = "whoami-static-token-7f3a";
constexpr int reviewTimeoutMs = 30'000;

bool writeFile(const QString &path, const QByteArray &data)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(data) == data.size();
}

} // namespace

// The who-am-i dialog sends its SelfSubjectReview through a real LocalProxy to the API server
// double of tests/fixtures/apiserver-double, which authenticates static tokens and ID tokens of
// a ProviderDouble issuer, as kube-apiserver would.
class TestWhoAmIDialog : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();
    void init();
    void cleanup();
    void oidcIdentityShown();
    void staticTokenShowsUid();
    void rejectedTokenShowsClusterMessage();
    void signedOutShowsProxyMessage();
    void proxyNotRunning();
    void copyPutsReportOnClipboard();

private:
    QByteArray signIdToken(const QJsonObject &extraClaims = {}) const;
    // Shows a dialog for the proxy's cluster "demo" and waits until its review has finished.
    std::unique_ptr<WhoAmIDialog> showDialog(const ProxyEndpoint &endpoint);

    QTemporaryDir m_dir;
    ProviderDouble m_provider;
    TestKey m_key = TestKey::generateRsa();
    QProcess m_apiServer;
    QUrl m_apiServerUrl;
    QSslCertificate m_caCertificate;

    std::unique_ptr<LocalProxy> m_proxy;
    ProxyEndpoint m_endpoint;
};

void TestWhoAmIDialog::initTestCase()
{
    const QString node = QStandardPaths::findExecutable(QStringLiteral("node"));
    QVERIFY2(!node.isEmpty(), "node is not on PATH; run scripts/install-deps");
    QVERIFY(m_dir.isValid());

    const QString pki = m_dir.filePath(QStringLiteral("pki"));
    const QString started = m_provider.start(pki);
    QVERIFY2(started.isEmpty(), qPrintable(started));
    m_caCertificate = m_provider.caCertificate();
    m_provider.serveDiscovery();
    m_provider.setJson(
        QStringLiteral("/jwks"),
        QJsonDocument::fromJson(TestJwt::keySetJson({m_key.publicJwk(QStringLiteral("k1"))}))
            .object());

    const QString tokenFile = m_dir.filePath(QStringLiteral("tokens.csv"));
    QVERIFY(writeFile(tokenFile, staticToken + ",carol,carol-uid-19,\"dev,ops\"\n"));

    m_apiServer.setProgram(node);
    m_apiServer.setArguments({fixturesDirectory + QStringLiteral("/apiserver-double/server.mjs"),
                              QStringLiteral("--port"),
                              QStringLiteral("0"),
                              QStringLiteral("--tls-cert-file"),
                              pki + QStringLiteral("/apiserver.crt"),
                              QStringLiteral("--tls-private-key-file"),
                              pki + QStringLiteral("/apiserver.key"),
                              QStringLiteral("--token-auth-file"),
                              tokenFile,
                              QStringLiteral("--oidc-issuer-url"),
                              m_provider.issuer(),
                              QStringLiteral("--oidc-client-id"),
                              QStringLiteral("lamplighter"),
                              QStringLiteral("--oidc-username-claim"),
                              QStringLiteral("email"),
                              QStringLiteral("--oidc-groups-claim"),
                              QStringLiteral("groups"),
                              QStringLiteral("--oidc-ca-file"),
                              pki + QStringLiteral("/ca.crt")});
    m_apiServer.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    m_apiServer.start();
    QVERIFY2(m_apiServer.waitForStarted(10'000), qPrintable(m_apiServer.errorString()));
    QVERIFY2(QTest::qWaitFor([this] { return m_apiServer.canReadLine(); }, 30'000),
             "the API server double did not print its address within 30 s");
    const QJsonObject ready = QJsonDocument::fromJson(m_apiServer.readLine()).object();
    m_apiServerUrl = QUrl(ready.value(QStringLiteral("server")).toString());
    QVERIFY2(m_apiServerUrl.isValid() && m_apiServerUrl.port() > 0,
             qPrintable(m_apiServerUrl.toString()));
}

void TestWhoAmIDialog::cleanupTestCase()
{
    if (m_apiServer.state() != QProcess::NotRunning) {
        m_apiServer.terminate();
        if (!m_apiServer.waitForFinished(5'000))
            m_apiServer.kill();
    }
}

void TestWhoAmIDialog::init()
{
    const Result<LocalCertificate> certificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(certificate.ok(), qPrintable(certificate.errorMessage()));
    m_proxy = std::make_unique<LocalProxy>();
    m_proxy->setServerCertificate(*certificate);
    const QByteArray sessionKey = "whoami-session-key-0123456789abcdef";
    m_proxy->setSessionKey(sessionKey);
    m_proxy->setClusters(
        {UpstreamCluster{QStringLiteral("demo"), m_apiServerUrl, {m_caCertificate}}});
    const Status listening = m_proxy->listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    // The dialog finds the proxy the way kubectl does, through the kubeconfig.
    Kubeconfig kubeconfig;
    kubeconfig.contexts = {{QStringLiteral("demo"), m_proxy->clusterUrl(QStringLiteral("demo"))}};
    kubeconfig.certificateAuthorityPem = certificate->certificatePem();
    kubeconfig.sessionKey = sessionKey;
    const QString path = m_dir.filePath(QStringLiteral("state/kubeconfig"));
    const Status written = kubeconfig.writeTo(path);
    QVERIFY2(written.ok(), qPrintable(written.errorMessage()));
    const Result<ProxyEndpoint> endpoint = readProxyEndpoint(path);
    QVERIFY2(endpoint.ok(), qPrintable(endpoint.errorMessage()));
    m_endpoint = *endpoint;
}

void TestWhoAmIDialog::cleanup()
{
    m_proxy.reset();
}

QByteArray TestWhoAmIDialog::signIdToken(const QJsonObject &extraClaims) const
{
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    QJsonObject claims{{QStringLiteral("iss"), m_provider.issuer()},
                       {QStringLiteral("aud"), QStringLiteral("lamplighter")},
                       {QStringLiteral("sub"), QStringLiteral("jane-subject-1")},
                       {QStringLiteral("email"), QStringLiteral("jane@example.com")},
                       {QStringLiteral("email_verified"), true},
                       {QStringLiteral("iat"), now},
                       {QStringLiteral("exp"), now + 600}};
    for (auto it = extraClaims.constBegin(); it != extraClaims.constEnd(); ++it)
        claims.insert(it.key(), it.value());
    return TestJwt::sign(
        TestJwt::header(QStringLiteral("RS256"), QStringLiteral("k1")), claims, m_key);
}

std::unique_ptr<WhoAmIDialog> TestWhoAmIDialog::showDialog(const ProxyEndpoint &endpoint)
{
    TokenSummary token{m_provider.issuer(),
                       QStringLiteral("jane-subject-1"),
                       QDateTime::currentDateTimeUtc().addSecs(600)};
    auto dialog = std::make_unique<WhoAmIDialog>(QStringLiteral("demo"), endpoint, token);
    QSignalSpy finished(dialog.get(), &WhoAmIDialog::reviewFinished);
    dialog->show();
    if (!finished.wait(reviewTimeoutMs))
        qWarning("The SelfSubjectReview did not finish within %d ms", reviewTimeoutMs);
    return dialog;
}

void TestWhoAmIDialog::oidcIdentityShown()
{
    m_proxy->setIdToken(
        signIdToken({{QStringLiteral("groups"),
                      QJsonArray{QStringLiteral("dev"), QStringLiteral("k8s-admins")}},
                     {QStringLiteral("jti"), QStringLiteral("token-42")}}));

    const std::unique_ptr<WhoAmIDialog> dialog = showDialog(m_endpoint);

    QVERIFY(!dialog->isBusy());
    QVERIFY2(dialog->errorText().isEmpty(), qPrintable(dialog->errorText()));
    const std::optional<ClusterUserInfo> info = dialog->userInfo();
    QVERIFY(info.has_value());
    QCOMPARE(info->userName, QStringLiteral("jane@example.com"));
    QCOMPARE(info->uid, QString());
    QCOMPARE(info->groups,
             (QStringList{QStringLiteral("dev"),
                          QStringLiteral("k8s-admins"),
                          QStringLiteral("system:authenticated")}));
    QCOMPARE(info->extra.value(QStringLiteral("authentication.kubernetes.io/credential-id")),
             QStringList{QStringLiteral("JTI=token-42")});
    const QString report = dialog->reportText();
    QVERIFY2(report.contains(QStringLiteral("User name: jane@example.com")), qPrintable(report));
    QVERIFY2(report.contains(QStringLiteral("Token subject: jane-subject-1")), qPrintable(report));
}

void TestWhoAmIDialog::staticTokenShowsUid()
{
    m_proxy->setIdToken(staticToken);

    const std::unique_ptr<WhoAmIDialog> dialog = showDialog(m_endpoint);

    QVERIFY2(dialog->errorText().isEmpty(), qPrintable(dialog->errorText()));
    const std::optional<ClusterUserInfo> info = dialog->userInfo();
    QVERIFY(info.has_value());
    QCOMPARE(info->userName, QStringLiteral("carol"));
    QCOMPARE(info->uid, QStringLiteral("carol-uid-19"));
    QCOMPARE(info->groups,
             (QStringList{QStringLiteral("dev"),
                          QStringLiteral("ops"),
                          QStringLiteral("system:authenticated")}));
    QVERIFY(info->extra.isEmpty());
}

void TestWhoAmIDialog::rejectedTokenShowsClusterMessage()
{
    // A token of another audience: the double rejects it as kube-apiserver does, with 401 and
    // the Status message "Unauthorized".
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    m_proxy->setIdToken(
        TestJwt::sign(TestJwt::header(QStringLiteral("RS256"), QStringLiteral("k1")),
                      {{QStringLiteral("iss"), m_provider.issuer()},
                       {QStringLiteral("aud"), QStringLiteral("someone-else")},
                       {QStringLiteral("sub"), QStringLiteral("jane-subject-1")},
                       {QStringLiteral("email"), QStringLiteral("jane@example.com")},
                       {QStringLiteral("exp"), now + 600}},
                      m_key));

    const std::unique_ptr<WhoAmIDialog> dialog = showDialog(m_endpoint);

    QVERIFY(!dialog->userInfo().has_value());
    QVERIFY2(dialog->errorText().startsWith(
                 QStringLiteral("The SelfSubjectReview failed with HTTP 401: Unauthorized. ")),
             qPrintable(dialog->errorText()));
    QVERIFY2(dialog->errorText().contains(QStringLiteral("sign in again")),
             qPrintable(dialog->errorText()));
    QVERIFY2(dialog->reportText().contains(QStringLiteral("Error: The SelfSubjectReview failed")),
             qPrintable(dialog->reportText()));
}

void TestWhoAmIDialog::signedOutShowsProxyMessage()
{
    m_proxy->setUnavailable(QStringLiteral("Signed out of Lamplighter; sign in from the tray"));

    const std::unique_ptr<WhoAmIDialog> dialog = showDialog(m_endpoint);

    QVERIFY(!dialog->userInfo().has_value());
    QVERIFY2(dialog->errorText().startsWith(
                 QStringLiteral("The SelfSubjectReview failed with HTTP 401: ")),
             qPrintable(dialog->errorText()));
    QVERIFY2(dialog->errorText().contains(QStringLiteral("sign in from the tray")),
             qPrintable(dialog->errorText()));
}

void TestWhoAmIDialog::proxyNotRunning()
{
    m_proxy->close();

    const std::unique_ptr<WhoAmIDialog> dialog = showDialog(m_endpoint);

    QVERIFY(!dialog->userInfo().has_value());
    QVERIFY2(dialog->errorText().startsWith(QStringLiteral("Failed to reach the local proxy at ") +
                                            m_endpoint.server.toString()),
             qPrintable(dialog->errorText()));
}

void TestWhoAmIDialog::copyPutsReportOnClipboard()
{
    m_proxy->setIdToken(staticToken);
    const std::unique_ptr<WhoAmIDialog> dialog = showDialog(m_endpoint);
    QVERIFY(dialog->userInfo().has_value());

    QPushButton *copy = nullptr;
    for (QPushButton *button : dialog->findChildren<QPushButton *>()) {
        if (button->text() == QStringLiteral("Copy"))
            copy = button;
    }
    QVERIFY(copy);
    QApplication::clipboard()->clear();
    QTest::mouseClick(copy, Qt::LeftButton);

    const QString copied = QApplication::clipboard()->text();
    QCOMPARE(copied, dialog->reportText());
    QVERIFY2(copied.contains(QStringLiteral("UID: carol-uid-19")), qPrintable(copied));
    QVERIFY2(!copied.contains(QString::fromLatin1(staticToken)), qPrintable(copied));
}

QTEST_MAIN(TestWhoAmIDialog)
#include "tst_whoamidialog.moc"
