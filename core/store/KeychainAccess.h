#pragma once

#include <QByteArray>
#include <QObject>
#include <QString>
#include <QTimer>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>

class QProcess;

namespace lamplighter {

// The outcome of one keychain operation.
struct KeychainReply {
    enum class Outcome {
        Done,
        NotFound,   // a read or a removal found no entry under the key
        NoKeychain, // no keychain service is running
        Failed,     // the keychain service rejected the operation, or the helper failed
    };
    Outcome outcome = Outcome::Failed;
    QString errorString; // the keychain's reason, unless the outcome is Done or NotFound
    QByteArray secret;   // what a read found
};

// Runs keychain operations for one service name, one after another in the order they were
// requested, so that a read finds what an earlier write stored. The callback of an operation is
// called from the event loop, never from within the call that requested it.
class KeychainAccess : public QObject {
    Q_OBJECT
public:
    using Callback = std::function<void(const KeychainReply &reply)>;

    explicit KeychainAccess(QString service, QObject *parent = nullptr);

    QString service() const { return m_service; }

    virtual void read(const QString &key, Callback done) = 0;
    virtual void write(const QString &key, const QByteArray &secret, Callback done) = 0;
    virtual void remove(const QString &key, Callback done) = 0;
    // Prepares a retry after NoKeychain, for a keychain service that may have started since.
    virtual void prepareRetry() {}

private:
    QString m_service;
};

// Runs the operations in this process through QtKeychain, which loads libsecret and with it GIO
// and libgcrypt on the first one.
class InProcessKeychain : public KeychainAccess {
    Q_OBJECT
public:
    explicit InProcessKeychain(QString service, QObject *parent = nullptr);

    void read(const QString &key, Callback done) override;
    void write(const QString &key, const QByteArray &secret, Callback done) override;
    void remove(const QString &key, Callback done) override;
    // Drops libsecret's connection to the Secret Service, which outlives a restart of the
    // keychain daemon and then fails every call.
    void prepareRetry() override;
};

// Runs the operations in a short-lived lamplighter-keychain process, which uses
// InProcessKeychain, so that the keychain libraries stay out of the tray's memory. The process
// starts when an operation is requested and exits once none is left. The secrets pass through
// its standard input and output, never through its arguments or environment.
class HelperProcessKeychain : public KeychainAccess {
    Q_OBJECT
public:
    // `program` is the path of the lamplighter-keychain executable.
    HelperProcessKeychain(QString service, QString program, QObject *parent = nullptr);
    ~HelperProcessKeychain() override;

    void read(const QString &key, Callback done) override;
    void write(const QString &key, const QByteArray &secret, Callback done) override;
    void remove(const QString &key, Callback done) override;

    // How long one operation may take before the helper is stopped and the operation fails. A
    // keychain call without a reply fails by itself after GDBus's 25 s, but a write to a locked
    // collection waits for the person to answer the keychain's unlock prompt.
    static constexpr std::chrono::seconds defaultOperationTimeout{300};
    void setOperationTimeout(std::chrono::milliseconds timeout);

private:
    struct Operation {
        QByteArray request;
        Callback done;
    };

    void enqueue(const QByteArray &request, Callback done);
    void startNext();
    void readReplies();
    void failHelper(const QString &reason, KeychainReply::Outcome outcome);
    bool finishCurrent(const KeychainReply &reply);

    QString m_program;
    QProcess *m_process = nullptr;
    QByteArray m_unparsed;
    std::deque<Operation> m_queue;
    bool m_running = false; // the front of m_queue was sent and waits for its reply
    QTimer m_timeout;
};

// The framing of lamplighter-keychain's requests and replies, one message after another on a
// pipe. A message is a header line `WORD FIRST_LENGTH SECOND_LENGTH` followed by the two byte
// strings. A request's word is read, write or remove, its first string the key and its second
// the secret to write. A reply's word is done, not-found, no-keychain or failed, its first
// string the error and its second the secret read.
namespace keychainmessage {

struct Message {
    QByteArray word;
    QByteArray first;
    QByteArray second;
};

constexpr qsizetype maxHeaderBytes = 64;
constexpr qsizetype maxFirstBytes = 64 * 1024;
constexpr qsizetype maxSecondBytes = 4 * 1024 * 1024;

QByteArray encode(const QByteArray &word, const QByteArray &first, const QByteArray &second);
// Returns the word of a reply with `outcome`, and the outcome of a reply's word.
QByteArray replyWord(KeychainReply::Outcome outcome);
std::optional<KeychainReply::Outcome> outcomeOfWord(const QByteArray &word);

// Takes the first complete message off the front of `buffer`. Returns nothing while the message
// is incomplete, and sets `error` when the header is invalid or a length is over its limit.
std::optional<Message> take(QByteArray &buffer, QString &error);

} // namespace keychainmessage

} // namespace lamplighter
