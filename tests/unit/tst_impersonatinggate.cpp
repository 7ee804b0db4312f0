#include "ProviderDouble.h"
#include "TestHttpClient.h"
#include "TestJwt.h"
#include "clusterproxy/ImpersonatingGate.h"
#include "clusterproxy/NamespaceLister.h"
#include "oidc/ClaimSet.h"
#include "oidc/IdTokenVerifier.h"
#include "proxy/HttpHead.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QNetworkAccessManager>
#include <QSslConfiguration>
#include <QTemporaryDir>
#include <QTest>
#include <memory>
#include <optional>

using namespace lamplighter;
using namespace lamplighter::test;
using namespace std::chrono_literals;

namespace {

// Parses claims as the cluster proxy parses a verified token's payload.
ClaimSet claimSet(const QJsonObject &claims)
{
    Result<ClaimSet> parsed = ClaimSet::parse(QJsonDocument(claims).toJson(QJsonDocument::Compact));
    if (!parsed)
        qFatal("The test claims do not parse: %s", qPrintable(parsed.errorMessage()));
    return std::move(parsed).value();
}

// The issuer is fixed, so data rows can sign tokens before init() starts the provider double that
// serves the keys. The verifier fetches the keys from the jwks_uri it is given, not from the
// issuer.
const QString issuer = QStringLiteral("https://login.example.test");
const QString clientId = QStringLiteral("lamplighter");
const QString keyId = QStringLiteral("rsa-1");
const QByteArray serviceAccountToken = "service-account-token-of-the-proxy";
const QUrl apiServer(QStringLiteral("https://127.0.0.1:6443"));

// The decision a gate made on one request, and when it made it.
struct Decision {
    int calls = 0;              // how often decide was called
    bool beforeReturn = false;  // decide ran inside admit()
    RequestAdmission admission; // the last admission passed to decide
};

// Calls admit() and runs the event loop until decide is called, for at most 10 s.
Decision admitAndWait(ImpersonatingGate &gate, const HttpHead &request)
{
    auto decision = std::make_shared<Decision>();
    auto returned = std::make_shared<bool>(false);
    gate.admit(request, [decision, returned](const RequestAdmission &admission) {
        ++decision->calls;
        decision->beforeReturn = !*returned;
        decision->admission = admission;
    });
    *returned = true;
    // A timeout leaves calls at 0, which every test compares with 1.
    if (!QTest::qWaitFor([decision] { return decision->calls > 0; }, 10000))
        return *decision;
    // Lets a second, wrong call of decide arrive before the count is read.
    QTest::qWait(0);
    return *decision;
}

HttpHead getRequest(const QByteArray &target)
{
    HttpHead request;
    request.method = "GET";
    request.target = target;
    request.append("Host", "cluster-proxy.example.test");
    return request;
}

// A kubectl exec request as a WebSocket upgrade.
HttpHead execRequest(const QByteArray &token)
{
    HttpHead request =
        getRequest("/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&tty=true");
    request.append("Connection", "Upgrade");
    request.append("Upgrade", "websocket");
    request.append("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    request.append("Sec-WebSocket-Version", "13");
    request.append("Sec-WebSocket-Protocol", "v5.channel.k8s.io");
    if (!token.isEmpty())
        request.append("Authorization", "Bearer " + token);
    return request;
}

// A request to list pods with `token` as the bearer token, unless it is empty.
HttpHead podsRequest(const QByteArray &token)
{
    HttpHead request = getRequest("/api/v1/namespaces/default/pods?limit=500");
    if (!token.isEmpty())
        request.append("Authorization", "Bearer " + token);
    return request;
}

} // namespace

class TestImpersonatingGate : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void impersonationUsesPrefixes();
    void impersonationReadsStringGroup();
    void impersonationWithoutGroups();
    void impersonationRejectsClaims_data();
    void impersonationRejectsClaims();
    void systemGroupsDropped();
    void extrasBecomeHeaders();
    void controlCharactersRejected();
    void whoAmIAsksTheApiServer();
    void whoAmIRejectsOtherMethods();
    void metricsRendered();
    void namespaceListingOffByDefault();
    void namespaceListShape();
    void apiServerPathPrefixed();

    void healthzAnswered_data();
    void healthzAnswered();
    void readyzFollowsState_data();
    void readyzFollowsState();
    void requestWithoutTokenRejected();
    void validTokenForwarded();
    void invalidTokenRejected_data();
    void invalidTokenRejected();
    void requiredClaimEnforced();
    void allowedGroupsEnforced();
    void verifiedTokenCached();
    void extraAudienceAccepted();
    void plainRequestAdmitted_data();
    void plainRequestAdmitted();

private:
    ClusterProxyConfig config() const;
    QJsonObject validClaims() const;
    QByteArray signToken(const QJsonObject &claims) const;
    // Creates a gate over m_verifier with the keys marked as loaded and the service account token
    // set.
    std::unique_ptr<ImpersonatingGate> readyGate(const ClusterProxyConfig &gateConfig) const;

    QTemporaryDir m_pkiDirectory;
    std::optional<TestKey> m_key;
    std::optional<TestKey> m_otherKey;
    ProviderDouble *m_provider = nullptr;
    QNetworkAccessManager *m_network = nullptr;
    IdTokenVerifier *m_verifier = nullptr;
};

