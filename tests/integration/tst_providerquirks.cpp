#include "clusterproxy/ImpersonatingGate.h"
#include "oidc/ClaimSet.h"
#include "oidc/LoginJob.h"
#include "oidc/OidcClient.h"
#include "oidc/RefreshJob.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);

// Signing in starts Chromium, which takes a few seconds. The browser script gives up after 60 s.
constexpr int loginTimeoutMs = 120'000;
constexpr int refreshTimeoutMs = 30'000;

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

} // namespace

// Signs in against the real OpenID provider (oidc-provider on 127.0.0.1) set up to behave like
// particular providers: Entra ID's groups overage, Okta's and Keycloak's groups that only a
// scope brings, and Google's refresh without a new refresh token. Headless Chromium completes the
// sign-in form.
class TestProviderQuirks : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanup();

    void groupsOverageRejectedClearly();
    void groupsOnlyWithGroupsScope();
    void refreshKeepsOnlyRefreshToken();

private:
    // Starts the provider with the given --quirk values and returns an empty string or why it
    // failed.
    QString startProvider(const QStringList &quirks);
    // Signs in with the client's scopes and returns the finished job, or nullptr after a failed
    // check.
    LoginJob *signIn(OidcClient &client);
    ProviderConfig providerConfig(const QStringList &scopes) const;
    QString logs() const;

    QTemporaryDir m_work;
    QString m_node;
    QString m_pki;
    QList<QSslCertificate> m_caCertificates;
    QProcess m_provider;
    QUrl m_issuer;
};

