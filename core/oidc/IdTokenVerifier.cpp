#include "oidc/IdTokenVerifier.h"

#include "Logging.h"
#include "oidc/Base64Url.h"
#include "oidc/ClaimSet.h"
#include "oidc/JsonWebKeySet.h"
#include "util/OpenSslPointers.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QPointer>
#include <QSslConfiguration>
#include <QStringList>
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <optional>
#include <utility>
#include <vector>

namespace lamplighter {

namespace {

// A JWS algorithm from the allow-list (RFC 7518, section 3.1) and what it needs from a key.
struct SignatureAlgorithm {
    const char *name;
    const char *keyType; // the JWK "kty" of keys that can verify it
    const char *curve;   // the JWK "crv" of EC keys, nullptr for RSA
    const EVP_MD *(*digest)();
    int rsaPadding;           // 0 for EC
    int ecdsaCoordinateBytes; // size of R and of S in the JWS signature, 0 for RSA
};

constexpr SignatureAlgorithm allowedAlgorithms[] = {
    {"RS256", "RSA", nullptr, EVP_sha256, RSA_PKCS1_PADDING, 0},
    {"RS384", "RSA", nullptr, EVP_sha384, RSA_PKCS1_PADDING, 0},
    {"RS512", "RSA", nullptr, EVP_sha512, RSA_PKCS1_PADDING, 0},
    {"PS256", "RSA", nullptr, EVP_sha256, RSA_PKCS1_PSS_PADDING, 0},
    {"PS384", "RSA", nullptr, EVP_sha384, RSA_PKCS1_PSS_PADDING, 0},
    {"PS512", "RSA", nullptr, EVP_sha512, RSA_PKCS1_PSS_PADDING, 0},
    {"ES256", "EC", "P-256", EVP_sha256, 0, 32},
    {"ES384", "EC", "P-384", EVP_sha384, 0, 48},
    {"ES512", "EC", "P-521", EVP_sha512, 0, 66},
};

// The largest JWKS document accepted. Real sets hold a few keys and a few kilobytes.
constexpr qint64 maximumKeySetBytes = 1024 * 1024;

// Used when the network access manager sets no transfer timeout of its own.
constexpr std::chrono::seconds defaultFetchTimeout{30};

// Claim values quoted in error messages are cut to this many characters, because they come
// from the token and can be of any length.
constexpr qsizetype maximumQuotedClaimLength = 100;

// The largest NumericDate accepted, 9999-12-31T23:59:59Z, keeps conversions to QDateTime exact.
constexpr double maximumNumericDate = 253402300799.0;

QString quoted(const QString &text)
{
    if (text.size() > maximumQuotedClaimLength)
        return QLatin1Char('"') + text.left(maximumQuotedClaimLength) + QStringLiteral("...\"");
    return QLatin1Char('"') + text + QLatin1Char('"');
}

QString allowedAlgorithmNames()
{
    QStringList names;
    for (const SignatureAlgorithm &algorithm : allowedAlgorithms)
        names.append(QLatin1String(algorithm.name));
    return names.join(QStringLiteral(", "));
}

QString formatTime(const QDateTime &time)
{
    return time.toUTC().toString(Qt::ISODate);
}

QString formatNumericDate(double secondsSinceEpoch)
{
    return formatTime(
        QDateTime::fromSecsSinceEpoch(qint64(std::floor(secondsSinceEpoch)), Qt::UTC));
}

// The three parts of a compact JWS (RFC 7515, section 7.1), still encoded: views into the token,
// which must outlive this.
struct CompactJws {
    QByteArrayView header;
    QByteArrayView payload;
    QByteArrayView signature;
    QByteArrayView signingInput; // the header and payload with the "." between them
};

// Splits by hand into views rather than with QByteArray::split(), which would copy each part of
// every new token.
Result<CompactJws> splitCompactJws(const QByteArray &token)
{
    if (token.isEmpty())
        return Error{QStringLiteral("The ID token is empty.")};

    const qsizetype headerEnd = token.indexOf('.');
    const qsizetype payloadEnd = headerEnd < 0 ? -1 : token.indexOf('.', headerEnd + 1);
    if (payloadEnd < 0 || token.indexOf('.', payloadEnd + 1) >= 0) {
        return Error{QStringLiteral("The ID token is not a compact JWS: it has %1 parts separated "
                                    "by \".\" instead of 3.")
                         .arg(token.count('.') + 1)};
    }
    const QByteArrayView tokenView(token);
    CompactJws jws;
    jws.header = tokenView.first(headerEnd);
    jws.payload = tokenView.sliced(headerEnd + 1, payloadEnd - headerEnd - 1);
    jws.signature = tokenView.sliced(payloadEnd + 1);
    jws.signingInput = tokenView.first(payloadEnd);
    return jws;
}

// Decodes one part of a compact JWS. Only the signature may be empty, so that an unsigned token
// fails on its "alg", which gives a clearer error than a missing signature.
Result<QByteArray> decodePart(QByteArrayView encoded, const char *partName)
{
    std::optional<QByteArray> decoded = decodeBase64Url(encoded);
    if (!decoded || (decoded->isEmpty() && qstrcmp(partName, "signature") != 0)) {
        return Error{QStringLiteral("The ID token's %1 is empty or not valid base64url without "
                                    "padding.")
                         .arg(QLatin1String(partName))};
    }
    return std::move(*decoded);
}

Result<QJsonObject> decodeHeader(QByteArrayView encoded)
{
    const Result<QByteArray> decoded = decodePart(encoded, "header");
    if (!decoded)
        return decoded.error();
    const QJsonDocument header = QJsonDocument::fromJson(*decoded);
    if (!header.isObject())
        return Error{QStringLiteral("The ID token's header is not a JSON object.")};
    return header.object();
}

Result<const SignatureAlgorithm *> readAlgorithm(const QJsonObject &header)
{
    const QJsonValue value = header.value(QStringLiteral("alg"));
    if (!value.isString())
        return Error{QStringLiteral("The ID token's header has no \"alg\" string.")};

    const QString name = value.toString();
    for (const SignatureAlgorithm &algorithm : allowedAlgorithms) {
        if (name == QLatin1String(algorithm.name))
            return &algorithm;
    }

    if (name == QStringLiteral("none")) {
        return Error{QStringLiteral("The ID token is unsigned (algorithm \"none\"), and unsigned "
                                    "ID tokens are always rejected.")};
    }
    if (name.startsWith(QStringLiteral("HS"))) {
        return Error{QStringLiteral("The ID token's algorithm %1 is HMAC, which is always "
                                    "rejected because only the issuer's public keys are trusted.")
                         .arg(quoted(name))};
    }
    return Error{QStringLiteral("The ID token's algorithm %1 is not allowed. Allowed are %2.")
                     .arg(quoted(name), allowedAlgorithmNames())};
}

Status checkCriticalHeaders(const QJsonObject &header)
{
    // RFC 7515, section 4.1.11: a recipient that does not understand every extension listed in
    // "crit" must reject the JWS, and this verifier understands none.
    if (header.contains(QStringLiteral("crit"))) {
        return Error{QStringLiteral("The ID token's header lists critical extensions (\"crit\"), "
                                    "which are not supported.")};
    }
    return Done{};
}

// Returns why key cannot verify signatures made with algorithm, or a null string when it can.
QString findKeyMismatch(const JsonWebKey &key, const SignatureAlgorithm &algorithm)
{
    const QLatin1String algorithmName(algorithm.name);
    if (key.keyType != QLatin1String(algorithm.keyType)) {
        return QStringLiteral("is an %1 key, but %2 needs an %3 key")
            .arg(key.keyType, algorithmName, QLatin1String(algorithm.keyType));
    }
    if (!key.algorithm.isEmpty() && key.algorithm != algorithmName) {
        return QStringLiteral("is for the algorithm %1, but the ID token uses %2")
            .arg(quoted(key.algorithm), algorithmName);
    }
    if (algorithm.curve && key.curve != QLatin1String(algorithm.curve)) {
        return QStringLiteral("is on the curve %1, but %2 needs %3")
            .arg(key.curve, algorithmName, QLatin1String(algorithm.curve));
    }
    return QString();
}

std::vector<const JsonWebKey *> findSuitableKeys(const JsonWebKeySet &keys,
                                                 const SignatureAlgorithm &algorithm)
{
    std::vector<const JsonWebKey *> suitable;
    for (const JsonWebKey &key : keys.keys()) {
        if (findKeyMismatch(key, algorithm).isNull())
            suitable.push_back(&key);
    }
    return suitable;
}

// Selects the key named by the header's "kid". Without a "kid", the only key that suits the
// algorithm is used. When several keys share the "kid", the first suitable one is used.
Result<const JsonWebKey *>
selectKey(const QJsonObject &header, const SignatureAlgorithm &algorithm, const JsonWebKeySet &keys)
{
    const QLatin1String algorithmName(algorithm.name);
    const QJsonValue keyIdValue = header.value(QStringLiteral("kid"));
    if (keyIdValue.isUndefined()) {
        const std::vector<const JsonWebKey *> suitable = findSuitableKeys(keys, algorithm);
        if (suitable.size() == 1)
            return suitable.front();
        if (suitable.empty()) {
            return Error{QStringLiteral("The ID token has no \"kid\", and the JSON Web Key Set "
                                        "has no key for %1.")
                             .arg(algorithmName)};
        }
        return Error{QStringLiteral("The ID token has no \"kid\", and the JSON Web Key Set has "
                                    "%1 keys for %2, so the signing key is ambiguous.")
                         .arg(suitable.size())
                         .arg(algorithmName)};
    }
    if (!keyIdValue.isString())
        return Error{QStringLiteral("The ID token's \"kid\" is not a string.")};

    const QString keyId = keyIdValue.toString();
    const std::vector<const JsonWebKey *> candidates = keys.keysWithId(keyId);
    if (candidates.empty()) {
        const QString skipReason = keys.skipReason(keyId);
        if (!skipReason.isNull()) {
            return Error{QStringLiteral("The ID token's signing key %1 cannot be used because %2.")
                             .arg(quoted(keyId), skipReason)};
        }
        return Error{QStringLiteral("The ID token's signing key %1 is not in the JSON Web Key "
                                    "Set.")
                         .arg(quoted(keyId))};
    }
    for (const JsonWebKey *candidate : candidates) {
        if (findKeyMismatch(*candidate, algorithm).isNull())
            return candidate;
    }
    return Error{QStringLiteral("The ID token's signing key %1 %2.")
                     .arg(quoted(keyId), findKeyMismatch(*candidates.front(), algorithm))};
}

// Converts a JWS ECDSA signature, R and S as fixed-size big-endian numbers (RFC 7518,
// section 3.4), to the DER ECDSA-Sig-Value that OpenSSL verifies.
Result<QByteArray> convertEcdsaSignatureToDer(const QByteArray &signature,
                                              const SignatureAlgorithm &algorithm)
{
    const int coordinateBytes = algorithm.ecdsaCoordinateBytes;
    if (signature.size() != 2 * coordinateBytes) {
        return Error{QStringLiteral("The ID token's %1 signature has %2 bytes instead of %3.")
                         .arg(QLatin1String(algorithm.name))
                         .arg(signature.size())
                         .arg(2 * coordinateBytes)};
    }

    const auto *bytes = reinterpret_cast<const unsigned char *>(signature.constData());
    BignumPointer r(BN_bin2bn(bytes, coordinateBytes, nullptr));
    BignumPointer s(BN_bin2bn(bytes + coordinateBytes, coordinateBytes, nullptr));
    EcdsaSignaturePointer ecdsaSignature(ECDSA_SIG_new());
    if (!r || !s || !ecdsaSignature || !ECDSA_SIG_set0(ecdsaSignature.get(), r.get(), s.get()))
        return Error{QStringLiteral("OpenSSL could not allocate an ECDSA signature.")};
    // ECDSA_SIG_set0 took ownership of both numbers.
    r.release();
    s.release();

    const int derSize = i2d_ECDSA_SIG(ecdsaSignature.get(), nullptr);
    if (derSize <= 0)
        return Error{QStringLiteral("OpenSSL could not encode an ECDSA signature.")};
    QByteArray der(derSize, Qt::Uninitialized);
    auto *derBytes = reinterpret_cast<unsigned char *>(der.data());
    i2d_ECDSA_SIG(ecdsaSignature.get(), &derBytes);
    return der;
}

QString describeKey(const JsonWebKey &key)
{
    if (key.keyId.isEmpty())
        return QStringLiteral("the signing key without a \"kid\"");
    return QStringLiteral("the signing key %1").arg(quoted(key.keyId));
}

// Returns the algorithm's digest, fetched from OpenSSL's providers once instead of on every use.
const EVP_MD *fetchedDigest(const SignatureAlgorithm &algorithm)
{
    static std::array<EVP_MD *, std::size(allowedAlgorithms)> digests = [] {
        std::array<EVP_MD *, std::size(allowedAlgorithms)> fetched{};
        for (std::size_t i = 0; i < fetched.size(); ++i)
            fetched[i] =
                EVP_MD_fetch(nullptr, EVP_MD_get0_name(allowedAlgorithms[i].digest()), nullptr);
        return fetched;
    }();
    const std::size_t index = std::size_t(&algorithm - allowedAlgorithms);
    return digests[index] ? digests[index] : algorithm.digest();
}

// Returns the key's context for verifying the algorithm's signatures over a digest, set up on
// first use and kept with the key. Returns nullptr when OpenSSL cannot set it up.
EVP_PKEY_CTX *verifyContextFor(const JsonWebKey &key, const SignatureAlgorithm &algorithm)
{
    if (key.verifyContext && key.verifyAlgorithm == &algorithm)
        return key.verifyContext.get();
    std::shared_ptr<EVP_PKEY_CTX> context(
        EVP_PKEY_CTX_new_from_pkey(nullptr, key.publicKey.get(), nullptr), EVP_PKEY_CTX_free);
    bool ready = context && EVP_PKEY_verify_init(context.get()) == 1 &&
                 EVP_PKEY_CTX_set_signature_md(context.get(), fetchedDigest(algorithm)) > 0;
    if (ready && algorithm.rsaPadding != 0)
        ready = EVP_PKEY_CTX_set_rsa_padding(context.get(), algorithm.rsaPadding) > 0;
    if (ready && algorithm.rsaPadding == RSA_PKCS1_PSS_PADDING) {
        // RFC 7518, section 3.5: MGF1 with the same hash, and a salt as long as the hash.
        ready = EVP_PKEY_CTX_set_rsa_pss_saltlen(context.get(), RSA_PSS_SALTLEN_DIGEST) > 0 &&
                EVP_PKEY_CTX_set_rsa_mgf1_md(context.get(), fetchedDigest(algorithm)) > 0;
    }
    if (!ready)
        return nullptr;
    key.verifyContext = std::move(context);
    key.verifyAlgorithm = &algorithm;
    return key.verifyContext.get();
}

Status verifySignature(QByteArrayView signingInput,
                       QByteArray signature,
                       const SignatureAlgorithm &algorithm,
                       const JsonWebKey &key)
{
    if (algorithm.ecdsaCoordinateBytes > 0) {
        Result<QByteArray> der = convertEcdsaSignatureToDer(signature, algorithm);
        if (!der)
            return der.error();
        signature = std::move(der).value();
    }

    EVP_PKEY_CTX *verifier = verifyContextFor(key, algorithm);
    if (!verifier) {
        ERR_clear_error();
        return Error{QStringLiteral("OpenSSL could not set up %1 verification with %2.")
                         .arg(QLatin1String(algorithm.name), describeKey(key))};
    }

    // One hashing context per thread, reused: EVP_Digest() makes and frees one, with OpenSSL's
    // provider context inside, for every token.
    static thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> hashing(
        EVP_MD_CTX_new(), EVP_MD_CTX_free);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digestSize = 0;
    if (!hashing || EVP_DigestInit_ex2(hashing.get(), fetchedDigest(algorithm), nullptr) != 1 ||
        EVP_DigestUpdate(hashing.get(), signingInput.data(), size_t(signingInput.size())) != 1 ||
        EVP_DigestFinal_ex(hashing.get(), digest, &digestSize) != 1) {
        ERR_clear_error();
        return Error{QStringLiteral("OpenSSL could not hash the ID token for %1.")
                         .arg(QLatin1String(algorithm.name))};
    }
    const int verified =
        EVP_PKEY_verify(verifier,
                        reinterpret_cast<const unsigned char *>(signature.constData()),
                        size_t(signature.size()),
                        digest,
                        digestSize);
    if (verified != 1) {
        ERR_clear_error();
        return Error{
            QStringLiteral("The ID token's signature is invalid for %1.").arg(describeKey(key))};
    }
    return Done{};
}

Result<QString> readRequiredString(const ClaimSet &claims, QByteArrayView name)
{
    std::optional<QString> value = claims.string(name);
    if (!value || value->isEmpty()) {
        return Error{
            QStringLiteral("The ID token has no %1 claim.").arg(quoted(QString::fromUtf8(name)))};
    }
    return std::move(*value);
}

// Reads a NumericDate claim (RFC 7519, section 2): seconds since 1970-01-01T00:00:00Z, possibly
// with a fraction. Returns nothing when the claim is absent.
Result<std::optional<double>> readNumericDate(const ClaimSet &claims, QByteArrayView name)
{
    if (claims.type(name) == ClaimSet::Type::Absent)
        return std::optional<double>();

    const double seconds = claims.number(name).value_or(-1);
    if (!std::isfinite(seconds) || seconds < 0 || seconds > maximumNumericDate) {
        return Error{QStringLiteral("The ID token's %1 claim is not a valid NumericDate (seconds "
                                    "since 1970).")
                         .arg(quoted(QString::fromUtf8(name)))};
    }
    return std::optional<double>(seconds);
}

Status checkIssuer(const ClaimSet &claims, const IdTokenExpectations &expectations)
{
    const Result<QString> issuer = readRequiredString(claims, "iss");
    if (!issuer)
        return issuer.error();
    if (*issuer != expectations.issuer) {
        QString message =
            QStringLiteral("The ID token's issuer %1 is not the configured issuer %2.")
                .arg(quoted(*issuer), quoted(expectations.issuer));
        // Entra ID names each tenant with two issuers, and which one a token carries depends on
        // the endpoint version and the app registration, so the two are easily confused.
        const auto isEntra = [](const QString &url) {
            return url.startsWith(QLatin1String("https://sts.windows.net/")) ||
                   url.startsWith(QLatin1String("https://login.microsoftonline.com/"));
        };
        if (isEntra(*issuer) && isEntra(expectations.issuer)) {
            message += QStringLiteral(" Entra ID issues tokens as https://sts.windows.net/TENANT/ "
                                      "from its v1.0 endpoints and as "
                                      "https://login.microsoftonline.com/TENANT/v2.0 from its "
                                      "v2.0 endpoints: set oidc.issuer to the issuer of the "
                                      "discovery document that the tokens come from.");
        }
        return Error{message};
    }
    return Done{};
}

Result<QStringList> readAudience(const ClaimSet &claims)
{
    if (std::optional<QString> single = claims.string("aud"))
        return QStringList{std::move(*single)};

    std::optional<ClaimSet::Strings> audience = claims.strings("aud");
    if (!audience || audience->values.isEmpty() || audience->nonStrings > 0) {
        return Error{QStringLiteral("The ID token has no \"aud\" claim that is a string or an "
                                    "array of strings.")};
    }
    return std::move(audience->values);
}

// Checks "aud" and "azp" as OpenID Connect Core 1.0, section 3.1.3.7, items 3 to 5 describe.
Status checkAudience(const ClaimSet &claims, const IdTokenExpectations &expectations)
{
    const Result<QStringList> audience = readAudience(claims);
    if (!audience)
        return audience.error();
    const QStringList accepted = expectations.audiences.isEmpty()
                                     ? QStringList{expectations.clientId}
                                     : expectations.audiences;
    const bool matches = std::any_of(accepted.cbegin(), accepted.cend(), [&](const QString &entry) {
        return audience->contains(entry);
    });
    // Built only for an error, like the other messages of this check.
    const auto expected = [&] {
        QStringList quotedAccepted;
        for (const QString &entry : accepted)
            quotedAccepted.append(quoted(entry));
        return expectations.audiences.isEmpty()
                   ? QStringLiteral("the client ID %1").arg(quotedAccepted.join(QString()))
                   : QStringLiteral("an accepted audience (%1)")
                         .arg(quotedAccepted.join(QStringLiteral(", ")));
    };
    if (!matches) {
        QStringList quotedAudience;
        for (const QString &entry : *audience)
            quotedAudience.append(quoted(entry));
        return Error{QStringLiteral("The ID token's audience (%1) does not include %2.")
                         .arg(quotedAudience.join(QStringLiteral(", ")), expected())};
    }

    if (claims.type("azp") == ClaimSet::Type::Absent) {
        if (audience->size() > 1) {
            return Error{QStringLiteral("The ID token has %1 audiences but no authorized party "
                                        "(\"azp\") claim.")
                             .arg(audience->size())};
        }
        return Done{};
    }
    const std::optional<QString> authorizedParty = claims.string("azp");
    if (!authorizedParty || !accepted.contains(*authorizedParty)) {
        return Error{QStringLiteral("The ID token's authorized party (\"azp\") %1 is not %2.")
                         .arg(quoted(authorizedParty.value_or(QString())), expected())};
    }
    return Done{};
}

// Checks "exp", "nbf" and "iat" against now, allowing the expected clock skew, and stores the
// times in claims.
Status checkTimes(const ClaimSet &payload,
                  const IdTokenExpectations &expectations,
                  const QDateTime &now,
                  IdTokenClaims &claims)
{
    const Result<std::optional<double>> expiry = readNumericDate(payload, "exp");
    const Result<std::optional<double>> notBefore = readNumericDate(payload, "nbf");
    const Result<std::optional<double>> issuedAt = readNumericDate(payload, "iat");
    for (const auto *date : {&expiry, &notBefore, &issuedAt}) {
        if (!*date)
            return date->error();
    }
    if (!expiry->has_value())
        return Error{QStringLiteral("The ID token has no \"exp\" claim.")};

    const double nowSeconds = double(now.toMSecsSinceEpoch()) / 1000.0;
    const double leeway = double(expectations.leeway.count());
    // Built only for an error, because formatting the time costs as much as the claim checks.
    const auto context = [&] {
        return QStringLiteral("now is %1, and the allowed clock skew is %2 s")
            .arg(formatTime(now))
            .arg(expectations.leeway.count());
    };
    if (nowSeconds > **expiry + leeway) {
        return Error{QStringLiteral("The ID token has expired: \"exp\" is %1, %2.")
                         .arg(formatNumericDate(**expiry), context())};
    }
    if (notBefore->has_value() && nowSeconds < **notBefore - leeway) {
        return Error{QStringLiteral("The ID token is not valid yet: \"nbf\" is %1, %2.")
                         .arg(formatNumericDate(**notBefore), context())};
    }
    if (issuedAt->has_value() && **issuedAt > nowSeconds + leeway) {
        return Error{QStringLiteral("The ID token was issued in the future: \"iat\" is %1, %2.")
                         .arg(formatNumericDate(**issuedAt), context())};
    }

    claims.expiresAt = QDateTime::fromSecsSinceEpoch(qint64(std::floor(**expiry)), Qt::UTC);
    if (issuedAt->has_value())
        claims.issuedAt = QDateTime::fromSecsSinceEpoch(qint64(std::floor(**issuedAt)), Qt::UTC);
    return Done{};
}

Status checkNonce(const ClaimSet &claims, const IdTokenExpectations &expectations)
{
    // An empty expected nonce skips the check: tokens from a refresh need not carry one.
    if (expectations.nonce.isEmpty())
        return Done{};

    const std::optional<QString> value = claims.string("nonce");
    if (!value) {
        return Error{QStringLiteral("The ID token has no \"nonce\" claim, but the login request "
                                    "sent a nonce.")};
    }
    // Compared in constant time, so that the time taken reveals nothing about the expected nonce.
    const QByteArray nonce = value->toUtf8();
    const bool equal =
        nonce.size() == expectations.nonce.size() &&
        CRYPTO_memcmp(nonce.constData(), expectations.nonce.constData(), size_t(nonce.size())) == 0;
    if (!equal) {
        return Error{QStringLiteral("The ID token's nonce does not match the nonce of the login "
                                    "request.")};
    }
    return Done{};
}

Result<IdTokenClaims> checkClaims(const QByteArray &payload,
                                  const IdTokenExpectations &expectations,
                                  const QDateTime &now)
{
    const Result<ClaimSet> parsed = ClaimSet::parse(payload);
    if (!parsed)
        return parsed.error();
    const ClaimSet &object = *parsed;

    IdTokenClaims claims;
    const Status issuer = checkIssuer(object, expectations);
    if (!issuer)
        return issuer.error();
    const Status audience = checkAudience(object, expectations);
    if (!audience)
        return audience.error();
    const Status times = checkTimes(object, expectations, now, claims);
    if (!times)
        return times.error();
    const Status nonce = checkNonce(object, expectations);
    if (!nonce)
        return nonce.error();

    const Result<QString> subject = readRequiredString(object, "sub");
    if (!subject)
        return subject.error();

    claims.issuer = expectations.issuer;
    claims.subject = *subject;
    claims.payload = payload;
    return claims;
}

// The signing key that a token names, or needs when it names none, and that a key set lacks.
struct MissingKey {
    QString keyId;       // null when the token has no "kid"
    QString description; // the quoted key id, or "for ES256" and the like without a "kid"
};

// Returns the key that token needs when keys lacks it. Returns nothing when keys has the key or
// the token's header cannot be read.
std::optional<MissingKey> findMissingKey(const QByteArray &token, const JsonWebKeySet &keys)
{
    const Result<CompactJws> jws = splitCompactJws(token);
    if (!jws)
        return std::nullopt;
    const Result<QJsonObject> header = decodeHeader(jws->header);
    if (!header)
        return std::nullopt;
    const Result<const SignatureAlgorithm *> algorithm = readAlgorithm(*header);
    if (!algorithm)
        return std::nullopt;

    const QJsonValue keyId = header->value(QStringLiteral("kid"));
    if (keyId.isString() && !keys.containsKeyId(keyId.toString()))
        return MissingKey{keyId.toString(), quoted(keyId.toString())};
    if (keyId.isUndefined() && findSuitableKeys(keys, **algorithm).empty())
        return MissingKey{QString(),
                          QStringLiteral("for %1").arg(QLatin1String((*algorithm)->name))};
    return std::nullopt;
}

// The algorithm a token's header names and the key that verifies it.
struct SigningKey {
    const SignatureAlgorithm *algorithm;
    const JsonWebKey *key;
};

Status checkAlgorithmAllowed(const SignatureAlgorithm &algorithm,
                             const IdTokenExpectations &expectations)
{
    const QLatin1String name(algorithm.name);
    if (!expectations.algorithms.isEmpty() && !expectations.algorithms.contains(name)) {
        return Error{QStringLiteral("The ID token's algorithm %1 is not allowed here. Allowed are "
                                    "%2.")
                         .arg(quoted(name), expectations.algorithms.join(QStringLiteral(", ")))};
    }
    return Done{};
}

// Reads the header's "alg", "crit" and "kid" and picks the key. A header that keys has seen
// before is not read again, because an issuer usually signs all its tokens with one header.
Result<SigningKey> findSigningKey(QByteArrayView encodedHeader,
                                  const JsonWebKeySet &keys,
                                  const IdTokenExpectations &expectations)
{
    if (const JsonWebKeySet::KnownHeader *known = keys.findKnownHeader(encodedHeader)) {
        const auto *algorithm = static_cast<const SignatureAlgorithm *>(known->algorithm);
        const Status allowed = checkAlgorithmAllowed(*algorithm, expectations);
        if (!allowed)
            return allowed.error();
        return SigningKey{algorithm, &keys.keys()[known->keyIndex]};
    }

    const Result<QJsonObject> header = decodeHeader(encodedHeader);
    if (!header)
        return header.error();
    const Result<const SignatureAlgorithm *> algorithm = readAlgorithm(*header);
    if (!algorithm)
        return algorithm.error();
    const Status allowed = checkAlgorithmAllowed(**algorithm, expectations);
    if (!allowed)
        return allowed.error();
    const Status criticalHeaders = checkCriticalHeaders(*header);
    if (!criticalHeaders)
        return criticalHeaders.error();
    const Result<const JsonWebKey *> key = selectKey(*header, **algorithm, keys);
    if (!key)
        return key.error();

    keys.rememberHeader(
        {encodedHeader.toByteArray(), *algorithm, std::size_t(*key - keys.keys().data())});
    return SigningKey{*algorithm, *key};
}

} // namespace

QDateTime systemClock()
{
    return QDateTime::currentDateTimeUtc();
}

Result<IdTokenClaims> IdTokenVerifier::verifyWithKeys(const QByteArray &token,
                                                      const JsonWebKeySet &keys,
                                                      const IdTokenExpectations &expectations,
                                                      const QDateTime &now)
{
    const Result<CompactJws> jws = splitCompactJws(token);
    if (!jws)
        return jws.error();
    const Result<SigningKey> signingKey = findSigningKey(jws->header, keys, expectations);
    if (!signingKey)
        return signingKey.error();
    const Result<QByteArray> payload = decodePart(jws->payload, "payload");
    if (!payload)
        return payload.error();
    const Result<QByteArray> signature = decodePart(jws->signature, "signature");
    if (!signature)
        return signature.error();

    const Status verified =
        verifySignature(jws->signingInput, *signature, *signingKey->algorithm, *signingKey->key);
    if (!verified)
        return verified.error();
    return checkClaims(*payload, expectations, now);
}

struct IdTokenVerifier::Private {
    // A verify() call that waits for a fetch of the key set.
    struct PendingVerification {
        QByteArray token;
        IdTokenExpectations expectations;
        std::function<void(Result<IdTokenClaims>)> done;
    };

