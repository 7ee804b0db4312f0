#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QHash>
#include <QObject>
#include <QString>
#include <functional>
#include <optional>

namespace lamplighter {

// Keeps secrets (tokens, the proxy's private key) in the operating system's keychain through
// QtKeychain, under one service name. When no keychain service responds, it keeps them in memory
// for the rest of this run, reports that once through keychainUnavailable(), and never writes them
// to a file. QtKeychain's own plain-file fallback stays off.
class SecretStore : public QObject {
    Q_OBJECT
public:
    explicit SecretStore(QString service, QObject *parent = nullptr);

    using ReadCallback = std::function<void(Result<std::optional<QByteArray>>)>;
    using WriteCallback = std::function<void(Status)>;

    // Reads the secret stored under key; the optional is empty when there is none.
    void read(const QString &key, ReadCallback done);
    void write(const QString &key, const QByteArray &secret, WriteCallback done);
    // Removes the secret stored under key; removing one that is absent succeeds.
    void remove(const QString &key, WriteCallback done);

    bool isInMemoryOnly() const { return m_inMemoryOnly; }
    QString service() const { return m_service; }

Q_SIGNALS:
    void keychainUnavailable(const QString &message);

private:
    void switchToMemory(const QString &reason);

    QString m_service;
    bool m_inMemoryOnly = false;
    QHash<QString, QByteArray> m_memory;
};

} // namespace lamplighter
