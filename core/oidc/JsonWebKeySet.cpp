#include "oidc/JsonWebKeySet.h"

#include "Logging.h"
#include "oidc/Base64Url.h"
#include "util/OpenSslPointers.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <optional>
#include <variant>

namespace lamplighter {

namespace {

// RFC 7518, sections 3.3 and 3.5: RSA keys for RS* and PS* must have at least 2048 bits.
constexpr int minimumRsaKeyBits = 2048;

struct CurveInfo {
    const char *jwkName;
    const char *openSslGroupName;
    int coordinateBytes;
};

// The curves of RFC 7518, section 6.2.1.1 that JWS signatures use (ES256, ES384, ES512).
constexpr CurveInfo supportedCurves[] = {
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

const CurveInfo *findCurve(const QString &jwkName)
{
    for (const CurveInfo &curve : supportedCurves) {
        if (jwkName == QLatin1String(curve.jwkName))
            return &curve;
    }
    return nullptr;
}

QString quoted(const QString &text)
{
    return QLatin1Char('"') + text + QLatin1Char('"');
}

// Reads a required base64url member of a JWK. The Error message is a reason to skip the key.
Result<QByteArray> readBase64UrlMember(const QJsonObject &jwk, const QString &member)
{
    const QJsonValue value = jwk.value(member);
    if (value.isUndefined())
        return Error{QStringLiteral("the member %1 is missing").arg(quoted(member))};
    if (!value.isString())
        return Error{QStringLiteral("the member %1 is not a string").arg(quoted(member))};

    const std::optional<QByteArray> decoded = decodeBase64Url(value.toString().toLatin1());
    if (!decoded || decoded->isEmpty())
        return Error{QStringLiteral("the member %1 is not valid base64url").arg(quoted(member))};
    return *decoded;
}

// Builds an OpenSSL public key of keyType ("RSA" or "EC") from key parameters and runs OpenSSL's
// public key check on it. For EC, building already fails when the point is not on the curve.
Result<std::shared_ptr<EVP_PKEY>> makePublicKey(const char *keyType, OSSL_PARAM_BLD *builder)
{
    const ParamsPointer params(OSSL_PARAM_BLD_to_param(builder));
    const KeyContextPointer context(EVP_PKEY_CTX_new_from_name(nullptr, keyType, nullptr));
    EVP_PKEY *key = nullptr;
    if (!params || !context || EVP_PKEY_fromdata_init(context.get()) <= 0 ||
        EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
        ERR_clear_error();
        return Error{QStringLiteral("OpenSSL could not build a public key from it")};
    }
    std::shared_ptr<EVP_PKEY> publicKey(key, EVP_PKEY_free);

    const KeyContextPointer checkContext(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!checkContext || EVP_PKEY_public_check(checkContext.get()) <= 0) {
        ERR_clear_error();
        return Error{QStringLiteral("OpenSSL's public key check failed on it")};
    }
    return publicKey;
}

Result<std::shared_ptr<EVP_PKEY>> readRsaKey(const QJsonObject &jwk)
{
    const Result<QByteArray> modulus = readBase64UrlMember(jwk, QStringLiteral("n"));
    if (!modulus)
        return modulus.error();
    const Result<QByteArray> exponent = readBase64UrlMember(jwk, QStringLiteral("e"));
    if (!exponent)
        return exponent.error();

    const auto toBignum = [](const QByteArray &bytes) {
        return BignumPointer(BN_bin2bn(reinterpret_cast<const unsigned char *>(bytes.constData()),
                                       int(bytes.size()),
                                       nullptr));
    };
    const BignumPointer n = toBignum(*modulus);
    const BignumPointer e = toBignum(*exponent);
    if (!n || !e)
        return Error{QStringLiteral("OpenSSL could not allocate its numbers")};

    const int bits = BN_num_bits(n.get());
    if (bits < minimumRsaKeyBits) {
        return Error{QStringLiteral("the RSA modulus has %1 bits, but at least %2 are required")
                         .arg(bits)
                         .arg(minimumRsaKeyBits)};
    }

    const ParamBuilderPointer builder(OSSL_PARAM_BLD_new());
    if (!builder || !OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get())) {
        return Error{QStringLiteral("OpenSSL could not store the RSA parameters")};
    }
    return makePublicKey("RSA", builder.get());
}

Result<std::shared_ptr<EVP_PKEY>> readEcKey(const QJsonObject &jwk, const CurveInfo &curve)
{
    const Result<QByteArray> x = readBase64UrlMember(jwk, QStringLiteral("x"));
    if (!x)
        return x.error();
    const Result<QByteArray> y = readBase64UrlMember(jwk, QStringLiteral("y"));
    if (!y)
        return y.error();

    // RFC 7518, sections 6.2.1.2 and 6.2.1.3: each coordinate has the full size of a coordinate on
    // the curve, with leading zero bytes kept.
    if (x->size() != curve.coordinateBytes || y->size() != curve.coordinateBytes) {
        return Error{QStringLiteral("the coordinates must have %1 bytes each on %2, but have "
                                    "%3 and %4")
                         .arg(curve.coordinateBytes)
                         .arg(QLatin1String(curve.jwkName))
                         .arg(x->size())
                         .arg(y->size())};
    }

    // An uncompressed point (SEC 1, section 2.3.3): 0x04, then x, then y.
    const QByteArray point = QByteArray(1, '\x04') + *x + *y;
    const ParamBuilderPointer builder(OSSL_PARAM_BLD_new());
    if (!builder ||
        !OSSL_PARAM_BLD_push_utf8_string(
            builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve.openSslGroupName, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(
            builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.constData(), size_t(point.size()))) {
        return Error{QStringLiteral("OpenSSL could not store the EC parameters")};
    }
    return makePublicKey("EC", builder.get());
}

// Returns why a JWK is not meant for verifying signatures, or a null string when it is.
QString findNonSignatureUse(const QJsonObject &jwk)
{
    const QJsonValue use = jwk.value(QStringLiteral("use"));
    if (!use.isUndefined() && use.toString() != QStringLiteral("sig"))
        return QStringLiteral("its \"use\" is not \"sig\"");

    const QJsonValue operations = jwk.value(QStringLiteral("key_ops"));
    if (!operations.isUndefined() &&
        !operations.toArray().contains(QJsonValue(QStringLiteral("verify")))) {
        return QStringLiteral("its \"key_ops\" do not include \"verify\"");
    }
    return QString();
}

enum class SkipSeverity { Expected, Invalid };

struct KeyReadFailure {
    SkipSeverity severity;
    QString reason;
};

// Converts one JWK, or returns why it is skipped.
std::variant<JsonWebKey, KeyReadFailure> readKey(const QJsonObject &jwk)
{
    const QString nonSignatureUse = findNonSignatureUse(jwk);
    if (!nonSignatureUse.isNull())
        return KeyReadFailure{SkipSeverity::Expected, nonSignatureUse};

    for (const QString &member : {QStringLiteral("kid"), QStringLiteral("alg")}) {
        const QJsonValue value = jwk.value(member);
        if (!value.isUndefined() && !value.isString()) {
            return KeyReadFailure{SkipSeverity::Invalid,
                                  QStringLiteral("its %1 is not a string").arg(quoted(member))};
        }
    }

    JsonWebKey key;
    key.keyId = jwk.value(QStringLiteral("kid")).toString();
    key.keyType = jwk.value(QStringLiteral("kty")).toString();
    key.algorithm = jwk.value(QStringLiteral("alg")).toString();

    const bool isRsa = key.keyType == QStringLiteral("RSA");
    const bool isEc = key.keyType == QStringLiteral("EC");
    if (key.keyType.isEmpty()) {
        return KeyReadFailure{SkipSeverity::Invalid,
                              QStringLiteral("its \"kty\" is missing or not a string")};
    }
    if (!isRsa && !isEc) {
        return KeyReadFailure{
            SkipSeverity::Expected,
            QStringLiteral("its key type %1 is not RSA or EC").arg(quoted(key.keyType))};
    }

    const CurveInfo *curve = nullptr;
    if (isEc) {
        key.curve = jwk.value(QStringLiteral("crv")).toString();
        curve = findCurve(key.curve);
        if (!curve) {
            return KeyReadFailure{
                SkipSeverity::Expected,
                QStringLiteral("its curve %1 is not P-256, P-384 or P-521").arg(quoted(key.curve))};
        }
    }

    Result<std::shared_ptr<EVP_PKEY>> publicKey = isRsa ? readRsaKey(jwk) : readEcKey(jwk, *curve);
    if (!publicKey)
        return KeyReadFailure{SkipSeverity::Invalid, publicKey.errorMessage()};
    key.publicKey = std::move(publicKey).value();
    return key;
}

} // namespace

Result<JsonWebKeySet> JsonWebKeySet::fromJson(const QByteArray &json)
{
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(json, &parseError);
    if (document.isNull()) {
        return Error{QStringLiteral("The JSON Web Key Set is not valid JSON: %1 at offset %2.")
                         .arg(parseError.errorString())
                         .arg(parseError.offset)};
    }
    if (!document.isObject())
        return Error{QStringLiteral("The JSON Web Key Set is not a JSON object.")};

    const QJsonValue keys = document.object().value(QStringLiteral("keys"));
    if (!keys.isArray())
        return Error{QStringLiteral("The JSON Web Key Set has no \"keys\" array.")};

    JsonWebKeySet set;
    const QJsonArray entries = keys.toArray();
    for (qsizetype index = 0; index < entries.size(); ++index) {
        if (!entries.at(index).isObject()) {
            return Error{QStringLiteral("Entry %1 of \"keys\" in the JSON Web Key Set is not a "
                                        "JSON object.")
                             .arg(index)};
        }
        const QJsonObject jwk = entries.at(index).toObject();
        std::variant<JsonWebKey, KeyReadFailure> read = readKey(jwk);
        if (auto *key = std::get_if<JsonWebKey>(&read)) {
            set.m_keys.push_back(std::move(*key));
            continue;
        }

        const KeyReadFailure &failure = std::get<KeyReadFailure>(read);
        const QString keyId = jwk.value(QStringLiteral("kid")).toString();
        if (failure.severity == SkipSeverity::Expected) {
            qCDebug(lcOidc).noquote() << "Skipped JWK" << index << "with kid" << quoted(keyId)
                                      << "because" << failure.reason;
        } else {
            qCWarning(lcOidc).noquote() << "Skipped invalid JWK" << index << "with kid"
                                        << quoted(keyId) << "because" << failure.reason;
        }
        set.m_skippedKeys.push_back(SkippedJsonWebKey{keyId, failure.reason});
    }
    return set;
}

bool JsonWebKeySet::containsKeyId(const QString &keyId) const
{
    for (const JsonWebKey &key : m_keys) {
        if (key.keyId == keyId)
            return true;
    }
    return false;
}

std::vector<const JsonWebKey *> JsonWebKeySet::keysWithId(const QString &keyId) const
{
    std::vector<const JsonWebKey *> matches;
    for (const JsonWebKey &key : m_keys) {
        if (key.keyId == keyId)
            matches.push_back(&key);
    }
    return matches;
}

QString JsonWebKeySet::skipReason(const QString &keyId) const
{
    for (const SkippedJsonWebKey &skipped : m_skippedKeys) {
        if (skipped.keyId == keyId)
            return skipped.reason;
    }
    return QString();
}

const JsonWebKeySet::KnownHeader *JsonWebKeySet::findKnownHeader(QByteArrayView encoded) const
{
    for (const KnownHeader &known : m_knownHeaders) {
        if (known.encoded == encoded)
            return &known;
    }
    return nullptr;
}

void JsonWebKeySet::rememberHeader(KnownHeader header) const
{
    if (m_knownHeaders.size() >= maximumKnownHeaders)
        m_knownHeaders.erase(m_knownHeaders.begin());
    m_knownHeaders.push_back(std::move(header));
}

} // namespace lamplighter
