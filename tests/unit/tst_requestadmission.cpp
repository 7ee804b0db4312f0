// The local proxy's decision on a request head, and the heads it forwards, without sockets.
// tst_localproxy covers the same decisions end to end over TLS.

#include "TestHttpClient.h"
#include "proxy/ProxyHeaders.h"
#include "proxy/ProxyRoute.h"
#include "proxy/RequestAdmission.h"

#include <QTest>

using namespace lamplighter;

namespace {

constexpr quint16 kProxyPort = 8443;
const QByteArray kSessionKey = "session-key-for-admission-tests";
const QByteArray kIdToken = "header.payload.signature";
const QDateTime kNow = QDateTime(QDate(2026, 12, 5), QTime(12, 0), Qt::UTC);

ProxySettings settingsWithClusters()
{
    ProxySettings settings;
    settings.sessionKey = kSessionKey;
    settings.idToken = kIdToken;
    settings.idTokenExpiresAt = kNow.addSecs(600);
    settings.port = kProxyPort;
    settings.clusters.push_back(
        UpstreamCluster{QStringLiteral("prod"), QUrl(QStringLiteral("https://10.0.0.1:6443")), {}});
    settings.clusters.push_back(UpstreamCluster{
        QStringLiteral("with prefix"), QUrl(QStringLiteral("https://api.example.test/k8s/")), {}});
    settings.clusters.push_back(
        UpstreamCluster{QStringLiteral("v6"), QUrl(QStringLiteral("https://[fd00::1]:6443")), {}});
    settings.clusters.push_back(UpstreamCluster{
        QStringLiteral("idn"), QUrl(QStringLiteral("https://b\u00FCcher.example.test:6443")), {}});
    settings.clusters.push_back(UpstreamCluster{
        QStringLiteral("upper"), QUrl(QStringLiteral("https://API.Example.TEST:6443")), {}});
    return settings;
}

// A request to the cluster "prod" with the session key, to which a case adds fields.
HttpHead requestHead(const QByteArray &target = "/clusters/prod/api/v1/namespaces")
{
    HttpHead head;
    head.method = "GET";
    head.target = target;
    head.headers.push_back(HttpHeader{"Host", "127.0.0.1:8443"});
    head.headers.push_back(HttpHeader{"Authorization", "Bearer " + kSessionKey});
    return head;
}

} // namespace

class TestRequestAdmission : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void hostChecked_data();
    void hostChecked();
    void originChecked_data();
    void originChecked();
    void clusterRoute_data();
    void clusterRoute();
    void forwardedFields();
    void upgradeNamedAmongConnectionTokens_data();
    void upgradeNamedAmongConnectionTokens();
    void hasToken_data();
    void hasToken();
    void fieldNamesCompareAsciiOnly();
    void responseHopByHopFieldsRemoved();
    void serializedClientHeadMatches_data();
    void serializedClientHeadMatches();
};

void TestRequestAdmission::hostChecked_data()
{
    QTest::addColumn<QByteArray>("host");
    QTest::addColumn<bool>("admitted");

    QTest::newRow("address and port") << QByteArray("127.0.0.1:8443") << true;
    QTest::newRow("localhost") << QByteArray("localhost:8443") << true;
    QTest::newRow("localhost in capitals") << QByteArray("LocalHost:8443") << true;
    QTest::newRow("no port") << QByteArray("127.0.0.1") << false;
    QTest::newRow("other port") << QByteArray("127.0.0.1:8444") << false;
    QTest::newRow("port with a digit more") << QByteArray("127.0.0.1:84430") << false;
    QTest::newRow("port prefix") << QByteArray("127.0.0.1:844") << false;
    QTest::newRow("leading zero") << QByteArray("127.0.0.1:08443") << false;
    QTest::newRow("foreign name") << QByteArray("evil.example:8443") << false;
    QTest::newRow("rebinding subdomain") << QByteArray("localhost.evil.example:8443") << false;
    QTest::newRow("suffix on the address") << QByteArray("127.0.0.1.evil.example:8443") << false;
    QTest::newRow("empty") << QByteArray() << false;
}

