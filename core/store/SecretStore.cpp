#include "store/SecretStore.h"

#include "Logging.h"

#include <qt6keychain/keychain.h>

namespace lamplighter {
namespace {

// Errors that mean no keychain service is there at all, as opposed to a refusal by one that is.
bool meansNoKeychain(QKeychain::Error error)
{
    return error == QKeychain::NoBackendAvailable || error == QKeychain::OtherError ||
           error == QKeychain::NotImplemented;
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

void SecretStore::switchToMemory(const QString &reason)
{
    if (m_inMemoryOnly)
        return;
    m_inMemoryOnly = true;
    const QString message =
        QStringLiteral("No keychain service answered (%1). Tokens are kept in memory until "
                       "Lamplighter quits, so you will have to sign in again next time. Start a "
                       "Secret Service such as gnome-keyring or KWallet to keep them.")
            .arg(reason);
    qCWarning(lcStore).noquote() << message;
    Q_EMIT keychainUnavailable(message);
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
    if (m_inMemoryOnly) {
        m_memory.insert(key, secret);
        done(Done{});
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
            write(key, secret, done);
            return;
        }
        qCWarning(lcStore) << "Writing" << key << "to the keychain failed:" << job->errorString();
        done(Error{QStringLiteral("Writing \"%1\" to the keychain failed: %2")
                       .arg(key, job->errorString())});
    });
    job->start();
}

void SecretStore::remove(const QString &key, WriteCallback done)
{
    if (m_inMemoryOnly) {
        m_memory.remove(key);
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
