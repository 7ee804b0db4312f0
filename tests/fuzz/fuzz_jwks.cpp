// libFuzzer target: JSON Web Key Set parsing with JsonWebKeySet::fromJson(), then verification
// of a token signed by the fixed key against the parsed set. The input is a JWKS document, as an
// issuer serves it at its jwks_uri.

#include "FuzzSigningKey.h"
#include "FuzzSupport.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/JsonWebKeySet.h"

#include <QTimeZone>
#include <cstdint>
#include <openssl/evp.h>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

const QString kIssuer = QStringLiteral("https://issuer.example.test");

QDateTime fixedNow()
{
    return QDateTime(QDate(2026, 12, 1), QTime(0, 0), QTimeZone::utc());
}

// A token that the fixed key signed, valid at fixedNow().
const QByteArray &fixedToken()
{
    static const QByteArray token =
        signedToken(QByteArrayLiteral(R"({"alg":"RS256","typ":"JWT","kid":"fuzz-rsa-1"})"),
                    QByteArrayLiteral(R"({"iss":"https://issuer.example.test","sub":"jane",)"
                                      R"("aud":"lamplighter","iat":1764547200,)"
                                      R"("exp":1900000000})"));
    return token;
}

void checkKeySet(const JsonWebKeySet &keys)
{
    for (const JsonWebKey &key : keys.keys()) {
        requireProperty(key.publicKey != nullptr, "every usable key has an OpenSSL key");
        requireProperty(key.keyType == QLatin1String("RSA") || key.keyType == QLatin1String("EC"),
                        "only RSA and EC keys are usable");
        requireProperty(keys.containsKeyId(key.keyId), "every usable key is found by its id");
    }
    requireProperty(keys.size() == qsizetype(keys.keys().size()), "size() counts the usable keys");

    IdTokenExpectations expected;
    expected.issuer = kIssuer;
    expected.clientId = QStringLiteral("lamplighter");
    const Result<IdTokenClaims> result =
        IdTokenVerifier::verifyWithKeys(fixedToken(), keys, expected, fixedNow());
    if (!result)
        return;
    // Only a set that contains the signing key can verify the token.
    const bool containsSigningKey =
        std::any_of(keys.keys().begin(), keys.keys().end(), [](const JsonWebKey &key) {
            return EVP_PKEY_eq(key.publicKey.get(), signingKey()) == 1;
        });
    requireProperty(containsSigningKey, "a token verifies only with the key that signed it");
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    ensureApplication();
    fixedToken();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray input(reinterpret_cast<const char *>(data), qsizetype(size));
    const Result<JsonWebKeySet> keys = JsonWebKeySet::fromJson(input);
    if (!keys) {
        requireProperty(!keys.errorMessage().isEmpty(), "a rejected key set has a message");
        return 0;
    }
    checkKeySet(keys.value());
    return 0;
}
