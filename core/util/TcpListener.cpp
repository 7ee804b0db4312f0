#include "util/TcpListener.h"

#include <cerrno>
#include <cstring>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace lamplighter {

namespace {

// Errors that accept(2) returns for a connection that failed while it waited in the backlog, in
// place of that connection. The next call may succeed.
bool failedOnlyThatConnection(int error)
{
    switch (error) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENETUNREACH:
    case ENONET:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
        return true;
    default:
        return false;
    }
}

// Fills `storage` with `address` and `port`. Returns the length of the address, or 0 when
// `address` is not an IP address.
socklen_t socketAddress(const QHostAddress &address, quint16 port, sockaddr_storage &storage)
{
    storage = {};
    if (address.protocol() == QAbstractSocket::IPv4Protocol) {
        auto *ipv4 = reinterpret_cast<sockaddr_in *>(&storage);
        ipv4->sin_family = AF_INET;
        ipv4->sin_port = htons(port);
        ipv4->sin_addr.s_addr = htonl(address.toIPv4Address());
        return sizeof *ipv4;
    }
    if (address.protocol() == QAbstractSocket::IPv6Protocol || address == QHostAddress::Any) {
        auto *ipv6 = reinterpret_cast<sockaddr_in6 *>(&storage);
        ipv6->sin6_family = AF_INET6;
        ipv6->sin6_port = htons(port);
        if (address != QHostAddress::Any) {
            const Q_IPV6ADDR bytes = address.toIPv6Address();
            std::memcpy(&ipv6->sin6_addr, bytes.c, sizeof ipv6->sin6_addr);
        }
        const QString scope = address.scopeId();
        if (!scope.isEmpty()) {
            bool numeric = false;
            ipv6->sin6_scope_id = scope.toUInt(&numeric);
            if (!numeric)
                ipv6->sin6_scope_id = ::if_nametoindex(scope.toLocal8Bit().constData());
        }
        return sizeof *ipv6;
    }
    return 0;
}

} // namespace

TcpListener::TcpListener(LogCategory category, Handler onAccepted, QObject *parent)
    : QObject(parent)
    , m_category(category)
    , m_onAccepted(std::move(onAccepted))
    , m_notifier(QSocketNotifier::Read)
{
    // Children, so that they move with this object to another thread.
    m_notifier.setParent(this);
    m_retryTimer.setParent(this);
    m_retryTimer.setSingleShot(true);
    m_retryTimer.setInterval(kRetryInterval);
    connect(&m_notifier, &QSocketNotifier::activated, this, &TcpListener::acceptPending);
    connect(&m_retryTimer, &QTimer::timeout, this, &TcpListener::updateNotifier);
}

TcpListener::~TcpListener()
{
    close();
}

Status TcpListener::listen(const QHostAddress &address, quint16 port)
{
    if (isListening())
        return Error{QStringLiteral("already listening on port %1").arg(m_port)};
    sockaddr_storage storage;
    const socklen_t length = socketAddress(address, port, storage);
    if (length == 0)
        return Error{QStringLiteral("\"%1\" is not an IP address").arg(address.toString())};

    const int descriptor =
        ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (descriptor < 0)
        return Error{qt_error_string(errno)};
    // A restarted proxy can take its port back while connections of the last run linger in
    // TIME_WAIT.
    const int reuse = 1;
    ::setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    if (storage.ss_family == AF_INET6) {
        const int ipv6Only = address == QHostAddress::Any ? 0 : 1;
        ::setsockopt(descriptor, IPPROTO_IPV6, IPV6_V6ONLY, &ipv6Only, sizeof ipv6Only);
    }
    sockaddr_storage bound{};
    socklen_t boundLength = sizeof bound;
    if (::bind(descriptor, reinterpret_cast<const sockaddr *>(&storage), length) != 0 ||
        ::listen(descriptor, SOMAXCONN) != 0 ||
        ::getsockname(descriptor, reinterpret_cast<sockaddr *>(&bound), &boundLength) != 0) {
        const int error = errno;
        ::close(descriptor);
        return Error{qt_error_string(error)};
    }

    m_descriptor = descriptor;
    m_port = ntohs(bound.ss_family == AF_INET6
                       ? reinterpret_cast<const sockaddr_in6 *>(&bound)->sin6_port
                       : reinterpret_cast<const sockaddr_in *>(&bound)->sin_port);
    m_failingSince.invalidate();
    m_notifier.setSocket(m_descriptor);
    updateNotifier();
    return Done{};
}

void TcpListener::close()
{
    if (!isListening())
        return;
    m_notifier.setEnabled(false);
    m_retryTimer.stop();
    ::close(std::exchange(m_descriptor, -1));
    m_port = 0;
    // A pause belongs to the connections of this run: the owner's count that would end it is
    // reset with them.
    m_paused = false;
}

void TcpListener::pauseAccepting()
{
    m_paused = true;
    updateNotifier();
}

void TcpListener::resumeAccepting()
{
    m_paused = false;
    updateNotifier();
}

void TcpListener::acceptPending()
{
    // The handler may pause accepting.
    while (isListening() && !m_paused) {
        const int descriptor =
            ::accept4(m_descriptor, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (descriptor >= 0) {
            if (m_failingSince.isValid()) {
                qCInfo(m_category).noquote()
                    << QStringLiteral("Accepting client connections on port %1 again, %2 ms "
                                      "after the first failure.")
                           .arg(m_port)
                           .arg(m_failingSince.elapsed());
                m_failingSince.invalidate();
            }
            m_onAccepted(descriptor);
            continue;
        }
        const int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK)
            return;
        if (!failedOnlyThatConnection(error)) {
            waitAfterFailure(error);
            return;
        }
        qCDebug(m_category).noquote()
            << QStringLiteral("A client connection on port %1 failed before it was accepted: %2")
                   .arg(m_port)
                   .arg(qt_error_string(error));
    }
}

void TcpListener::waitAfterFailure(int error)
{
    const QString message =
        QStringLiteral("Accepting a client connection on port %1 failed: %2. Trying again "
                       "every %3 ms, and new clients wait until then.")
            .arg(m_port)
            .arg(qt_error_string(error))
            .arg(kRetryInterval.count());
    // One warning for an outage, such as a lasting lack of descriptors, not one every interval.
    if (!m_failingSince.isValid()) {
        m_failingSince.start();
        qCWarning(m_category).noquote() << message;
    } else {
        qCDebug(m_category).noquote() << message;
    }
    m_retryTimer.start();
    updateNotifier();
}

void TcpListener::updateNotifier()
{
    if (isListening())
        m_notifier.setEnabled(!m_paused && !m_retryTimer.isActive());
}

} // namespace lamplighter
