#pragma once

#include "proxy/HttpHead.h"

#include <QByteArray>
#include <QDateTime>
#include <QHash>
#include <QList>
#include <QPair>
#include <QString>
#include <QStringList>
#include <vector>

namespace lamplighter {

// The person the cluster proxy acts for, from the claims of a verified ID token.
struct Impersonation {
    QString user;       // Impersonate-User
    QStringList groups; // Impersonate-Group, one field each, system:authenticated included
    QString uid;        // Impersonate-Uid: the issuer's subject
    QList<QPair<QString, QStringList>> extras; // Impersonate-Extra-<key>, from claims.extras
    // The Impersonate-* fields of the fields above, made once per verified token.
    std::vector<HttpHeader> headers;
};

// The people of ID tokens that passed verification, by the SHA-256 of the token, until each
// token expires. The tokens themselves are not kept. When full, expired entries go first, and
// then all of them, so a flood of distinct tokens costs verifications but not memory.
class VerifiedTokenCache {
public:
    explicit VerifiedTokenCache(qsizetype capacity = 10000)
        : m_capacity(capacity)
    {}

    // Returns the person of a token verified before, or nullptr when the token is unknown or
    // expired at `now`. The pointer is valid until the next insert().
    const Impersonation *find(const QByteArray &token, const QDateTime &now) const;
    void insert(const QByteArray &token,
                const Impersonation &person,
                const QDateTime &expiresAt,
                const QDateTime &now);
    qsizetype size() const { return m_entries.size(); }

private:
    struct Entry {
        Impersonation person;
        QDateTime expiresAt;
    };

    qsizetype m_capacity;
    QHash<QByteArray, Entry> m_entries;
};

} // namespace lamplighter
