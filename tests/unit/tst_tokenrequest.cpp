#include "ProviderDouble.h"
#include "oidc/OAuthProtocol.h"
#include "oidc/ProviderNetworkAccessManager.h"
#include "oidc/TokenRequest.h"

#include <QJsonObject>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;
using lamplighter::test::ProviderDouble;

namespace {

const QString tokenPath = QStringLiteral("/token");

const FormParameters codeGrant{
    {QStringLiteral("grant_type"), QStringLiteral("authorization_code")},
    {QStringLiteral("code"), QStringLiteral("c0de+/=&")},
    {QStringLiteral("client_id"), QStringLiteral("lamplighter")},
};

} // namespace

class TestTokenRequest : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void formParametersPercentEncoded();
    void oauthErrorSanitized();

    void successReadsTokens();
    void successWithoutRefreshToken();
    void requestSendsForm();
    void errorResponse_data();
    void errorResponse();
    void droppedConnectionIsTransient();
    void closedPortIsTransient();
    void abortSuppressesFinished();

private:
    // Starts request and waits until it has finished once.
    void runRequest(TokenRequest &request);

    QTemporaryDir m_pkiDirectory;
    ProviderDouble *m_provider = nullptr;
    ProviderNetworkAccessManager *m_network = nullptr;
};

void TestTokenRequest::initTestCase()
{
    QVERIFY(m_pkiDirectory.isValid());
}

void TestTokenRequest::init()
{
    m_provider = new ProviderDouble(this);
    const QString started = m_provider->start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    m_network = new ProviderNetworkAccessManager({m_provider->caCertificate()}, this);
}

void TestTokenRequest::cleanup()
{
    delete m_network;
    delete m_provider;
}