void TestImpersonatingGate::initTestCase()
{
    QVERIFY(m_pkiDirectory.isValid());
    m_key = TestKey::generateRsa();
    m_otherKey = TestKey::generateRsa();
}

void TestImpersonatingGate::init()
{
    m_provider = new ProviderDouble(this);
    const QString started = m_provider->start(m_pkiDirectory.path());
    QVERIFY2(started.isEmpty(), qPrintable(started));
    const QByteArray keySet = TestJwt::keySetJson({m_key->publicJwk(keyId)});
    m_provider->setHandler(QStringLiteral("/jwks"), [keySet](const ProviderDouble::Request &) {
        ProviderDouble::Response response;
        response.body = keySet;
        return response;
    });

    m_network = new QNetworkAccessManager(this);
    m_verifier = new IdTokenVerifier(m_network, m_provider->url(QStringLiteral("/jwks")), this);
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.addCaCertificate(m_provider->caCertificate());
    m_verifier->setSslConfiguration(tls);
}

void TestImpersonatingGate::cleanup()
{
    delete m_verifier;
    delete m_network;
    delete m_provider;
    m_verifier = nullptr;
    m_network = nullptr;
    m_provider = nullptr;
}

ClusterProxyConfig TestImpersonatingGate::config() const
{
    ClusterProxyConfig gateConfig;
    gateConfig.issuer = QUrl(issuer);
    gateConfig.clientId = clientId;
    gateConfig.audiences = {clientId};
    gateConfig.userNameClaim = QStringLiteral("email");
    gateConfig.userNamePrefix = QStringLiteral("oidc:");
    gateConfig.groupsClaim = QStringLiteral("groups");
    gateConfig.groupsPrefix = QStringLiteral("team:");
    gateConfig.apiServer = apiServer;
    return gateConfig;
}

QJsonObject TestImpersonatingGate::validClaims() const
{
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    return QJsonObject{
        {QStringLiteral("iss"), issuer},
        {QStringLiteral("sub"), QStringLiteral("user-42")},
        {QStringLiteral("aud"), clientId},
        {QStringLiteral("exp"), now + 300},
        {QStringLiteral("iat"), now - 10},
        {QStringLiteral("email"), QStringLiteral("jane@example.test")},
        {QStringLiteral("groups"),
         QJsonArray{QStringLiteral("developers"), QStringLiteral("viewers")}},
    };
}

QByteArray TestImpersonatingGate::signToken(const QJsonObject &claims) const
{
    return TestJwt::sign(TestJwt::header(QStringLiteral("RS256"), keyId), claims, *m_key);
}

std::unique_ptr<ImpersonatingGate>
TestImpersonatingGate::readyGate(const ClusterProxyConfig &gateConfig) const
{
    auto gate = std::make_unique<ImpersonatingGate>(gateConfig, m_verifier);
    gate->setKeysLoaded(true);
    gate->setServiceAccountToken(serviceAccountToken);
    return gate;
}

void TestImpersonatingGate::impersonationUsesPrefixes()
{
    const QJsonObject claims{
        {QStringLiteral("sub"), QStringLiteral("user-42")},
        {QStringLiteral("email"), QStringLiteral("jane@example.test")},
        {QStringLiteral("groups"), QJsonArray{QStringLiteral("developers"), QStringLiteral("ops")}},
    };
    const Result<Impersonation> person = impersonationFromClaims(claimSet(claims), config());
    QVERIFY2(person.ok(), qPrintable(person.errorMessage()));
    QCOMPARE(person->user, QStringLiteral("oidc:jane@example.test"));
    QCOMPARE(person->groups,
             QStringList({QStringLiteral("team:developers"),
                          QStringLiteral("team:ops"),
                          QStringLiteral("system:authenticated")}));
    QCOMPARE(person->uid, QStringLiteral("user-42"));
}

void TestImpersonatingGate::impersonationReadsStringGroup()
{
    const QJsonObject claims{
        {QStringLiteral("sub"), QStringLiteral("user-42")},
        {QStringLiteral("email"), QStringLiteral("jane@example.test")},
        {QStringLiteral("groups"), QStringLiteral("developers")},
    };
    const Result<Impersonation> person = impersonationFromClaims(claimSet(claims), config());
    QVERIFY2(person.ok(), qPrintable(person.errorMessage()));
    QCOMPARE(
        person->groups,
        QStringList({QStringLiteral("team:developers"), QStringLiteral("system:authenticated")}));
}

void TestImpersonatingGate::impersonationWithoutGroups()
{
    ClusterProxyConfig unprefixed = config();
    unprefixed.userNameClaim = QStringLiteral("sub");
    unprefixed.userNamePrefix.clear();
    const QJsonObject claims{{QStringLiteral("sub"), QStringLiteral("user-42")}};

    const Result<Impersonation> person = impersonationFromClaims(claimSet(claims), unprefixed);
    QVERIFY2(person.ok(), qPrintable(person.errorMessage()));
    QCOMPARE(person->user, QStringLiteral("user-42"));
    QCOMPARE(person->groups, QStringList({QStringLiteral("system:authenticated")}));
    QCOMPARE(person->uid, QStringLiteral("user-42"));
}

