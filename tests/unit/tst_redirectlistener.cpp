#include "DescriptorExhaustion.h"
#include "oidc/RedirectListener.h"

#include <QHostAddress>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>
#include <QTimer>
#include <memory>
#include <vector>

using namespace lamplighter;

namespace {

const QByteArray expectedState = "k9pX3n7QeT2vY8rB1mL5wZ0cF4hJ6sA9dG3uK7pN2qR";
const QString issuer = QStringLiteral("https://idp.example.test");

// Sends raw bytes to the listener and returns its whole response. The waits
// run the event loop, because the listener lives on this thread.
QByteArray exchange(quint16 port,
                    const QByteArray &request,
                    const QHostAddress &address = QHostAddress(QHostAddress::LocalHost))
{
    QTcpSocket socket;
    QByteArray response;
    QObject::connect(&socket, &QTcpSocket::readyRead, [&] { response += socket.readAll(); });
    socket.connectToHost(address, port);
    const bool connected =
        QTest::qWaitFor([&] { return socket.state() == QAbstractSocket::ConnectedState; }, 5000);
    if (!connected)
        return "connect failed: " + socket.errorString().toUtf8();
    socket.write(request);
    const bool closed =
        QTest::qWaitFor([&] { return socket.state() == QAbstractSocket::UnconnectedState; }, 10000);
    if (!closed)
        return "the listener did not close the connection";
    return response + socket.readAll();
}

// Connects to port and returns the error, which is ConnectionRefusedError when nothing listens.
QAbstractSocket::SocketError connectError(quint16 port)
{
    QTcpSocket socket;
    socket.connectToHost(QHostAddress(QHostAddress::LocalHost), port);
    const bool settled = QTest::qWaitFor(
        [&] {
            return socket.state() == QAbstractSocket::UnconnectedState ||
                   socket.state() == QAbstractSocket::ConnectedState;
        },
        5000);
    return settled ? socket.error() : QAbstractSocket::SocketTimeoutError;
}

QByteArray get(quint16 port, const QByteArray &target)
{
    return exchange(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

int statusOf(const QByteArray &response)
{
    const QList<QByteArray> parts = response.left(response.indexOf("\r\n")).split(' ');
    return parts.size() >= 2 ? parts[1].toInt() : 0;
}

} // namespace

class TestRedirectListener : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void listensOnLoopbackWithSystemPort();
    void rejectedRequestKeepsWaiting_data();
    void rejectedRequestKeepsWaiting();
    void oversizedHeadKeepsWaiting();
    void silentConnectionKeepsWaiting();
    void unfinishedHeadClosedAfterTimeout();
    void rightStateEndsFlowWithCode();
    void plusInQueryDecodesToSpace();
    void providerErrorEndsFlow();
    void issuerMismatchRejected();
    void missingIssuerRejectedWhenRequired();
    void matchingIssuerAccepted();
    void connectRefusedAfterFinish();
    void closeStopsListening();
    void localhostRedirectUri();
    void localhostAnsweredOnIpv6();
    void signInCompletesAfterDescriptorsFreed();
    void connectionBeyondLimitClosed();
};

void TestRedirectListener::listensOnLoopbackWithSystemPort()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.redirectUri().isEmpty());
    const Status listening = listener.listen();
    QVERIFY2(listening.ok(), qPrintable(listening.errorMessage()));

    QVERIFY(listener.isListening());
    QVERIFY(listener.port() != 0);
    QCOMPARE(listener.redirectUri(),
             QUrl(QStringLiteral("http://127.0.0.1:%1/callback").arg(listener.port())));
}

