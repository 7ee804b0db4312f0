#include "TestHttpClient.h"
#include "TestSessionKey.h"
#include "TestUpstream.h"
#include "proxy/LocalProxy.h"
#include "tls/LocalCertificate.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>
#include <memory>

using namespace lamplighter;

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);
const QString attackScriptsDirectory = fixturesDirectory + QStringLiteral("/browser-attacks");
const QByteArray kIdToken = "eyJhbGciOiJSUzI1NiJ9.browser-attack-token.signature";
const QString kAppName = QStringLiteral("headlamp");
const QString kClusterName = QStringLiteral("main");
const QByteArray kAppDataTarget = "/apps/headlamp/api/data";
const QByteArray kClusterTarget = "/clusters/main/api/v1/namespaces";
// The browser scripts give up after 60 s per step, and starting Chromium takes a few seconds.
constexpr int kBrowserTimeoutMs = 150'000;

// The attempts that attacker-page.html runs on each route, and the form POST in place of the
// page that from-other-origin.mjs adds.
const QStringList kAttemptNames = {
    QStringLiteral("fetch"),
    QStringLiteral("fetch-credentials"),
    QStringLiteral("no-cors"),
    QStringLiteral("no-cors-post"),
    QStringLiteral("preflight"),
    QStringLiteral("frame-form-post"),
    QStringLiteral("sandboxed-form-post"),
    QStringLiteral("frame-navigation"),
    QStringLiteral("top-form-post"),
};
const QStringList kRoutes = {QStringLiteral("app"), QStringLiteral("cluster")};
// The names that dns-rebinding.mjs maps to 127.0.0.1 in Chromium, and its attempts for each.
const QStringList kRebindingHostNames = {QStringLiteral("evil.example"),
                                         QStringLiteral("localhost.evil.example")};
const QStringList kRebindingAttemptNames = {QStringLiteral("navigation"),
                                            QStringLiteral("fetch-cookie"),
                                            QStringLiteral("post-cookie"),
                                            QStringLiteral("fetch-session-key")};

enum class Credential { SessionKey, SessionCookie };

bool writeFile(const QString &path, const QByteArray &data)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(data) == data.size();
}

// Returns the JSON objects of a browser script's output whose "kind" is `kind`.
QList<QJsonObject> objectsOfKind(const QByteArray &output, const QString &kind)
{
    QList<QJsonObject> objects;
    for (const QByteArray &line : output.split('\n')) {
        if (!line.startsWith('{'))
            continue;
        const QJsonObject object = QJsonDocument::fromJson(line).object();
        if (object.value(QStringLiteral("kind")).toString() == kind)
            objects.append(object);
    }
    return objects;
}

QByteArray toCompactJson(const QJsonObject &object)
{
    return QJsonDocument(object).toJson(QJsonDocument::Compact);
}

QString routeOfTarget(const QString &target)
{
    if (target.startsWith(QLatin1String("/apps/")))
        return QStringLiteral("app");
    if (target.startsWith(QLatin1String("/clusters/")))
        return QStringLiteral("cluster");
    return QString();
}

// Returns the first response header of an exchange whose name starts with "access-control-", or
// an empty string.
QString corsHeaderOf(const QJsonObject &exchange)
{
    for (const QJsonValue &name : exchange.value(QStringLiteral("responseHeaders")).toArray()) {
        if (name.toString().toLower().startsWith(QLatin1String("access-control-")))
            return name.toString();
    }
    return QString();
}

QString corsHeaderOf(const HttpHead &head)
{
    for (const HttpHeader &header : head.headers) {
        if (header.name.toLower().startsWith("access-control-"))
            return QString::fromLatin1(header.name);
    }
    return QString();
}

// Returns true for a request that an attempt sent, which carries ?attack=<attempt name>.
bool isAttackRequest(const QJsonObject &exchange)
{
    return exchange.value(QStringLiteral("target")).toString().contains(QLatin1String("attack="));
}

