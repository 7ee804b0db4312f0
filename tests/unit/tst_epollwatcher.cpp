#include "tls/EpollWatcher.h"

#include <QTest>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>

using namespace lamplighter;

namespace {

constexpr int kWaitMs = 5000;

// Counts what the watcher reports, and runs `onReadable` on each readable report.
class RecordingClient : public EpollWatcher::Client {
public:
    virtual ~RecordingClient() = default;

    int readable = 0;
    int writable = 0;
    bool watcherGone = false;
    std::function<void()> onReadable;

    void socketReadable() override
    {
        ++readable;
        if (onReadable)
            onReadable();
    }
    void socketWritable() override { ++writable; }
    void watcherDestroyed() override { watcherGone = true; }
};

// A connected pair of non-blocking stream sockets, closed when it goes.
struct SocketPair {
    int ours = -1;
    int peer = -1;

    SocketPair()
    {
        int descriptors[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, descriptors) ==
            0) {
            ours = descriptors[0];
            peer = descriptors[1];
        }
    }
    ~SocketPair()
    {
        closeOurs();
        if (peer >= 0)
            ::close(peer);
    }
    SocketPair(const SocketPair &) = delete;
    SocketPair &operator=(const SocketPair &) = delete;

    void closeOurs()
    {
        if (ours >= 0)
            ::close(ours);
        ours = -1;
    }
};

bool sendByte(int descriptor)
{
    return ::write(descriptor, "x", 1) == 1;
}

// Lets the event loop run a few passes without waiting for anything in particular.
void runEventLoopBriefly()
{
    for (int i = 0; i < 5; ++i)
        QTest::qWait(10);
}

} // namespace

class TestEpollWatcher : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void currentIsTheThreadsWatcher();
    void reportsOnlyWhatIsWatched();
    void reportsAgainWhileReady();
    void watchingNeitherLeavesTheSet();
    void unwatchStopsReports();
    void reusedDescriptorGetsNoStaleEvent();
    void destructionNotifiesClients();
};

void TestEpollWatcher::currentIsTheThreadsWatcher()
{
    QCOMPARE(EpollWatcher::current(), nullptr);
    {
        EpollWatcher watcher;
        QCOMPARE(EpollWatcher::current(), &watcher);
        EpollWatcher second;
        QCOMPARE(EpollWatcher::current(), &watcher);
    }
    QCOMPARE(EpollWatcher::current(), nullptr);

    // The oldest watcher that is left takes over.
    auto first = std::make_unique<EpollWatcher>();
    EpollWatcher second;
    first.reset();
    QCOMPARE(EpollWatcher::current(), &second);
}

void TestEpollWatcher::reportsOnlyWhatIsWatched()
{
    SocketPair pair;
    QVERIFY(pair.ours >= 0);
    RecordingClient client;
    // Declared last, so that it goes first, while its clients and sockets still exist.
    EpollWatcher watcher;

    // An empty socket is writable but not readable, and only reading is watched.
    QVERIFY(watcher.watch(pair.ours, &client, true, false));
    runEventLoopBriefly();
    QCOMPARE(client.readable, 0);
    QCOMPARE(client.writable, 0);

    QVERIFY(sendByte(pair.peer));
    QTRY_VERIFY_WITH_TIMEOUT(client.readable > 0, kWaitMs);
    QCOMPARE(client.writable, 0);

    QVERIFY(watcher.watch(pair.ours, &client, false, true));
    const int readableBefore = client.readable;
    QTRY_VERIFY_WITH_TIMEOUT(client.writable > 0, kWaitMs);
    QCOMPARE(client.readable, readableBefore);
}

void TestEpollWatcher::reportsAgainWhileReady()
{
    SocketPair pair;
    QVERIFY(pair.ours >= 0);
    RecordingClient client;
    EpollWatcher watcher;
    QVERIFY(watcher.watch(pair.ours, &client, true, false));
    QVERIFY(sendByte(pair.peer));

    // The byte stays unread, so every pass reports it again.
    QTRY_VERIFY_WITH_TIMEOUT(client.readable >= 3, kWaitMs);

    char byte = 0;
    QCOMPARE(::read(pair.ours, &byte, 1), 1);
    runEventLoopBriefly();
    const int afterRead = client.readable;
    runEventLoopBriefly();
    QCOMPARE(client.readable, afterRead);
}