    Private(IdTokenVerifier *owner, QNetworkAccessManager *networkAccessManager, QUrl uri)
        : verifier(owner)
        , network(networkAccessManager)
        , jwksUri(std::move(uri))
    {}

    IdTokenVerifier *verifier;
    QPointer<QNetworkAccessManager> network;
    QUrl jwksUri;
    Clock clock = systemClock;
    std::chrono::seconds minimumRefetchInterval{60};
    std::optional<QSslConfiguration> sslConfiguration;

    // NOTE: a key that the issuer removes from its set stays trusted until the set is fetched
    // again, which happens only when a token names a key id the cached set lacks.
    std::optional<JsonWebKeySet> keys;
    QDateTime lastFetchStartedAt;
    QPointer<QNetworkReply> fetch;
    bool fetchTooLarge = false;
    std::vector<PendingVerification> waiting;

    QString displayUri() const { return jwksUri.toDisplayString(); }
    bool mayRefetch() const;
    void startFetch();
    void finishFetch(QNetworkReply *reply);
    Result<JsonWebKeySet> readFetchReply(QNetworkReply *reply) const;
    Result<IdTokenClaims> verifyWithCachedKeys(const PendingVerification &pending,
                                               bool fetchedJustNow) const;
    void complete(PendingVerification &pending, Result<IdTokenClaims> result);
};

bool IdTokenVerifier::Private::mayRefetch() const
{
    const QDateTime now = clock();
    // A clock that went back behind the last fetch allows a refetch rather than blocking one
    // until it catches up.
    if (!lastFetchStartedAt.isValid() || now < lastFetchStartedAt)
        return true;
    return lastFetchStartedAt.secsTo(now) >= minimumRefetchInterval.count();
}

void IdTokenVerifier::Private::startFetch()
{
    lastFetchStartedAt = clock();
    fetchTooLarge = false;
    if (!network) {
        const Error error{QStringLiteral("Could not fetch the JSON Web Key Set from %1: the "
                                         "network access manager no longer exists.")
                              .arg(displayUri())};
        for (PendingVerification &pending : std::exchange(waiting, {}))
            complete(pending, error);
        return;
    }

    QNetworkRequest request(jwksUri);
    request.setRawHeader("Accept", "application/jwk-set+json, application/json");
    if (network->transferTimeout() == 0)
        request.setTransferTimeout(int(std::chrono::milliseconds(defaultFetchTimeout).count()));
    if (sslConfiguration)
        request.setSslConfiguration(*sslConfiguration);

    QNetworkReply *reply = network->get(request);
    fetch = reply;
    QObject::connect(reply,
                     &QNetworkReply::downloadProgress,
                     verifier,
                     [this, reply](qint64 received, qint64 total) {
                         if (received > maximumKeySetBytes || total > maximumKeySetBytes) {
                             fetchTooLarge = true;
                             reply->abort();
                         }
                     });
    QObject::connect(
        reply, &QNetworkReply::finished, verifier, [this, reply] { finishFetch(reply); });
}

Result<JsonWebKeySet> IdTokenVerifier::Private::readFetchReply(QNetworkReply *reply) const
{
    if (fetchTooLarge) {
        return Error{QStringLiteral("The JSON Web Key Set at %1 is larger than %2 bytes.")
                         .arg(displayUri())
                         .arg(maximumKeySetBytes)};
    }
    // The HTTP status is clearer than QNetworkReply's error string, which repeats the URL.
    const QVariant status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute);
    if (status.isValid() && status.toInt() != 200) {
        return Error{QStringLiteral("Could not fetch the JSON Web Key Set from %1: the server "
                                    "responded with HTTP status %2 instead of 200.")
                         .arg(displayUri())
                         .arg(status.toInt())};
    }
    if (reply->error() == QNetworkReply::OperationCanceledError) {
        return Error{QStringLiteral("Fetching the JSON Web Key Set from %1 timed out. Check that "
                                    "the identity provider is reachable.")
                         .arg(displayUri())};
    }
    if (reply->error() == QNetworkReply::SslHandshakeFailedError) {
        return Error{QStringLiteral("Could not fetch the JSON Web Key Set from %1: %2. Check that "
                                    "the CA of the identity provider's certificate is trusted.")
                         .arg(displayUri(), reply->errorString())};
    }
    if (reply->error() != QNetworkReply::NoError) {
        return Error{QStringLiteral("Could not fetch the JSON Web Key Set from %1: %2. Check that "
                                    "the identity provider is reachable.")
                         .arg(displayUri(), reply->errorString())};
    }