void TestTokenRequest::runRequest(TokenRequest &request)
{
    QSignalSpy finished(&request, &TokenRequest::finished);
    request.start();
    QVERIFY(finished.wait(10'000));
    QCOMPARE(finished.size(), 1);
}

void TestTokenRequest::formParametersPercentEncoded()
{
    const QByteArray encoded = encodeFormParameters({
        {QStringLiteral("scope"), QStringLiteral("openid email")},
        {QStringLiteral("client_id"), QStringLiteral("a+b&c=d")},
        {QStringLiteral("redirect_uri"), QStringLiteral("http://127.0.0.1:5/callback")},
        {QStringLiteral("name"), QStringLiteral("Zoë")},
    });
    QCOMPARE(encoded,
             QByteArray("scope=openid%20email&client_id=a%2Bb%26c%3Dd"
                        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcallback&name=Zo%C3%AB"));
}

void TestTokenRequest::oauthErrorSanitized()
{
    QCOMPARE(describeOAuthError(QStringLiteral("invalid_grant"), QString()),
             QStringLiteral("invalid_grant"));
    QCOMPARE(describeOAuthError(QStringLiteral("invalid_grant"), QStringLiteral("Expired\r\nX: ü")),
             QStringLiteral("invalid_grant (Expired??X: ?)"));
    QCOMPARE(describeOAuthError(QStringLiteral("e"), QString(1000, QLatin1Char('a'))).size(),
             QStringLiteral("e ()").size() + 300);
}

void TestTokenRequest::successReadsTokens()
{
    m_provider->setJson(tokenPath,
                        {{QStringLiteral("access_token"), QStringLiteral("access-1")},
                         {QStringLiteral("token_type"), QStringLiteral("Bearer")},
                         {QStringLiteral("id_token"), QStringLiteral("header.payload.signature")},
                         {QStringLiteral("refresh_token"), QStringLiteral("refresh-1")},
                         {QStringLiteral("expires_in"), 300}});
    TokenRequest request(m_network, m_provider->url(tokenPath), codeGrant);
    runRequest(request);

    QVERIFY2(!request.failed(), qPrintable(request.error().message));
    QCOMPARE(request.response().accessToken, QByteArray("access-1"));
    QCOMPARE(request.response().idToken, QByteArray("header.payload.signature"));
    QCOMPARE(request.response().refreshToken, QByteArray("refresh-1"));
    QCOMPARE(request.response().expiresIn, std::optional(std::chrono::seconds(300)));
}

void TestTokenRequest::successWithoutRefreshToken()
{
    m_provider->setJson(tokenPath,
                        {{QStringLiteral("access_token"), QStringLiteral("access-1")},
                         {QStringLiteral("id_token"), QStringLiteral("header.payload.signature")},
                         {QStringLiteral("expires_in"), QStringLiteral("60")}});
    TokenRequest request(m_network, m_provider->url(tokenPath), codeGrant);
    runRequest(request);

    QVERIFY2(!request.failed(), qPrintable(request.error().message));
    QVERIFY(request.response().refreshToken.isEmpty());
    QCOMPARE(request.response().expiresIn, std::optional(std::chrono::seconds(60)));
}

void TestTokenRequest::requestSendsForm()
{
    m_provider->setJson(tokenPath, {});
    TokenRequest request(m_network, m_provider->url(tokenPath), codeGrant);
    runRequest(request);

    const QList<ProviderDouble::Request> requests = m_provider->requestsTo(tokenPath);
    QCOMPARE(requests.size(), 1);
    QCOMPARE(requests[0].method, QByteArray("POST"));
    QCOMPARE(requests[0].contentType, QByteArray("application/x-www-form-urlencoded"));
    const QUrlQuery form = requests[0].form();
    QCOMPARE(form.queryItemValue(QStringLiteral("grant_type")),
             QStringLiteral("authorization_code"));
    QCOMPARE(form.queryItemValue(QStringLiteral("code"), QUrl::FullyDecoded),
             QStringLiteral("c0de+/=&"));
    QCOMPARE(form.queryItemValue(QStringLiteral("client_id")), QStringLiteral("lamplighter"));
}

void TestTokenRequest::errorResponse_data()
{
    QTest::addColumn<int>("status");
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<QString>("expected");
    QTest::addColumn<QString>("oauthError");
    QTest::addColumn<bool>("transient");

    QTest::newRow("invalid grant")
        << 400
        << QByteArray(R"({"error":"invalid_grant","error_description":"grant request is invalid"})")
        << QStringLiteral(
               "rejected the token request to %1: invalid_grant (grant request is invalid)")
        << QStringLiteral("invalid_grant") << false;
    QTest::newRow("invalid client")
        << 401 << QByteArray(R"({"error":"invalid_client"})")
        << QStringLiteral("rejected the token request to %1: invalid_client.")
        << QStringLiteral("invalid_client") << false;
    QTest::newRow("server error page")
        << 500 << QByteArray("<html>oops</html>")
        << QStringLiteral("The token endpoint %1 returned HTTP status 500.") << QString() << true;
    QTest::newRow("temporarily unavailable")
        << 503 << QByteArray(R"({"error":"temporarily_unavailable"})")
        << QStringLiteral("temporarily_unavailable") << QStringLiteral("temporarily_unavailable")
        << true;
    QTest::newRow("too many requests")
        << 429 << QByteArray() << QStringLiteral("HTTP status 429") << QString() << true;
    QTest::newRow("error without code") << 400 << QByteArray(R"({"error_description":"x"})")
                                        << QStringLiteral("HTTP status 400") << QString() << false;
    QTest::newRow("redirect") << 302 << QByteArray()
                              << QStringLiteral("returned a redirect (HTTP status 302)")
                              << QString() << false;
    QTest::newRow("missing id token")
        << 200 << QByteArray(R"({"access_token":"a","token_type":"Bearer"})")
        << QStringLiteral("The token response from %1 contains no id_token") << QString() << false;
    QTest::newRow("missing access token")
        << 200 << QByteArray(R"({"id_token":"a.b.c"})")
        << QStringLiteral("contains no access_token") << QString() << false;
    QTest::newRow("refresh token not a string")
        << 200 << QByteArray(R"({"id_token":"a.b.c","access_token":"a","refresh_token":7})")
        << QStringLiteral("refresh_token that is not a string") << QString() << false;
    QTest::newRow("not json") << 200 << QByteArray("id_token=a.b.c")
                              << QStringLiteral("is not a JSON object") << QString() << false;
}

// The message names the endpoint and the OAuth error but contains nothing else of the response
// body, because a body can contain tokens.
void TestTokenRequest::errorResponse()
{
    QFETCH(int, status);
    QFETCH(QByteArray, body);
    QFETCH(QString, expected);
    QFETCH(QString, oauthError);
    QFETCH(bool, transient);

    m_provider->setHandler(tokenPath, [status, body](const ProviderDouble::Request &) {
        ProviderDouble::Response response;
        response.status = status;
        response.body = body;
        if (status == 302)
            response.location = "https://elsewhere.example.test/token";
        return response;
    });
    TokenRequest request(m_network, m_provider->url(tokenPath), codeGrant);
    runRequest(request);

    QVERIFY(request.failed());
    const QString url = m_provider->url(tokenPath).toString();
    const QString message = request.error().message;
    QVERIFY2(
        message.contains(expected.contains(QStringLiteral("%1")) ? expected.arg(url) : expected),
        qPrintable(message));
    QVERIFY2(message.contains(url), qPrintable(message));
    QVERIFY2(!message.contains(QStringLiteral("a.b.c")), qPrintable(message));
    QVERIFY2(!message.contains(QStringLiteral("oops")), qPrintable(message));
    QCOMPARE(request.oauthError(), oauthError);
    QCOMPARE(request.isTransient(), transient);
    QVERIFY(request.response().idToken.isEmpty());
}

void TestTokenRequest::droppedConnectionIsTransient()
{
    m_provider->setHandler(tokenPath, [](const ProviderDouble::Request &) {
        ProviderDouble::Response response;
        response.closeWithoutResponse = true;
        return response;
    });
    TokenRequest request(m_network, m_provider->url(tokenPath), codeGrant);
    runRequest(request);

    QVERIFY(request.failed());
    QVERIFY(request.isTransient());
    QVERIFY(request.oauthError().isEmpty());
    QVERIFY2(request.error().message.contains(QStringLiteral("The token request to")),
             qPrintable(request.error().message));
}

void TestTokenRequest::closedPortIsTransient()
{
    QTcpServer closed;
    QVERIFY(closed.listen(QHostAddress(QHostAddress::LocalHost), 0));
    const quint16 port = closed.serverPort();
    closed.close();

    TokenRequest request(
        m_network, QUrl(QStringLiteral("https://127.0.0.1:%1/token").arg(port)), codeGrant);
    runRequest(request);

    QVERIFY(request.failed());
    QVERIFY(request.isTransient());
}

void TestTokenRequest::abortSuppressesFinished()
{
    m_provider->setJson(tokenPath, {});
    TokenRequest request(m_network, m_provider->url(tokenPath), codeGrant);
    QSignalSpy finished(&request, &TokenRequest::finished);
    request.start();
    request.abort();
    QTest::qWait(200);
    QCOMPARE(finished.size(), 0);
}

QTEST_GUILESS_MAIN(TestTokenRequest)
#include "tst_tokenrequest.moc"