void TestImpersonatingGate::impersonationRejectsClaims_data()
{
    QTest::addColumn<QJsonObject>("claims");
    QTest::addColumn<QString>("expected");

    const QString noUser = QStringLiteral("The ID token has no user name claim \"email\" with a "
                                          "string value.");
    const QJsonValue sub = QStringLiteral("user-42");
    const QJsonValue email = QStringLiteral("jane@example.test");

    QTest::newRow("user claim missing") << QJsonObject{{QStringLiteral("sub"), sub}} << noUser;
    QTest::newRow("user claim a number")
        << QJsonObject{{QStringLiteral("sub"), sub}, {QStringLiteral("email"), 42}} << noUser;
    QTest::newRow("user claim a list")
        << QJsonObject{{QStringLiteral("sub"), sub},
                       {QStringLiteral("email"), QJsonArray{QStringLiteral("jane@example.test")}}}
        << noUser;
    QTest::newRow("user claim empty")
        << QJsonObject{{QStringLiteral("sub"), sub}, {QStringLiteral("email"), QString()}}
        << noUser;
    QTest::newRow("group entry a number")
        << QJsonObject{{QStringLiteral("sub"), sub},
                       {QStringLiteral("email"), email},
                       {QStringLiteral("groups"), QJsonArray{QStringLiteral("developers"), 7}}}
        << QStringLiteral("The ID token's groups claim \"groups\" contains a value that is not a "
                          "string.");
    QTest::newRow("groups overage")
        << QJsonObject{{QStringLiteral("sub"), sub},
                       {QStringLiteral("email"), email},
                       {QStringLiteral("_claim_names"),
                        QJsonObject{{QStringLiteral("groups"), QStringLiteral("src1")}}},
                       {QStringLiteral("_claim_sources"),
                        QJsonObject{
                            {QStringLiteral("src1"),
                             QJsonObject{{QStringLiteral("endpoint"),
                                          QStringLiteral("https://graph.example.test/")}}}}}}
        << QStringLiteral("The ID token names its groups claim \"groups\" in \"_claim_names\" "
                          "instead of carrying it, because the issuer left the groups out (a "
                          "groups overage). The cluster proxy does not fetch them from "
                          "\"_claim_sources\". Make the issuer send fewer groups, for example "
                          "only those assigned to the application.");
    QTest::newRow("groups claim an object")
        << QJsonObject{{QStringLiteral("sub"), sub},
                       {QStringLiteral("email"), email},
                       {QStringLiteral("groups"),
                        QJsonObject{{QStringLiteral("developers"), true}}}}
        << QStringLiteral("The ID token's groups claim \"groups\" is not a list of strings.");
}

void TestImpersonatingGate::impersonationRejectsClaims()
{
    QFETCH(QJsonObject, claims);
    QFETCH(QString, expected);

    const Result<Impersonation> person = impersonationFromClaims(claimSet(claims), config());
    QVERIFY2(!person.ok(), "the claims must be rejected");
    QCOMPARE(person.errorMessage(), expected);
}

// Without a prefix, an issuer's system:masters would become the API server's own group.
void TestImpersonatingGate::systemGroupsDropped()
{
    ClusterProxyConfig unprefixed = config();
    unprefixed.groupsPrefix.clear();
    const QJsonObject claims{
        {QStringLiteral("sub"), QStringLiteral("user-42")},
        {QStringLiteral("email"), QStringLiteral("jane@example.test")},
        {QStringLiteral("groups"),
         QJsonArray{QStringLiteral("system:masters"), QStringLiteral("developers")}}};

    const Result<Impersonation> person = impersonationFromClaims(claimSet(claims), unprefixed);
    QVERIFY2(person.ok(), qPrintable(person.errorMessage()));
    QCOMPARE(person->groups,
             QStringList({QStringLiteral("developers"), QStringLiteral("system:authenticated")}));

    ClusterProxyConfig prefixed = config();
    prefixed.groupsPrefix = QStringLiteral("oidc:");
    const Result<Impersonation> prefixedPerson =
        impersonationFromClaims(claimSet(claims), prefixed);
    QVERIFY2(prefixedPerson.ok(), qPrintable(prefixedPerson.errorMessage()));
    QVERIFY2(prefixedPerson->groups.contains(QStringLiteral("oidc:system:masters")),
             "a prefixed group is the issuer's own and must pass");
}

void TestImpersonatingGate::extrasBecomeHeaders()
{
    ClusterProxyConfig withExtras = config();
    withExtras.extraClaims = {{QStringLiteral("scopes"), QStringLiteral("scp")},
                              {QStringLiteral("example.com/team"), QStringLiteral("team")}};
    const QJsonObject claims{
        {QStringLiteral("sub"), QStringLiteral("user-42")},
        {QStringLiteral("email"), QStringLiteral("jane@example.test")},
        {QStringLiteral("scp"), QJsonArray{QStringLiteral("read"), QStringLiteral("write")}},
        {QStringLiteral("team"), QStringLiteral("blue")}};
    const Result<Impersonation> person = impersonationFromClaims(claimSet(claims), withExtras);
    QVERIFY2(person.ok(), qPrintable(person.errorMessage()));

    QList<QByteArray> scopes;
    QList<QByteArray> teams;
    for (const HttpHeader &header : person->headers) {
        if (header.name == "Impersonate-Extra-scopes")
            scopes.append(header.value);
        if (header.name == "Impersonate-Extra-example.com%2Fteam")
            teams.append(header.value);
    }
    QCOMPARE(scopes, QList<QByteArray>({"read", "write"}));
    QCOMPARE(teams, QList<QByteArray>({"blue"}));
}

