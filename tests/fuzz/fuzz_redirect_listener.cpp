// libFuzzer target: the loopback redirect listener that receives the authorization response.
// Its request parsing is private, so each input goes where a browser's request goes: a
// RedirectListener listens on 127.0.0.1, and a QTcpSocket sends the input to it. The placeholder
// @STATE@ stands for the state of the pending sign-in, so that seeds reach the code and error
// handling behind the state check.

#include "FuzzSupport.h"
#include "oidc/RedirectListener.h"

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QHostAddress>
#include <QTcpSocket>
#include <cstdint>
#include <memory>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

const QByteArray kState = "k9pX3n7QeT2vY8rB1mL5wZ0cF4hJ6sA9dG3uK7pN2qR";
const QString kIssuer = QStringLiteral("https://issuer.example.test");

// A generous bound for a listener on the same thread to respond, far above the milliseconds it
// takes, so that only a listener that never responds fails the check.
constexpr int kResponseTimeoutMs = 20'000;

bool isCompleteHead(const QByteArray &request)
{
    return request.left(RedirectListener::maxRequestHeadBytes).contains("\r\n\r\n") ||
           request.size() >= RedirectListener::maxRequestHeadBytes;
}

void processEventsUntil(const std::function<bool()> &done, int timeoutMs)
{
    QDeadlineTimer deadline(timeoutMs);
    while (!done() && !deadline.hasExpired())
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 10);
}

void checkResponse(const QByteArray &response, const RedirectListener &listener)
{
    requireProperty(response.startsWith("HTTP/1.1 "), "the listener responds with HTTP/1.1");
    const int status = response.mid(9, 3).toInt();
    requireProperty(status == 200 || status == 400 || status == 404 || status == 405 ||
                        status == 431,
                    "the listener responds with 200, 400, 404, 405 or 431");
    if (!listener.isFinished())
        return;
    if (listener.failed()) {
        requireProperty(!listener.error().message.isEmpty(), "a failed sign-in has a message");
        return;
    }
    requireProperty(!listener.code().isEmpty(), "a sign-in that succeeded has a code");
    if (listener.code().size() >= 8) {
        requireProperty(!response.contains(listener.code()),
                        "the response page never shows the authorization code");
    }
}

// Returns the listener for the next input. One listener serves the inputs until one of them ends
// its flow, as a browser's retries would. A listener per input took a new port each time, and the
// ports held in TIME_WAIT ran out after about 30,000 inputs.
RedirectListener &currentListener()
{
    static std::unique_ptr<RedirectListener> listener;
    if (!listener || listener->isFinished()) {
        listener =
            std::make_unique<RedirectListener>(AuthorizationExpectations{kState, kIssuer, false});
        requireProperty(listener->listen().ok(), "the listener listens on 127.0.0.1");
    }
    return *listener;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    ensureApplication();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray request = substitutePlaceholders(
        QByteArray(reinterpret_cast<const char *>(data), qsizetype(size)), {{"@STATE@", kState}});

    RedirectListener &listener = currentListener();

    QTcpSocket socket;
    QByteArray response;
    QObject::connect(&socket, &QTcpSocket::readyRead, [&] { response += socket.readAll(); });
    socket.connectToHost(QHostAddress(QHostAddress::LocalHost), listener.port());
    processEventsUntil([&] { return socket.state() == QAbstractSocket::ConnectedState; },
                       kResponseTimeoutMs);
    requireProperty(socket.state() == QAbstractSocket::ConnectedState,
                    "a client connects to the listener");
    socket.write(request);

    if (!isCompleteHead(request)) {
        // The listener waits for the rest of the head, so the client gives up.
        processEventsUntil([&] { return socket.bytesToWrite() == 0; }, kResponseTimeoutMs);
        socket.abort();
        QCoreApplication::processEvents();
        return 0;
    }
    processEventsUntil([&] { return socket.state() == QAbstractSocket::UnconnectedState; },
                       kResponseTimeoutMs);
    requireProperty(socket.state() == QAbstractSocket::UnconnectedState,
                    "the listener responds to a complete request head and closes");
    response += socket.readAll();
    checkResponse(response, listener);
    return 0;
}
