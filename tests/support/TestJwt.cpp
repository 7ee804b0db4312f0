#include "TestJwt.h"

#include "util/OpenSslPointers.h"

#include <QCryptographicHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QMessageAuthenticationCode>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

namespace lamplighter::test {

namespace {

void require(bool condition, const char *operation)
{
    if (!condition)
        qFatal("TestJwt: OpenSSL failed to %s", operation);
}

int coordinateBytes(const QString &curve)
{
    if (curve == QStringLiteral("P-256"))
        return 32;
    if (curve == QStringLiteral("P-384"))
        return 48;
    if (curve == QStringLiteral("P-521"))
        return 66;
    qFatal("TestJwt: unsupported curve %s", qPrintable(curve));
    return 0;
}

const EVP_MD *digestFor(const QString &algorithm)
{
    if (algorithm.endsWith(QStringLiteral("256")))
        return EVP_sha256();
    if (algorithm.endsWith(QStringLiteral("384")))
        return EVP_sha384();
    if (algorithm.endsWith(QStringLiteral("512")))
        return EVP_sha512();
    qFatal("TestJwt: no digest for algorithm %s", qPrintable(algorithm));
    return nullptr;
}

QByteArray readBignumParameter(EVP_PKEY *key, const char *name, int paddedSize)
{
    BIGNUM *value = nullptr;
    require(EVP_PKEY_get_bn_param(key, name, &value) == 1, "read a key parameter");
    const BignumPointer owned(value);
    const int size = paddedSize > 0 ? paddedSize : BN_num_bytes(value);
    QByteArray bytes(size, Qt::Uninitialized);
    require(BN_bn2binpad(value, reinterpret_cast<unsigned char *>(bytes.data()), size) == size,
            "encode a key parameter");
    return bytes;
}

// Converts OpenSSL's DER ECDSA signature to the fixed-size R and S of RFC 7518, section 3.4.
QByteArray convertDerToJwsSignature(const QByteArray &der, int size)
{
    const auto *bytes = reinterpret_cast<const unsigned char *>(der.constData());
    const EcdsaSignaturePointer signature(d2i_ECDSA_SIG(nullptr, &bytes, long(der.size())));
    require(signature != nullptr, "decode an ECDSA signature");

    QByteArray raw(2 * size, Qt::Uninitialized);
    auto *out = reinterpret_cast<unsigned char *>(raw.data());
    require(BN_bn2binpad(ECDSA_SIG_get0_r(signature.get()), out, size) == size, "encode R");
    require(BN_bn2binpad(ECDSA_SIG_get0_s(signature.get()), out + size, size) == size, "encode S");
    return raw;
}

QByteArray encodeJson(const QJsonObject &object)
{
    return QJsonDocument(object).toJson(QJsonDocument::Compact);
}

QByteArray signingInput(const QJsonObject &header, const QJsonObject &claims)
{
    return TestJwt::base64Url(encodeJson(header)) + '.' + TestJwt::base64Url(encodeJson(claims));
}

} // namespace

TestKey TestKey::generateRsa(int bits)
{
    TestKey key;
    key.m_key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(bits)), EVP_PKEY_free);
    require(key.m_key != nullptr, "generate an RSA key");
    return key;
}

TestKey TestKey::generateEc(const QString &curve)
{
    coordinateBytes(curve);
    TestKey key;
    const QByteArray curveName = curve.toLatin1();
    key.m_key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curveName.constData()),
                    EVP_PKEY_free);
    require(key.m_key != nullptr, "generate an EC key");
    key.m_curve = curve;
    return key;
}

QJsonObject TestKey::publicJwk(const QString &keyId, const QString &algorithm) const
{
    QJsonObject jwk{{QStringLiteral("use"), QStringLiteral("sig")}};
    if (!keyId.isEmpty())
        jwk.insert(QStringLiteral("kid"), keyId);
    if (!algorithm.isEmpty())
        jwk.insert(QStringLiteral("alg"), algorithm);

    const auto encode = [](const QByteArray &bytes) {
        return QString::fromLatin1(TestJwt::base64Url(bytes));
    };
    if (m_curve.isEmpty()) {
        jwk.insert(QStringLiteral("kty"), QStringLiteral("RSA"));
        jwk.insert(QStringLiteral("n"),
                   encode(readBignumParameter(key(), OSSL_PKEY_PARAM_RSA_N, 0)));
        jwk.insert(QStringLiteral("e"),
                   encode(readBignumParameter(key(), OSSL_PKEY_PARAM_RSA_E, 0)));
        return jwk;
    }

    const int size = coordinateBytes(m_curve);
    jwk.insert(QStringLiteral("kty"), QStringLiteral("EC"));
    jwk.insert(QStringLiteral("crv"), m_curve);
    jwk.insert(QStringLiteral("x"),
               encode(readBignumParameter(key(), OSSL_PKEY_PARAM_EC_PUB_X, size)));
    jwk.insert(QStringLiteral("y"),
               encode(readBignumParameter(key(), OSSL_PKEY_PARAM_EC_PUB_Y, size)));
    return jwk;
}