// A line break in a claim would end the Impersonate-* field and start a forged one.
void TestImpersonatingGate::controlCharactersRejected()
{
    const QJsonObject claims{{QStringLiteral("sub"), QStringLiteral("user-42")},
                             {QStringLiteral("email"),
                              QStringLiteral("jane@example.test\r\nImpersonate-Group: admins")}};
    const Result<Impersonation> person = impersonationFromClaims(claimSet(claims), config());
    QVERIFY2(!person.ok(), "a user name with a line break was accepted");
    QVERIFY2(person.errorMessage().contains(QStringLiteral("control character")),
             qPrintable(person.errorMessage()));
}

// The who-am-I path becomes a SelfSubjectReview, sent as the person through impersonation.
void TestImpersonatingGate::whoAmIAsksTheApiServer()
{
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    HttpHead request = getRequest("/lamplighter/whoami");
    request.append("Authorization", "Bearer " + signToken(validClaims()));
    const Decision decision = admitAndWait(*gate, request);
    QCOMPARE(decision.calls, 1);
    QVERIFY2(!decision.admission.rejection,
             qPrintable(decision.admission.rejection ? decision.admission.rejection->message()
                                                     : QString()));

    const HttpHead &upstream = decision.admission.upstreamHead;
    QCOMPARE(upstream.method, QByteArray("POST"));
    QCOMPARE(upstream.target, QByteArray("/apis/authentication.k8s.io/v1/selfsubjectreviews"));
    QVERIFY2(decision.admission.upstreamBody, "the review body is missing");
    const QJsonObject review = QJsonDocument::fromJson(*decision.admission.upstreamBody).object();
    QCOMPARE(review.value(QStringLiteral("kind")).toString(), QStringLiteral("SelfSubjectReview"));
    QCOMPARE(upstream.value("Content-Length"),
             QByteArray::number(decision.admission.upstreamBody->size()));
    QCOMPARE(upstream.value("Content-Type"), QByteArray("application/json"));
    QCOMPARE(upstream.values("Impersonate-User").size(), 1);
}

void TestImpersonatingGate::whoAmIRejectsOtherMethods()
{
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    HttpHead request = getRequest("/lamplighter/whoami");
    request.method = "DELETE";
    request.append("Authorization", "Bearer " + signToken(validClaims()));
    const Decision decision = admitAndWait(*gate, request);
    QCOMPARE(decision.calls, 1);
    QVERIFY2(decision.admission.rejection, "a DELETE on the who-am-I path was forwarded");
    QCOMPARE(decision.admission.rejection->code(), 405);
}

// GET /metrics renders the cache lookups the gate made and the responses its owner recorded.
void TestImpersonatingGate::metricsRendered()
{
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    const QByteArray token = signToken(validClaims());
    QCOMPARE(admitAndWait(*gate, podsRequest(token)).calls, 1);
    QCOMPARE(admitAndWait(*gate, podsRequest(token)).calls, 1);
    gate->metrics().recordResponse(200, true, 30);
    gate->metrics().recordResponse(200, true, 700);
    gate->metrics().recordResponse(401, false, 1);

    const Decision decision = admitAndWait(*gate, getRequest("/metrics"));
    QCOMPARE(decision.calls, 1);
    QVERIFY2(decision.admission.browserResponse, "/metrics was not answered by the gate");
    QCOMPARE(decision.admission.browserResponse->code, 200);
    const QString text = decision.admission.browserResponse->message;
    const QStringList expectedLines = {
        QStringLiteral("lamplighter_cluster_proxy_responses_total{code=\"200\"} 2"),
        QStringLiteral("lamplighter_cluster_proxy_responses_total{code=\"401\"} 1"),
        QStringLiteral("lamplighter_cluster_proxy_token_cache_lookups_total{result=\"hit\"} 1"),
        QStringLiteral("lamplighter_cluster_proxy_token_cache_lookups_total{result=\"miss\"} 1"),
        QStringLiteral("lamplighter_cluster_proxy_upstream_latency_seconds_bucket{le=\"0.05\"} 1"),
        QStringLiteral("lamplighter_cluster_proxy_upstream_latency_seconds_bucket{le=\"1\"} 2"),
        QStringLiteral("lamplighter_cluster_proxy_upstream_latency_seconds_bucket{le=\"+Inf\"} 2"),
        QStringLiteral("lamplighter_cluster_proxy_upstream_latency_seconds_sum 0.73"),
        QStringLiteral("lamplighter_cluster_proxy_upstream_latency_seconds_count 2"),
    };
    const QStringList lines = text.split(QLatin1Char('\n'));
    for (const QString &line : expectedLines)
        QVERIFY2(lines.contains(line), qPrintable(QStringLiteral("missing line: ") + line));
    QVERIFY2(!text.contains(QString::fromLatin1(token)), "the metrics contain the token");
}

