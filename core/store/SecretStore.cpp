#include "store/SecretStore.h"

#include "Logging.h"
#include "store/EntryFormats.h"

#include <utility>

namespace lamplighter {
SecretStore::SecretStore(QString service, QObject *parent)
    : SecretStore(std::make_unique<InProcessKeychain>(std::move(service)), parent)
{}

SecretStore::SecretStore(std::unique_ptr<KeychainAccess> keychain, QObject *parent)
    : QObject(parent)
    , m_keychain(keychain.release())
{
    m_keychain->setParent(this);
}

QString SecretStore::service() const
{
    return m_keychain->service();
}

void SecretStore::setKeychainRetryInterval(std::chrono::milliseconds interval)
{
    m_keychainRetryInterval = interval;
}

void SecretStore::switchToMemory(const QString &reason)
{
    m_keychainRetryAt.setRemainingTime(m_keychainRetryInterval);
    if (m_inMemoryOnly)
        return;
    m_inMemoryOnly = true;
    const QString message =
        QStringLiteral("No keychain service answered (%1). Tokens are kept in memory until the "
                       "keychain responds again or Lamplighter quits. Start a Secret Service such "
                       "as gnome-keyring or KWallet to keep them.")
            .arg(reason);
    qCWarning(lcStore).noquote() << message;
    Q_EMIT keychainUnavailable(message);
}

// Keeps the secret in memory and, once the retry interval has passed, writes it to the keychain
// to find out whether the keychain responds again.
void SecretStore::writeToMemory(const QString &key, const QByteArray &secret, WriteCallback done)
{
    m_memory.insert(key, secret);
    m_removedInMemory.remove(key);
    // The index in memory must not replace the keychain's own, so the write of the entry that
    // follows it tries the keychain instead.
    if (key == entryIndexKey() || m_keychainRetryRunning || !m_keychainRetryAt.hasExpired()) {
        done(Done{});
        return;
    }

    m_keychainRetryRunning = true;
    m_keychain->prepareRetry();
    m_keychain->write(key, secret, [this, done = std::move(done)](const KeychainReply &reply) {
        m_keychainRetryRunning = false;
        if (reply.outcome == KeychainReply::Outcome::Done) {
            moveMemoryToKeychain();
        } else {
            qCDebug(lcStore) << "The keychain still does not respond:" << reply.errorString;
            m_keychainRetryAt.setRemainingTime(m_keychainRetryInterval);
        }
        done(Done{});
    });
}

// The keychain runs its operations one after another, so a read that follows finds what these
// wrote.
void SecretStore::moveMemoryToKeychain()
{
    m_inMemoryOnly = false;
    const QHash<QString, QByteArray> secrets = std::exchange(m_memory, {});
    const QSet<QString> removed = std::exchange(m_removedInMemory, {});
    // The index in memory lists only what was written there, so each entry is added to the
    // keychain's own index instead of replacing it.
    m_listedKeys.clear();
    for (auto it = secrets.begin(); it != secrets.end(); ++it) {
        if (it.key() == entryIndexKey())
            continue;
        write(it.key(), it.value(), [key = it.key()](Status written) {
            if (!written)
                qCWarning(lcStore).noquote()
                    << "Moving" << key << "into the keychain failed:" << written.errorMessage();
        });
    }
    for (const QString &key : removed)
        remove(key, [](Status) {});

    const QString message = QStringLiteral("The keychain responds again, so Lamplighter keeps the "
                                           "tokens in it from now on.");
    qCInfo(lcStore).noquote() << message;
    Q_EMIT keychainAvailable(message);
}

void SecretStore::read(const QString &key, ReadCallback done)
{
    if (m_inMemoryOnly) {
        const auto found = m_memory.constFind(key);
        done(found == m_memory.constEnd() ? std::nullopt : std::optional(found.value()));
        return;
    }
    m_keychain->read(key, [this, key, done = std::move(done)](const KeychainReply &reply) {
        switch (reply.outcome) {
        case KeychainReply::Outcome::Done:
            qCDebug(lcStore) << "Read" << key << "from the keychain";
            done(std::optional(reply.secret));
            return;
        case KeychainReply::Outcome::NotFound:
            done(std::optional<QByteArray>());
            return;
        case KeychainReply::Outcome::NoKeychain:
            switchToMemory(reply.errorString);
            read(key, done);
            return;
        case KeychainReply::Outcome::Failed:
            break;
        }
        qCWarning(lcStore) << "Reading" << key << "from the keychain failed:" << reply.errorString;
        done(Error{QStringLiteral("Reading \"%1\" from the keychain failed: %2")
                       .arg(key, reply.errorString)});
    });
}

void SecretStore::write(const QString &key, const QByteArray &secret, WriteCallback done)
{
    if (key == entryIndexKey() || m_listedKeys.contains(key)) {
        writeEntry(key, secret, std::move(done));
        return;
    }
    listKey(key, [this, key, secret, done = std::move(done)](Status listed) {
        if (!listed) {
            done(listed);
            return;
        }
        writeEntry(key, secret, done);
    });
}

void SecretStore::listKey(const QString &key, WriteCallback done)
{
    m_keysToList.append({key, std::move(done)});
    if (!m_listingKey)
        listNextKey();
}

// Adds the first waiting key to the entry index. The index is read again each time, because
// other Lamplighter processes of the same person may have added keys to it since.
// NOTE: two processes that add different keys at the same moment can still lose one of them,
// because the keychain offers no compare-and-swap.
void SecretStore::listNextKey()
{
    if (m_keysToList.isEmpty()) {
        m_listingKey = false;
        for (const std::function<void()> &waiting : std::exchange(m_afterListing, {}))
            waiting();
        return;
    }
    m_listingKey = true;
    // Named copies rather than a structured binding: lambdas cannot capture bindings before
    // C++20, and the fuzz and sanitizer builds use clang 14.
    const auto pending = m_keysToList.takeFirst();
    const QString key = pending.first;
    const auto done = pending.second;
    read(entryIndexKey(), [this, key, done](Result<std::optional<QByteArray>> stored) {
        auto finish = [this, done](Status status) {
            done(status);
            listNextKey();
        };
        if (!stored) {
            finish(stored.error());
            return;
        }
        QStringList keys;
        if (stored->has_value()) {
            const DecodedEntry index = decodeEntryIndex(entryIndexKey(), **stored);
            if (index.outcome == DecodedEntry::Outcome::TooNew) {
                // Rewriting the index in this build's format would lose what the newer one
                // keeps in it.
                qCWarning(lcStore).noquote()
                    << index.message << "Writing" << key << "without adding it to the index.";
                finish(Done{});
                return;
            }
            if (index.usable())
                keys = entryIndexKeys(index);
            else
                qCWarning(lcStore).noquote()
                    << index.message << "Replacing it with an index that lists" << key;
        }
        if (!keys.contains(key))
            keys.append(key);
        writeEntry(entryIndexKey(), encodeEntryIndex(keys), [this, keys, finish](Status written) {
            if (written)
                m_listedKeys = QSet<QString>(keys.begin(), keys.end());
            finish(written);
        });
    });
}

void SecretStore::readIndex(ListCallback done)
{
    read(entryIndexKey(), [done = std::move(done)](Result<std::optional<QByteArray>> stored) {
        if (!stored) {
            done(stored.error());
            return;
        }
        if (!stored->has_value()) {
            done(QStringList());
            return;
        }
        const DecodedEntry index = decodeEntryIndex(entryIndexKey(), **stored);
        if (!index.usable()) {
            done(Error{index.message});
            return;
        }
        done(entryIndexKeys(index));
    });
}

void SecretStore::removeAll(const QStringList &knownKeys, CountCallback done)
{
    // A write whose key is still being added to the index would store its entry after the
    // removal. Once the index updates are done, every write has requested its keychain
    // operation, and the keychain runs those before the operations of the removal.
    if (m_listingKey) {
        m_afterListing.append(
            [this, knownKeys, done = std::move(done)] { removeAll(knownKeys, done); });
        return;
    }
    readIndex([this, knownKeys, done = std::move(done)](Result<QStringList> listed) {
        if (!listed) {
            done(Error{QStringLiteral("%1 No entry was removed.").arg(listed.errorMessage())});
            return;
        }
        QStringList keys = listed.value() + knownKeys;
        keys.removeDuplicates();
        keys.removeAll(entryIndexKey());
        // The index goes last, so that after a failure it still lists what is left.
        keys.append(entryIndexKey());
        m_listedKeys.clear();
        removeEach(keys, 0, done);
    });
}

// Removes the first of keys when it is there, counting it, and then the rest. A locked keychain
// reads every entry as absent, so it removes nothing and keeps the index.
void SecretStore::removeEach(QStringList keys, int removed, CountCallback done)
{
    if (keys.isEmpty()) {
        done(removed);
        return;
    }
    const QString key = keys.takeFirst();
    read(key, [this, key, keys, removed, done](Result<std::optional<QByteArray>> stored) {
        if (!stored) {
            done(Error{QStringLiteral("%1 Entries removed before this failure: %2. Running the "
                                      "removal again removes the rest.")
                           .arg(stored.errorMessage())
                           .arg(removed)});
            return;
        }
        if (!stored->has_value()) {
            removeEach(keys, removed, done);
            return;
        }
        remove(key, [this, keys, removed, done](Status status) {
            if (!status) {
                done(Error{QStringLiteral("%1 Entries removed before this failure: %2. Running "
                                          "the removal again removes the rest.")
                               .arg(status.errorMessage())
                               .arg(removed)});
                return;
            }
            removeEach(keys, removed + 1, done);
        });
    });
}

void SecretStore::writeEntry(const QString &key, const QByteArray &secret, WriteCallback done)
{
    if (m_inMemoryOnly) {
        writeToMemory(key, secret, std::move(done));
        return;
    }
    m_keychain->write(
        key, secret, [this, key, secret, done = std::move(done)](const KeychainReply &reply) {
            switch (reply.outcome) {
            case KeychainReply::Outcome::Done:
                qCDebug(lcStore) << "Wrote" << key << "to the keychain";
                done(Done{});
                return;
            case KeychainReply::Outcome::NoKeychain:
                switchToMemory(reply.errorString);
                writeEntry(key, secret, done);
                return;
            case KeychainReply::Outcome::NotFound:
            case KeychainReply::Outcome::Failed:
                break;
            }
            qCWarning(lcStore) << "Writing" << key
                               << "to the keychain failed:" << reply.errorString;
            done(Error{QStringLiteral("Writing \"%1\" to the keychain failed: %2. Unlock the "
                                      "keychain and try again.")
                           .arg(key, reply.errorString)});
        });
}

void SecretStore::remove(const QString &key, WriteCallback done)
{
    if (m_inMemoryOnly) {
        m_memory.remove(key);
        m_removedInMemory.insert(key);
        done(Done{});
        return;
    }
    m_keychain->remove(key, [this, key, done = std::move(done)](const KeychainReply &reply) {
        switch (reply.outcome) {
        case KeychainReply::Outcome::Done:
        case KeychainReply::Outcome::NotFound:
            done(Done{});
            return;
        case KeychainReply::Outcome::NoKeychain:
            switchToMemory(reply.errorString);
            remove(key, done);
            return;
        case KeychainReply::Outcome::Failed:
            break;
        }
        qCWarning(lcStore) << "Removing" << key << "from the keychain failed:" << reply.errorString;
        done(Error{QStringLiteral("Removing \"%1\" from the keychain failed: %2")
                       .arg(key, reply.errorString)});
    });
}

} // namespace lamplighter
