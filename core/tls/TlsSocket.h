#pragma once

#include "EpollWatcher.h"
#include "TlsContext.h"

#include <QByteArray>
#include <QHostAddress>
#include <QList>
#include <QObject>
#include <QSocketNotifier>
#include <deque>
#include <memory>
#include <vector>

typedef struct ssl_st SSL;

namespace lamplighter {

// A TLS connection over a non-blocking TCP socket, run by OpenSSL directly on the socket.
//
// The local proxy keeps two of these for every open watch, so each uses little memory while
// it is idle. OpenSSL's record buffers are released between records, decrypted bytes wait in one
// buffer that the reader takes whole, and the certificates live in the shared TlsContext.
// Writes made while a socket's signals are handled go out together when that handling ends.
// Other writes go out on the next pass of the event loop.
//
// Signals are never emitted from inside a call the owner makes, so a receiver may call any
// function. After abort() no signal is emitted at all.
//
// Each descriptor is watched by the EpollWatcher that is current on the socket's thread when the
// socket first waits on it, or by two QSocketNotifiers when there is none. Either way the socket
// must stay on the thread that created it.
class TlsSocket : public QObject, private EpollWatcher::Client {
    Q_OBJECT
public:
    enum class State { Unconnected, Connecting, Handshaking, Encrypted };
    enum class Failure {
        None,
        Connect,      // the TCP connection could not be made
        Handshake,    // the TLS handshake failed for a reason other than verification
        Verification, // the server's certificate was not trusted or does not name the host
        Connection,   // reading or writing failed after the handshake
    };
    Q_ENUM(Failure)

    // A server-side connection on an accepted socket, which this object now owns. The handshake
    // starts at once, and encrypted() is emitted when it is done.
    TlsSocket(qintptr descriptor,
              std::shared_ptr<const TlsContext> context,
              QObject *parent = nullptr);
    // A client-side connection; connectToHost() starts it.
    explicit TlsSocket(std::shared_ptr<const TlsContext> context, QObject *parent = nullptr);
    ~TlsSocket() override;

    // Resolves `host`, connects to the first address that accepts, and runs the handshake,
    // checking that the server's certificate names `host` (a DNS name or an IP address).
    void connectToHost(const QString &host, quint16 port);

    State state() const { return m_state; }
    quint16 peerPort() const { return m_peerPort; }
    // The negotiated cipher suite, or an empty string before the handshake.
    QString cipherName() const;

    // Reading from the network pauses while this many decrypted bytes wait to be read.
    void setReadBufferLimit(qint64 bytes) { m_readLimit = bytes; }
    qint64 bytesAvailable() const { return m_readBuffer.size(); }
    // Takes at most maxBytes of the decrypted bytes, without copying when it takes them all.
    QByteArray read(qint64 maxBytes);
    QByteArray readAll() { return read(bytesAvailable()); }

    // Queues bytes to send. Bytes written before the handshake ends are sent after it.
    void write(const QByteArray &data);
    // The bytes queued and not yet taken by the kernel.
    qint64 bytesToWrite() const { return m_bytesToWrite; }

    // Sends every queued byte and a TLS close_notify, then closes and emits disconnected().
    void disconnectFromHost();
    // Closes at once, discarding queued bytes, and emits nothing more.
    void abort();

    Failure failure() const { return m_failure; }
    QString errorString() const { return m_errorString; }

Q_SIGNALS:
    void encrypted();
    // Decrypted bytes arrived.
    void readyRead();
    // `bytes` of the queued bytes reached the kernel.
    void bytesWritten(qint64 bytes);
    // The connection closed. failure() is None unless it failed. Decrypted bytes that arrived
    // before the close can still be read.
    void disconnected();
    // The connection failed, as failure() and errorString() describe. disconnected() follows.
    void errorOccurred();

private:
    void startConnect(const QList<QHostAddress> &addresses);
    void connectNextAddress();
    void onConnectFinished();
    void startHandshake(bool server);
    void onReadable();
    void onWritable();
    void socketReadable() override { onReadable(); }
    void socketWritable() override { onWritable(); }
    void watcherDestroyed() override;
    // Asks for readiness reports of the descriptor: for reading, writing, both or neither.
    void watchSocket(bool read, bool write);
    // Stops every readiness report of the descriptor, before it is closed.
    void stopWatching();
    void scheduleDrive();
    void drive();
    void driveOnce();
    static std::vector<TlsSocket *> &deferredDrives();
    static void runDeferredDrives();
    bool handshake();
    qint64 flushWrites();
    bool readFromNetwork();
    void updateNotifiers();
    void fail(Failure failure, const QString &message);
    void closeDescriptor();

    std::shared_ptr<const TlsContext> m_context;
    SSL *m_ssl = nullptr;
    int m_descriptor = -1;
    State m_state = State::Unconnected;
    // The watcher of the descriptor, held only while the descriptor is registered with it, so
    // that its destruction always reaches this socket.
    EpollWatcher *m_watcher = nullptr;
    // Used when there is no watcher.
    QSocketNotifier m_readNotifier;
    QSocketNotifier m_writeNotifier;
    bool m_onNotifiers = false; // the descriptor is watched by the notifiers
    bool m_watchingRead = false;
    bool m_watchingWrite = false;

    QString m_host;
    quint16 m_port = 0;
    quint16 m_peerPort = 0;
    QList<QHostAddress> m_addresses;
    QString m_lastConnectError;

    QByteArray m_readBuffer;
    qint64 m_readLimit = 256 * 1024;
    std::deque<QByteArray> m_writeQueue;
    QByteArray m_sending; // handed to SSL_write, which must see it again after a retry
    qsizetype m_sendingOffset = 0;
    qint64 m_bytesToWrite = 0;

    // What OpenSSL waits for before it can go on.
    bool m_handshakeWantsWrite = false;
    bool m_writeBlocked = false;   // SSL_write needs the socket to become writable
    bool m_writeWantsRead = false; // SSL_write needs incoming bytes first
    bool m_readWantsWrite = false; // SSL_read needs the socket to become writable
    bool m_readStalled = false;    // the read buffer is at its limit
    bool m_socketReadable = false; // the notifier reported bytes not read yet
    bool m_driveScheduled = false;
    bool m_closeRequested = false;
    bool m_silenced = false;

    Failure m_failure = Failure::None;
    QString m_errorString;

    // The depth of drive() calls on this thread, counting those that receivers cause.
    static thread_local int s_driveDepth;
};

} // namespace lamplighter