// Without namespaces.mode, the listing path returns 404 and namespace lists go upstream.
void TestImpersonatingGate::namespaceListingOffByDefault()
{
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    const QByteArray token = signToken(validClaims());
    HttpHead listing = getRequest("/lamplighter/namespaces");
    listing.append("Authorization", "Bearer " + token);
    const Decision off = admitAndWait(*gate, listing);
    QCOMPARE(off.calls, 1);
    QVERIFY2(off.admission.rejection, "the listing path was forwarded");
    QCOMPARE(off.admission.rejection->code(), 404);

    HttpHead list = getRequest("/api/v1/namespaces");
    list.append("Authorization", "Bearer " + token);
    const Decision forwarded = admitAndWait(*gate, list);
    QCOMPARE(forwarded.calls, 1);
    QVERIFY2(!forwarded.admission.rejection, "a namespace list was not forwarded");
    QCOMPARE(forwarded.admission.upstreamHead.target, QByteArray("/api/v1/namespaces"));
}

void TestImpersonatingGate::namespaceListShape()
{
    const QJsonObject list =
        QJsonDocument::fromJson(
            NamespaceLister::namespaceList({QStringLiteral("team-a"), QStringLiteral("team-b")}))
            .object();
    QCOMPARE(list.value(QStringLiteral("kind")).toString(), QStringLiteral("NamespaceList"));
    QCOMPARE(list.value(QStringLiteral("apiVersion")).toString(), QStringLiteral("v1"));
    const QJsonArray items = list.value(QStringLiteral("items")).toArray();
    QCOMPARE(items.size(), 2);
    QCOMPARE(items.at(1)
                 .toObject()
                 .value(QStringLiteral("metadata"))
                 .toObject()
                 .value(QStringLiteral("name"))
                 .toString(),
             QStringLiteral("team-b"));
}

// An API server behind a path-routing proxy keeps its path in front of every forwarded target.
void TestImpersonatingGate::apiServerPathPrefixed()
{
    ClusterProxyConfig routed = config();
    routed.apiServer = QUrl(QStringLiteral("https://127.0.0.1:6443/k8s/prod/"));
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(routed);
    const Decision decision = admitAndWait(*gate, podsRequest(signToken(validClaims())));
    QCOMPARE(decision.calls, 1);
    QVERIFY2(!decision.admission.rejection,
             qPrintable(decision.admission.rejection ? decision.admission.rejection->message()
                                                     : QString()));
    QCOMPARE(decision.admission.upstreamHead.target,
             QByteArray("/k8s/prod/api/v1/namespaces/default/pods?limit=500"));
}

void TestImpersonatingGate::healthzAnswered_data()
{
    QTest::addColumn<QByteArray>("target");

    QTest::newRow("without query") << QByteArray("/healthz");
    QTest::newRow("with query") << QByteArray("/healthz?verbose");
}

void TestImpersonatingGate::healthzAnswered()
{
    QFETCH(QByteArray, target);

    // The gate is not ready, because /healthz reports only that the process runs.
    ImpersonatingGate gate(config(), m_verifier);
    const Decision decision = admitAndWait(gate, getRequest(target));

    QCOMPARE(decision.calls, 1);
    QVERIFY2(!decision.admission.rejection,
             qPrintable(QStringLiteral("/healthz was rejected: ") +
                        (decision.admission.rejection ? decision.admission.rejection->message()
                                                      : QString())));
    QVERIFY2(decision.beforeReturn, "/healthz must be answered without waiting");
    QVERIFY2(decision.admission.browserResponse, "/healthz must get the gate's own response");
    QCOMPARE(decision.admission.browserResponse->code, 200);
    QCOMPARE(decision.admission.browserResponse->message, QStringLiteral("ok"));
    QVERIFY2(!decision.admission.cluster, "/healthz must not be forwarded");
}

void TestImpersonatingGate::readyzFollowsState_data()
{
    QTest::addColumn<QByteArray>("target");

    QTest::newRow("without query") << QByteArray("/readyz");
    QTest::newRow("with query") << QByteArray("/readyz?verbose");
}

void TestImpersonatingGate::readyzFollowsState()
{
    QFETCH(QByteArray, target);

    ImpersonatingGate gate(config(), m_verifier);
    // Returns the status code of the gate's own response, or -1 when there is none.
    const auto readyzCode = [&gate, &target]() {
        const Decision decision = admitAndWait(gate, getRequest(target));
        if (decision.calls != 1 || !decision.admission.browserResponse ||
            decision.admission.cluster)
            return -1;
        return decision.admission.browserResponse->code;
    };

    QVERIFY2(readyzCode() == 503, "with neither keys nor token /readyz must return 503");
    gate.setKeysLoaded(true);
    QVERIFY2(readyzCode() == 503, "without the service account token /readyz must return 503");
    gate.setKeysLoaded(false);
    gate.setServiceAccountToken(serviceAccountToken);
    QVERIFY2(readyzCode() == 503, "without the issuer's keys /readyz must return 503");
    gate.setKeysLoaded(true);
    QVERIFY2(readyzCode() == 503, "before the API server answered /readyz must return 503");
    gate.setApiServerProblem(QString());
    QVERIFY2(readyzCode() == 200, "with keys, token and API server /readyz must return 200");
    gate.setApiServerProblem(QStringLiteral("the API server cannot be reached"));
    QVERIFY2(readyzCode() == 503, "with the API server gone /readyz must return 503");
}