    Result<JsonWebKeySet> keySet = JsonWebKeySet::fromJson(reply->readAll());
    if (!keySet) {
        return Error{
            QStringLiteral("%1 It was fetched from %2.").arg(keySet.errorMessage(), displayUri())};
    }
    return keySet;
}

void IdTokenVerifier::Private::finishFetch(QNetworkReply *reply)
{
    reply->deleteLater();
    fetch = nullptr;

    const Result<JsonWebKeySet> fetched = readFetchReply(reply);
    if (fetched) {
        keys = *fetched;
        qCInfo(lcOidc).noquote() << "Fetched the JSON Web Key Set from" << displayUri() << "with"
                                 << fetched->size() << "usable keys and"
                                 << fetched->skippedKeys().size() << "skipped";
    } else {
        qCWarning(lcOidc).noquote() << fetched.errorMessage();
    }
    Q_EMIT verifier->keysFetched(fetched.errorMessage());

    for (PendingVerification &pending : std::exchange(waiting, {})) {
        // After a failed fetch, a token whose key is in the previous set is still verified.
        const bool keyMissing = !keys || findMissingKey(pending.token, *keys);
        if (!fetched && keyMissing)
            complete(pending, fetched.error());
        else
            complete(pending, verifyWithCachedKeys(pending, fetched.ok()));
    }
}