void TestRedirectListener::rejectedRequestKeepsWaiting_data()
{
    QTest::addColumn<QByteArray>("request");
    QTest::addColumn<int>("status");

    const QByteArray right = "state=" + expectedState + "&code=abc";
    QTest::newRow("random bytes") << QByteArray("\x16\x03\x01\x02\x00\x01\x00\r\n\r\n", 12) << 400;
    QTest::newRow("empty request line") << QByteArray("\r\n\r\n") << 400;
    QTest::newRow("one word") << QByteArray("GARBAGE\r\n\r\n") << 400;
    QTest::newRow("no version") << QByteArray("GET /callback?" + right + "\r\n\r\n") << 400;
    QTest::newRow("http 2 version")
        << QByteArray("GET /callback?" + right + " HTTP/2.0\r\n\r\n") << 400;
    QTest::newRow("post") << QByteArray("POST /callback?" + right + " HTTP/1.1\r\n\r\n") << 405;
    QTest::newRow("head") << QByteArray("HEAD /callback?" + right + " HTTP/1.1\r\n\r\n") << 405;
    QTest::newRow("absolute form target")
        << QByteArray("GET http://127.0.0.1/callback?" + right + " HTTP/1.1\r\n\r\n") << 400;
    QTest::newRow("asterisk target") << QByteArray("OPTIONS * HTTP/1.1\r\n\r\n") << 405;
    QTest::newRow("bare line feeds")
        << QByteArray("GET /callback?" + right + " HTTP/1.1\nHost: x\n\r\n\r\n") << 400;
    QTest::newRow("control character") << QByteArray("GET /callback?" + right +
                                                     " HTTP/1.1\r\nHost: a\x01"
                                                     "b\r\n\r\n")
                                       << 400;
    QTest::newRow("header without colon")
        << QByteArray("GET /callback?" + right + " HTTP/1.1\r\nHost\r\n\r\n") << 400;
    QTest::newRow("space in header name")
        << QByteArray("GET /callback?" + right + " HTTP/1.1\r\nHo st: a\r\n\r\n") << 400;
    QTest::newRow("invalid percent encoding")
        << QByteArray("GET /callback?state=%zz&code=abc HTTP/1.1\r\n\r\n") << 400;
    QTest::newRow("root path") << QByteArray("GET / HTTP/1.1\r\n\r\n") << 404;
    QTest::newRow("favicon") << QByteArray("GET /favicon.ico HTTP/1.1\r\n\r\n") << 404;
    QTest::newRow("path below callback")
        << QByteArray("GET /callback/x?" + right + " HTTP/1.1\r\n\r\n") << 404;
    QTest::newRow("no query") << QByteArray("GET /callback HTTP/1.1\r\n\r\n") << 400;
    QTest::newRow("missing state") << QByteArray("GET /callback?code=abc HTTP/1.1\r\n\r\n") << 400;
    QTest::newRow("empty state") << QByteArray("GET /callback?state=&code=abc HTTP/1.1\r\n\r\n")
                                 << 400;
    QTest::newRow("wrong state") << QByteArray("GET /callback?state=" + expectedState.chopped(1) +
                                               "x&code=abc HTTP/1.1\r\n\r\n")
                                 << 400;
    QTest::newRow("state prefix") << QByteArray("GET /callback?state=" + expectedState.left(10) +
                                                "&code=abc HTTP/1.1\r\n\r\n")
                                  << 400;
    QTest::newRow("wrong state with error")
        << QByteArray("GET /callback?state=other&error=access_denied HTTP/1.1\r\n\r\n") << 400;
    QTest::newRow("right state without code or error")
        << QByteArray("GET /callback?state=" + expectedState + " HTTP/1.1\r\n\r\n") << 400;
    QTest::newRow("right state with empty code")
        << QByteArray("GET /callback?state=" + expectedState + "&code= HTTP/1.1\r\n\r\n") << 400;
    QTest::newRow("repeated state")
        << QByteArray("GET /callback?" + right + "&state=" + expectedState + " HTTP/1.1\r\n\r\n")
        << 400;
    QTest::newRow("repeated code")
        << QByteArray("GET /callback?" + right + "&code=other HTTP/1.1\r\n\r\n") << 400;
}

// Each rejected request must leave the flow open, and the right response afterwards must still
// end it, which shows that the rejected one did not break the listener.
void TestRedirectListener::rejectedRequestKeepsWaiting()
{
    QFETCH(QByteArray, request);
    QFETCH(int, status);

    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());
    QSignalSpy finished(&listener, &RedirectListener::finished);

    const QByteArray response = exchange(listener.port(), request);
    QCOMPARE(statusOf(response), status);
    QVERIFY(response.contains("Connection: close"));
    QVERIFY(!listener.isFinished());
    QVERIFY(listener.isListening());
    QCOMPARE(finished.size(), 0);

    const QByteArray rightResponse =
        get(listener.port(), "/callback?state=" + expectedState + "&code=abc");
    QCOMPARE(statusOf(rightResponse), 200);
    QCOMPARE(finished.size(), 1);
    QVERIFY(!listener.failed());
    QCOMPARE(listener.code(), QByteArray("abc"));
}