void TestImpersonatingGate::requestWithoutTokenRejected()
{
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    const Decision decision = admitAndWait(*gate, podsRequest(QByteArray()));

    QCOMPARE(decision.calls, 1);
    QVERIFY2(decision.admission.rejection, "a request without a bearer token must be rejected");
    QCOMPARE(decision.admission.rejection->code(), 401);
    QVERIFY2(decision.admission.rejection->message().contains(issuer),
             qPrintable(decision.admission.rejection->message()));
    QVERIFY2(!decision.admission.cluster, "a rejected request must not be forwarded");
    QCOMPARE(gate->cacheMisses(), quint64(0));
    QCOMPARE(m_provider->requestsTo(QStringLiteral("/jwks")).size(), 0);
}

void TestImpersonatingGate::validTokenForwarded()
{
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    const QByteArray token = signToken(validClaims());
    HttpHead request = execRequest(token);
    // Forged identities and a second credential, none of which may reach the API server.
    request.append("Impersonate-User", "system:admin");
    request.append("Impersonate-Group", "system:masters");
    request.append("Impersonate-Uid", "0");
    request.append("Impersonate-Extra-Scopes", "cluster-admin");
    request.append("impersonate-extra-reason", "forged");
    request.append("Impersonate_User", "system:admin");
    request.append("Sec-WebSocket-Protocol",
                   "base64url.bearer.authorization.k8s.io." + TestJwt::base64Url(token));

    const Decision decision = admitAndWait(*gate, request);

    QCOMPARE(decision.calls, 1);
    QVERIFY2(!decision.beforeReturn, "the first verification must wait for the issuer's keys");
    QVERIFY2(!decision.admission.rejection,
             qPrintable(decision.admission.rejection ? decision.admission.rejection->message()
                                                     : QString()));
    QVERIFY2(!decision.admission.browserResponse, "a forwarded request gets no own response");
    QCOMPARE(decision.admission.cluster, &gate->apiServer());
    QCOMPARE(decision.admission.cluster->server, apiServer);

    const HttpHead &upstream = decision.admission.upstreamHead;
    QCOMPARE(upstream.target, request.target);
    QCOMPARE(upstream.values("Host"), QList<QByteArray>({"127.0.0.1:6443"}));
    QCOMPARE(upstream.values("Authorization"),
             QList<QByteArray>({"Bearer " + serviceAccountToken}));
    QCOMPARE(upstream.values("Impersonate-User"), QList<QByteArray>({"oidc:jane@example.test"}));
    QCOMPARE(upstream.values("Impersonate-Group"),
             QList<QByteArray>({"team:developers", "team:viewers", "system:authenticated"}));
    QCOMPARE(upstream.values("Impersonate-Uid"), QList<QByteArray>({"user-42"}));
    for (const QByteArray &name : headerNames(upstream)) {
        QVERIFY2(!name.toLower().startsWith("impersonate-extra-"),
                 qPrintable(QStringLiteral("forged field passed: ") + QString::fromLatin1(name)));
        QVERIFY2(!name.contains('_'),
                 qPrintable(QStringLiteral("field with '_' passed: ") + QString::fromLatin1(name)));
    }
    QCOMPARE(upstream.values("Sec-WebSocket-Protocol"), QList<QByteArray>({"v5.channel.k8s.io"}));
    QCOMPARE(upstream.values("Upgrade"), QList<QByteArray>({"websocket"}));

    const QByteArray serialized = upstream.serializeRequest();
    QVERIFY2(!serialized.contains(token), "the client's ID token must not reach the API server");
    QVERIFY2(!serialized.contains(TestJwt::base64Url(token)),
             "the client's bearer subprotocol must not reach the API server");
    QVERIFY2(!serialized.contains("system:masters"), "a forged group must not pass");
    QVERIFY2(!serialized.contains("system:admin"), "a forged user must not pass");
}