void TestProviderQuirks::initTestCase()
{
    QVERIFY(m_work.isValid());
    m_node = QStandardPaths::findExecutable(QStringLiteral("node"));
    QVERIFY2(!m_node.isEmpty(), "node is not on PATH; run scripts/install-deps");
    QVERIFY2(QFile::exists(fixturesDirectory + QStringLiteral("/node_modules/oidc-provider")),
             "tests/fixtures/node_modules is missing; run npm ci in tests/fixtures");

    m_pki = m_work.filePath(QStringLiteral("pki"));
    QProcess makePki;
    makePki.start(fixturesDirectory + QStringLiteral("/make-test-pki.sh"), {m_pki});
    QVERIFY(makePki.waitForFinished(60'000));
    QVERIFY2(makePki.exitCode() == 0, makePki.readAllStandardError().constData());
    m_caCertificates = QSslCertificate::fromPath(m_pki + QStringLiteral("/ca.crt"));
    QCOMPARE(m_caCertificates.size(), 1);
    qputenv("LAMPLIGHTER_TEST_ARTIFACTS",
            m_work.filePath(QStringLiteral("artifacts")).toLocal8Bit());
}

void TestProviderQuirks::cleanup()
{
    if (m_provider.state() == QProcess::NotRunning)
        return;
    m_provider.terminate();
    if (!m_provider.waitForFinished(5000))
        m_provider.kill();
    m_provider.waitForFinished(5000);
}

QString TestProviderQuirks::startProvider(const QStringList &quirks)
{
    QStringList arguments{fixturesDirectory + QStringLiteral("/oidc-provider/server.mjs"),
                          QStringLiteral("--port"),
                          QStringLiteral("0"),
                          QStringLiteral("--cert"),
                          m_pki + QStringLiteral("/provider.crt"),
                          QStringLiteral("--key"),
                          m_pki + QStringLiteral("/provider.key")};
    for (const QString &quirk : quirks)
        arguments << QStringLiteral("--quirk") << quirk;
    m_provider.setProgram(m_node);
    m_provider.setArguments(arguments);
    m_provider.setStandardErrorFile(m_work.filePath(QStringLiteral("provider.log")),
                                    QIODevice::Append);
    m_provider.start();
    if (!m_provider.waitForStarted(10'000))
        return QStringLiteral("The provider did not start: ") + m_provider.errorString();
    if (!QTest::qWaitFor(
            [this] {
                return m_provider.canReadLine() || m_provider.state() == QProcess::NotRunning;
            },
            30'000))
        return QStringLiteral("The provider did not print its issuer within 30 s. ") + logs();
    const QJsonObject ready = QJsonDocument::fromJson(m_provider.readLine()).object();
    m_issuer = QUrl(ready.value(QStringLiteral("issuer")).toString());
    if (!m_issuer.isValid() || m_issuer.isEmpty())
        return QStringLiteral("The provider printed no issuer. ") + logs();
    return QString();
}

ProviderConfig TestProviderQuirks::providerConfig(const QStringList &scopes) const
{
    ProviderConfig config;
    config.issuer = m_issuer;
    config.clientId = QStringLiteral("lamplighter");
    config.scopes = scopes;
    config.caCertificates = m_caCertificates;
    return config;
}

LoginJob *TestProviderQuirks::signIn(OidcClient &client)
{
    LoginConfig loginConfig;
    loginConfig.browserCommand = {QStringLiteral("/bin/sh"),
                                  QStringLiteral("-c"),
                                  QStringLiteral("exec \"$1\" \"$2\" \"$3\" >> \"$0\" 2>&1"),
                                  m_work.filePath(QStringLiteral("browser.log")),
                                  m_node,
                                  fixturesDirectory + QStringLiteral("/browser-login.mjs")};
    loginConfig.timeout = std::chrono::seconds(loginTimeoutMs / 1000);
    LoginJob *login = client.login(loginConfig);
    QSignalSpy finished(login, &LoginJob::finished);
    login->start();
    if (!QTest::qWaitFor([&finished] { return finished.size() == 1; }, loginTimeoutMs)) {
        qWarning().noquote() << "The sign-in did not finish." << logs();
        return nullptr;
    }
    if (login->failed()) {
        qWarning().noquote() << "The sign-in failed:" << login->error().message << logs();
        return nullptr;
    }
    return login;
}

QString TestProviderQuirks::logs() const
{
    return QStringLiteral("provider log:\n") +
           readFile(m_work.filePath(QStringLiteral("provider.log"))) +
           QStringLiteral("\nbrowser log:\n") +
           readFile(m_work.filePath(QStringLiteral("browser.log")));
}

// Entra ID names the groups of a user in many groups in "_claim_names" and leaves them out.
void TestProviderQuirks::groupsOverageRejectedClearly()
{
    const QString started = startProvider({QStringLiteral("groups-overage")});
    QVERIFY2(started.isEmpty(), qPrintable(started));
    OidcClient client(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("groups")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);

    const QJsonObject claims = login->tokens().claims.all();
    QVERIFY(!claims.contains(QStringLiteral("groups")));
    QVERIFY(
        claims.value(QStringLiteral("_claim_names")).toObject().contains(QStringLiteral("groups")));

    ClusterProxyConfig clusterProxy;
    clusterProxy.userNameClaim = QStringLiteral("email");
    clusterProxy.groupsClaim = QStringLiteral("groups");
    const Result<ClaimSet> parsed = ClaimSet::parse(login->tokens().claims.payload);
    QVERIFY2(parsed.ok(), qPrintable(parsed.errorMessage()));
    const Result<Impersonation> person = impersonationFromClaims(*parsed, clusterProxy);
    QVERIFY(!person.ok());
    QVERIFY2(person.errorMessage().contains(QStringLiteral("groups overage")),
             qPrintable(person.errorMessage()));
}

// Okta and Keycloak, like this provider, put groups in the ID token only when a scope requests
// them.
void TestProviderQuirks::groupsOnlyWithGroupsScope()
{
    const QString started = startProvider({});
    QVERIFY2(started.isEmpty(), qPrintable(started));

    OidcClient withoutScope(providerConfig({QStringLiteral("openid"), QStringLiteral("email")}));
    LoginJob *plain = signIn(withoutScope);
    QVERIFY(plain);
    QVERIFY(!plain->tokens().claims.all().contains(QStringLiteral("groups")));

    OidcClient withScope(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("groups")}));
    LoginJob *grouped = signIn(withScope);
    QVERIFY(grouped);
    QCOMPARE(grouped->tokens().claims.all().value(QStringLiteral("groups")).toArray().size(), 2);
}

// Google returns no refresh token from a refresh, and the first one stays valid.
void TestProviderQuirks::refreshKeepsOnlyRefreshToken()
{
    const QString started = startProvider({QStringLiteral("refresh-without-refresh-token")});
    QVERIFY2(started.isEmpty(), qPrintable(started));
    OidcClient client(providerConfig(
        {QStringLiteral("openid"), QStringLiteral("email"), QStringLiteral("offline_access")}));
    LoginJob *login = signIn(client);
    QVERIFY(login);
    TokenSet current = login->tokens();
    QVERIFY(!current.refreshToken.isEmpty());

    // Two refreshes in a row: the second proves that the kept refresh token still works.
    for (int round = 1; round <= 2; ++round) {
        RefreshJob *refresh = client.refresh(current);
        QSignalSpy finished(refresh, &RefreshJob::finished);
        refresh->start();
        QVERIFY2(finished.wait(refreshTimeoutMs), qPrintable(logs()));
        QVERIFY2(!refresh->failed(), qPrintable(refresh->error().message));
        QCOMPARE(refresh->tokens().refreshToken, current.refreshToken);
        QVERIFY(refresh->tokens().accessToken != current.accessToken);
        current = refresh->tokens();
    }
    QVERIFY2(readFile(m_work.filePath(QStringLiteral("provider.log")))
                 .contains(QStringLiteral("left the refresh_token out")),
             "the provider did not leave the refresh token out");
}

QTEST_GUILESS_MAIN(TestProviderQuirks)
#include "tst_providerquirks.moc"