void TestRedirectListener::oversizedHeadKeepsWaiting()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());

    const QByteArray padding(RedirectListener::maxRequestHeadBytes, 'a');
    const QByteArray response =
        exchange(listener.port(),
                 "GET /callback?state=" + expectedState +
                     "&code=abc HTTP/1.1\r\nX-Padding: " + padding + "\r\n\r\n");
    QCOMPARE(statusOf(response), 431);
    QVERIFY(!listener.isFinished());
    QVERIFY(listener.isListening());
}

void TestRedirectListener::silentConnectionKeepsWaiting()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());

    QTcpSocket silent;
    silent.connectToHost(QHostAddress(QHostAddress::LocalHost), listener.port());
    QVERIFY(silent.waitForConnected(5000));
    QTcpSocket partial;
    partial.connectToHost(QHostAddress(QHostAddress::LocalHost), listener.port());
    QVERIFY(partial.waitForConnected(5000));
    partial.write("GET /callback?state=" + expectedState);
    QVERIFY(partial.waitForBytesWritten(5000));
    silent.abort();

    const QByteArray response =
        get(listener.port(), "/callback?state=" + expectedState + "&code=abc");
    QCOMPARE(statusOf(response), 200);
    QVERIFY(listener.isFinished());
    QTRY_COMPARE(partial.state(), QAbstractSocket::UnconnectedState);
}

// A connection that has not sent a whole request head when the timeout ends is closed without
// a response, and the sign-in still waits for the browser's redirect.
void TestRedirectListener::unfinishedHeadClosedAfterTimeout()
{
    RedirectListener listener({expectedState, issuer, false});
    listener.setConnectionTimeout(std::chrono::milliseconds(200));
    QVERIFY(listener.listen().ok());

    QTcpSocket silent;
    silent.connectToHost(QHostAddress(QHostAddress::LocalHost), listener.port());
    QVERIFY(silent.waitForConnected(5000));
    QTcpSocket partial;
    partial.connectToHost(QHostAddress(QHostAddress::LocalHost), listener.port());
    QVERIFY(partial.waitForConnected(5000));
    partial.write("GET /callback?state=" + expectedState);
    QVERIFY(partial.waitForBytesWritten(5000));

    // The 10 s waits are shorter than the default timeout of 30 s, so only the timeout set above
    // can close the two connections within them.
    QTRY_COMPARE_WITH_TIMEOUT(silent.state(), QAbstractSocket::UnconnectedState, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(partial.state(), QAbstractSocket::UnconnectedState, 10000);
    QCOMPARE(partial.readAll(), QByteArray());
    QVERIFY(!listener.isFinished());

    const QByteArray response =
        get(listener.port(), "/callback?state=" + expectedState + "&code=abc");
    QCOMPARE(statusOf(response), 200);
    QVERIFY(listener.isFinished());
    QCOMPARE(listener.code(), QByteArray("abc"));
}

void TestRedirectListener::rightStateEndsFlowWithCode()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());
    QSignalSpy finished(&listener, &RedirectListener::finished);

    const QByteArray response =
        get(listener.port(), "/callback?code=Sp1%2FxQ-_~&state=" + expectedState);
    QCOMPARE(statusOf(response), 200);
    QVERIFY(response.contains("Content-Type: text/html; charset=utf-8"));
    QVERIFY(response.contains("Cache-Control: no-store"));
    QVERIFY(response.contains("Signed in to Lamplighter. You can close this tab."));
    QCOMPARE(finished.size(), 1);
    QVERIFY(!listener.failed());
    QCOMPARE(listener.code(), QByteArray("Sp1/xQ-_~"));
}

void TestRedirectListener::plusInQueryDecodesToSpace()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());

    get(listener.port(),
        "/callback?state=" + expectedState + "&error=access_denied&error_description=User+said+no");
    QVERIFY(listener.isFinished());
    QVERIFY(listener.error().message.contains(QStringLiteral("User said no")));
}

