#include "ProviderDouble.h"
#include "oidc/Discovery.h"
#include "oidc/ProviderNetworkAccessManager.h"
#include "tls/LocalCertificate.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>
#include <memory>

using namespace lamplighter;
using lamplighter::test::ProviderDouble;

namespace {

const QString issuer = QStringLiteral("https://idp.example.test/realms/dev");
const QUrl documentUrl(issuer + QStringLiteral("/.well-known/openid-configuration"));

QJsonObject validDocument()
{
    return QJsonObject{
        {QStringLiteral("issuer"), issuer},
        {QStringLiteral("authorization_endpoint"), issuer + QStringLiteral("/auth")},
        {QStringLiteral("token_endpoint"), issuer + QStringLiteral("/token")},
        {QStringLiteral("jwks_uri"), issuer + QStringLiteral("/certs")},
        {QStringLiteral("code_challenge_methods_supported"),
         QJsonArray{QStringLiteral("plain"), QStringLiteral("S256")}},
    };
}

QByteArray withField(const QString &field, const QJsonValue &value)
{
    QJsonObject document = validDocument();
    if (value.isUndefined())
        document.remove(field);
    else
        document.insert(field, value);
    return QJsonDocument(document).toJson();
}

} // namespace

class TestDiscovery : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void documentAccepted();
    void documentRejected_data();
    void documentRejected();
    void challengeMethodsMayBeAbsent();
    void issParameterSupportKept();
    void issuerValidation_data();
    void issuerValidation();
    void discoveryUrl_data();
    void discoveryUrl();

    void fetchReturnsMetadata();
    void fetchRejectsHttpIssuerWithoutRequest();
    void fetchRejectsIssuerMismatch();
    void fetchReportsHttpStatus();
    void fetchFailsWithoutTrustedCa();
    void requestWithOwnCaListNotWidened();
    void fetchOfClosedPortIsTransient();

private:
    QTemporaryDir m_pkiDirectory;
};

void TestDiscovery::initTestCase()
{
    QVERIFY(m_pkiDirectory.isValid());
}

void TestDiscovery::documentAccepted()
{
    const Result<ProviderMetadata> metadata =
        ProviderMetadata::fromJson(QJsonDocument(validDocument()).toJson(), issuer, documentUrl);
    QVERIFY2(metadata.ok(), qPrintable(metadata.errorMessage()));
    QCOMPARE(metadata->issuer, issuer);
    QCOMPARE(metadata->authorizationEndpoint, QUrl(issuer + QStringLiteral("/auth")));
    QCOMPARE(metadata->tokenEndpoint, QUrl(issuer + QStringLiteral("/token")));
    QCOMPARE(metadata->jwksUri, QUrl(issuer + QStringLiteral("/certs")));
    QCOMPARE(metadata->codeChallengeMethodsSupported,
             std::optional<QStringList>({QStringLiteral("plain"), QStringLiteral("S256")}));
    QVERIFY(!metadata->authorizationResponseIssParameterSupported);
}

