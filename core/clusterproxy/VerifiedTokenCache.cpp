#include "clusterproxy/VerifiedTokenCache.h"

#include <QCryptographicHash>
#include <openssl/evp.h>

namespace lamplighter {

namespace {

// Returns the SHA-256 of the token. OpenSSL's implementation uses the processor's SHA
// instructions where they exist, which Qt 6.4's own does not.
QByteArray digest(const QByteArray &token)
{
    static EVP_MD *const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    QByteArray hash(32, Qt::Uninitialized);
    unsigned int size = 0;
    if (!sha256 || EVP_Digest(token.constData(),
                              size_t(token.size()),
                              reinterpret_cast<unsigned char *>(hash.data()),
                              &size,
                              sha256,
                              nullptr) != 1)
        return QCryptographicHash::hash(token, QCryptographicHash::Sha256);
    return hash;
}

} // namespace

const Impersonation *VerifiedTokenCache::find(const QByteArray &token, const QDateTime &now) const
{
    const auto found = m_entries.constFind(digest(token));
    if (found == m_entries.cend() || found->expiresAt <= now)
        return nullptr;
    return &found->person;
}

void VerifiedTokenCache::insert(const QByteArray &token,
                                const Impersonation &person,
                                const QDateTime &expiresAt,
                                const QDateTime &now)
{
    if (m_entries.size() >= m_capacity) {
        m_entries.removeIf([&now](const auto &entry) { return entry.value().expiresAt <= now; });
        if (m_entries.size() >= m_capacity)
            m_entries.clear();
    }
    m_entries.insert(digest(token), Entry{person, expiresAt});
}

} // namespace lamplighter
