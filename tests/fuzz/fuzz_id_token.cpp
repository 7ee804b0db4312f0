// libFuzzer target: ID token verification with IdTokenVerifier::verifyWithKeys() against a fixed
// key set, and the base64url codec it relies on. The first byte chooses the mode:
//   0: the rest is a compact JWS, as a provider would send it.
//   1: the rest is a JWS header, a newline and a claims payload. The target signs them with RS256
//      and the fixed key, so that the claim checks run on every input.
//   2: the rest is text for decodeBase64Url() and data for encodeBase64Url().
// Whenever verification succeeds, the target checks the signature and the claims on its own.

#include "FuzzSigningKey.h"
#include "FuzzSupport.h"
#include "oidc/Base64Url.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/JsonWebKeySet.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTimeZone>
#include <cstdint>
#include <openssl/evp.h>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

const QString kIssuer = QStringLiteral("https://issuer.example.test/realms/fuzz");
const QString kClientId = QStringLiteral("lamplighter");
const QByteArray kNonce = "fuzz-nonce-5b1f";

// A fixed time, so that the seed tokens stay valid: 2026-12-01T00:00:00Z.
QDateTime fixedNow()
{
    return QDateTime(QDate(2026, 12, 1), QTime(0, 0), QTimeZone::utc());
}

const JsonWebKeySet &keySet()
{
    static const JsonWebKeySet keys = [] {
        Result<JsonWebKeySet> parsed = JsonWebKeySet::fromJson(keySetJson());
        requireProperty(parsed.ok() && parsed->size() == 1, "the fixed key set parses");
        return std::move(parsed).value();
    }();
    return keys;
}

IdTokenExpectations expectations()
{
    IdTokenExpectations expected;
    expected.issuer = kIssuer;
    expected.clientId = kClientId;
    expected.nonce = kNonce;
    return expected;
}

// Verifies the RS256 signature with OpenSSL directly, independently of the verifier.
bool hasValidSignature(const QByteArray &token)
{
    const QList<QByteArray> parts = token.split('.');
    if (parts.size() != 3)
        return false;
    const std::optional<QByteArray> signature = decodeBase64Url(parts[2]);
    if (!signature)
        return false;
    const QByteArray signingInput = parts[0] + '.' + parts[1];
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    const bool valid =
        EVP_DigestVerifyInit(context, nullptr, EVP_sha256(), nullptr, signingKey()) == 1 &&
        EVP_DigestVerify(context,
                         reinterpret_cast<const unsigned char *>(signature->constData()),
                         std::size_t(signature->size()),
                         reinterpret_cast<const unsigned char *>(signingInput.constData()),
                         std::size_t(signingInput.size())) == 1;
    EVP_MD_CTX_free(context);
    return valid;
}

bool audienceContainsClient(const QJsonValue &audience)
{
    if (audience.isString())
        return audience.toString() == kClientId;
    const QJsonArray list = audience.toArray();
    return std::any_of(
        list.begin(), list.end(), [](const QJsonValue &value) { return value == kClientId; });
}

// Checks an accepted token on its own: its signature, its header's algorithm and the claims
// that OpenID Connect Core 1.0, section 3.1.3.7 requires.
void checkAcceptedToken(const QByteArray &token, const IdTokenClaims &claims)
{
    requireProperty(hasValidSignature(token), "only tokens signed by the key are accepted");

    const QList<QByteArray> parts = token.split('.');
    const QJsonObject header =
        QJsonDocument::fromJson(decodeBase64Url(parts[0]).value_or(QByteArray())).object();
    requireProperty(header.value(QStringLiteral("alg")).toString() == QLatin1String("RS256"),
                    "an accepted token names the algorithm that signed it");

    const QJsonObject payload =
        QJsonDocument::fromJson(decodeBase64Url(parts[1]).value_or(QByteArray())).object();
    requireProperty(payload.value(QStringLiteral("iss")).toString() == kIssuer,
                    "an accepted token has the expected issuer");
    requireProperty(claims.issuer == kIssuer, "the verified claims name the expected issuer");
    requireProperty(audienceContainsClient(payload.value(QStringLiteral("aud"))),
                    "an accepted token's audience contains the client id");
    requireProperty(payload.value(QStringLiteral("nonce")).toString().toLatin1() == kNonce,
                    "an accepted token carries the expected nonce");
    const QJsonValue authorizedParty = payload.value(QStringLiteral("azp"));
    requireProperty(authorizedParty.isUndefined() || authorizedParty.toString() == kClientId,
                    "an accepted token's azp, when present, is the client id");

    const double now = double(fixedNow().toSecsSinceEpoch());
    const double leeway = double(expectations().leeway.count());
    const QJsonValue expiry = payload.value(QStringLiteral("exp"));
    requireProperty(expiry.isDouble() && now <= expiry.toDouble() + leeway,
                    "an accepted token has not expired");
    const QJsonValue notBefore = payload.value(QStringLiteral("nbf"));
    requireProperty(notBefore.isUndefined() ||
                        (notBefore.isDouble() && notBefore.toDouble() - leeway <= now),
                    "an accepted token is not used before its nbf");
    requireProperty(claims.expiresAt.isValid(), "an accepted token has a valid expiry time");
}

void verifyAndCheck(const QByteArray &token)
{
    const Result<IdTokenClaims> result =
        IdTokenVerifier::verifyWithKeys(token, keySet(), expectations(), fixedNow());
    if (!result) {
        requireProperty(!result.errorMessage().isEmpty(), "a rejected token has a message");
        requireProperty(token.size() < 16 ||
                            !result.errorMessage().contains(QString::fromLatin1(token)),
                        "an error message never contains the token");
        return;
    }
    checkAcceptedToken(token, result.value());
}

void checkBase64Url(const QByteArray &input)
{
    const std::optional<QByteArray> decoded = decodeBase64Url(input);
    if (decoded) {
        requireProperty(encodeBase64Url(*decoded) == input,
                        "decoded base64url text encodes back to the same text");
    }
    const QByteArray encoded = encodeBase64Url(input);
    requireProperty(!encoded.contains('=') && !encoded.contains('+') && !encoded.contains('/'),
                    "base64url output has no padding and no characters of plain base64");
    const std::optional<QByteArray> roundTrip = decodeBase64Url(encoded);
    requireProperty(roundTrip.has_value() && *roundTrip == input,
                    "encoded base64url decodes back to the same data");
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    ensureApplication();
    keySet();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const QByteArray input(reinterpret_cast<const char *>(data) + 1, qsizetype(size) - 1);
    switch (data[0] % 3) {
    case 0:
        verifyAndCheck(input);
        break;
    case 1: {
        const qsizetype newline = input.indexOf('\n');
        if (newline < 0)
            return 0;
        verifyAndCheck(signedToken(input.left(newline), input.mid(newline + 1)));
        break;
    }
    default:
        checkBase64Url(input);
        break;
    }
    return 0;
}
