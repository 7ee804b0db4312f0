#include "EpollWatcher.h"

#include "Logging.h"

#include <QPointer>
#include <QSocketNotifier>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <sys/epoll.h>
#include <unistd.h>
#include <utility>

namespace lamplighter {

namespace {

// The watchers of this thread that work, oldest first.
thread_local std::vector<EpollWatcher *> t_watchers;

// The events handled in one batch. Further ready sockets wait for the next pass of the event
// loop, because the epoll descriptor stays readable.
constexpr int kBatchEvents = 64;

std::uint64_t tokenFor(int descriptor, std::uint32_t generation)
{
    return (std::uint64_t(generation) << 32) | std::uint32_t(descriptor);
}

std::uint32_t eventsFor(bool read, bool write)
{
    return (read ? EPOLLIN | EPOLLRDHUP : 0u) | (write ? EPOLLOUT : 0u);
}

} // namespace

EpollWatcher::EpollWatcher(QObject *parent)
    : QObject(parent)
    , m_epoll(::epoll_create1(EPOLL_CLOEXEC))
{
    if (m_epoll < 0) {
        // The sockets of this thread then use Qt's socket notifiers, which work the same way.
        qCWarning(lcTls).noquote()
            << QStringLiteral("epoll_create1 failed: %1; watching sockets with Qt's event loop")
                   .arg(QString::fromLocal8Bit(std::strerror(errno)));
        return;
    }
    m_notifier = new QSocketNotifier(m_epoll, QSocketNotifier::Read, this);
    connect(m_notifier, &QSocketNotifier::activated, this, &EpollWatcher::dispatch);
    t_watchers.push_back(this);
}

EpollWatcher::~EpollWatcher()
{
    t_watchers.erase(std::remove(t_watchers.begin(), t_watchers.end(), this), t_watchers.end());
    // Clients may outlive the watcher when the thread's objects are deleted in another order.
    for (Entry &entry : m_entries) {
        if (Client *client = std::exchange(entry.client, nullptr))
            client->watcherDestroyed();
    }
    delete m_notifier;
    if (m_epoll >= 0)
        ::close(m_epoll);
}

EpollWatcher *EpollWatcher::current()
{
    return t_watchers.empty() ? nullptr : t_watchers.front();
}

bool EpollWatcher::watch(int descriptor, Client *client, bool read, bool write)
{
    Q_ASSERT(descriptor >= 0 && client);
    if (size_t(descriptor) >= m_entries.size())
        m_entries.resize(size_t(descriptor) + 1);
    Entry &entry = m_entries[size_t(descriptor)];
    if (entry.client != client) {
        Q_ASSERT(!entry.client); // the previous owner unwatches before it closes
        if (entry.registered) {
            ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, descriptor, nullptr);
            --m_watchedCount;
        }
        entry = Entry{client, m_nextGeneration++};
    }
    if (entry.registered && entry.read == read && entry.write == write)
        return true;

    // A socket in the set is always reported when it hangs up or fails, even when no events
    // are requested, and level-triggered it would be reported on every pass. So a socket
    // watched for neither leaves the set.
    const bool inSet = read || write;
    int outcome = 0;
    if (!inSet) {
        if (entry.registered)
            outcome = ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, descriptor, nullptr);
    } else {
        epoll_event event{};
        event.events = eventsFor(read, write);
        event.data.u64 = tokenFor(descriptor, entry.generation);
        outcome = ::epoll_ctl(
            m_epoll, entry.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, descriptor, &event);
    }
    if (outcome != 0)
        return false;
    m_watchedCount += int(inSet) - int(entry.registered);
    entry.registered = inSet;
    entry.read = read;
    entry.write = write;
    return true;
}

void EpollWatcher::unwatch(int descriptor)
{
    if (descriptor < 0 || size_t(descriptor) >= m_entries.size())
        return;
    Entry &entry = m_entries[size_t(descriptor)];
    if (entry.registered) {
        ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, descriptor, nullptr);
        --m_watchedCount;
    }
    entry = Entry{};
}

const EpollWatcher::Entry *EpollWatcher::entryFor(std::uint64_t token) const
{
    const auto descriptor = size_t(std::uint32_t(token));
    if (descriptor >= m_entries.size())
        return nullptr;
    const Entry &entry = m_entries[descriptor];
    if (!entry.client || entry.generation != std::uint32_t(token >> 32))
        return nullptr;
    return &entry;
}

void EpollWatcher::dispatch()
{
    std::array<epoll_event, kBatchEvents> events;
    const int count = ::epoll_wait(m_epoll, events.data(), kBatchEvents, 0);
    const QPointer<EpollWatcher> alive(this);
    for (int i = 0; i < count && alive; ++i) {
        const std::uint64_t token = events[size_t(i)].data.u64;
        const std::uint32_t ready = events[size_t(i)].events;
        // A client may unwatch, close, or register other descriptors (which can move the
        // entries) from inside its callback, or destroy the watcher. So the entry is looked up
        // again before each call, and the loop stops when the watcher is gone.
        const Entry *entry = entryFor(token);
        if (entry && entry->read && (ready & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            entry->client->socketReadable();
        if (!alive)
            return;
        entry = entryFor(token);
        if (entry && entry->write && (ready & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
            entry->client->socketWritable();
    }
}

} // namespace lamplighter
