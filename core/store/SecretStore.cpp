#include "store/SecretStore.h"

#include "Logging.h"
#include "store/EntryFormats.h"

#include <QLibrary>
#include <qt6keychain/keychain.h>
#include <utility>

namespace lamplighter {
namespace {

// Errors that mean no keychain service is there at all, as opposed to a refusal by one that is.
bool meansNoKeychain(QKeychain::Error error)
{
    return error == QKeychain::NoBackendAvailable || error == QKeychain::OtherError ||
           error == QKeychain::NotImplemented;
}

// libsecret (0.20) keeps one Secret Service connection, with its encryption session, for the
// whole process. After the keychain daemon restarts, each call through it fails with "The session
// wrapping the secret does not exist" until secret_service_disconnect() drops it. QtKeychain
// loads libsecret itself and never calls that, so the store does before it tries the keychain
// again. Loading the library here shares QtKeychain's copy of it; without libsecret this does
// nothing.
void dropLibsecretConnection()
{
    using Disconnect = void (*)();
    static const auto disconnect = reinterpret_cast<Disconnect>(
        QLibrary::resolve(QStringLiteral("secret-1"), 0, "secret_service_disconnect"));
    if (disconnect)
        disconnect();
}

template <typename Job>
Job *makeJob(const QString &service, const QString &key, QObject *parent)
{
    auto *job = new Job(service, parent);
    job->setAutoDelete(true);
    job->setInsecureFallback(false);
    job->setKey(key);
    return job;
}

} // namespace

SecretStore::SecretStore(QString service, QObject *parent)
    : QObject(parent)
    , m_service(std::move(service))
{}

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
    dropLibsecretConnection();
    auto *job = makeJob<QKeychain::WritePasswordJob>(m_service, key, this);
    job->setBinaryData(secret);
    connect(job, &QKeychain::Job::finished, this, [this, job, done = std::move(done)] {
        m_keychainRetryRunning = false;
        if (job->error() == QKeychain::NoError) {
            moveMemoryToKeychain();
        } else {
            qCDebug(lcStore) << "The keychain still does not respond:" << job->errorString();
            m_keychainRetryAt.setRemainingTime(m_keychainRetryInterval);
        }
        done(Done{});
    });
    job->start();
}

// QtKeychain runs its jobs one after another, so a read that follows finds what these wrote.
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
    auto *job = makeJob<QKeychain::ReadPasswordJob>(m_service, key, this);
    connect(job, &QKeychain::Job::finished, this, [this, job, key, done = std::move(done)] {
        switch (job->error()) {
        case QKeychain::NoError:
            qCDebug(lcStore) << "Read" << key << "from the keychain";
            done(std::optional(job->binaryData()));
            return;
        case QKeychain::EntryNotFound:
            done(std::optional<QByteArray>());
            return;
        default:
            break;
        }
        if (meansNoKeychain(job->error())) {
            switchToMemory(job->errorString());
            read(key, done);
            return;
        }
        qCWarning(lcStore) << "Reading" << key << "from the keychain failed:" << job->errorString();
        done(Error{QStringLiteral("Reading \"%1\" from the keychain failed: %2")
                       .arg(key, job->errorString())});
    });
    job->start();
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
    // removal. Once the index updates are done, every write has started its keychain job, and
    // QtKeychain runs those before the jobs of the removal.
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
    auto *job = makeJob<QKeychain::WritePasswordJob>(m_service, key, this);
    job->setBinaryData(secret);
    connect(job, &QKeychain::Job::finished, this, [this, job, key, secret, done = std::move(done)] {
        if (job->error() == QKeychain::NoError) {
            qCDebug(lcStore) << "Wrote" << key << "to the keychain";
            done(Done{});
            return;
        }
        if (meansNoKeychain(job->error())) {
            switchToMemory(job->errorString());
            writeEntry(key, secret, done);
            return;
        }
        qCWarning(lcStore) << "Writing" << key << "to the keychain failed:" << job->errorString();
        done(Error{QStringLiteral("Writing \"%1\" to the keychain failed: %2. Unlock the keychain "
                                  "and try again.")
                       .arg(key, job->errorString())});
    });
    job->start();
}

void SecretStore::remove(const QString &key, WriteCallback done)
{
    if (m_inMemoryOnly) {
        m_memory.remove(key);
        m_removedInMemory.insert(key);
        done(Done{});
        return;
    }
    auto *job = makeJob<QKeychain::DeletePasswordJob>(m_service, key, this);
    connect(job, &QKeychain::Job::finished, this, [this, job, key, done = std::move(done)] {
        if (job->error() == QKeychain::NoError || job->error() == QKeychain::EntryNotFound) {
            done(Done{});
            return;
        }
        if (meansNoKeychain(job->error())) {
            switchToMemory(job->errorString());
            remove(key, done);
            return;
        }
        qCWarning(lcStore) << "Removing" << key
                           << "from the keychain failed:" << job->errorString();
        done(Error{QStringLiteral("Removing \"%1\" from the keychain failed: %2")
                       .arg(key, job->errorString())});
    });
    job->start();
}

} // namespace lamplighter