void TestRequestAdmission::hostChecked()
{
    QFETCH(QByteArray, host);
    QFETCH(bool, admitted);

    HttpHead request = requestHead();
    request.headers[0].value = host;
    const RequestAdmission admission = admitRequest(request, settingsWithClusters(), kNow);
    QCOMPARE(!admission.rejection.has_value(), admitted);
    if (!admitted) {
        QCOMPARE(admission.rejection->code(), 403);
        QCOMPARE(admission.logReason, QStringLiteral("foreign Host"));
    }
}

void TestRequestAdmission::originChecked_data()
{
    QTest::addColumn<QList<QByteArray>>("origins");
    QTest::addColumn<int>("expectedCode"); // 0: admitted

    QTest::newRow("none") << QList<QByteArray>{} << 0;
    QTest::newRow("own origin") << QList<QByteArray>{"https://127.0.0.1:8443"} << 0;
    QTest::newRow("own origin in capitals") << QList<QByteArray>{"HTTPS://LOCALHOST:8443"} << 0;
    QTest::newRow("plain http") << QList<QByteArray>{"http://127.0.0.1:8443"} << 403;
    QTest::newRow("other loopback port") << QList<QByteArray>{"https://127.0.0.1:9000"} << 403;
    QTest::newRow("foreign page") << QList<QByteArray>{"https://evil.example"} << 403;
    QTest::newRow("opaque origin") << QList<QByteArray>{"null"} << 403;
    QTest::newRow("two origins") << QList<QByteArray>{"https://127.0.0.1:8443",
                                                      "https://127.0.0.1:8443"}
                                 << 400;
}

void TestRequestAdmission::originChecked()
{
    QFETCH(QList<QByteArray>, origins);
    QFETCH(int, expectedCode);

    HttpHead request = requestHead();
    for (const QByteArray &origin : origins)
        request.append("Origin", origin);
    const RequestAdmission admission = admitRequest(request, settingsWithClusters(), kNow);
    QCOMPARE(admission.rejection ? admission.rejection->code() : 0, expectedCode);
}

void TestRequestAdmission::clusterRoute_data()
{
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<QByteArray>("upstreamTarget");
    QTest::addColumn<QByteArray>("upstreamHost");

    QTest::newRow("plain") << QByteArray("/clusters/prod/api/v1/pods?watch=1")
                           << QByteArray("/api/v1/pods?watch=1") << QByteArray("10.0.0.1:6443");
    QTest::newRow("query right after the name")
        << QByteArray("/clusters/prod?timeout=1s") << QByteArray("/?timeout=1s")
        << QByteArray("10.0.0.1:6443");
    QTest::newRow("encoded name with a path prefix")
        << QByteArray("/clusters/with%20prefix/version") << QByteArray("/k8s/version")
        << QByteArray("api.example.test");
    QTest::newRow("IPv6 server") << QByteArray("/clusters/v6/healthz") << QByteArray("/healthz")
                                 << QByteArray("[fd00::1]:6443");
    // A Host field is ASCII (RFC 9110, section 7.2), so an internationalized name goes in its
    // IDNA form.
    QTest::newRow("internationalized server name")
        << QByteArray("/clusters/idn/healthz") << QByteArray("/healthz")
        << QByteArray("xn--bcher-kva.example.test:6443");
    QTest::newRow("server name in capitals")
        << QByteArray("/clusters/upper/healthz") << QByteArray("/healthz")
        << QByteArray("api.example.test:6443");
}

void TestRequestAdmission::clusterRoute()
{
    QFETCH(QByteArray, target);
    QFETCH(QByteArray, upstreamTarget);
    QFETCH(QByteArray, upstreamHost);

    const RequestAdmission admission =
        admitRequest(requestHead(target), settingsWithClusters(), kNow);
    QVERIFY2(!admission.rejection, qPrintable(admission.logReason));
    QCOMPARE(admission.upstreamHead.target, upstreamTarget);
    QCOMPARE(admission.upstreamHead.values("Host"), QList<QByteArray>{upstreamHost});
}

