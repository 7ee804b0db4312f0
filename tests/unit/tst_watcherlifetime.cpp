// Lifetimes of EpollWatcher and the TlsSockets it watches: sockets that outlive a watcher,
// watchers destroyed from inside their own dispatch, and sockets that stall while their peer
// goes away.
#include "TestTlsListener.h"
#include "proxy/ProxyServer.h"
#include "proxy/ProxySettings.h"
#include "proxy/RequestGate.h"
#include "tls/EpollWatcher.h"
#include "tls/TlsContext.h"
#include "tls/TlsSocket.h"

#include <QSignalSpy>
#include <QTcpServer>
#include <QTest>
#include <functional>
#include <memory>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace lamplighter;

namespace {

constexpr int kWaitMs = 10000;

// A gate that rejects every request with 403 at once.
class RejectingGate : public RequestGate {
public:
    void admit(const HttpHead &, Decide decide) override
    {
        decide(rejectWithStatus(
            403, QStringLiteral("Forbidden by the test gate."), QStringLiteral("test rejection")));
    }
};

// A client that runs `onReadable` when its socket is reported readable.
class CallbackClient : public EpollWatcher::Client {
public:
    virtual ~CallbackClient() = default;

    std::function<void()> onReadable;

    void socketReadable() override { onReadable(); }
    void socketWritable() override {}
    void watcherDestroyed() override {}
};

// Connects `client` to `listener` and returns the accepted server socket, or null when the
// handshake or the accept did not happen in time.
TlsSocket *connectToListener(TestTlsListener &listener, TlsSocket &client)
{
    QSignalSpy encrypted(&client, &TlsSocket::encrypted);
    client.connectToHost(QStringLiteral("127.0.0.1"), listener.serverPort());
    if (!encrypted.wait(kWaitMs))
        return nullptr;
    QDeadlineTimer deadline(kWaitMs);
    while (listener.accepted.empty() && !deadline.hasExpired())
        QTest::qWait(5);
    return listener.accepted.empty() ? nullptr : listener.accepted.front();
}

} // namespace

class TestWatcherLifetime : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void socketConnectsAfterWatcherIsGone();
    void otherSocketOutlivesOwnerThreadProxy();
    void proxyDeletedFromOtherSocketsSignal();
    void watcherDeletedByItsClient();
    void stalledReaderSeesPeerClose();
    void stalledWriterSeesPeerReset();

private:
    // Starts a ProxyServer without worker threads and completes one TLS handshake with it, so
    // that its worker creates the EpollWatcher of this thread.
    std::unique_ptr<ProxyServer> startProxyWithWatcher();

    std::shared_ptr<const TlsContext> m_serverContext;
    std::shared_ptr<const TlsContext> m_clientContext;
};

void TestWatcherLifetime::initTestCase()
{
    const Result<TestTlsContexts> contexts = TestTlsContexts::create();
    QVERIFY2(contexts.ok(), qPrintable(contexts.errorMessage()));
    m_serverContext = contexts->server;
    m_clientContext = contexts->client;
}

std::unique_ptr<ProxyServer> TestWatcherLifetime::startProxyWithWatcher()
{
    auto shared = std::make_shared<SharedProxySettings>(ProxySettings{});
    auto proxy = std::make_unique<ProxyServer>(shared, std::make_shared<RejectingGate>());
    proxy->setTlsContext(m_serverContext);
    if (!proxy->listen(QHostAddress::LocalHost, 0, QStringLiteral("test")).ok())
        return nullptr;
    // Created before the watcher exists, so it uses Qt's notifiers.
    TlsSocket client(m_clientContext);
    QSignalSpy encrypted(&client, &TlsSocket::encrypted);
    client.connectToHost(QStringLiteral("127.0.0.1"), proxy->port());
    if (!encrypted.wait(kWaitMs) || !EpollWatcher::current())
        return nullptr;
    return proxy;
}

// A socket created while a watcher exists but connected after the watcher is gone uses the
// notifiers, because a socket looks up the watcher when it first waits on a descriptor.
void TestWatcherLifetime::socketConnectsAfterWatcherIsGone()
{
    TestTlsListener listener(m_serverContext);
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0));
    auto watcher = std::make_unique<EpollWatcher>();
    TlsSocket client(m_clientContext);
    watcher.reset();
    QCOMPARE(EpollWatcher::current(), nullptr);

    QSignalSpy encrypted(&client, &TlsSocket::encrypted);
    QSignalSpy failed(&client, &TlsSocket::errorOccurred);
    client.connectToHost(QStringLiteral("127.0.0.1"), listener.serverPort());
    QVERIFY2(encrypted.wait(kWaitMs), qPrintable(client.errorString()));
    QCOMPARE(failed.count(), 0);
}