void TestImpersonatingGate::invalidTokenRejected_data()
{
    QTest::addColumn<QByteArray>("token");
    QTest::addColumn<QStringList>("allowedAlgorithms");
    QTest::addColumn<QString>("expected");

    const QJsonObject claims = validClaims();
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    const auto with = [&claims](const QString &name, const QJsonValue &value) {
        QJsonObject changed = claims;
        changed.insert(name, value);
        return changed;
    };
    const auto sign = [this](const QJsonObject &tokenClaims) {
        return signToken(tokenClaims);
    };

    const QByteArray valid = sign(claims);
    const QList<QByteArray> parts = valid.split('.');
    const QByteArray forgedPayload = TestJwt::base64Url(
        QJsonDocument(with(QStringLiteral("email"), QStringLiteral("admin@example.test")))
            .toJson(QJsonDocument::Compact));
    const QByteArray tampered = parts.at(0) + '.' + forgedPayload + '.' + parts.at(2);

    QJsonObject expired = with(QStringLiteral("exp"), now - 3600);
    expired.insert(QStringLiteral("iat"), now - 7200);

    QTest::newRow("expired") << sign(expired) << QStringList() << QStringLiteral("has expired");
    QTest::newRow("wrong issuer") << sign(with(QStringLiteral("iss"),
                                               QStringLiteral("https://other-issuer.example.test")))
                                  << QStringList()
                                  << QStringLiteral("is not the configured issuer");
    QTest::newRow("wrong audience")
        << sign(with(QStringLiteral("aud"), QStringLiteral("someone-else"))) << QStringList()
        << QStringLiteral("audience (\"someone-else\") does not include an accepted "
                          "audience (\"lamplighter\")");
    QTest::newRow("alg none") << TestJwt::compose(
                                     TestJwt::header(QStringLiteral("none")), claims, QByteArray())
                              << QStringList() << QStringLiteral("unsigned (algorithm \"none\")");
    QTest::newRow("HS256 with RSA public key as secret")
        << TestJwt::signHmac(
               TestJwt::header(QStringLiteral("HS256"), keyId), claims, m_key->publicKeyPem())
        << QStringList() << QStringLiteral("algorithm \"HS256\" is HMAC");
    QTest::newRow("unknown kid") << TestJwt::sign(TestJwt::header(QStringLiteral("RS256"),
                                                                  QStringLiteral("rsa-unknown")),
                                                  claims,
                                                  *m_otherKey)
                                 << QStringList()
                                 << QStringLiteral("has no signing key \"rsa-unknown\"");
    QTest::newRow("other key with known kid")
        << TestJwt::sign(TestJwt::header(QStringLiteral("RS256"), keyId), claims, *m_otherKey)
        << QStringList() << QStringLiteral("signature is invalid");
    QTest::newRow("tampered payload")
        << tampered << QStringList() << QStringLiteral("signature is invalid");
    QTest::newRow("algorithm not in allowed_algorithms")
        << valid << QStringList({QStringLiteral("ES256"), QStringLiteral("PS256")})
        << QStringLiteral("algorithm \"RS256\" is not allowed here. Allowed are ES256, PS256.");
}

void TestImpersonatingGate::invalidTokenRejected()
{
    QFETCH(QByteArray, token);
    QFETCH(QStringList, allowedAlgorithms);
    QFETCH(QString, expected);

    ClusterProxyConfig gateConfig = config();
    gateConfig.allowedAlgorithms = allowedAlgorithms;
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(gateConfig);

    const Decision decision = admitAndWait(*gate, podsRequest(token));

    QCOMPARE(decision.calls, 1);
    QVERIFY2(decision.admission.rejection, "the token must be rejected");
    const KubernetesStatus &status = *decision.admission.rejection;
    QCOMPARE(status.code(), 401);
    QVERIFY2(status.message().startsWith(QStringLiteral("Unauthorized: ")),
             qPrintable(status.message()));
    QVERIFY2(status.message().contains(expected), qPrintable(status.message()));
    const QJsonObject body = QJsonDocument::fromJson(status.toJson()).object();
    QCOMPARE(body.value(QStringLiteral("kind")).toString(), QStringLiteral("Status"));
    QCOMPARE(body.value(QStringLiteral("code")).toInt(), 401);
    QCOMPARE(body.value(QStringLiteral("reason")).toString(), QStringLiteral("Unauthorized"));
    QCOMPARE(decision.admission.logReason, QStringLiteral("invalid ID token"));
    QVERIFY2(!decision.admission.cluster, "a rejected request must not be forwarded");
    QCOMPARE(gate->cacheHits(), quint64(0));
}

void TestImpersonatingGate::requiredClaimEnforced()
{
    ClusterProxyConfig gateConfig = config();
    gateConfig.requiredClaims.insert(QStringLiteral("hd"), QStringLiteral("example.test"));
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(gateConfig);

    const Decision missing = admitAndWait(*gate, podsRequest(signToken(validClaims())));
    QVERIFY2(missing.admission.rejection, "a token without the required claim must be rejected");
    QCOMPARE(missing.admission.rejection->code(), 401);
    QCOMPARE(missing.admission.rejection->message(),
             QStringLiteral("Unauthorized: the ID token's claim \"hd\" does not have the required "
                            "value."));
    QCOMPARE(missing.admission.logReason, QStringLiteral("unusable claims"));
    QVERIFY(!missing.admission.cluster);

    QJsonObject otherValue = validClaims();
    otherValue.insert(QStringLiteral("hd"), QStringLiteral("example.test.evil"));
    const Decision wrong = admitAndWait(*gate, podsRequest(signToken(otherValue)));
    QVERIFY2(wrong.admission.rejection, "a token with another value must be rejected");
    QCOMPARE(wrong.admission.rejection->code(), 401);

    QJsonObject matching = validClaims();
    matching.insert(QStringLiteral("hd"), QStringLiteral("example.test"));
    const Decision accepted = admitAndWait(*gate, podsRequest(signToken(matching)));
    QVERIFY2(!accepted.admission.rejection,
             qPrintable(accepted.admission.rejection ? accepted.admission.rejection->message()
                                                     : QString()));
    QCOMPARE(accepted.admission.cluster, &gate->apiServer());
}