void TestRedirectListener::providerErrorEndsFlow()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());
    QSignalSpy finished(&listener, &RedirectListener::finished);

    const QByteArray response =
        get(listener.port(),
            "/callback?error=access_denied&error_description=%3Cb%3EDenied%3C%2Fb%3E%0Anow&state=" +
                expectedState);
    QCOMPARE(statusOf(response), 400);
    QCOMPARE(finished.size(), 1);
    QVERIFY(listener.failed());
    const QString message = listener.error().message;
    QVERIFY2(message.contains(QStringLiteral("access_denied")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("Denied")), qPrintable(message));
    QVERIFY2(!message.contains(QLatin1Char('\n')), qPrintable(message));
    QVERIFY(response.contains("Sign-in to Lamplighter failed"));
    QVERIFY(response.contains("&lt;b&gt;Denied"));
    QVERIFY(!response.contains("<b>Denied"));
    QVERIFY(listener.code().isEmpty());
}

void TestRedirectListener::issuerMismatchRejected()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());

    const QByteArray response =
        get(listener.port(),
            "/callback?code=abc&state=" + expectedState + "&iss=https%3A%2F%2Fevil.example.test");
    QCOMPARE(statusOf(response), 400);
    QVERIFY(listener.isFinished());
    QVERIFY(listener.failed());
    QVERIFY(listener.code().isEmpty());
    const QString message = listener.error().message;
    QVERIFY2(message.contains(QStringLiteral("https://evil.example.test")), qPrintable(message));
    QVERIFY2(message.contains(issuer), qPrintable(message));
}

void TestRedirectListener::missingIssuerRejectedWhenRequired()
{
    RedirectListener listener({expectedState, issuer, true});
    QVERIFY(listener.listen().ok());

    get(listener.port(), "/callback?code=abc&state=" + expectedState);
    QVERIFY(listener.isFinished());
    QVERIFY(listener.failed());
    QVERIFY(listener.code().isEmpty());
    QVERIFY2(listener.error().message.contains(QStringLiteral("\"iss\"")),
             qPrintable(listener.error().message));
}

void TestRedirectListener::matchingIssuerAccepted()
{
    RedirectListener listener({expectedState, issuer, true});
    QVERIFY(listener.listen().ok());

    get(listener.port(),
        "/callback?code=abc&state=" + expectedState + "&iss=" + QUrl::toPercentEncoding(issuer));
    QVERIFY(listener.isFinished());
    QVERIFY2(!listener.failed(), qPrintable(listener.error().message));
    QCOMPARE(listener.code(), QByteArray("abc"));
}

void TestRedirectListener::connectRefusedAfterFinish()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());
    const quint16 port = listener.port();

    get(port, "/callback?code=abc&state=" + expectedState);
    QVERIFY(listener.isFinished());
    QVERIFY(!listener.isListening());
    QCOMPARE(listener.redirectUri().port(), port);

    QCOMPARE(connectError(port), QAbstractSocket::ConnectionRefusedError);
}

void TestRedirectListener::closeStopsListening()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());
    const quint16 port = listener.port();
    QSignalSpy finished(&listener, &RedirectListener::finished);

    listener.close();
    QVERIFY(!listener.isListening());
    QCOMPARE(connectError(port), QAbstractSocket::ConnectionRefusedError);
    QCOMPARE(finished.size(), 0);
}

void TestRedirectListener::localhostRedirectUri()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen(RedirectListener::RedirectHost::Localhost).ok());
    QCOMPARE(listener.redirectUri(),
             QUrl(QStringLiteral("http://localhost:%1/callback").arg(listener.port())));

    // 127.0.0.1 still accepts the callback, for browsers that resolve localhost to it.
    const QByteArray response = get(listener.port(), "/callback?code=abc&state=" + expectedState);
    QCOMPARE(statusOf(response), 200);
    QCOMPARE(listener.code(), QByteArray("abc"));
}

