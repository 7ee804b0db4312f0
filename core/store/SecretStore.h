#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QDeadlineTimer>
#include <QHash>
#include <QObject>
#include <QSet>
#include <QString>
#include <chrono>
#include <functional>
#include <optional>

namespace lamplighter {

// Keeps secrets (tokens, the proxy's private key) in the operating system's keychain through
// QtKeychain, under one service name. When no keychain service responds, it keeps them in memory,
// reports that through keychainUnavailable(), and never writes them to a file. QtKeychain's own
// plain-file fallback stays off. A write in memory tries the keychain again once the retry
// interval has passed. When the keychain responds, the secrets in memory move into it and
// keychainAvailable() is emitted.
class SecretStore : public QObject {
    Q_OBJECT
public:
    explicit SecretStore(QString service, QObject *parent = nullptr);

    using ReadCallback = std::function<void(Result<std::optional<QByteArray>>)>;
    using WriteCallback = std::function<void(Status)>;

    // Reads the secret stored under key; the optional is empty when there is none.
    // NOTE: an entry in a locked gnome-keyring collection reads as absent, without an error
    // (QtKeychain 0.13 with libsecret 0.20), so a locked keychain looks like an empty one.
    void read(const QString &key, ReadCallback done);
    void write(const QString &key, const QByteArray &secret, WriteCallback done);
    // Removes the secret stored under key; removing one that is absent succeeds.
    void remove(const QString &key, WriteCallback done);

    bool isInMemoryOnly() const { return m_inMemoryOnly; }
    QString service() const { return m_service; }
    // Sets how long the store waits, after the keychain failed to respond, before a write tries
    // it again. The default is defaultKeychainRetryInterval.
    void setKeychainRetryInterval(std::chrono::milliseconds interval);

    static constexpr std::chrono::seconds defaultKeychainRetryInterval{30};

Q_SIGNALS:
    void keychainUnavailable(const QString &message);
    // Emitted when the keychain responds again after keychainUnavailable().
    void keychainAvailable(const QString &message);

private:
    void switchToMemory(const QString &reason);
    void writeToMemory(const QString &key, const QByteArray &secret, WriteCallback done);
    void moveMemoryToKeychain();

    QString m_service;
    bool m_inMemoryOnly = false;
    QHash<QString, QByteArray> m_memory;
    // Keys removed while in memory, which may still be in the keychain from before.
    QSet<QString> m_removedInMemory;
    std::chrono::milliseconds m_keychainRetryInterval = defaultKeychainRetryInterval;
    QDeadlineTimer m_keychainRetryAt;
    bool m_keychainRetryRunning = false;
};

} // namespace lamplighter
