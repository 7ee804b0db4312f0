#pragma once

#include <QObject>
#include <cstdint>
#include <vector>

class QSocketNotifier;

namespace lamplighter {

// Reports when the sockets of one thread can be read or written, from one epoll instance that
// the thread's Qt event loop watches as a single descriptor.
//
// Qt's event loop polls every enabled QSocketNotifier of its thread on each pass, so a pass
// costs time for each open connection even when one of them is ready. epoll keeps the list in
// the kernel and reports only the ready ones. In the proxy benchmark, two worker threads with 16
// kept-alive connections each polled about 290 times per 1,000 requests together, so the
// difference shows in the CPU time per request (docs/benchmarks.md).
//
// The watcher must be created on the thread it serves, and only that thread may use it. While it
// exists, current() returns it, or the oldest of the thread's watchers. Readiness is
// level-triggered, as with QSocketNotifier: a socket is reported on every pass while it stays
// ready. A client's callback may destroy the watcher.
class EpollWatcher : public QObject {
public:
    // The owner of a watched socket, called when the socket is ready.
    class Client {
    public:
        virtual void socketReadable() = 0;
        virtual void socketWritable() = 0;
        // Called when the watcher is destroyed while this client's descriptor is still watched.
        // The client must not call the watcher after that.
        virtual void watcherDestroyed() = 0;

    protected:
        ~Client() = default;
    };

    explicit EpollWatcher(QObject *parent = nullptr);
    ~EpollWatcher() override;

    // Returns the oldest watcher of the calling thread, or null when the thread has none.
    static EpollWatcher *current();

    // Watches `descriptor` for `client`, for reading, writing, both or, when both are false,
    // neither. Returns false when the kernel rejected the change, with errno set.
    bool watch(int descriptor, Client *client, bool read, bool write);
    // Stops watching `descriptor`. Call it before closing the descriptor.
    void unwatch(int descriptor);

    // The number of descriptors in the epoll set, which leaves out those watched for neither.
    int watchedCount() const { return m_watchedCount; }

private:
    struct Entry {
        Client *client = nullptr;
        // Tells the events of an earlier socket on the same descriptor number apart, because a
        // descriptor closed while a batch of events is handled can be reused in that batch.
        std::uint32_t generation = 0;
        bool read = false;
        bool write = false;
        bool registered = false; // in the epoll set, which it leaves while neither is watched
    };

    void dispatch();
    const Entry *entryFor(std::uint64_t token) const;

    int m_epoll = -1;
    QSocketNotifier *m_notifier = nullptr;
    std::vector<Entry> m_entries; // indexed by descriptor
    std::uint32_t m_nextGeneration = 1;
    int m_watchedCount = 0;
};

} // namespace lamplighter
