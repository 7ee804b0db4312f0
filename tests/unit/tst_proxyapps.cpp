#include "TestHttpClient.h"
#include "TestSessionKey.h"
#include "TestUpstream.h"
#include "proxy/LocalProxy.h"

#include <QRegularExpression>
#include <QTest>
#include <memory>

using namespace lamplighter;

namespace {

const QByteArray kIdToken = "eyJhbGciOiJSUzI1NiJ9.app-token.signature";
const QString kAppName = QStringLiteral("headlamp");

// Returns the "name=value" part of a Set-Cookie value.
QByteArray cookiePair(const QByteArray &setCookie)
{
    return setCookie.left(setCookie.indexOf(';'));
}

} // namespace

// The local proxy's app routes: launch tickets, the browser session cookie, and what reaches an
// app's upstream. TestUpstream plays the app, served under the path /base.
class TestProxyApps : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void ticketWorksOnce();
    void cookieFlagsExact();
    void expiredTicketRejected();
    void ticketForOtherAppRejected();
    void ticketOnlyOnStartPage();
    void unknownAppRejected();
    void missingCookieRejected();
    void unknownCookieRejected();
    void sessionKeyNotEnoughForApps();
    void cookieNotEnoughForClusters();
    void forwardedHeaders_data();
    void forwardedHeaders();
    void fullUriReplaced_data();
    void fullUriReplaced();
    void forwardedIdTokenMode();
    void tokenNotInjectedWhenOff();
    void signedOutRejectedWithInjection();
    void preflightForbidden();
    void foreignOriginRejected();
    void ownOriginAccepted();
    void noCorsHeaderSent();
    void endedSessionsRejected();
    void appCannotSetSessionCookie();
    void crossSiteRequestRejected_data();
    void crossSiteRequestRejected();
    void encodedDotSegmentRejected_data();
    void encodedDotSegmentRejected();

private:
    void setApps(bool injectToken, AppTokenHeader tokenHeader);
    QByteArray appRequest(const QByteArray &method,
                          const QByteArray &target,
                          const QList<QByteArray> &headers = {}) const;
    std::optional<TestResponse> roundTrip(const QByteArray &request) const;
    std::optional<TestResponse> openWithTicket(const QString &appName, const QByteArray &ticket);
    // Redeems a new ticket and returns the cookie as "lamplighter-session=<value>".
    QByteArray openSession();

    LocalCertificate m_proxyCertificate;
    QByteArray m_sessionKey;
    std::unique_ptr<TestUpstream> m_upstream;
    std::unique_ptr<LocalProxy> m_proxy;
};

void TestProxyApps::initTestCase()
{
    const Result<LocalCertificate> generated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(generated.ok(), qPrintable(generated.errorMessage()));
    m_proxyCertificate = *generated;
}

void TestProxyApps::init()
{
    m_upstream = std::make_unique<TestUpstream>();
    QVERIFY(m_upstream->listen());

    m_sessionKey = newTestSessionKey();
    m_proxy = std::make_unique<LocalProxy>();
    m_proxy->setServerCertificate(m_proxyCertificate);
    m_proxy->setSessionKey(m_sessionKey);
    m_proxy->setClusters({m_upstream->cluster(QStringLiteral("dev"))});
    setApps(true, AppTokenHeader::Authorization);
    m_proxy->setIdToken(kIdToken);
    const Status listening = m_proxy->listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));
}

void TestProxyApps::cleanup()
{
    m_proxy.reset();
    m_upstream.reset();
}

void TestProxyApps::setApps(bool injectToken, AppTokenHeader tokenHeader)
{
    UpstreamApp headlamp;
    headlamp.name = kAppName;
    headlamp.upstream = m_upstream->cluster(QStringLiteral("apps/headlamp"));
    QUrl server = headlamp.upstream.server.url();
    server.setPath(QStringLiteral("/base"));
    headlamp.upstream.server = server;
    headlamp.injectToken = injectToken;
    headlamp.tokenHeader = tokenHeader;

    UpstreamApp other = headlamp;
    other.name = QStringLiteral("grafana");
    m_proxy->setApps({headlamp, other});
}