void TestDiscovery::documentRejected_data()
{
    QTest::addColumn<QByteArray>("document");
    QTest::addColumn<QString>("expected");

    const QString http = QStringLiteral("http://idp.example.test/token");
    QTest::newRow("issuer with trailing slash")
        << withField(QStringLiteral("issuer"), issuer + QLatin1Char('/'))
        << QStringLiteral("\"issuer\" is \"%1/\" but the configured issuer is").arg(issuer);
    QTest::newRow("issuer of another host")
        << withField(QStringLiteral("issuer"), QStringLiteral("https://evil.example.test"))
        << QStringLiteral("\"issuer\" is \"https://evil.example.test\"");
    QTest::newRow("issuer missing") << withField(QStringLiteral("issuer"), QJsonValue::Undefined)
                                    << QStringLiteral("\"issuer\" is missing");
    QTest::newRow("authorization endpoint missing")
        << withField(QStringLiteral("authorization_endpoint"), QJsonValue::Undefined)
        << QStringLiteral("\"authorization_endpoint\" is missing");
    QTest::newRow("token endpoint over http")
        << withField(QStringLiteral("token_endpoint"), http)
        << QStringLiteral("\"token_endpoint\" is not an https URL: \"%1\"").arg(http);
    QTest::newRow("token endpoint null")
        << withField(QStringLiteral("token_endpoint"), QJsonValue::Null)
        << QStringLiteral("\"token_endpoint\" is missing");
    QTest::newRow("jwks uri relative")
        << withField(QStringLiteral("jwks_uri"), QStringLiteral("/certs"))
        << QStringLiteral("\"jwks_uri\" is not an https URL");
    QTest::newRow("jwks uri not a string") << withField(QStringLiteral("jwks_uri"), 42)
                                           << QStringLiteral("\"jwks_uri\" is not a string");
    QTest::newRow("only plain challenge")
        << withField(QStringLiteral("code_challenge_methods_supported"),
                     QJsonArray{QStringLiteral("plain")})
        << QStringLiteral("\"code_challenge_methods_supported\" does not contain \"S256\" (it "
                          "contains: plain)");
    QTest::newRow("empty challenge list")
        << withField(QStringLiteral("code_challenge_methods_supported"), QJsonArray{})
        << QStringLiteral("does not contain \"S256\" (it contains: nothing)");
    QTest::newRow("lowercase s256") << withField(QStringLiteral("code_challenge_methods_supported"),
                                                 QJsonArray{QStringLiteral("s256")})
                                    << QStringLiteral("does not contain \"S256\"");
    QTest::newRow("challenge methods not a list")
        << withField(QStringLiteral("code_challenge_methods_supported"), QStringLiteral("S256"))
        << QStringLiteral("\"code_challenge_methods_supported\" is not a list");
    QTest::newRow("not json") << QByteArray("<html>") << QStringLiteral("it is not JSON");
    QTest::newRow("json array") << QByteArray("[]") << QStringLiteral("it is not a JSON object");
}

void TestDiscovery::documentRejected()
{
    QFETCH(QByteArray, document);
    QFETCH(QString, expected);

    const Result<ProviderMetadata> metadata =
        ProviderMetadata::fromJson(document, issuer, documentUrl);
    QVERIFY(!metadata.ok());
    const QString message = metadata.error().message;
    QVERIFY2(message.contains(expected), qPrintable(message));
    QVERIFY2(message.contains(documentUrl.toString()), qPrintable(message));
}

void TestDiscovery::challengeMethodsMayBeAbsent()
{
    const Result<ProviderMetadata> metadata = ProviderMetadata::fromJson(
        withField(QStringLiteral("code_challenge_methods_supported"), QJsonValue::Undefined),
        issuer,
        documentUrl);
    QVERIFY2(metadata.ok(), qPrintable(metadata.errorMessage()));
    QVERIFY(!metadata->codeChallengeMethodsSupported.has_value());
}

void TestDiscovery::issParameterSupportKept()
{
    const Result<ProviderMetadata> metadata = ProviderMetadata::fromJson(
        withField(QStringLiteral("authorization_response_iss_parameter_supported"), true),
        issuer,
        documentUrl);
    QVERIFY2(metadata.ok(), qPrintable(metadata.errorMessage()));
    QVERIFY(metadata->authorizationResponseIssParameterSupported);
}

void TestDiscovery::issuerValidation_data()
{
    QTest::addColumn<QUrl>("issuerUrl");
    QTest::addColumn<QString>("expected");

    QTest::newRow("https") << QUrl(issuer) << QString();
    QTest::newRow("https with port") << QUrl(QStringLiteral("https://127.0.0.1:8443")) << QString();
    QTest::newRow("http") << QUrl(QStringLiteral("http://idp.example.test"))
                          << QStringLiteral("must be an https URL");
    QTest::newRow("query") << QUrl(QStringLiteral("https://idp.example.test/?tenant=a"))
                           << QStringLiteral("must not have a query or fragment");
    QTest::newRow("fragment") << QUrl(QStringLiteral("https://idp.example.test/#a"))
                              << QStringLiteral("must not have a query or fragment");
    QTest::newRow("no host") << QUrl(QStringLiteral("https:///path"))
                             << QStringLiteral("is not a valid URL");
    QTest::newRow("empty") << QUrl() << QStringLiteral("is not a valid URL");
}

