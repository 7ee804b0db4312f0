#pragma once

#include "util/Result.h"

#include <QElapsedTimer>
#include <QHostAddress>
#include <QLoggingCategory>
#include <QObject>
#include <QSocketNotifier>
#include <QTimer>
#include <chrono>
#include <functional>

namespace lamplighter {

// A listening TCP socket that hands every accepted connection over as a bare, non-blocking
// descriptor. It replaces QTcpServer, which in Qt 6.4 does not recover from a failed accept. After
// one accept failed for too many open files, QTcpServer reported that error again, and paused,
// after every later round of accepts, when accept() returned EAGAIN.
//
// When accept() fails for lack of descriptors or memory, the connection stays in the kernel's
// backlog and the socket stays readable. So the listener stops watching the socket and tries again
// after kRetryInterval. It logs one warning when such an outage starts and one line when it ends.
//
// Use it on one thread, the one it lives on.
class TcpListener : public QObject {
public:
    using Handler = std::function<void(int descriptor)>;
    // A function that Q_DECLARE_LOGGING_CATEGORY declares, such as lcProxy.
    using LogCategory = const QLoggingCategory &(*)();

    // `onAccepted` takes ownership of each descriptor. The warnings about failed accepts go to
    // `category`, normally the owner's.
    TcpListener(LogCategory category, Handler onAccepted, QObject *parent = nullptr);
    ~TcpListener() override;

    // Binds and listens. On an IPv6 address other than QHostAddress::Any, it accepts IPv6 clients
    // only, as QTcpServer does. The error names the cause, for example "Address already in use",
    // and listening again without close() is an error.
    Status listen(const QHostAddress &address, quint16 port);
    // Stops listening and ends a pause, so that the next listen() accepts at once.
    void close();
    bool isListening() const { return m_descriptor >= 0; }
    // Returns the bound port, which the system chose when listen() was called with port 0.
    quint16 port() const { return m_port; }

    // Leaves new connections in the kernel's backlog until resumeAccepting().
    void pauseAccepting();
    void resumeAccepting();
    // Returns true while the listener watches for new connections: listening, not paused, and
    // not waiting to try again after a failed accept.
    bool isAccepting() const { return m_notifier.isEnabled(); }

    static constexpr std::chrono::milliseconds kRetryInterval{1000};

private:
    void acceptPending();
    void waitAfterFailure(int error);
    void updateNotifier();

    LogCategory m_category;
    Handler m_onAccepted;
    int m_descriptor = -1;
    quint16 m_port = 0;
    QSocketNotifier m_notifier;
    QTimer m_retryTimer;
    bool m_paused = false;
    // The time since the first failed accept of an outage, invalid while accepting works.
    QElapsedTimer m_failingSince;
};

} // namespace lamplighter