bool carriesCookie(const QJsonObject &exchange, const QString &name)
{
    return exchange.value(QStringLiteral("cookies")).toArray().contains(name);
}

} // namespace

Q_DECLARE_METATYPE(Credential)

// Attacks on the local proxy from a real headless Chromium that has a valid session cookie:
// pages of other origins on 127.0.0.1 and DNS rebinding, plus the same foreign Host values from
// a raw TLS client. The app is the HTTPS double in tests/fixtures/app-double and the cluster is
// TestUpstream, and both record every request they receive. Chromium runs the scripts in
// tests/fixtures/browser-attacks.
class TestBrowserAttacks : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();

    void otherOriginPageGetsNothing();
    void foreignHostRejected_data();
    void foreignHostRejected();
    void rebindingBrowserRejected();

private:
    // Starts a Node.js server from tests/fixtures and reads the ports it prints after
    // "listening".
    bool startServer(QProcess &process, const QStringList &arguments, QList<quint16> *ports);
    static void stopServer(QProcess &process);
    // Runs a browser script to its end and returns its standard output.
    QByteArray runBrowserScript(const QString &script,
                                const QStringList &arguments,
                                const QProcessEnvironment &environment,
                                int *exitCode);
    QList<QJsonObject> appRequests() const;
    QUrl createLaunchUrl();
    // Redeems a new launch ticket with a raw client and returns "lamplighter-session=<value>".
    QByteArray openSessionCookie();
    std::optional<TestResponse> roundTrip(const QByteArray &request) const;

    QTemporaryDir m_dir;
    QString m_node;
    QProcess m_appDouble;
    QProcess m_attackerServer;
    quint16 m_attackerHttpPort = 0;
    quint16 m_attackerHttpsPort = 0;
    LocalCertificate m_appCertificate;
    LocalCertificate m_proxyCertificate;
    QByteArray m_sessionKey;
    std::unique_ptr<TestUpstream> m_cluster;
    std::unique_ptr<LocalProxy> m_proxy;
};

void TestBrowserAttacks::initTestCase()
{
    m_node = QStandardPaths::findExecutable(QStringLiteral("node"));
    QVERIFY2(!m_node.isEmpty(), "node is not on PATH; run scripts/install-deps");
    QVERIFY2(QFile::exists(fixturesDirectory + QStringLiteral("/node_modules/playwright-core")),
             "tests/fixtures/node_modules is missing; run npm ci in tests/fixtures");
    QVERIFY2(QFile::exists(QStringLiteral("/usr/bin/chromium")), "/usr/bin/chromium is missing");
    QVERIFY(m_dir.isValid());

    const Result<LocalCertificate> appCertificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(appCertificate.ok(), qPrintable(appCertificate.errorMessage()));
    m_appCertificate = *appCertificate;
    const QString certificateFile = m_dir.filePath(QStringLiteral("server.crt"));
    const QString keyFile = m_dir.filePath(QStringLiteral("server.key"));
    QVERIFY(writeFile(certificateFile, m_appCertificate.certificatePem()));
    QVERIFY(writeFile(keyFile, m_appCertificate.privateKeyPem()));

    QList<quint16> appPorts;
    QVERIFY(startServer(m_appDouble,
                        {fixturesDirectory + QStringLiteral("/app-double/server.mjs"),
                         certificateFile,
                         keyFile,
                         m_dir.filePath(QStringLiteral("requests.jsonl"))},
                        &appPorts));
    QCOMPARE(appPorts.size(), 1);
    // The attacker pages use the app double's certificate, which Chromium trusts as little as
    // the proxy's.
    QList<quint16> attackerPorts;
    QVERIFY(startServer(
        m_attackerServer,
        {attackScriptsDirectory + QStringLiteral("/attacker-server.mjs"), certificateFile, keyFile},
        &attackerPorts));
    QCOMPARE(attackerPorts.size(), 2);
    m_attackerHttpPort = attackerPorts.at(0);
    m_attackerHttpsPort = attackerPorts.at(1);

    m_cluster = std::make_unique<TestUpstream>();
    QVERIFY(m_cluster->listen());

    const Result<LocalCertificate> proxyCertificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(proxyCertificate.ok(), qPrintable(proxyCertificate.errorMessage()));
    m_proxyCertificate = *proxyCertificate;
    m_sessionKey = newTestSessionKey();
    m_proxy = std::make_unique<LocalProxy>();
    m_proxy->setServerCertificate(m_proxyCertificate);
    m_proxy->setSessionKey(m_sessionKey);
    m_proxy->setClusters({m_cluster->cluster(kClusterName)});
    UpstreamApp app;
    app.name = kAppName;
    app.upstream = UpstreamCluster{QStringLiteral("apps/headlamp"),
                                   QUrl(QStringLiteral("https://127.0.0.1:%1").arg(appPorts.at(0))),
                                   {m_appCertificate.certificate}};
    app.injectToken = true;
    m_proxy->setApps({app});
    m_proxy->setIdToken(kIdToken);
    const Status listening = m_proxy->listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
}