// A hung-up socket left in the epoll set would be reported on every pass even when no events
// are requested, and keep the thread busy.
void TestEpollWatcher::watchingNeitherLeavesTheSet()
{
    SocketPair pair;
    QVERIFY(pair.ours >= 0);
    RecordingClient client;
    EpollWatcher watcher;
    QVERIFY(watcher.watch(pair.ours, &client, true, false));
    QCOMPARE(watcher.watchedCount(), 1);

    ::close(std::exchange(pair.peer, -1));
    QTRY_VERIFY_WITH_TIMEOUT(client.readable > 0, kWaitMs);

    QVERIFY(watcher.watch(pair.ours, &client, false, false));
    QCOMPARE(watcher.watchedCount(), 0);
    const int readableBefore = client.readable;
    runEventLoopBriefly();
    QCOMPARE(client.readable, readableBefore);

    // Watching again puts it back.
    QVERIFY(watcher.watch(pair.ours, &client, true, false));
    QCOMPARE(watcher.watchedCount(), 1);
    QTRY_VERIFY_WITH_TIMEOUT(client.readable > readableBefore, kWaitMs);
}

void TestEpollWatcher::unwatchStopsReports()
{
    SocketPair pair;
    QVERIFY(pair.ours >= 0);
    RecordingClient client;
    EpollWatcher watcher;
    QVERIFY(watcher.watch(pair.ours, &client, true, true));
    QTRY_VERIFY_WITH_TIMEOUT(client.writable > 0, kWaitMs);

    watcher.unwatch(pair.ours);
    QCOMPARE(watcher.watchedCount(), 0);
    QVERIFY(sendByte(pair.peer));
    const int readableBefore = client.readable;
    const int writableBefore = client.writable;
    runEventLoopBriefly();
    QCOMPARE(client.readable, readableBefore);
    QCOMPARE(client.writable, writableBefore);
}

// The first client of a batch closes the second one's socket and opens another that gets the
// same descriptor number. The second socket's event, still in the batch, must not reach the
// new client, whose socket has nothing to read.
void TestEpollWatcher::reusedDescriptorGetsNoStaleEvent()
{
    SocketPair first;
    SocketPair second;
    QVERIFY(first.ours >= 0 && second.ours >= 0);
    RecordingClient firstClient;
    RecordingClient secondClient;
    RecordingClient newClient;
    EpollWatcher watcher;
    QVERIFY(watcher.watch(first.ours, &firstClient, true, false));
    QVERIFY(watcher.watch(second.ours, &secondClient, true, false));

    int reused = -1;
    SocketPair spare;
    QVERIFY(spare.ours >= 0);
    firstClient.onReadable = [&] {
        if (reused >= 0)
            return;
        const int number = second.ours;
        watcher.unwatch(number);
        second.closeOurs();
        reused = ::fcntl(spare.ours, F_DUPFD_CLOEXEC, number);
        QCOMPARE(reused, number);
        watcher.watch(reused, &newClient, true, false);
    };
    // epoll lists ready sockets in the order they became ready.
    QVERIFY(sendByte(first.peer));
    QVERIFY(sendByte(second.peer));

    QTRY_VERIFY_WITH_TIMEOUT(firstClient.readable > 0, kWaitMs);
    runEventLoopBriefly();
    QVERIFY(reused >= 0);
    QCOMPARE(secondClient.readable, 0);
    QCOMPARE(newClient.readable, 0);
    watcher.unwatch(reused);
    ::close(reused);
}

void TestEpollWatcher::destructionNotifiesClients()
{
    SocketPair pair;
    QVERIFY(pair.ours >= 0);
    RecordingClient watched;
    RecordingClient unwatched;
    {
        EpollWatcher watcher;
        QVERIFY(watcher.watch(pair.ours, &watched, true, false));
        QVERIFY(watcher.watch(pair.peer, &unwatched, true, false));
        watcher.unwatch(pair.peer);
    }
    QVERIFY(watched.watcherGone);
    QVERIFY(!unwatched.watcherGone);
}

QTEST_MAIN(TestEpollWatcher)
#include "tst_epollwatcher.moc"