QByteArray TestProxyApps::appRequest(const QByteArray &method,
                                     const QByteArray &target,
                                     const QList<QByteArray> &headers) const
{
    return TestHttpClient::request(method, target, m_proxy->port(), {}, headers);
}

std::optional<TestResponse> TestProxyApps::roundTrip(const QByteArray &request) const
{
    TestHttpClient client(m_proxyCertificate.certificate);
    if (!client.connectToProxy(m_proxy->port()))
        return std::nullopt;
    client.send(request);
    return client.waitForResponse();
}

std::optional<TestResponse> TestProxyApps::openWithTicket(const QString &appName,
                                                          const QByteArray &ticket)
{
    return roundTrip(appRequest("GET", "/apps/" + appName.toLatin1() + "/?ticket=" + ticket));
}

QByteArray TestProxyApps::openSession()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    if (!ticket)
        return {};
    const std::optional<TestResponse> response = openWithTicket(kAppName, ticket.value());
    if (!response || response->head.statusCode != 303)
        return {};
    return cookiePair(response->head.value("Set-Cookie"));
}

void TestProxyApps::ticketWorksOnce()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    QVERIFY2(ticket.ok(), qPrintable(ticket.errorMessage()));
    QCOMPARE(ticket->size(), 43);
    QVERIFY(QRegularExpression(QStringLiteral("^[A-Za-z0-9_-]+$"))
                .match(QString::fromLatin1(ticket.value()))
                .hasMatch());

    const std::optional<TestResponse> first = openWithTicket(kAppName, ticket.value());
    QVERIFY(first);
    QCOMPARE(first->head.statusCode, 303);
    QCOMPARE(first->head.value("Location"), QByteArray("/apps/headlamp/"));
    QCOMPARE(first->head.value("Cache-Control"), QByteArray("no-store"));
    QCOMPARE(first->head.value("Referrer-Policy"), QByteArray("no-referrer"));
    QCOMPARE(first->head.count("Set-Cookie"), 1);

    const std::optional<TestResponse> second = openWithTicket(kAppName, ticket.value());
    QVERIFY(second);
    QCOMPARE(second->head.statusCode, 401);
    QCOMPARE(second->head.value("Content-Type"), QByteArray("text/plain; charset=utf-8"));
    QVERIFY(!second->head.contains("Set-Cookie"));
    QVERIFY2(second->body.contains("invalid, already used or expired"), second->body.constData());
    QVERIFY2(second->body.contains("lamplighter open headlamp"), second->body.constData());
    QCOMPARE(m_upstream->requests().size(), 0);

    const QByteArray cookie = cookiePair(first->head.value("Set-Cookie"));
    const std::optional<TestResponse> page =
        roundTrip(appRequest("GET", "/apps/headlamp/", {"Cookie: " + cookie}));
    QVERIFY(page);
    QCOMPARE(page->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 1);
}

void TestProxyApps::cookieFlagsExact()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    QVERIFY(ticket.ok());
    const std::optional<TestResponse> response = openWithTicket(kAppName, ticket.value());
    QVERIFY(response);
    const QString setCookie = QString::fromLatin1(response->head.value("Set-Cookie"));
    const QRegularExpression expected(
        QStringLiteral("^lamplighter-session=[A-Za-z0-9_-]{43}; Secure; HttpOnly; "
                       "SameSite=Strict; Path=/$"));
    QVERIFY2(expected.match(setCookie).hasMatch(), qPrintable(setCookie));
    QVERIFY2(!setCookie.contains(QString::fromLatin1(ticket.value())), qPrintable(setCookie));
}

void TestProxyApps::expiredTicketRejected()
{
    ProxyLimits limits;
    limits.launchTicketLifetime = std::chrono::milliseconds(50);
    m_proxy->setLimits(limits);
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    QVERIFY(ticket.ok());
    QTest::qWait(150);

    const std::optional<TestResponse> response = openWithTicket(kAppName, ticket.value());
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QVERIFY(!response->head.contains("Set-Cookie"));
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::ticketForOtherAppRejected()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(QStringLiteral("grafana"));
    QVERIFY(ticket.ok());
    const std::optional<TestResponse> response = openWithTicket(kAppName, ticket.value());
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);

    // The mismatched attempt consumed the ticket.
    const std::optional<TestResponse> retry =
        openWithTicket(QStringLiteral("grafana"), ticket.value());
    QVERIFY(retry);
    QCOMPARE(retry->head.statusCode, 401);
}