void TestImpersonatingGate::allowedGroupsEnforced()
{
    ClusterProxyConfig gateConfig = config();
    gateConfig.allowedGroups = {QStringLiteral("team:admins")};
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(gateConfig);

    const Decision outsider = admitAndWait(*gate, podsRequest(signToken(validClaims())));
    QVERIFY2(outsider.admission.rejection, "a user outside allowed_groups must be rejected");
    QCOMPARE(outsider.admission.rejection->code(), 403);
    QCOMPARE(outsider.admission.rejection->message(),
             QStringLiteral("Forbidden: user \"oidc:jane@example.test\" is in none of the groups "
                            "this cluster proxy admits."));
    QCOMPARE(outsider.admission.logReason, QStringLiteral("not in an allowed group"));
    QVERIFY(!outsider.admission.cluster);

    QJsonObject admin = validClaims();
    admin.insert(QStringLiteral("groups"), QJsonArray{QStringLiteral("admins")});
    const Decision member = admitAndWait(*gate, podsRequest(signToken(admin)));
    QVERIFY2(
        !member.admission.rejection,
        qPrintable(member.admission.rejection ? member.admission.rejection->message() : QString()));
    QCOMPARE(member.admission.upstreamHead.values("Impersonate-Group"),
             QList<QByteArray>({"team:admins", "system:authenticated"}));
}

void TestImpersonatingGate::verifiedTokenCached()
{
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    const QByteArray token = signToken(validClaims());

    const Decision first = admitAndWait(*gate, podsRequest(token));
    QCOMPARE(first.calls, 1);
    QVERIFY2(!first.admission.rejection, "the first request must be forwarded");
    QVERIFY2(!first.beforeReturn, "the first request must wait for the verification");
    QCOMPARE(gate->cacheMisses(), quint64(1));
    QCOMPARE(gate->cacheHits(), quint64(0));

    const Decision second = admitAndWait(*gate, podsRequest(token));
    QCOMPARE(second.calls, 1);
    QVERIFY2(second.beforeReturn, "a remembered token must be admitted before admit() returns");
    QVERIFY2(!second.admission.rejection, "the second request must be forwarded");
    QCOMPARE(second.admission.upstreamHead.values("Impersonate-User"),
             QList<QByteArray>({"oidc:jane@example.test"}));
    QCOMPARE(gate->cacheMisses(), quint64(1));
    QCOMPARE(gate->cacheHits(), quint64(1));
    QCOMPARE(m_provider->requestsTo(QStringLiteral("/jwks")).size(), 1);

    // Another token is verified on its own, not taken from the cache.
    QJsonObject other = validClaims();
    other.insert(QStringLiteral("email"), QStringLiteral("john@example.test"));
    const Decision third = admitAndWait(*gate, podsRequest(signToken(other)));
    QVERIFY2(!third.beforeReturn, "a new token must be verified");
    QCOMPARE(third.admission.upstreamHead.values("Impersonate-User"),
             QList<QByteArray>({"oidc:john@example.test"}));
    QCOMPARE(gate->cacheMisses(), quint64(2));
    QCOMPARE(gate->cacheHits(), quint64(1));
}

void TestImpersonatingGate::extraAudienceAccepted()
{
    ClusterProxyConfig gateConfig = config();
    gateConfig.audiences = {clientId, QStringLiteral("kubernetes")};
    const std::unique_ptr<ImpersonatingGate> gate = readyGate(gateConfig);
    QJsonObject claims = validClaims();
    claims.insert(QStringLiteral("aud"), QStringLiteral("kubernetes"));

    const Decision decision = admitAndWait(*gate, podsRequest(signToken(claims)));
    QVERIFY2(!decision.admission.rejection,
             qPrintable(decision.admission.rejection ? decision.admission.rejection->message()
                                                     : QString()));
    QCOMPARE(decision.admission.cluster, &gate->apiServer());
    QCOMPARE(decision.admission.upstreamHead.values("Impersonate-User"),
             QList<QByteArray>({"oidc:jane@example.test"}));
}

void TestImpersonatingGate::plainRequestAdmitted_data()
{
    QTest::addColumn<bool>("withToken");
    QTest::addColumn<int>("expectedCode");

    QTest::newRow("without token") << false << 401;
    QTest::newRow("with valid token") << true << 0;
}

void TestImpersonatingGate::plainRequestAdmitted()
{
    QFETCH(bool, withToken);
    QFETCH(int, expectedCode);

    const std::unique_ptr<ImpersonatingGate> gate = readyGate(config());
    HttpHead request = getRequest("/api/v1/namespaces/default/pods");
    if (withToken)
        request.append("Authorization", "Bearer " + signToken(validClaims()));
    const Decision decision = admitAndWait(*gate, request);

    QCOMPARE(decision.calls, 1);
    const int code = decision.admission.rejection ? decision.admission.rejection->code() : 0;
    QCOMPARE(code, expectedCode);
    if (withToken) {
        QCOMPARE(decision.admission.upstreamHead.values("Impersonate-User"),
                 QList<QByteArray>({"oidc:jane@example.test"}));
    }
}

QTEST_GUILESS_MAIN(TestImpersonatingGate)
#include "tst_impersonatinggate.moc"
