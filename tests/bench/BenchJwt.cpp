// Times ID token verification for tests/bench/run jwt: RS256 tokens verified against a key set
// with IdTokenVerifier::verifyWithKeys(), the work of every new token, and the lookup in
// VerifiedTokenCache that the cluster proxy does for a token it has verified before. It prints
// `name: value` lines; tests/bench/run adds OpenSSL's own figure and the ratios.

#include "TestJwt.h"
#include "clusterproxy/VerifiedTokenCache.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/JsonWebKeySet.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <cstdio>
#include <sys/resource.h>

using namespace lamplighter;
using namespace lamplighter::test;

namespace {

// How long each figure is timed, unless --milliseconds N is given.
constexpr qint64 kDefaultRunMs = 3000;
const QString kIssuer = QStringLiteral("https://issuer.bench.test");
const QString kClientId = QStringLiteral("lamplighter");

// The user CPU time this process has used, in seconds.
double userCpuSeconds()
{
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_utime.tv_sec) + double(usage.ru_utime.tv_usec) / 1e6;
}

// Calls `operation` until runMs of wall-clock time have passed and returns the calls per second
// of user CPU time. `openssl speed` divides by user CPU time too, unless given -elapsed, so
// another process on the same cores changes both figures alike. Stops at the first failure,
// which it reports.
template <typename Operation>
double perSecond(qint64 runMs, Operation operation, bool *failed)
{
    QElapsedTimer timer;
    timer.start();
    const double cpuStart = userCpuSeconds();
    qint64 calls = 0;
    while (timer.elapsed() < runMs) {
        for (int i = 0; i < 64; ++i) {
            if (!operation()) {
                *failed = true;
                return 0;
            }
        }
        calls += 64;
    }
    return static_cast<double>(calls) / (userCpuSeconds() - cpuStart);
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    qint64 runMs = kDefaultRunMs;
    const QStringList arguments = app.arguments();
    if (arguments.size() == 3 && arguments.at(1) == QLatin1String("--milliseconds")) {
        bool valid = false;
        runMs = arguments.at(2).toLongLong(&valid);
        if (!valid || runMs <= 0) {
            std::fprintf(stderr,
                         "lamplighter-bench-jwt: --milliseconds needs a positive number, not "
                         "\"%s\".\n",
                         qPrintable(arguments.at(2)));
            return 2;
        }
    } else if (arguments.size() != 1) {
        std::fprintf(stderr, "Usage: lamplighter-bench-jwt [--milliseconds N]\n");
        return 2;
    }

    const TestKey key = TestKey::generateRsa(2048);
    const QByteArray keySetJson =
        QJsonDocument(QJsonObject{{QStringLiteral("keys"),
                                   QJsonArray{key.publicJwk(QStringLiteral("bench"),
                                                            QStringLiteral("RS256"))}}})
            .toJson(QJsonDocument::Compact);
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(keySetJson);
    if (!keys) {
        std::fprintf(stderr, "lamplighter-bench-jwt: %s\n", qPrintable(keys.errorMessage()));
        return 1;
    }

    const QDateTime now = QDateTime::currentDateTimeUtc();
    const QJsonObject claims{
        {QStringLiteral("iss"), kIssuer},
        {QStringLiteral("aud"), kClientId},
        {QStringLiteral("sub"), QStringLiteral("user-42")},
        {QStringLiteral("email"), QStringLiteral("jane@example.test")},
        {QStringLiteral("groups"), QJsonArray{QStringLiteral("developers")}},
        {QStringLiteral("iat"), now.toSecsSinceEpoch()},
        {QStringLiteral("exp"), now.addSecs(3600).toSecsSinceEpoch()},
    };
    const QByteArray token = TestJwt::sign(
        TestJwt::header(QStringLiteral("RS256"), QStringLiteral("bench")), claims, key);

    IdTokenExpectations expectations;
    expectations.issuer = kIssuer;
    expectations.clientId = kClientId;

    bool failed = false;
    const double uncached = perSecond(
        runMs,
        [&] { return IdTokenVerifier::verifyWithKeys(token, *keys, expectations, now).ok(); },
        &failed);
    if (failed) {
        std::fprintf(
            stderr,
            "lamplighter-bench-jwt: %s\n",
            qPrintable(
                IdTokenVerifier::verifyWithKeys(token, *keys, expectations, now).errorMessage()));
        return 1;
    }

    VerifiedTokenCache cache;
    cache.insert(
        token,
        Impersonation{QStringLiteral("jane@example.test"),
                      {QStringLiteral("developers"), QStringLiteral("system:authenticated")},
                      QStringLiteral("user-42"),
                      {},
                      {}},
        now.addSecs(3600),
        now);
    const double cached = perSecond(
        runMs, [&] { return cache.find(token, now) != nullptr; }, &failed);
    if (failed) {
        std::fprintf(stderr, "lamplighter-bench-jwt: the cache lost the verified token\n");
        return 1;
    }

    std::printf("jwt_token_bytes: %lld\n", static_cast<long long>(token.size()));
    std::printf("jwt_verify_uncached_per_second: %.0f\n", uncached);
    std::printf("jwt_verify_cached_per_second: %.0f\n", cached);
    return 0;
}