// A ProxyServer without worker threads creates the watcher of its owner's thread. A socket that
// another component creates on that thread goes on working after the proxy is destroyed.
void TestWatcherLifetime::otherSocketOutlivesOwnerThreadProxy()
{
    std::unique_ptr<ProxyServer> proxy = startProxyWithWatcher();
    QVERIFY(proxy);
    TestTlsListener listener(m_serverContext);
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0));
    TlsSocket other(m_clientContext);
    proxy.reset();
    QCOMPARE(EpollWatcher::current(), nullptr);

    QSignalSpy encrypted(&other, &TlsSocket::encrypted);
    other.connectToHost(QStringLiteral("127.0.0.1"), listener.serverPort());
    QVERIFY2(encrypted.wait(kWaitMs), qPrintable(other.errorString()));
    QVERIFY(!listener.accepted.empty());
    TlsSocket *accepted = listener.accepted.front();
    const QByteArray payload(64 * 1024, 'x');
    other.write(payload);
    QByteArray received;
    QDeadlineTimer deadline(kWaitMs);
    while (received.size() < payload.size() && !deadline.hasExpired()) {
        QTest::qWait(5);
        received += accepted->readAll();
    }
    QCOMPARE(received.size(), payload.size());
}

// A socket of another component on the proxy's thread is watched by the proxy's watcher. A
// receiver of its signal may delete the proxy, and with it the watcher, in the middle of a
// batch of events.
void TestWatcherLifetime::proxyDeletedFromOtherSocketsSignal()
{
    std::unique_ptr<ProxyServer> proxy = startProxyWithWatcher();
    QVERIFY(proxy);
    TestTlsListener listener(m_serverContext);
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0));
    TlsSocket other(m_clientContext);
    TlsSocket *accepted = connectToListener(listener, other);
    QVERIFY(accepted);

    bool deleted = false;
    connect(&other, &TlsSocket::readyRead, this, [&] {
        proxy.reset();
        deleted = true;
    });
    accepted->write(QByteArray("stop"));
    QTRY_VERIFY_WITH_TIMEOUT(deleted, kWaitMs);
    QCOMPARE(other.readAll(), QByteArray("stop"));
}

// A client callback may destroy the watcher directly, as deleting the watcher's owner does.
void TestWatcherLifetime::watcherDeletedByItsClient()
{
    int pair[2];
    QCOMPARE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
    auto *watcher = new EpollWatcher;
    CallbackClient client;
    client.onReadable = [&] {
        watcher->unwatch(pair[0]);
        delete watcher;
        watcher = nullptr;
    };
    QVERIFY(watcher->watch(pair[0], &client, true, false));
    QCOMPARE(::write(pair[1], "x", 1), 1);
    QTRY_VERIFY_WITH_TIMEOUT(watcher == nullptr, kWaitMs);
    ::close(pair[0]);
    ::close(pair[1]);
}

// The server stops reading at its limit while the client closes. The server must read the rest
// and see the close once it reads again.
void TestWatcherLifetime::stalledReaderSeesPeerClose()
{
    EpollWatcher watcher;
    TestTlsListener listener(m_serverContext);
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0));
    TlsSocket client(m_clientContext);
    TlsSocket *server = connectToListener(listener, client);
    QVERIFY(server);
    // A first exchange lets the client take the server's session tickets. Unread, they would
    // make the client's close reset the connection, and the reset drops the bytes in flight.
    client.write(QByteArray("hello"));
    QTRY_COMPARE_WITH_TIMEOUT(server->bytesAvailable(), 5, kWaitMs);
    QCOMPARE(server->readAll(), QByteArray("hello"));
    QTest::qWait(100);
    server->setReadBufferLimit(16 * 1024);
    QSignalSpy serverClosed(server, &TlsSocket::disconnected);

    const QByteArray payload(512 * 1024, 'p');
    client.write(payload);
    client.disconnectFromHost();
    QTest::qWait(300);
    QCOMPARE(serverClosed.count(), 0);

    QByteArray received;
    QDeadlineTimer deadline(kWaitMs);
    while (serverClosed.isEmpty() && !deadline.hasExpired()) {
        QTest::qWait(5);
        received += server->readAll();
    }
    received += server->readAll();
    QCOMPARE(serverClosed.count(), 1);
    QCOMPARE(server->failure(), TlsSocket::Failure::None);
    QCOMPARE(received.size(), payload.size());
}

// The server is blocked on writing and stalled on reading when the client resets the
// connection. The server must fail instead of waiting forever.
void TestWatcherLifetime::stalledWriterSeesPeerReset()
{
    EpollWatcher watcher;
    TestTlsListener listener(m_serverContext);
    QVERIFY(listener.listen(QHostAddress::LocalHost, 0));
    auto client = std::make_unique<TlsSocket>(m_clientContext);
    client->setReadBufferLimit(16 * 1024);
    TlsSocket *server = connectToListener(listener, *client);
    QVERIFY(server);
    server->setReadBufferLimit(16 * 1024);
    QSignalSpy serverClosed(server, &TlsSocket::disconnected);

    client->write(QByteArray(512 * 1024, 'c'));
    server->write(QByteArray(16 * 1024 * 1024, 's'));
    QTest::qWait(500);
    QVERIFY(server->bytesToWrite() > 0);
    // Unread bytes in the client's kernel buffer make the close send a reset.
    client->abort();

    QVERIFY(serverClosed.count() > 0 || serverClosed.wait(kWaitMs));
    QCOMPARE(server->failure(), TlsSocket::Failure::Connection);
}

QTEST_MAIN(TestWatcherLifetime)
#include "tst_watcherlifetime.moc"