void TestRedirectListener::localhostAnsweredOnIpv6()
{
    QTcpServer probe;
    if (!probe.listen(QHostAddress(QHostAddress::LocalHostIPv6), 0))
        QSKIP("This machine has no IPv6 loopback, so only 127.0.0.1 can answer for localhost.");
    probe.close();

    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen(RedirectListener::RedirectHost::Localhost).ok());
    QVERIFY(listener.isListeningOnIpv6());

    const QByteArray response = exchange(listener.port(),
                                         "GET /callback?code=v6&state=" + expectedState +
                                             " HTTP/1.1\r\nHost: localhost\r\n\r\n",
                                         QHostAddress(QHostAddress::LocalHostIPv6));
    QCOMPARE(statusOf(response), 200);
    QCOMPARE(listener.code(), QByteArray("v6"));

    listener.close();
    QVERIFY(!listener.isListeningOnIpv6());
}

// A browser that comes back while the app has run out of descriptors waits in the backlog, and
// the sign-in completes once descriptors are free again, instead of timing out.
void TestRedirectListener::signInCompletesAfterDescriptorsFreed()
{
    if (DescriptorExhaustion::kSanitized)
        QSKIP("the sanitizers' own checks fail without free descriptors");
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());
    QTest::ignoreMessage(
        QtWarningMsg,
        QRegularExpression(
            QStringLiteral("^Accepting a client connection on port %1 failed: Too many open "
                           "files\\. Trying again every 1000 ms")
                .arg(listener.port())));
    QTest::ignoreMessage(
        QtInfoMsg,
        QRegularExpression(
            QStringLiteral("^Accepting client connections on port %1 again, \\d+ ms after the "
                           "first failure\\.$")
                .arg(listener.port())));

    // Every descriptor but one is taken, and the browser's socket takes that one.
    DescriptorExhaustion exhaustion(1);
    QVERIFY(exhaustion.active());
    QObject freeing;
    QTimer::singleShot(300, &freeing, [&exhaustion] { exhaustion.release(); });

    const QByteArray response =
        get(listener.port(), "/callback?code=after-outage&state=" + expectedState);
    QVERIFY2(statusOf(response) == 200, response.constData());
    QVERIFY(listener.isFinished());
    QCOMPARE(listener.code(), QByteArray("after-outage"));
}

// Connections beyond maxConnections are closed at once, and one of those within the limit can still
// end the sign-in.
void TestRedirectListener::connectionBeyondLimitClosed()
{
    RedirectListener listener({expectedState, issuer, false});
    QVERIFY(listener.listen().ok());

    // The kernel completes each connection before the listener accepts it, and the listener
    // accepts them in the order they came, so the last one is over the limit.
    std::vector<std::unique_ptr<QTcpSocket>> withinLimit;
    for (int i = 0; i < RedirectListener::maxConnections; ++i) {
        withinLimit.push_back(std::make_unique<QTcpSocket>());
        withinLimit.back()->connectToHost(QHostAddress(QHostAddress::LocalHost), listener.port());
        QVERIFY(withinLimit.back()->waitForConnected(5000));
    }
    QTcpSocket overLimit;
    overLimit.connectToHost(QHostAddress(QHostAddress::LocalHost), listener.port());
    QVERIFY(overLimit.waitForConnected(5000));

    QVERIFY2(QTest::qWaitFor([&] { return overLimit.state() == QAbstractSocket::UnconnectedState; },
                             5000),
             "the connection over the limit stayed open");
    QVERIFY(overLimit.readAll().isEmpty());
    for (const std::unique_ptr<QTcpSocket> &socket : withinLimit)
        QCOMPARE(socket->state(), QAbstractSocket::ConnectedState);

    QTcpSocket &first = *withinLimit.front();
    QByteArray response;
    QObject::connect(&first, &QTcpSocket::readyRead, [&] { response += first.readAll(); });
    first.write("GET /callback?code=at-limit&state=" + expectedState +
                " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    QVERIFY(
        QTest::qWaitFor([&] { return first.state() == QAbstractSocket::UnconnectedState; }, 10000));
    QCOMPARE(statusOf(response + first.readAll()), 200);
    QCOMPARE(listener.code(), QByteArray("at-limit"));
}

QTEST_GUILESS_MAIN(TestRedirectListener)
#include "tst_redirectlistener.moc"