void TestRequestAdmission::forwardedFields()
{
    HttpHead request = requestHead();
    request.append("Connection", "keep-alive, X-Hop");
    request.append("X-Hop", "only for this hop");
    request.append("Keep-Alive", "timeout=5");
    request.append("Proxy-Authorization", "Basic c2VjcmV0");
    request.append("te", "trailers");
    request.append("TRAILER", "X-Checksum");
    request.append("Transfer-Encoding", "gzip");
    request.append("Impersonate-User", "admin");
    request.append("Impersonate_Group", "system:masters");
    request.append("Accept", "application/json");

    const RequestAdmission admission = admitRequest(request, settingsWithClusters(), kNow);
    QVERIFY2(!admission.rejection, qPrintable(admission.logReason));
    QCOMPARE(headerNames(admission.upstreamHead),
             (QList<QByteArray>{"Host", "Accept", "Authorization"}));
    QCOMPARE(admission.upstreamHead.value("Authorization"), "Bearer " + kIdToken);
    QCOMPARE(admission.upstreamHead.method, QByteArray("GET"));
}

void TestRequestAdmission::upgradeNamedAmongConnectionTokens_data()
{
    QTest::addColumn<QByteArray>("connection");
    QTest::addColumn<bool>("upgrade");

    QTest::newRow("upgrade alone") << QByteArray("Upgrade") << true;
    QTest::newRow("among others") << QByteArray("keep-alive,  UPGRADE ") << true;
    QTest::newRow("longer token") << QByteArray("upgrades") << false;
    QTest::newRow("shorter token") << QByteArray("upgrad") << false;
    QTest::newRow("keep-alive only") << QByteArray("keep-alive") << false;
}

void TestRequestAdmission::upgradeNamedAmongConnectionTokens()
{
    QFETCH(QByteArray, connection);
    QFETCH(bool, upgrade);

    HttpHead request = requestHead("/clusters/prod/api/v1/namespaces/a/pods/b/exec");
    request.append("Connection", connection);
    request.append("Upgrade", "websocket");
    const RequestAdmission admission = admitRequest(request, settingsWithClusters(), kNow);
    if (upgrade) {
        QVERIFY2(!admission.rejection, qPrintable(admission.logReason));
        QCOMPARE(admission.upstreamHead.value("Upgrade"), QByteArray("websocket"));
        QCOMPARE(admission.upstreamHead.value("Connection"), QByteArray("Upgrade"));
    } else {
        // An Upgrade field that Connection does not name is not an upgrade the proxy can tunnel.
        QVERIFY(admission.rejection);
        QCOMPARE(admission.rejection->code(), 501);
    }
}

void TestRequestAdmission::hasToken_data()
{
    QTest::addColumn<QList<QByteArray>>("values");
    QTest::addColumn<QByteArray>("token");
    QTest::addColumn<bool>("found");

    QTest::newRow("single") << QList<QByteArray>{"close"} << QByteArray("close") << true;
    QTest::newRow("case differs") << QList<QByteArray>{"Close"} << QByteArray("close") << true;
    QTest::newRow("second field") << QList<QByteArray>{"keep-alive", "te, upgrade"}
                                  << QByteArray("upgrade") << true;
    QTest::newRow("tabs around") << QList<QByteArray>{"a,\tclose\t,b"} << QByteArray("close")
                                 << true;
    QTest::newRow("inside a token")
        << QList<QByteArray>{"closed, enclose"} << QByteArray("close") << false;
    QTest::newRow("empty entries") << QList<QByteArray>{",, ,"} << QByteArray("close") << false;
    QTest::newRow("no field") << QList<QByteArray>{} << QByteArray("close") << false;
}