QByteArray TestKey::publicKeyPem() const
{
    const BioPointer bio(BIO_new(BIO_s_mem()));
    require(bio && PEM_write_bio_PUBKEY(bio.get(), key()) == 1, "write a public key");
    char *data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return QByteArray(data, qsizetype(size));
}

QByteArray TestKey::sign(const QString &algorithm, const QByteArray &data) const
{
    return signWithSaltLength(algorithm, data, RSA_PSS_SALTLEN_DIGEST);
}

QByteArray
TestKey::signRsaPss(const QString &algorithm, const QByteArray &data, int saltLength) const
{
    if (!algorithm.startsWith(QStringLiteral("PS")))
        qFatal("TestJwt: %s is not an RSA-PSS algorithm", qPrintable(algorithm));
    return signWithSaltLength(algorithm, data, saltLength);
}

QByteArray
TestKey::signWithSaltLength(const QString &algorithm, const QByteArray &data, int saltLength) const
{
    const DigestContextPointer context(EVP_MD_CTX_new());
    EVP_PKEY_CTX *keyContext = nullptr;
    require(context && EVP_DigestSignInit(
                           context.get(), &keyContext, digestFor(algorithm), nullptr, key()) == 1,
            "start signing");
    if (algorithm.startsWith(QStringLiteral("PS"))) {
        require(EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) > 0 &&
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, saltLength) > 0,
                "set up RSA-PSS");
    }

    const auto *input = reinterpret_cast<const unsigned char *>(data.constData());
    size_t size = 0;
    require(EVP_DigestSign(context.get(), nullptr, &size, input, size_t(data.size())) == 1,
            "size a signature");
    QByteArray signature(qsizetype(size), Qt::Uninitialized);
    require(EVP_DigestSign(context.get(),
                           reinterpret_cast<unsigned char *>(signature.data()),
                           &size,
                           input,
                           size_t(data.size())) == 1,
            "sign");
    signature.resize(qsizetype(size));

    if (algorithm.startsWith(QStringLiteral("ES")))
        return convertDerToJwsSignature(signature, coordinateBytes(m_curve));
    return signature;
}

namespace TestJwt {

QByteArray base64Url(const QByteArray &data)
{
    return data.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
}

QJsonObject header(const QString &algorithm, const QString &keyId)
{
    QJsonObject header{{QStringLiteral("typ"), QStringLiteral("JWT")},
                       {QStringLiteral("alg"), algorithm}};
    if (!keyId.isEmpty())
        header.insert(QStringLiteral("kid"), keyId);
    return header;
}

QByteArray sign(const QJsonObject &header, const QJsonObject &claims, const TestKey &key)
{
    const QString algorithm = header.value(QStringLiteral("alg")).toString();
    const QByteArray input = signingInput(header, claims);
    return input + '.' + base64Url(key.sign(algorithm, input));
}

QByteArray signHmac(const QJsonObject &header, const QJsonObject &claims, const QByteArray &secret)
{
    const QString algorithm = header.value(QStringLiteral("alg")).toString();
    QCryptographicHash::Algorithm hash = QCryptographicHash::Sha256;
    if (algorithm == QStringLiteral("HS384"))
        hash = QCryptographicHash::Sha384;
    else if (algorithm == QStringLiteral("HS512"))
        hash = QCryptographicHash::Sha512;

    const QByteArray input = signingInput(header, claims);
    return input + '.' + base64Url(QMessageAuthenticationCode::hash(input, secret, hash));
}

QByteArray
compose(const QJsonObject &header, const QJsonObject &claims, const QByteArray &signature)
{
    return signingInput(header, claims) + '.' + base64Url(signature);
}

QByteArray keySetJson(const QList<QJsonObject> &keys)
{
    QJsonArray array;
    for (const QJsonObject &key : keys)
        array.append(key);
    return encodeJson(QJsonObject{{QStringLiteral("keys"), array}});
}

} // namespace TestJwt

} // namespace lamplighter::test