Result<IdTokenClaims>
IdTokenVerifier::Private::verifyWithCachedKeys(const PendingVerification &pending,
                                               bool fetchedJustNow) const
{
    Result<IdTokenClaims> result =
        verifyWithKeys(pending.token, *keys, pending.expectations, clock());
    if (result)
        return result;

    // Replaces the message for a key that is not in the set, to say where the set came from and
    // when. Keys that were skipped keep the message with the reason.
    const std::optional<MissingKey> missingKey = findMissingKey(pending.token, *keys);
    if (!missingKey ||
        (!missingKey->keyId.isNull() && !keys->skipReason(missingKey->keyId).isNull()))
        return result;
    if (fetchedJustNow) {
        return Error{QStringLiteral("The JSON Web Key Set from %1 has no signing key %2, even as "
                                    "fetched just now. The ID token may come from another "
                                    "issuer.")
                         .arg(displayUri(), missingKey->description)};
    }
    return Error{QStringLiteral("The JSON Web Key Set from %1 has no signing key %2. The set was "
                                "last requested at %3 and is requested again at most every %4 "
                                "s.")
                     .arg(displayUri(), missingKey->description, formatTime(lastFetchStartedAt))
                     .arg(minimumRefetchInterval.count())};
}

void IdTokenVerifier::Private::complete(PendingVerification &pending, Result<IdTokenClaims> result)
{
    // Queued, so that done never runs inside verify() and may delete the verifier.
    QMetaObject::invokeMethod(
        verifier,
        [done = std::move(pending.done), result = std::move(result)] { done(result); },
        Qt::QueuedConnection);
}

