#include "oidc/Pkce.h"

#include "oidc/Base64Url.h"

#include <QCryptographicHash>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <utility>

namespace lamplighter {

namespace {

// RFC 7636 recommends a verifier made of 32 random octets, which is 256 bits of entropy.
constexpr int randomByteCount = 32;

Result<QByteArray> generateRandomBytes()
{
    QByteArray bytes(randomByteCount, Qt::Uninitialized);
    if (RAND_bytes(reinterpret_cast<unsigned char *>(bytes.data()), randomByteCount) != 1) {
        char reason[256] = {};
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        return Error{QStringLiteral("Failed to generate random bytes for sign-in: %1")
                         .arg(QString::fromLatin1(reason))};
    }
    return bytes;
}

} // namespace

Pkce::Pkce(QByteArray verifier)
    : m_verifier(std::move(verifier))
    , m_challenge(challengeFor(m_verifier))
{}

Result<Pkce> Pkce::generate()
{
    Result<QByteArray> verifier = generateRandomToken();
    if (!verifier)
        return verifier.error();
    return Pkce(std::move(verifier).value());
}

QByteArray Pkce::challengeFor(const QByteArray &verifier)
{
    return encodeBase64Url(QCryptographicHash::hash(verifier, QCryptographicHash::Sha256));
}

QString Pkce::method()
{
    return QStringLiteral("S256");
}

Result<QByteArray> generateRandomToken()
{
    Result<QByteArray> bytes = generateRandomBytes();
    if (!bytes)
        return bytes.error();
    return encodeBase64Url(bytes.value());
}

} // namespace lamplighter
