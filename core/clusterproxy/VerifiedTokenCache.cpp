#include "clusterproxy/VerifiedTokenCache.h"

#include <QCryptographicHash>

namespace lamplighter {

namespace {

QByteArray digest(const QByteArray &token)
{
    return QCryptographicHash::hash(token, QCryptographicHash::Sha256);
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