void TestRequestAdmission::hasToken()
{
    QFETCH(QList<QByteArray>, values);
    QFETCH(QByteArray, token);
    QFETCH(bool, found);

    HttpHead head;
    head.append("Accept", token); // a field of another name never counts
    for (const QByteArray &value : values)
        head.append("connection", value);
    QCOMPARE(head.hasToken("Connection", token), found);
    QCOMPARE(head.tokens("Connection").contains(token.toLower()), found);
}

void TestRequestAdmission::fieldNamesCompareAsciiOnly()
{
    QVERIFY(fieldNameEquals("content-length", "Content-Length"));
    QVERIFY(!fieldNameEquals("Content-Length", "Content-Lengt"));
    // '[' and '{' differ only in the bit that separates 'A' from 'a', but they are not letters.
    QVERIFY(!fieldNameEquals("X-[", "X-{"));
    // Latin-1 letters are not folded: a field name cannot contain them.
    QVERIFY(!fieldNameEquals("X-\xc4", "X-\xe4"));
    QVERIFY(startsWithIgnoringCase("Proxy-Connection", "proxy-"));
    QVERIFY(!startsWithIgnoringCase("Proxy", "proxy-"));
}

void TestRequestAdmission::responseHopByHopFieldsRemoved()
{
    HttpHead response;
    response.statusCode = 200;
    response.reasonPhrase = "OK";
    response.append("Content-Type", "application/json");
    response.append("Connection", "keep-alive, X-Upstream-Hop");
    response.append("Keep-Alive", "timeout=60");
    response.append("upgrade", "h2c");
    response.append("X-Upstream-Hop", "1");
    response.append("Access-Control-Allow-Origin", "*");
    response.append("Content-Length", "12");
    response.contentLength = 12;

    const HttpHead client = clientResponseHead(response, HttpBodyFraming::ContentLength, false);
    QCOMPARE(headerNames(client),
             (QList<QByteArray>{"Content-Type", "Content-Security-Policy", "Content-Length"}));
    QCOMPARE(client.value("Content-Length"), QByteArray("12"));
    QCOMPARE(client.statusCode, 200);
    QCOMPARE(client.reasonPhrase, QByteArray("OK"));
}

void TestRequestAdmission::serializedClientHeadMatches_data()
{
    QTest::addColumn<HttpBodyFraming>("framing");
    QTest::addColumn<bool>("close");

    QTest::newRow("length") << HttpBodyFraming::ContentLength << false;
    QTest::newRow("length, close") << HttpBodyFraming::ContentLength << true;
    QTest::newRow("chunked") << HttpBodyFraming::Chunked << false;
    QTest::newRow("until close") << HttpBodyFraming::UntilClose << true;
    QTest::newRow("no body") << HttpBodyFraming::None << false;
}

// The proxy writes the client's response head without building it as an HttpHead first, so the
// bytes must be those of the head that clientResponseHead() builds.
void TestRequestAdmission::serializedClientHeadMatches()
{
    QFETCH(HttpBodyFraming, framing);
    QFETCH(bool, close);

    HttpHead response;
    response.statusCode = 404;
    response.reasonPhrase = "Not Found";
    response.append("Content-Type", "application/json");
    response.append("Connection", "X-Hop");
    response.append("X-Hop", "1");
    response.append("Set-Cookie", "lamplighter-session=forged; Path=/");
    response.append("Set-Cookie", "theme=dark");
    response.append("Access-Control-Allow-Origin", "*");
    response.append("Content-Length", "1234567890123");
    response.append("Transfer-Encoding", "chunked");
    response.append("Empty", "");
    response.contentLength = 1234567890123;

    const QByteArray expected = clientResponseHead(response, framing, close).serializeResponse();
    QCOMPARE(serializedClientResponseHead(response, framing, close), expected);
    QVERIFY(expected.contains("\r\nSet-Cookie: theme=dark\r\n"));
    QVERIFY(!expected.contains("forged"));
}

QTEST_GUILESS_MAIN(TestRequestAdmission)
#include "tst_requestadmission.moc"