void TestDiscovery::issuerValidation()
{
    QFETCH(QUrl, issuerUrl);
    QFETCH(QString, expected);

    const Status valid = ProviderMetadata::validateIssuer(issuerUrl);
    if (expected.isEmpty()) {
        QVERIFY2(valid.ok(), qPrintable(valid.errorMessage()));
        return;
    }
    QVERIFY(!valid.ok());
    QVERIFY2(valid.errorMessage().contains(expected), qPrintable(valid.errorMessage()));
    QVERIFY2(valid.errorMessage().contains(QStringLiteral("oidc.issuer")),
             qPrintable(valid.errorMessage()));
}

void TestDiscovery::discoveryUrl_data()
{
    QTest::addColumn<QUrl>("issuerUrl");
    QTest::addColumn<QUrl>("expected");

    QTest::newRow("host only") << QUrl(QStringLiteral("https://idp.example.test"))
                               << QUrl(QStringLiteral(
                                      "https://idp.example.test/.well-known/openid-configuration"));
    QTest::newRow("path") << QUrl(issuer) << documentUrl;
    QTest::newRow("path with trailing slash") << QUrl(issuer + QLatin1Char('/')) << documentUrl;
}

void TestDiscovery::discoveryUrl()
{
    QFETCH(QUrl, issuerUrl);
    QFETCH(QUrl, expected);
    QCOMPARE(ProviderMetadata::discoveryUrl(issuerUrl), expected);
}

