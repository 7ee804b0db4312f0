#include "FuzzSigningKey.h"

#include "FuzzSupport.h"
#include "oidc/Base64Url.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace lamplighter::fuzz {

namespace {

// A test-only RSA key, fixed so that the seed corpora can contain its public JWK and tokens that
// it signed. It protects nothing.
constexpr char kPrivateKeyPem[] = R"(
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDKvscIDIsHdCop
y+30wOq88u7kEMPz8WH50xgv4Hp9LU8L7dkFUD1R+QokFppYPfRQYU7JJjH/j7Ip
30hs+I2PsuRSHgy7aX24oqhGaCficgaOpyXoX+qS6hxWkxwMwo8B5dsOjXMLZPJf
nUXA1mluGzXm0GHQPJDH0EZfSRppO/X+A+fBON5V7usuedY8LGxjEz2r4mS9Qutx
d8Nofh/gHBrZpD7yIR7pkVyIiOtuR4zOY2A0d8tnXA4dvuAmlW0AhVL0sEKYRGZF
OaNNlMW5+PKViaPXM4YI0C4twwh40kloF1vLZvPnO5R9qw5JS1iSbf6oOyqcSlLP
suPe8dX3AgMBAAECggEAAVmw8KxItsV+zGV30cQBLD3/+lPkQjku2l+eDx+TIUdO
efldEyx8JBIhD6l44LKU8H4dbLiM57NYz++VR2iGZNkfrS5XDl5/AF5Q+ZsS/O6e
fY++cGRHJzBY/Pig3LLlCfGyek/V3tMOzDU7dDPZYuraeo2TwTPOEQ6hkVvmyaGi
EdkYVoLfiiGCQ1K3djD698U1BtPMAlyxVxO4tRx/n265RnTUDCRGVEKFuKAMdvkR
aQgyY6u0IR7Rav1TEPYMMUtQsdDLlsswvYXlC8wfmTvSLZiPgC9LBLV5surUa+Ii
e/9TWzd9rwn6zHt5NSeC9LadBec2LmoP/NnK8MEt1QKBgQDsiDgQvqelw0UGcJOC
fhXe2OAWn7g9CX0HKl6fOgZDSLN2woOwU9GLQJ+S6z5vrZ0WRbMmhVzx9/F4rzSj
nMBhnlR99p0EHD1yvlKkYhb91XRq8oJRTn+VjR5a74QHALdQmiItuOmOfznAsnM4
Jl5N84GIfeYzpYmO1jGiVnat5QKBgQDbbqlr6hq4t5VtyML4mSxz4XuzyIeAdhLl
St/K10EuckHPrX/bwjDNs5aZusAFRTEhJFY/Cj+fLu8bQ0qR/1r3Ph4SNAmffsuy
TVkGuYpzhdkJAU/9WZyndwGkGBueOn3fNwy5oWNbIBEryeKvWoNo6ajgmjZrA4M+
A5qY5DIWqwKBgAko9VLgr0liGIg5T90b2Oj6aSM3KEFk3qyqXWO5MYjlhd2xhrwL
YvALnqJn7dERXiYAqQFy5LiSK43K6zTy2xhss0T1ifsgxNhuunCXQ+CspYeGwLk5
WwOFpYlMAUbsJi0+6tfuc00LbEckIgYopjpKldedWI7jeEJJ1T4+LvZpAoGBALyy
E+Ul4qa30DshKnCnH6/i1gKLTeKtJqCg24PNyVKMlIVnmIy9GES7y6UVD+04TABJ
BBWf1YgozxstqaGU6n+0nh1fPGs4mSgSFZ2Pzjx7fGCfDU87UVg9IV8gEBfoCrf5
2eqDmzIQiFOUf2f1uQ1t6XiDhIpP8ftRFA+oJF6TAoGABRl8c5+CgdSnKxcE1VOL
aXWPFwEAWotdVHInhA5pKqsayuLPFEieJMzwW1GtSTiNImQcf7Ni+1DBRSApMijY
6hj6bDbhZqywp+9pr/Xo0ASTOo+Et6TLlPBwLNYj/qqr60D5jHdc0Zn6Y7UkuG3k
2BrluGNL0l7E8owareGb6y8=
-----END PRIVATE KEY-----
)";

EVP_PKEY *loadKey()
{
    BIO *bio = BIO_new_mem_buf(kPrivateKeyPem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    requireProperty(key != nullptr, "the fixed signing key loads");
    return key;
}

QByteArray bigNumberParameter(EVP_PKEY *key, const char *name)
{
    BIGNUM *number = nullptr;
    requireProperty(EVP_PKEY_get_bn_param(key, name, &number) == 1,
                    "the fixed signing key has its RSA parameters");
    QByteArray bytes(BN_num_bytes(number), Qt::Uninitialized);
    BN_bn2bin(number, reinterpret_cast<unsigned char *>(bytes.data()));
    BN_free(number);
    return bytes;
}

} // namespace

EVP_PKEY *signingKey()
{
    static EVP_PKEY *key = loadKey();
    return key;
}

QByteArray signRs256(const QByteArray &signingInput)
{
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    std::size_t length = 0;
    QByteArray signature;
    const auto *input = reinterpret_cast<const unsigned char *>(signingInput.constData());
    if (EVP_DigestSignInit(context, nullptr, EVP_sha256(), nullptr, signingKey()) == 1 &&
        EVP_DigestSign(context, nullptr, &length, input, std::size_t(signingInput.size())) == 1) {
        signature.resize(qsizetype(length));
        if (EVP_DigestSign(context,
                           reinterpret_cast<unsigned char *>(signature.data()),
                           &length,
                           input,
                           std::size_t(signingInput.size())) != 1)
            signature.clear();
    }
    EVP_MD_CTX_free(context);
    requireProperty(!signature.isEmpty(), "signing with the fixed key succeeds");
    signature.resize(qsizetype(length));
    return signature;
}

QByteArray signedToken(const QByteArray &header, const QByteArray &claims)
{
    const QByteArray signingInput = encodeBase64Url(header) + '.' + encodeBase64Url(claims);
    return signingInput + '.' + encodeBase64Url(signRs256(signingInput));
}

QByteArray keySetJson()
{
    const QJsonObject jwk{
        {QStringLiteral("kty"), QStringLiteral("RSA")},
        {QStringLiteral("use"), QStringLiteral("sig")},
        {QStringLiteral("alg"), QStringLiteral("RS256")},
        {QStringLiteral("kid"), QString::fromLatin1(kKeyId)},
        {QStringLiteral("n"),
         QString::fromLatin1(
             encodeBase64Url(bigNumberParameter(signingKey(), OSSL_PKEY_PARAM_RSA_N)))},
        {QStringLiteral("e"),
         QString::fromLatin1(
             encodeBase64Url(bigNumberParameter(signingKey(), OSSL_PKEY_PARAM_RSA_E)))},
    };
    const QJsonObject set{{QStringLiteral("keys"), QJsonArray{jwk}}};
    return QJsonDocument(set).toJson(QJsonDocument::Compact);
}

} // namespace lamplighter::fuzz
