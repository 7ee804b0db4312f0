#include "store/KeychainAccess.h"

#include "Logging.h"

#include <QLibrary>
#include <QPointer>
#include <QProcess>
#include <qt6keychain/keychain.h>
#include <utility>

namespace lamplighter {

namespace {

KeychainReply replyOf(const QKeychain::Job &job)
{
    KeychainReply reply;
    switch (job.error()) {
    case QKeychain::NoError:
        reply.outcome = KeychainReply::Outcome::Done;
        return reply;
    case QKeychain::EntryNotFound:
        reply.outcome = KeychainReply::Outcome::NotFound;
        return reply;
    case QKeychain::NoBackendAvailable:
    case QKeychain::OtherError:
    case QKeychain::NotImplemented:
        reply.outcome = KeychainReply::Outcome::NoKeychain;
        break;
    default:
        reply.outcome = KeychainReply::Outcome::Failed;
        break;
    }
    reply.errorString = job.errorString();
    return reply;
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

KeychainAccess::KeychainAccess(QString service, QObject *parent)
    : QObject(parent)
    , m_service(std::move(service))
{}

// --- in this process --------------------------------------------------------------------------

InProcessKeychain::InProcessKeychain(QString service, QObject *parent)
    : KeychainAccess(std::move(service), parent)
{}

void InProcessKeychain::read(const QString &key, Callback done)
{
    auto *job = makeJob<QKeychain::ReadPasswordJob>(service(), key, this);
    connect(job, &QKeychain::Job::finished, this, [job, done = std::move(done)] {
        KeychainReply reply = replyOf(*job);
        if (reply.outcome == KeychainReply::Outcome::Done)
            reply.secret = job->binaryData();
        done(reply);
    });
    job->start();
}

void InProcessKeychain::write(const QString &key, const QByteArray &secret, Callback done)
{
    auto *job = makeJob<QKeychain::WritePasswordJob>(service(), key, this);
    job->setBinaryData(secret);
    connect(job, &QKeychain::Job::finished, this, [job, done = std::move(done)] {
        done(replyOf(*job));
    });
    job->start();
}

void InProcessKeychain::remove(const QString &key, Callback done)
{
    auto *job = makeJob<QKeychain::DeletePasswordJob>(service(), key, this);
    connect(job, &QKeychain::Job::finished, this, [job, done = std::move(done)] {
        done(replyOf(*job));
    });
    job->start();
}

// libsecret (0.20) keeps one Secret Service connection, with its encryption session, for the
// whole process. After the keychain daemon restarts, each call through it fails with "The session
// wrapping the secret does not exist" until secret_service_disconnect() drops it. QtKeychain
// loads libsecret itself and never calls that. Loading the library here shares QtKeychain's copy
// of it, and without libsecret this does nothing.
void InProcessKeychain::prepareRetry()
{
    using Disconnect = void (*)();
    static const auto disconnect = reinterpret_cast<Disconnect>(
        QLibrary::resolve(QStringLiteral("secret-1"), 0, "secret_service_disconnect"));
    if (disconnect)
        disconnect();
}

// --- in lamplighter-keychain ------------------------------------------------------------------

HelperProcessKeychain::HelperProcessKeychain(QString service, QString program, QObject *parent)
    : KeychainAccess(std::move(service), parent)
    , m_program(std::move(program))
{
    m_timeout.setSingleShot(true);
    m_timeout.setInterval(defaultOperationTimeout);
    // Failed rather than NoKeychain: the keychain is there, and keeping the secrets in memory
    // would not help a person who has not answered the unlock prompt yet.
    connect(&m_timeout, &QTimer::timeout, this, [this] {
        failHelper(QStringLiteral("%1 did not reply within %2 s")
                       .arg(m_program)
                       .arg(double(m_timeout.interval()) / 1000.0),
                   KeychainReply::Outcome::Failed);
    });
}

void HelperProcessKeychain::setOperationTimeout(std::chrono::milliseconds timeout)
{
    m_timeout.setInterval(timeout);
}

// Stops a helper that is still working on an operation, whose caller is gone. A helper whose input
// is closed exits by itself within moments, so it is given a second to do that.
HelperProcessKeychain::~HelperProcessKeychain()
{
    if (m_process) {
        m_process->disconnect(this);
        m_process->kill();
    }
    for (QProcess *process : findChildren<QProcess *>(Qt::FindDirectChildrenOnly)) {
        if (process->state() != QProcess::NotRunning && !process->waitForFinished(1000))
            process->kill();
        process->waitForFinished(1000);
    }
}

void HelperProcessKeychain::read(const QString &key, Callback done)
{
    enqueue(keychainmessage::encode("read", key.toUtf8(), QByteArray()), std::move(done));
}

void HelperProcessKeychain::write(const QString &key, const QByteArray &secret, Callback done)
{
    enqueue(keychainmessage::encode("write", key.toUtf8(), secret), std::move(done));
}

void HelperProcessKeychain::remove(const QString &key, Callback done)
{
    enqueue(keychainmessage::encode("remove", key.toUtf8(), QByteArray()), std::move(done));
}

void HelperProcessKeychain::enqueue(const QByteArray &request, Callback done)
{
    m_queue.push_back({request, std::move(done)});
    if (!m_running) {
        // Like QtKeychain's jobs, the reply comes from the event loop even when the helper
        // cannot start, so a caller may request the next operation from within its callback.
        QMetaObject::invokeMethod(
            this,
            [this] {
                if (!m_running)
                    startNext();
            },
            Qt::QueuedConnection);
    }
}

// Sends the first waiting operation, starting the helper when none runs. With nothing left to
// send, it closes the helper's input, so that the helper exits.
void HelperProcessKeychain::startNext()
{
    if (m_queue.empty()) {
        if (m_process) {
            QProcess *finishing = std::exchange(m_process, nullptr);
            finishing->disconnect(this);
            connect(finishing, &QProcess::finished, finishing, &QObject::deleteLater);
            finishing->closeWriteChannel();
        }
        return;
    }
    m_running = true;
    m_timeout.start();
    const QByteArray request = m_queue.front().request;
    if (!m_process) {
        m_process = new QProcess(this);
        m_process->setProgram(m_program);
        m_process->setArguments({QStringLiteral("--service"), service()});
        m_process->setProcessChannelMode(QProcess::ForwardedErrorChannel);
        connect(m_process,
                &QProcess::readyReadStandardOutput,
                this,
                &HelperProcessKeychain::readReplies);
        connect(m_process,
                &QProcess::finished,
                this,
                [this](int exitCode, QProcess::ExitStatus status) {
                    failHelper(status == QProcess::CrashExit
                                   ? QStringLiteral("%1 crashed").arg(m_program)
                                   : QStringLiteral("%1 exited with code %2 before it replied")
                                         .arg(m_program)
                                         .arg(exitCode),
                               KeychainReply::Outcome::Failed);
                });
        connect(m_process, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
            if (error == QProcess::FailedToStart)
                failHelper(QStringLiteral("%1 failed to start: %2")
                               .arg(m_program, m_process->errorString()),
                           KeychainReply::Outcome::NoKeychain);
        });
        QProcess *starting = m_process;
        starting->start(QIODevice::ReadWrite | QIODevice::Unbuffered);
        // A failure reported within start() has already failed this operation and moved on.
        if (m_process != starting)
            return;
    }
    m_process->write(request);
}

void HelperProcessKeychain::readReplies()
{
    m_unparsed += m_process->readAllStandardOutput();
    while (m_process && m_running) {
        QString error;
        std::optional<keychainmessage::Message> message = keychainmessage::take(m_unparsed, error);
        if (!error.isEmpty()) {
            failHelper(QStringLiteral("%1 sent an invalid reply: %2").arg(m_program, error),
                       KeychainReply::Outcome::Failed);
            return;
        }
        if (!message)
            return;
        const std::optional<KeychainReply::Outcome> outcome =
            keychainmessage::outcomeOfWord(message->word);
        if (!outcome) {
            failHelper(QStringLiteral("%1 sent the unknown reply \"%2\"")
                           .arg(m_program, QString::fromLatin1(message->word)),
                       KeychainReply::Outcome::Failed);
            return;
        }
        if (!finishCurrent({*outcome, QString::fromUtf8(message->first), message->second}))
            return;
    }
}

// Fails the operation in progress with `reason` and stops the helper. The operations still
// waiting go to a new helper.
void HelperProcessKeychain::failHelper(const QString &reason, KeychainReply::Outcome outcome)
{
    if (m_process) {
        QProcess *failed = std::exchange(m_process, nullptr);
        failed->disconnect(this);
        if (failed->state() != QProcess::NotRunning) {
            connect(failed, &QProcess::finished, failed, &QObject::deleteLater);
            failed->kill();
        } else {
            failed->deleteLater();
        }
    }
    m_unparsed.clear();
    qCWarning(lcStore).noquote() << "The keychain helper failed:" << reason;
    if (m_running)
        finishCurrent({outcome, reason, QByteArray()});
}

// Returns false when the callback destroyed this object, so the caller must not touch it.
bool HelperProcessKeychain::finishCurrent(const KeychainReply &reply)
{
    m_timeout.stop();
    m_running = false;
    const Callback done = std::move(m_queue.front().done);
    m_queue.pop_front();
    const QPointer<HelperProcessKeychain> alive(this);
    done(reply);
    if (!alive)
        return false;
    if (!m_running)
        startNext();
    return true;
}

// --- the messages -----------------------------------------------------------------------------

namespace keychainmessage {

QByteArray encode(const QByteArray &word, const QByteArray &first, const QByteArray &second)
{
    QByteArray message = word + ' ' + QByteArray::number(first.size()) + ' ' +
                         QByteArray::number(second.size()) + '\n';
    message.reserve(message.size() + first.size() + second.size());
    message += first;
    message += second;
    return message;
}

QByteArray replyWord(KeychainReply::Outcome outcome)
{
    switch (outcome) {
    case KeychainReply::Outcome::Done:
        return QByteArrayLiteral("done");
    case KeychainReply::Outcome::NotFound:
        return QByteArrayLiteral("not-found");
    case KeychainReply::Outcome::NoKeychain:
        return QByteArrayLiteral("no-keychain");
    case KeychainReply::Outcome::Failed:
        break;
    }
    return QByteArrayLiteral("failed");
}

std::optional<KeychainReply::Outcome> outcomeOfWord(const QByteArray &word)
{
    for (const KeychainReply::Outcome outcome : {KeychainReply::Outcome::Done,
                                                 KeychainReply::Outcome::NotFound,
                                                 KeychainReply::Outcome::NoKeychain,
                                                 KeychainReply::Outcome::Failed}) {
        if (word == replyWord(outcome))
            return outcome;
    }
    return std::nullopt;
}

std::optional<Message> take(QByteArray &buffer, QString &error)
{
    const qsizetype end = buffer.indexOf('\n');
    if (end < 0) {
        if (buffer.size() > maxHeaderBytes)
            error = QStringLiteral("the header line is longer than %1 bytes").arg(maxHeaderBytes);
        return std::nullopt;
    }
    if (end > maxHeaderBytes) {
        error = QStringLiteral("the header line is longer than %1 bytes").arg(maxHeaderBytes);
        return std::nullopt;
    }
    const QList<QByteArray> fields = buffer.left(end).split(' ');
    bool firstValid = false;
    bool secondValid = false;
    const qsizetype firstLength = fields.size() == 3 ? fields[1].toLongLong(&firstValid) : -1;
    const qsizetype secondLength = fields.size() == 3 ? fields[2].toLongLong(&secondValid) : -1;
    if (!firstValid || !secondValid || fields[0].isEmpty() || firstLength < 0 || secondLength < 0) {
        // The line itself stays out of the message: after a framing error it may be part of a
        // secret.
        error =
            QStringLiteral("invalid header line of %1 bytes, expected WORD LENGTH LENGTH").arg(end);
        return std::nullopt;
    }
    if (firstLength > maxFirstBytes || secondLength > maxSecondBytes) {
        error = QStringLiteral("the lengths %1 and %2 are over the limits of %3 and %4 bytes")
                    .arg(firstLength)
                    .arg(secondLength)
                    .arg(maxFirstBytes)
                    .arg(maxSecondBytes);
        return std::nullopt;
    }
    const qsizetype total = end + 1 + firstLength + secondLength;
    if (buffer.size() < total)
        return std::nullopt;
    Message message{fields[0],
                    buffer.mid(end + 1, firstLength),
                    buffer.mid(end + 1 + firstLength, secondLength)};
    buffer.remove(0, total);
    return message;
}

} // namespace keychainmessage

} // namespace lamplighter