IdTokenVerifier::IdTokenVerifier(QNetworkAccessManager *network, QUrl jwksUri, QObject *parent)
    : QObject(parent)
    , d(std::make_unique<Private>(this, network, std::move(jwksUri)))
{}

IdTokenVerifier::~IdTokenVerifier()
{
    if (d->fetch) {
        QObject::disconnect(d->fetch, nullptr, this, nullptr);
        d->fetch->abort();
        d->fetch->deleteLater();
    }
}

void IdTokenVerifier::prefetchKeys()
{
    if (!d->fetch)
        d->startFetch();
}

bool IdTokenVerifier::hasKeys() const
{
    return d->keys.has_value();
}

void IdTokenVerifier::setClock(Clock clock)
{
    d->clock = clock ? std::move(clock) : Clock(systemClock);
}

void IdTokenVerifier::setMinimumRefetchInterval(std::chrono::seconds interval)
{
    d->minimumRefetchInterval = interval;
}

void IdTokenVerifier::setSslConfiguration(const QSslConfiguration &configuration)
{
    d->sslConfiguration = configuration;
}

void IdTokenVerifier::verify(const QByteArray &token,
                             const IdTokenExpectations &expectations,
                             std::function<void(Result<IdTokenClaims>)> done)
{
    Private::PendingVerification pending{token, expectations, std::move(done)};

    // While a fetch runs, every verification waits for it rather than starting another.
    if (d->fetch) {
        d->waiting.push_back(std::move(pending));
        return;
    }

    // The first verification always fetches. Later ones refetch when the token names a key
    // that the cached set lacks, at most once per minimum refetch interval.
    const bool needsFetch = !d->keys || (findMissingKey(token, *d->keys) && d->mayRefetch());
    if (needsFetch) {
        d->waiting.push_back(std::move(pending));
        d->startFetch();
        return;
    }

    const Result<IdTokenClaims> result = d->verifyWithCachedKeys(pending, false);
    d->complete(pending, result);
}

} // namespace lamplighter