void TestBrowserAttacks::cleanupTestCase()
{
    m_proxy.reset();
    m_cluster.reset();
    stopServer(m_attackerServer);
    stopServer(m_appDouble);
}

bool TestBrowserAttacks::startServer(QProcess &process,
                                     const QStringList &arguments,
                                     QList<quint16> *ports)
{
    process.setProgram(m_node);
    process.setArguments(arguments);
    process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    process.start();
    if (!process.waitForStarted(10'000)) {
        qWarning("Cannot start %s: %s",
                 qPrintable(arguments.value(0)),
                 qPrintable(process.errorString()));
        return false;
    }
    if (!QTest::qWaitFor([&process] { return process.canReadLine(); }, 30'000)) {
        qWarning("%s printed no \"listening\" line within 30 s", qPrintable(arguments.value(0)));
        return false;
    }
    const QByteArray line = process.readLine().trimmed();
    const QList<QByteArray> words = line.split(' ');
    if (words.size() < 2 || words.first() != "listening") {
        qWarning("%s printed \"%s\" in place of \"listening PORT\"",
                 qPrintable(arguments.value(0)),
                 line.constData());
        return false;
    }
    for (qsizetype i = 1; i < words.size(); ++i)
        ports->append(quint16(words.at(i).toUInt()));
    return !ports->contains(0);
}

void TestBrowserAttacks::stopServer(QProcess &process)
{
    if (process.state() == QProcess::NotRunning)
        return;
    process.terminate();
    if (!process.waitForFinished(5'000))
        process.kill();
}

QByteArray TestBrowserAttacks::runBrowserScript(const QString &script,
                                                const QStringList &arguments,
                                                const QProcessEnvironment &environment,
                                                int *exitCode)
{
    QProcess browser;
    browser.setProgram(m_node);
    browser.setArguments(QStringList{attackScriptsDirectory + QLatin1Char('/') + script} +
                         arguments);
    browser.setProcessEnvironment(environment);
    browser.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    browser.start();
    *exitCode = -1;
    if (!browser.waitForStarted(10'000))
        return {};
    // The proxy and the cluster double run on this thread's event loop, so the wait must keep
    // the loop running.
    const bool finished = QTest::qWaitFor(
        [&browser] { return browser.state() == QProcess::NotRunning; }, kBrowserTimeoutMs);
    if (!finished) {
        browser.kill();
        browser.waitForFinished(5'000);
        qWarning("%s did not finish within %d ms", qPrintable(script), kBrowserTimeoutMs);
        return browser.readAllStandardOutput();
    }
    if (browser.exitStatus() == QProcess::NormalExit)
        *exitCode = browser.exitCode();
    return browser.readAllStandardOutput();
}

QList<QJsonObject> TestBrowserAttacks::appRequests() const
{
    QFile file(m_dir.filePath(QStringLiteral("requests.jsonl")));
    QList<QJsonObject> requests;
    if (!file.open(QIODevice::ReadOnly))
        return requests;
    for (const QByteArray &line : file.readAll().split('\n')) {
        if (!line.trimmed().isEmpty())
            requests.append(QJsonDocument::fromJson(line).object());
    }
    return requests;
}

QUrl TestBrowserAttacks::createLaunchUrl()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    if (!ticket.ok())
        return QUrl();
    return m_proxy->launchUrl(kAppName, ticket.value());
}

std::optional<TestResponse> TestBrowserAttacks::roundTrip(const QByteArray &request) const
{
    TestHttpClient client(m_proxyCertificate.certificate);
    if (!client.connectToProxy(m_proxy->port()))
        return std::nullopt;
    client.send(request);
    return client.waitForResponse();
}

QByteArray TestBrowserAttacks::openSessionCookie()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    if (!ticket.ok())
        return {};
    const std::optional<TestResponse> response = roundTrip(TestHttpClient::request(
        "GET", "/apps/headlamp/?ticket=" + ticket.value(), m_proxy->port(), {}));
    if (!response || response->head.statusCode != 303)
        return {};
    const QByteArray setCookie = response->head.value("Set-Cookie");
    return setCookie.left(setCookie.indexOf(';'));
}

// A page on another port of 127.0.0.1, over HTTP (another site) and over HTTPS (the same site,
// so Chromium sends the SameSite=Strict cookie), tries every way a page can send a request to
// the proxy. None reaches an upstream, the page reads nothing, and no response grants CORS.
void TestBrowserAttacks::otherOriginPageGetsNothing()
{
    const qsizetype appRequestsBefore = appRequests().size();
    const qsizetype clusterRequestsBefore = m_cluster->requests().size();
    const QUrl launchUrl = createLaunchUrl();
    const QUrl controlLaunchUrl = createLaunchUrl();
    QVERIFY(launchUrl.isValid());
    QVERIFY(controlLaunchUrl.isValid());
    const QStringList pageOrigins = {
        QStringLiteral("http://127.0.0.1:%1").arg(m_attackerHttpPort),
        QStringLiteral("https://127.0.0.1:%1").arg(m_attackerHttpsPort),
    };

    int exitCode = -1;
    const QByteArray output = runBrowserScript(
        QStringLiteral("from-other-origin.mjs"),
        QStringList{launchUrl.toString(), controlLaunchUrl.toString(), kClusterName} + pageOrigins,
        QProcessEnvironment::systemEnvironment(),
        &exitCode);
    QVERIFY2(exitCode == 0, output.constData());

    // Before the attack and after it, the browser reached the app through a launch URL.
    const QList<QJsonObject> steps = objectsOfKind(output, QStringLiteral("step"));
    QCOMPARE(steps.size(), 2);
    QCOMPARE(steps.at(0).value(QStringLiteral("name")).toString(), QStringLiteral("launch"));
    QCOMPARE(steps.at(1).value(QStringLiteral("name")).toString(), QStringLiteral("control"));
    for (const QJsonObject &step : steps)
        QCOMPARE(step.value(QStringLiteral("path")).toString(), QStringLiteral("/apps/headlamp/"));

    // Only the two launches reached the app, and nothing reached the cluster.
    QStringList appTargets;
    for (const QJsonObject &request : appRequests().mid(appRequestsBefore))
        appTargets.append(request.value(QStringLiteral("target")).toString());
    QCOMPARE(appTargets.join(QLatin1Char(' ')), QStringLiteral("/ /api/data / /api/data"));
    QCOMPARE(m_cluster->requests().size(), clusterRequestsBefore);

    // The page could read no response, whatever it tried.
    const QList<QJsonObject> attempts = objectsOfKind(output, QStringLiteral("attempt"));
    QCOMPARE(attempts.size(), pageOrigins.size() * kRoutes.size() * kAttemptNames.size());
    for (const QJsonObject &attempt : attempts) {
        QVERIFY2(!attempt.value(QStringLiteral("readable")).toBool(), toCompactJson(attempt));
    }

    // The proxy received and rejected every attempt, and granted CORS to none.
    const QList<QJsonObject> exchanges = objectsOfKind(output, QStringLiteral("exchange"));
    for (const QString &pageOrigin : pageOrigins) {
        for (const QString &route : kRoutes) {
            for (const QString &name : kAttemptNames) {
                const QString marker = QStringLiteral("attack=") + name;
                bool answered = false;
                for (const QJsonObject &exchange : exchanges) {
                    const QString target = exchange.value(QStringLiteral("target")).toString();
                    answered |= exchange.value(QStringLiteral("page")).toString() == pageOrigin &&
                                routeOfTarget(target) == route && target.endsWith(marker) &&
                                exchange.value(QStringLiteral("status")).toInt() != 0;
                }
                QVERIFY2(answered,
                         qPrintable(QStringLiteral("The proxy received no request of attempt %1 "
                                                   "on the %2 route from %3.")
                                        .arg(name, route, pageOrigin)));
            }
        }
    }
    bool cookieSent = false;
    for (const QJsonObject &exchange : exchanges) {
        const int status = exchange.value(QStringLiteral("status")).toInt();
        const QString target = exchange.value(QStringLiteral("target")).toString();
        const QString method = exchange.value(QStringLiteral("method")).toString();
        if (status == 0 && !isAttackRequest(exchange))
            continue; // Chromium's request for the favicon of the last page may still be open.
        if (status == 0) {
            // Only the request after a preflight stays unsent, because the proxy rejected the
            // preflight.
            QVERIFY2(target.endsWith(QLatin1String("attack=preflight")) &&
                         method == QLatin1String("DELETE"),
                     toCompactJson(exchange));
            continue;
        }
        QVERIFY2(method != QLatin1String("DELETE"), toCompactJson(exchange));
        QVERIFY2(exchange.value(QStringLiteral("rawResponseHead")).toBool(),
                 toCompactJson(exchange));
        QVERIFY2(corsHeaderOf(exchange).isEmpty(), toCompactJson(exchange));
        // A request with an Origin fails the Origin check, and an app request without one the
        // Sec-Fetch-Site check. A cluster request without an Origin has no session key.
        const bool hasOrigin = !exchange.value(QStringLiteral("origin")).toString().isEmpty();
        const int expectedStatus =
            hasOrigin || routeOfTarget(target) == QLatin1String("app") ? 403 : 401;
        QVERIFY2(status == expectedStatus, toCompactJson(exchange));
        cookieSent |= routeOfTarget(target) == QLatin1String("app") &&
                      carriesCookie(exchange, QStringLiteral("lamplighter-session"));
    }
    // The same-site page had the session cookie to send, so the proxy's checks, not the
    // browser's cookie rules, stopped it.
    QVERIFY(cookieSent);

    // The cluster route forwards a request that carries the session key.
    const std::optional<TestResponse> control =
        roundTrip(TestHttpClient::request("GET", kClusterTarget, m_proxy->port(), m_sessionKey));
    QVERIFY(control);
    QCOMPARE(control->head.statusCode, 200);
    QCOMPARE(m_cluster->requests().size(), clusterRequestsBefore + 1);
}

void TestBrowserAttacks::foreignHostRejected_data()
{
    // PORT in a Host value is replaced by the proxy's port.
    QTest::addColumn<QByteArray>("host");
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<Credential>("credential");
    QTest::addColumn<bool>("forwarded");

    const QList<QByteArray> foreignHosts = {"evil.example",
                                            "evil.example:PORT",
                                            "localhost.evil.example",
                                            "localhost.evil.example:PORT"};
    for (const QByteArray &host : foreignHosts) {
        QTest::addRow("cluster, %s", host.constData())
            << host << kClusterTarget << Credential::SessionKey << false;
        QTest::addRow("app, %s", host.constData())
            << host << kAppDataTarget << Credential::SessionCookie << false;
    }
    // The same requests with the proxy's own Host reach the upstream, so the rows above can fail.
    QTest::addRow("cluster, own host")
        << QByteArray("127.0.0.1:PORT") << kClusterTarget << Credential::SessionKey << true;
    QTest::addRow("app, own host")
        << QByteArray("127.0.0.1:PORT") << kAppDataTarget << Credential::SessionCookie << true;
}

// A raw TLS client sends requests with a valid session key or cookie but a Host that is not the
// proxy's, as a DNS rebinding page would.
void TestBrowserAttacks::foreignHostRejected()
{
    QFETCH(QByteArray, host);
    QFETCH(QByteArray, target);
    QFETCH(Credential, credential);
    QFETCH(bool, forwarded);
    host.replace("PORT", QByteArray::number(m_proxy->port()));

    QByteArray credentialHeader;
    if (credential == Credential::SessionKey) {
        credentialHeader = "Authorization: Bearer " + m_sessionKey;
    } else {
        const QByteArray cookie = openSessionCookie();
        QVERIFY(!cookie.isEmpty());
        credentialHeader = "Cookie: " + cookie;
    }
    const qsizetype appRequestsBefore = appRequests().size();
    const qsizetype clusterRequestsBefore = m_cluster->requests().size();

    const std::optional<TestResponse> response = roundTrip(
        "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + credentialHeader + "\r\n\r\n");
    QVERIFY(response);
    QVERIFY2(corsHeaderOf(response->head).isEmpty(), response->body.constData());
    if (forwarded) {
        QCOMPARE(response->head.statusCode, 200);
        QCOMPARE(appRequests().size() + m_cluster->requests().size(),
                 appRequestsBefore + clusterRequestsBefore + 1);
        return;
    }

    QCOMPARE(response->head.statusCode, 403);
    QCOMPARE(response->head.value("Content-Type"), QByteArray("application/json"));
    const QJsonObject status = QJsonDocument::fromJson(response->body).object();
    QCOMPARE(status.value(QStringLiteral("kind")).toString(), QStringLiteral("Status"));
    QCOMPARE(status.value(QStringLiteral("reason")).toString(), QStringLiteral("Forbidden"));
    QCOMPARE(status.value(QStringLiteral("code")).toInt(), 403);
    const QString expectedMessage =
        QStringLiteral("The Host header \"%1\" does not name the Lamplighter proxy.")
            .arg(QString::fromLatin1(host));
    QVERIFY2(status.value(QStringLiteral("message")).toString().startsWith(expectedMessage),
             response->body.constData());
    QCOMPARE(appRequests().size(), appRequestsBefore);
    QCOMPARE(m_cluster->requests().size(), clusterRequestsBefore);
}

// Chromium resolves evil.example and localhost.evil.example to 127.0.0.1, has the session
// cookie for those names as well, and sends same-origin requests with the cookie and with the
// session key. The proxy rejects each for its Host.
void TestBrowserAttacks::rebindingBrowserRejected()
{
    const qsizetype appRequestsBefore = appRequests().size();
    const qsizetype clusterRequestsBefore = m_cluster->requests().size();
    const QUrl launchUrl = createLaunchUrl();
    QVERIFY(launchUrl.isValid());
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    environment.insert(QStringLiteral("LAMPLIGHTER_SESSION_KEY"),
                       QString::fromLatin1(m_sessionKey));

    int exitCode = -1;
    const QByteArray output = runBrowserScript(QStringLiteral("dns-rebinding.mjs"),
                                               {launchUrl.toString(), kClusterName},
                                               environment,
                                               &exitCode);
    QVERIFY2(exitCode == 0, output.constData());

    // The browser reached the app through the launch URL, so it had a valid cookie to copy.
    const QList<QJsonObject> steps = objectsOfKind(output, QStringLiteral("step"));
    QCOMPARE(steps.size(), 1);
    QCOMPARE(steps.at(0).value(QStringLiteral("path")).toString(),
             QStringLiteral("/apps/headlamp/"));

    // The page received the proxy's rejection of its Host for every request.
    const QList<QJsonObject> attempts = objectsOfKind(output, QStringLiteral("attempt"));
    QCOMPARE(attempts.size(), kRebindingHostNames.size() * kRebindingAttemptNames.size());
    for (const QJsonObject &attempt : attempts) {
        const QString host = QStringLiteral("%1:%2")
                                 .arg(attempt.value(QStringLiteral("hostName")).toString())
                                 .arg(m_proxy->port());
        QVERIFY2(attempt.value(QStringLiteral("status")).toInt() == 403, toCompactJson(attempt));
        const QJsonObject status =
            QJsonDocument::fromJson(attempt.value(QStringLiteral("body")).toString().toUtf8())
                .object();
        QVERIFY2(status.value(QStringLiteral("reason")).toString() == QLatin1String("Forbidden"),
                 toCompactJson(attempt));
        QVERIFY2(status.value(QStringLiteral("message"))
                     .toString()
                     .startsWith(QStringLiteral("The Host header \"%1\" does not name the "
                                                "Lamplighter proxy.")
                                     .arg(host)),
                 toCompactJson(attempt));
    }

    // Chromium sent the mapped name as Host, with the cookie or the session key, and the proxy
    // granted CORS to none.
    const QList<QJsonObject> exchanges = objectsOfKind(output, QStringLiteral("exchange"));
    QVERIFY(exchanges.size() >= attempts.size());
    for (const QString &hostName : kRebindingHostNames) {
        for (const QString &name : kRebindingAttemptNames) {
            bool sent = false;
            for (const QJsonObject &exchange : exchanges) {
                sent |= exchange.value(QStringLiteral("hostName")).toString() == hostName &&
                        exchange.value(QStringLiteral("target"))
                            .toString()
                            .endsWith(QStringLiteral("attack=") + name);
            }
            QVERIFY2(sent, qPrintable(hostName + QLatin1Char(' ') + name));
        }
    }
    for (const QJsonObject &exchange : exchanges) {
        const QString host = QStringLiteral("%1:%2")
                                 .arg(exchange.value(QStringLiteral("hostName")).toString())
                                 .arg(m_proxy->port());
        const QString target = exchange.value(QStringLiteral("target")).toString();
        const int status = exchange.value(QStringLiteral("status")).toInt();
        if (status == 0 && !isAttackRequest(exchange))
            continue; // Chromium's request for the favicon of the last page may still be open.
        QVERIFY2(exchange.value(QStringLiteral("host")).toString() == host,
                 toCompactJson(exchange));
        QVERIFY2(status == 403, toCompactJson(exchange));
        QVERIFY2(exchange.value(QStringLiteral("rawResponseHead")).toBool(),
                 toCompactJson(exchange));
        QVERIFY2(corsHeaderOf(exchange).isEmpty(), toCompactJson(exchange));
        if (routeOfTarget(target) == QLatin1String("app")) {
            QVERIFY2(carriesCookie(exchange, QStringLiteral("lamplighter-session")),
                     toCompactJson(exchange));
        }
        if (routeOfTarget(target) == QLatin1String("cluster")) {
            QVERIFY2(exchange.value(QStringLiteral("authorization")).toBool(),
                     toCompactJson(exchange));
        }
    }

    // Only the launch reached the app, and nothing reached the cluster.
    QStringList appTargets;
    for (const QJsonObject &request : appRequests().mid(appRequestsBefore))
        appTargets.append(request.value(QStringLiteral("target")).toString());
    QCOMPARE(appTargets.join(QLatin1Char(' ')), QStringLiteral("/ /api/data"));
    QCOMPARE(m_cluster->requests().size(), clusterRequestsBefore);
}

QTEST_GUILESS_MAIN(TestBrowserAttacks)
#include "tst_browserattacks.moc"
