#pragma once

#include "store/KeychainAccess.h"
#include "util/Result.h"

#include <QByteArray>
#include <QDeadlineTimer>
#include <QHash>
#include <QList>
#include <QObject>
#include <QSet>
#include <QString>
#include <QStringList>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

namespace lamplighter {

// Keeps secrets (tokens, the proxy's private key) in the operating system's keychain through
// QtKeychain, under one service name. When no keychain service responds, it keeps them in memory,
// reports that through keychainUnavailable(), and never writes them to a file. QtKeychain's own
// plain-file fallback stays off. A write in memory tries the keychain again once the retry
// interval has passed. When the keychain responds, the secrets in memory move into it and
// keychainAvailable() is emitted.
//
// QtKeychain cannot list the entries of a service, so the store keeps an entry index under
// entryIndexKey(): it lists every key that write() has stored, and removeAll() removes them.
class SecretStore : public QObject {
    Q_OBJECT
public:
    // A store that uses the keychain in this process, through QtKeychain.
    explicit SecretStore(QString service, QObject *parent = nullptr);
    // A store that uses the keychain through `keychain`, HelperProcessKeychain for example.
    explicit SecretStore(std::unique_ptr<KeychainAccess> keychain, QObject *parent = nullptr);

    using ReadCallback = std::function<void(Result<std::optional<QByteArray>>)>;
    using WriteCallback = std::function<void(Status)>;

    // Reads the secret stored under key; the optional is empty when there is none.
    // NOTE: an entry in a locked gnome-keyring collection reads as absent, without an error
    // (QtKeychain 0.13 with libsecret 0.20), so a locked keychain looks like an empty one.
    void read(const QString &key, ReadCallback done);
    // Writes secret under key. A key that the entry index does not list yet is added to the
    // index first, so that a crash between the two writes cannot leave an unlisted entry.
    void write(const QString &key, const QByteArray &secret, WriteCallback done);
    // Removes the secret stored under key; removing one that is absent succeeds. The key stays
    // in the entry index until removeAll().
    void remove(const QString &key, WriteCallback done);

    using ListCallback = std::function<void(Result<QStringList>)>;
    using CountCallback = std::function<void(Result<int>)>;
    // Reads the keys that the entry index lists, sorted; none when there is no index. An index
    // written by a newer Lamplighter, or one that is not valid, is an error.
    void readIndex(ListCallback done);
    // Removes every entry that the index lists or knownKeys names, one after another, and then
    // the index. Calls done with the number of entries that were there and are removed, the
    // index included. After a failure the index is kept, so that running it again finishes.
    void removeAll(const QStringList &knownKeys, CountCallback done);
    // The key of the entry index, which the store manages itself.
    static QString entryIndexKey() { return QStringLiteral("entry-index"); }

    bool isInMemoryOnly() const { return m_inMemoryOnly; }
    QString service() const;
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
    void writeEntry(const QString &key, const QByteArray &secret, WriteCallback done);
    void listKey(const QString &key, WriteCallback done);
    void listNextKey();
    void removeEach(QStringList keys, int removed, CountCallback done);

    KeychainAccess *m_keychain; // a child of the store
    bool m_inMemoryOnly = false;
    QHash<QString, QByteArray> m_memory;
    // Keys removed while in memory, which may still be in the keychain from before.
    QSet<QString> m_removedInMemory;
    std::chrono::milliseconds m_keychainRetryInterval = defaultKeychainRetryInterval;
    QDeadlineTimer m_keychainRetryAt;
    bool m_keychainRetryRunning = false;
    // Keys that the entry index listed when this store last read or wrote it.
    QSet<QString> m_listedKeys;
    // Keys waiting to be added to the entry index. One update runs at a time, so that two new
    // keys cannot both read the old index and each write it back without the other.
    QList<std::pair<QString, WriteCallback>> m_keysToList;
    bool m_listingKey = false;
    // Calls of removeAll() that wait until the index updates are done.
    QList<std::function<void()>> m_afterListing;
};

} // namespace lamplighter