void TestDiscovery::fetchReturnsMetadata()
{
    ProviderDouble provider;
    const QString started = provider.start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    provider.serveDiscovery(
        {{QStringLiteral("authorization_response_iss_parameter_supported"), true}});
    ProviderNetworkAccessManager network({provider.caCertificate()});

    Discovery discovery(&network, QUrl(provider.issuer()));
    QSignalSpy finished(&discovery, &Discovery::finished);
    discovery.start();
    QVERIFY(finished.wait(10'000));

    QVERIFY2(!discovery.failed(), qPrintable(discovery.error().message));
    QCOMPARE(discovery.metadata().issuer, provider.issuer());
    QCOMPARE(discovery.metadata().tokenEndpoint, provider.url(QStringLiteral("/token")));
    QVERIFY(discovery.metadata().authorizationResponseIssParameterSupported);
    QCOMPARE(provider.requestsTo(QStringLiteral("/.well-known/openid-configuration")).size(), 1);
}

void TestDiscovery::fetchRejectsHttpIssuerWithoutRequest()
{
    ProviderNetworkAccessManager network({});
    Discovery discovery(&network, QUrl(QStringLiteral("http://127.0.0.1:1")));
    QSignalSpy finished(&discovery, &Discovery::finished);
    discovery.start();
    QCOMPARE(finished.size(), 0);
    QVERIFY(finished.wait(5000));

    QVERIFY(discovery.failed());
    QVERIFY2(discovery.error().message.contains(QStringLiteral("must be an https URL")),
             qPrintable(discovery.error().message));
    QVERIFY(!discovery.isTransient());
}

void TestDiscovery::fetchRejectsIssuerMismatch()
{
    ProviderDouble provider;
    const QString started = provider.start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    provider.serveDiscovery(
        {{QStringLiteral("issuer"), QStringLiteral("https://other.example.test")}});
    ProviderNetworkAccessManager network({provider.caCertificate()});

    Discovery discovery(&network, QUrl(provider.issuer()));
    QSignalSpy finished(&discovery, &Discovery::finished);
    discovery.start();
    QVERIFY(finished.wait(10'000));

    QVERIFY(discovery.failed());
    const QString message = discovery.error().message;
    QVERIFY2(message.contains(QStringLiteral("https://other.example.test")), qPrintable(message));
    QVERIFY2(
        message.contains(provider.issuer() + QStringLiteral("/.well-known/openid-configuration")),
        qPrintable(message));
}

void TestDiscovery::fetchReportsHttpStatus()
{
    ProviderDouble provider;
    const QString started = provider.start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    ProviderNetworkAccessManager network({provider.caCertificate()});

    Discovery discovery(&network, QUrl(provider.issuer()));
    QSignalSpy finished(&discovery, &Discovery::finished);
    discovery.start();
    QVERIFY(finished.wait(10'000));

    QVERIFY(discovery.failed());
    const QString message = discovery.error().message;
    QVERIFY2(message.contains(QStringLiteral("HTTP status 404")), qPrintable(message));
    QVERIFY2(message.contains(provider.issuer()), qPrintable(message));
    QVERIFY(!discovery.isTransient());
}

void TestDiscovery::fetchFailsWithoutTrustedCa()
{
    ProviderDouble provider;
    const QString started = provider.start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    provider.serveDiscovery();
    ProviderNetworkAccessManager network({});

    Discovery discovery(&network, QUrl(provider.issuer()));
    QSignalSpy finished(&discovery, &Discovery::finished);
    discovery.start();
    QVERIFY(finished.wait(10'000));

    QVERIFY(discovery.failed());
    QVERIFY2(discovery.error().message.contains(QStringLiteral("Failed to fetch")),
             qPrintable(discovery.error().message));
    QVERIFY2(discovery.error().message.contains(QStringLiteral("oidc.ca_file")),
             qPrintable(discovery.error().message));
    QVERIFY(!discovery.isTransient());
    QVERIFY(provider.requests().isEmpty());
}

// The extra CA certificates widen only the default trust. A request that names its own CA list,
// here a certificate that issued nothing, is not accepted through them.
void TestDiscovery::requestWithOwnCaListNotWidened()
{
    ProviderDouble provider;
    const QString started = provider.start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    provider.serveDiscovery();
    ProviderNetworkAccessManager network({provider.caCertificate()});
    const Result<LocalCertificate> unrelated =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    QVERIFY2(unrelated.ok(), qPrintable(unrelated.errorMessage()));

    QNetworkRequest request(
        QUrl(provider.issuer() + QStringLiteral("/.well-known/openid-configuration")));
    QSslConfiguration tls = request.sslConfiguration();
    tls.setCaCertificates({unrelated->certificate});
    request.setSslConfiguration(tls);
    std::unique_ptr<QNetworkReply> reply(network.get(request));
    QSignalSpy finished(reply.get(), &QNetworkReply::finished);
    QVERIFY(finished.wait(10'000));
    QCOMPARE(reply->error(), QNetworkReply::SslHandshakeFailedError);

    // The same request with the default CA configuration is accepted through the extra CA.
    std::unique_ptr<QNetworkReply> trusted(network.get(QNetworkRequest(request.url())));
    QSignalSpy trustedFinished(trusted.get(), &QNetworkReply::finished);
    QVERIFY(trustedFinished.wait(10'000));
    QCOMPARE(trusted->error(), QNetworkReply::NoError);
}

void TestDiscovery::fetchOfClosedPortIsTransient()
{
    QTcpServer closed;
    QVERIFY(closed.listen(QHostAddress(QHostAddress::LocalHost), 0));
    const quint16 port = closed.serverPort();
    closed.close();
    ProviderNetworkAccessManager network({});

    Discovery discovery(&network, QUrl(QStringLiteral("https://127.0.0.1:%1").arg(port)));
    QSignalSpy finished(&discovery, &Discovery::finished);
    discovery.start();
    QVERIFY(finished.wait(10'000));

    QVERIFY(discovery.failed());
    QVERIFY(discovery.isTransient());
}

QTEST_GUILESS_MAIN(TestDiscovery)
#include "tst_discovery.moc"