void TestProxyApps::ticketOnlyOnStartPage()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    QVERIFY(ticket.ok());
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/apps/headlamp/c/main?ticket=" + ticket.value()));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 400);
    QVERIFY(!response->head.contains("Set-Cookie"));
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::unknownAppRejected()
{
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(QStringLiteral("kibana"));
    QVERIFY(!ticket.ok());
    QVERIFY2(ticket.errorMessage().contains(QStringLiteral("Configured apps: headlamp, grafana.")),
             qPrintable(ticket.errorMessage()));

    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/apps/kibana/", {"Cookie: " + cookie}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 404);
    QVERIFY2(response->body.contains("Configured apps: headlamp, grafana."),
             response->body.constData());
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::missingCookieRejected()
{
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/apps/headlamp/", {"Cookie: theme=dark"}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QCOMPARE(response->head.value("Content-Type"), QByteArray("text/plain; charset=utf-8"));
    QVERIFY2(response->body.contains("no Lamplighter session"), response->body.constData());
    QCOMPARE(m_upstream->requests().size(), 0);
    QCOMPARE(m_upstream->connectionCount(), 0);
}

void TestProxyApps::unknownCookieRejected()
{
    const std::optional<TestResponse> response = roundTrip(appRequest(
        "GET", "/apps/headlamp/", {"Cookie: lamplighter-session=" + QByteArray(43, 'x')}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::sessionKeyNotEnoughForApps()
{
    const std::optional<TestResponse> response =
        roundTrip(TestHttpClient::request("GET", "/apps/headlamp/", m_proxy->port(), m_sessionKey));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::cookieNotEnoughForClusters()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/clusters/dev/api", {"Cookie: " + cookie}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::forwardedHeaders_data()
{
    QTest::addColumn<QList<QByteArray>>("clientHeaders");
    QTest::addColumn<QByteArray>("name");
    QTest::addColumn<QList<QByteArray>>("expectedValues");

    QTest::newRow("token injected") << QList<QByteArray>{} << QByteArray("Authorization")
                                    << QList<QByteArray>{"Bearer " + kIdToken};
    QTest::newRow("client authorization replaced")
        << QList<QByteArray>{"Authorization: Bearer client-token"} << QByteArray("Authorization")
        << QList<QByteArray>{"Bearer " + kIdToken};
    QTest::newRow("impersonate user dropped")
        << QList<QByteArray>{"Impersonate-User: admin"} << QByteArray("Impersonate-User")
        << QList<QByteArray>{};
    QTest::newRow("impersonate group dropped")
        << QList<QByteArray>{"impersonate-group: system:masters"} << QByteArray("Impersonate-Group")
        << QList<QByteArray>{};
    QTest::newRow("forwarded id token dropped")
        << QList<QByteArray>{"X-Forwarded-Id-Token: client-token"}
        << QByteArray("X-Forwarded-Id-Token") << QList<QByteArray>{};
    QTest::newRow("headlamp cookies dropped")
        << QList<QByteArray>{"Cookie: headlamp-auth-main.0=stolen; theme=dark",
                             "Cookie: headlamp-auth-main.1=rest"}
        << QByteArray("Cookie") << QList<QByteArray>{"theme=dark"};
    QTest::newRow("headlamp cookie in other case dropped")
        << QList<QByteArray>{"Cookie: Headlamp-Auth-main.0=stolen; theme=dark"}
        << QByteArray("Cookie") << QList<QByteArray>{"theme=dark"};
    QTest::newRow("underscore look-alike dropped")
        << QList<QByteArray>{"Impersonate_User: admin"} << QByteArray("Impersonate_User")
        << QList<QByteArray>{};
    QTest::newRow("host names upstream")
        << QList<QByteArray>{} << QByteArray("Host") << QList<QByteArray>{"127.0.0.1:PORT"};
    QTest::newRow("other header kept") << QList<QByteArray>{"Accept-Language: de"}
                                       << QByteArray("Accept-Language") << QList<QByteArray>{"de"};
}

void TestProxyApps::forwardedHeaders()
{
    QFETCH(QList<QByteArray>, clientHeaders);
    QFETCH(QByteArray, name);
    QFETCH(QList<QByteArray>, expectedValues);

    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    QList<QByteArray> headers = clientHeaders;
    headers.append("Cookie: " + cookie);
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/apps/headlamp/api", headers));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 1);

    const HttpHead &received = m_upstream->requests().first().head;
    QList<QByteArray> expected = expectedValues;
    for (QByteArray &value : expected)
        value.replace("PORT", QByteArray::number(m_upstream->port()));
    QCOMPARE(received.values(name), expected);
    for (const HttpHeader &header : received.headers) {
        QVERIFY2(!header.value.contains("lamplighter-session"), header.name.constData());
        QVERIFY2(!header.value.contains("headlamp-auth"), header.name.constData());
    }
}

void TestProxyApps::fullUriReplaced_data()
{
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<QByteArray>("expectedUpstreamTarget");

    QTest::newRow("start page") << QByteArray("/apps/headlamp/") << QByteArray("/base/");
    QTest::newRow("no trailing slash") << QByteArray("/apps/headlamp") << QByteArray("/base/");
    QTest::newRow("path and query") << QByteArray("/apps/headlamp/c/main/pods?namespace=x&a=%20")
                                    << QByteArray("/base/c/main/pods?namespace=x&a=%20");
    QTest::newRow("query only") << QByteArray("/apps/headlamp?x=1") << QByteArray("/base/?x=1");
}

void TestProxyApps::fullUriReplaced()
{
    QFETCH(QByteArray, target);
    QFETCH(QByteArray, expectedUpstreamTarget);

    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", target, {"Cookie: " + cookie}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 1);
    QCOMPARE(m_upstream->requests().first().head.target, expectedUpstreamTarget);
}

void TestProxyApps::forwardedIdTokenMode()
{
    setApps(true, AppTokenHeader::XForwardedIdToken);
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response = roundTrip(appRequest(
        "GET",
        "/apps/headlamp/",
        {"Cookie: " + cookie, "Authorization: Bearer client-token", "X-Forwarded-Id-Token: x"}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    const HttpHead &received = m_upstream->requests().first().head;
    QCOMPARE(received.values("X-Forwarded-Id-Token"), QList<QByteArray>{kIdToken});
    QVERIFY(!received.contains("Authorization"));
}

void TestProxyApps::tokenNotInjectedWhenOff()
{
    setApps(false, AppTokenHeader::Authorization);
    m_proxy->setIdToken({});
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response = roundTrip(appRequest(
        "GET", "/apps/headlamp/", {"Cookie: " + cookie, "Authorization: Bearer client-token"}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    const HttpHead &received = m_upstream->requests().first().head;
    QVERIFY(!received.contains("Authorization"));
    QVERIFY(!received.contains("X-Forwarded-Id-Token"));
}

void TestProxyApps::signedOutRejectedWithInjection()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    m_proxy->setIdToken({});
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/apps/headlamp/", {"Cookie: " + cookie}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 401);
    QCOMPARE(response->head.value("Content-Type"), QByteArray("text/plain; charset=utf-8"));
    QVERIFY2(response->body.contains("Not signed in"), response->body.constData());
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::preflightForbidden()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const QByteArray origin = "Origin: https://127.0.0.1:" + QByteArray::number(m_proxy->port());
    const std::optional<TestResponse> response = roundTrip(
        appRequest("OPTIONS",
                   "/apps/headlamp/api",
                   {"Cookie: " + cookie, origin, "Access-Control-Request-Method: DELETE"}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 403);
    QVERIFY(!response->head.contains("Access-Control-Allow-Origin"));
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::foreignOriginRejected()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response = roundTrip(appRequest(
        "POST", "/apps/headlamp/api", {"Cookie: " + cookie, "Origin: https://evil.example"}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 403);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::ownOriginAccepted()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const QByteArray origin = "Origin: https://127.0.0.1:" + QByteArray::number(m_proxy->port());
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/apps/headlamp/api", {"Cookie: " + cookie, origin}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(m_upstream->requests().size(), 1);
}

void TestProxyApps::noCorsHeaderSent()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response = roundTrip(appRequest(
        "GET",
        "/apps/headlamp/api",
        {"Cookie: " + cookie, "Origin: https://127.0.0.1:" + QByteArray::number(m_proxy->port())}));
    QVERIFY(response);
    for (const HttpHeader &header : response->head.headers)
        QVERIFY2(!header.name.toLower().startsWith("access-control-"), header.name.constData());
}

void TestProxyApps::endedSessionsRejected()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const Result<QByteArray> ticket = m_proxy->createLaunchTicket(kAppName);
    QVERIFY(ticket.ok());
    m_proxy->endBrowserSessions();

    const std::optional<TestResponse> page =
        roundTrip(appRequest("GET", "/apps/headlamp/", {"Cookie: " + cookie}));
    QVERIFY(page);
    QCOMPARE(page->head.statusCode, 401);
    const std::optional<TestResponse> launch = openWithTicket(kAppName, ticket.value());
    QVERIFY(launch);
    QCOMPARE(launch->head.statusCode, 401);
    QCOMPARE(m_upstream->requests().size(), 0);
}

void TestProxyApps::appCannotSetSessionCookie()
{
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", "/apps/headlamp/set-cookies", {"Cookie: " + cookie}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 200);
    QCOMPARE(response->head.values("Set-Cookie"), QList<QByteArray>{"theme=dark; Path=/"});
    QCOMPARE(response->head.value("Content-Security-Policy"), QByteArray("frame-ancestors 'self'"));
}

void TestProxyApps::crossSiteRequestRejected_data()
{
    QTest::addColumn<QByteArray>("fetchSite");
    QTest::addColumn<int>("status");

    QTest::newRow("same origin") << QByteArray("same-origin") << 200;
    QTest::newRow("typed or opened") << QByteArray("none") << 200;
    QTest::newRow("other loopback port") << QByteArray("same-site") << 403;
    QTest::newRow("other site") << QByteArray("cross-site") << 403;
}

void TestProxyApps::crossSiteRequestRejected()
{
    QFETCH(QByteArray, fetchSite);
    QFETCH(int, status);
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response = roundTrip(appRequest(
        "GET", "/apps/headlamp/api", {"Cookie: " + cookie, "Sec-Fetch-Site: " + fetchSite}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, status);
    QCOMPARE(m_upstream->requests().size(), status == 200 ? 1 : 0);
}

void TestProxyApps::encodedDotSegmentRejected_data()
{
    QTest::addColumn<QByteArray>("target");

    QTest::newRow("encoded slash") << QByteArray("/apps/headlamp/..%2F..%2Fadmin");
    QTest::newRow("encoded backslash") << QByteArray("/apps/headlamp/..%5C..%5Cadmin");
    QTest::newRow("backslash") << QByteArray("/apps/headlamp/..\\..\\admin");
    QTest::newRow("path parameter") << QByteArray("/apps/headlamp/..;/admin");
    QTest::newRow("double encoded") << QByteArray("/apps/headlamp/%252e%252e/admin");
}

void TestProxyApps::encodedDotSegmentRejected()
{
    QFETCH(QByteArray, target);
    const QByteArray cookie = openSession();
    QVERIFY(!cookie.isEmpty());
    const std::optional<TestResponse> response =
        roundTrip(appRequest("GET", target, {"Cookie: " + cookie}));
    QVERIFY(response);
    QCOMPARE(response->head.statusCode, 400);
    QCOMPARE(m_upstream->requests().size(), 0);
}

QTEST_GUILESS_MAIN(TestProxyApps)
#include "tst_proxyapps.moc"
