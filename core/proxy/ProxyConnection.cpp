#include "ProxyConnection.h"

#include "BrowserResponse.h"
#include "KubernetesStatus.h"
#include "Logging.h"
#include "ProxyHeaders.h"
#include "ProxyRoute.h"
#include "RequestAdmission.h"
#include "UpstreamConnection.h"
#include "UpstreamPool.h"
#include "tls/TlsSocket.h"

#include <QPointer>
#include <utility>

namespace lamplighter {

namespace {

constexpr qint64 kReadChunkBytes = 64 * 1024;
constexpr qint64 kSocketReadBufferBytes = 256 * 1024;

HttpMessageParser::Limits parserLimits(const ProxyLimits &limits)
{
    return HttpMessageParser::Limits{limits.maxHeadBytes, limits.maxHeaderCount};
}

// Returns true for a request that the proxy may send to the cluster a second time, on its own:
// one without a body, whose method RFC 9110 (section 9.2.2) calls idempotent and the API
// server serves as a read. An upgrade request is a GET too, but it starts exec, attach or
// port-forward, which a second send would start again.
bool mayResend(const HttpHead &request)
{
    const bool read =
        request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS";
    const bool bodyless =
        request.framing == HttpBodyFraming::None ||
        (request.framing == HttpBodyFraming::ContentLength && request.contentLength == 0);
    return read && bodyless && !isUpgradeRequest(request);
}

} // namespace

ProxyConnection::ProxyConnection(TlsSocket *client,
                                 const ProxySettings &settings,
                                 std::shared_ptr<RequestGate> gate,
                                 UpstreamPool *pool,
                                 QObject *parent)
    : QObject(parent)
    , m_client(client)
    , m_limits(settings.limits)
    , m_clientTlsContexts(settings.clientTlsContexts)
    , m_responseStarted(settings.responseStarted)
    , m_gate(std::move(gate))
    , m_clientPort(client->peerPort())
    , m_parser(HttpMessageParser::Type::Request, parserLimits(m_limits))
    , m_pool(pool)
{
    m_client->setParent(this);
    m_client->setReadBufferLimit(kSocketReadBufferBytes);

    m_deadlineTimer.setSingleShot(true);
    connect(&m_deadlineTimer, &QTimer::timeout, this, &ProxyConnection::onDeadlineTimer);

    connect(m_client, &TlsSocket::readyRead, this, &ProxyConnection::readClient);
    connect(m_client, &TlsSocket::disconnected, this, &ProxyConnection::onClientDisconnected);
    connect(m_client, &TlsSocket::bytesWritten, this, &ProxyConnection::onClientBytesWritten);

    setDeadline(Deadline::Idle);
    QMetaObject::invokeMethod(this, &ProxyConnection::readClient, Qt::QueuedConnection);
}

ProxyConnection::~ProxyConnection() = default;

void ProxyConnection::abort()
{
    dropUpstream();
    m_client->abort();
    onClientDisconnected();
}

void ProxyConnection::readClient()
{
    if (m_tunnel) {
        readTunnelFromClient();
        return;
    }
    while (clientReadAllowed()) {
        if (m_unparsed.isEmpty()) {
            m_unparsed = m_client->read(kReadChunkBytes);
            if (m_unparsed.isEmpty())
                return;
        }
        if (!m_parser.isHeadComplete() && m_deadline != Deadline::RequestHead)
            setDeadline(Deadline::RequestHead);
        const qsizetype consumed = m_parser.parse(m_unparsed);
        m_unparsed.remove(0, consumed);
        if (m_unparsed.isEmpty())
            m_unparsed.clear(); // frees the buffer of a connection that goes quiet
        if (!handleParsedRequest())
            return;
    }
}

// Reading stops while a request waits for its response (pipelined requests wait in the socket)
// and while the upstream connection has too much to send.
bool ProxyConnection::clientReadAllowed() const
{
    if (m_closing)
        return false;
    if (m_exchange.active && (m_exchange.requestComplete || m_exchange.awaitingAdmission))
        return false;
    return !(m_upstream && m_upstream->isWriteQueueFull());
}

// Acts on what the last parse produced. Returns false when reading must stop.
bool ProxyConnection::handleParsedRequest()
{
    if (const std::optional<HttpParseError> &error = m_parser.error()) {
        rejectUnparsableRequest(error->statusCode, error->reason);
        return false;
    }
    if (m_parser.isHeadComplete() && !m_exchange.active) {
        startExchange();
        if (m_closing)
            return false;
    }
    if (!m_exchange.active)
        return true;

    const QByteArray body = m_parser.takeBody();
    if (m_exchange.awaitingAdmission) {
        // Reading stops until the decision, so this keeps at most one read's worth.
        m_exchange.heldBody += body;
        return false;
    }
    forwardBody(body);
    if (m_parser.isMessageComplete() && !m_exchange.requestComplete)
        completeRequest();
    return !m_closing;
}

void ProxyConnection::forwardBody(const QByteArray &body)
{
    if (!body.isEmpty() && m_exchange.forwarding && m_upstream)
        m_upstream->sendRequestBody(m_exchange.requestChunked ? encodeChunk(body) : body);
}

void ProxyConnection::startExchange()
{
    setDeadline(Deadline::None);
    const HttpHead &request = m_parser.head();
    m_exchange = Exchange{};
    m_exchange.active = true;
    m_exchange.method = request.method;
    m_exchange.target = request.target;
    m_exchange.elapsed.start();
    m_exchange.clientKeepAlive = request.keepAlive;
    m_exchange.clientSpeaksHttp11 = request.versionMinor >= 1;

    m_exchange.awaitingAdmission = true;
    const quint64 serial = ++m_exchangeSerial;
    QPointer<ProxyConnection> self(this);
    m_admittingNow = true;
    m_gate->admit(request, [self, serial](const RequestAdmission &admission) {
        if (self && serial == self->m_exchangeSerial && self->m_exchange.awaitingAdmission)
            self->onAdmission(admission);
    });
    m_admittingNow = false;
}

// Carries out the gate's decision. A decision that came later also sends the body bytes read
// with the head and resumes reading.
void ProxyConnection::onAdmission(const RequestAdmission &admission)
{
    m_exchange.awaitingAdmission = false;
    if (m_closing)
        return;
    const bool close =
        admission.closeConnection || !m_parser.isMessageComplete() || !m_parser.head().keepAlive;
    if (admission.rejection)
        rejectRequest(*admission.rejection, admission.logReason, close);
    else if (admission.browserResponse)
        sendBrowserResponse(*admission.browserResponse, admission.logReason, close);
    else
        forwardRequest(admission);
    // A decision made within startExchange() leaves the body to handleParsedRequest().
    if (m_closing || m_admittingNow)
        return;

    forwardBody(std::exchange(m_exchange.heldBody, QByteArray()));
    if (m_parser.isMessageComplete() && !m_exchange.requestComplete)
        completeRequest();
    if (!m_closing && !m_exchange.requestComplete)
        QMetaObject::invokeMethod(this, &ProxyConnection::readClient, Qt::QueuedConnection);
}

void ProxyConnection::forwardRequest(const RequestAdmission &admission)
{
    m_exchange.clusterName = admission.cluster->name;
    m_exchange.forwarding = true;
    m_exchange.requestChunked = m_parser.head().framing == HttpBodyFraming::Chunked;
    m_exchange.upgradeRequested = isUpgradeRequest(m_parser.head());

    UpstreamConnection *upstream = upstreamFor(*admission.cluster);
    const QByteArray head = admission.upstreamHead.serializeRequest();
    if (!admission.upstreamBody && mayResend(m_parser.head()))
        m_exchange.resendableHead = head;
    sendRequestHead(head);
    if (admission.upstreamBody)
        upstream->sendRequestBody(*admission.upstreamBody);
}

void ProxyConnection::sendRequestHead(const QByteArray &head)
{
    if (m_exchange.upgradeRequested)
        m_upstream->sendUpgradeRequestHead(head);
    else
        m_upstream->sendRequestHead(head, m_exchange.method == "HEAD");
}

void ProxyConnection::completeRequest()
{
    m_exchange.requestComplete = true;
    if (m_exchange.forwarding && m_exchange.requestChunked && m_upstream)
        m_upstream->sendRequestBody(lastChunk());
    if (m_exchange.responseComplete && !m_closing)
        finishExchange();
}

void ProxyConnection::rejectRequest(const KubernetesStatus &status,
                                    const QString &logReason,
                                    bool close)
{
    logRejection(status.code(), logReason);
    reportResponseStarted(status.code(), false);
    m_exchange.forwarding = false;
    m_exchange.responseStarted = true;
    m_exchange.responseComplete = true;
    writeToClient(status.toHttpResponse(close));
    if (close)
        closeAfterWrites();
}

void ProxyConnection::sendBrowserResponse(const BrowserResponse &response,
                                          const QString &logReason,
                                          bool close)
{
    if (response.code >= 400)
        logRejection(response.code, logReason);
    else
        qCInfo(lcProxy).noquote() << QStringLiteral("Answered %1 %2 from client port %3: %4 %5")
                                         .arg(QString::fromLatin1(m_exchange.method),
                                              m_exchange.logPath())
                                         .arg(m_clientPort)
                                         .arg(response.code)
                                         .arg(logReason);
    reportResponseStarted(response.code, false);
    m_exchange.forwarding = false;
    m_exchange.responseStarted = true;
    m_exchange.responseComplete = true;
    writeToClient(response.toHttpResponse(close));
    if (close)
        closeAfterWrites();
}

// Rejects a request that cannot be parsed, or whose head is too large or too slow, and closes
// the connection, because the position of the next request in the stream is unknown.
void ProxyConnection::rejectUnparsableRequest(int code, const QString &reason)
{
    if (m_exchange.responseStarted && !m_exchange.responseComplete) {
        qCInfo(lcProxy).noquote() << QStringLiteral("Aborted %1 %2 from client port %3: %4")
                                         .arg(QString::fromLatin1(m_exchange.method),
                                              m_exchange.logPath())
                                         .arg(m_clientPort)
                                         .arg(reason);
        abort();
        return;
    }
    if (!m_exchange.active) {
        m_exchange.method = m_parser.head().method;
        m_exchange.target = m_parser.head().target;
    }
    dropUpstream();
    const KubernetesStatus status(
        code, QStringLiteral("The Lamplighter proxy rejected the request: %1.").arg(reason));
    rejectRequest(status, reason, true);
}

void ProxyConnection::onResponseHead(const HttpHead &head)
{
    if (head.statusCode / 100 == 1) {
        writeToClient(clientInterimResponseHead(head).serializeResponse());
        return;
    }

    m_exchange.responseStarted = true;
    m_exchange.statusCode = head.statusCode;
    reportResponseStarted(head.statusCode, true);
    m_exchange.closeAfterResponse = !m_exchange.clientKeepAlive || !m_exchange.requestComplete;
    switch (head.framing) {
    case HttpBodyFraming::None:
    case HttpBodyFraming::ContentLength:
        m_exchange.responseFraming = head.framing;
        break;
    case HttpBodyFraming::Chunked:
    case HttpBodyFraming::UntilClose:
        // An HTTP/1.0 client knows no chunks, so its body ends when the proxy closes.
        m_exchange.responseFraming =
            m_exchange.clientSpeaksHttp11 ? HttpBodyFraming::Chunked : HttpBodyFraming::UntilClose;
        break;
    }
    if (m_exchange.responseFraming == HttpBodyFraming::UntilClose)
        m_exchange.closeAfterResponse = true;

    writeToClient(serializedClientResponseHead(
        head, m_exchange.responseFraming, m_exchange.closeAfterResponse));
}

void ProxyConnection::onResponseBody(const QByteArray &data)
{
    const bool chunked = m_exchange.responseFraming == HttpBodyFraming::Chunked;
    writeToClient(chunked ? encodeChunk(data) : data);
    pauseUpstreamWhileClientQueueFull();
}

void ProxyConnection::onResponseFinished(bool reusable)
{
    if (m_exchange.responseFraming == HttpBodyFraming::Chunked)
        writeToClient(lastChunk());
    m_exchange.responseComplete = true;
    qCDebug(lcProxy).noquote() << QStringLiteral("%1 %2 -> cluster \"%3\": %4 in %5 ms")
                                      .arg(QString::fromLatin1(m_exchange.method),
                                           m_exchange.logPath(),
                                           m_exchange.clusterName)
                                      .arg(m_exchange.statusCode)
                                      .arg(m_exchange.elapsed.elapsed());

    if (!reusable || !m_exchange.requestComplete)
        dropUpstream();
    if (m_exchange.closeAfterResponse) {
        closeAfterWrites();
        return;
    }
    if (m_exchange.requestComplete)
        finishExchange();
}

// Sends the 101 head to the client and turns this connection into a tunnel. Bytes the client
// sent after its request head waited in m_unparsed and go to the cluster first.
void ProxyConnection::onUpgraded(const HttpHead &head)
{
    m_tunnel = true;
    m_exchange.responseStarted = true;
    m_exchange.statusCode = head.statusCode;
    reportResponseStarted(head.statusCode, true);
    // A tunnel may be quiet for long (an idle shell, an unused port-forward), so only the peers
    // end it.
    setDeadline(Deadline::None);
    writeToClient(clientUpgradeResponseHead(head).serializeResponse());
    qCDebug(lcProxy).noquote() << QStringLiteral("%1 %2 -> cluster \"%3\": 101 to %4 in %5 ms")
                                      .arg(QString::fromLatin1(m_exchange.method),
                                           m_exchange.logPath(),
                                           m_exchange.clusterName,
                                           QString::fromLatin1(head.value("Upgrade")))
                                      .arg(m_exchange.elapsed.elapsed());
    QMetaObject::invokeMethod(this, &ProxyConnection::readClient, Qt::QueuedConnection);
}

// Passes the client's bytes to the cluster until the upstream connection has too much to send.
// writeQueueDrained() calls readClient() again.
void ProxyConnection::readTunnelFromClient()
{
    while (!m_closing && m_upstream && !m_upstream->isWriteQueueFull()) {
        QByteArray data;
        data.swap(m_unparsed);
        if (data.isEmpty())
            data = m_client->read(kReadChunkBytes);
        if (data.isEmpty())
            return;
        m_tunnelBytesToCluster += data.size();
        m_upstream->sendRequestBody(data);
    }
}

void ProxyConnection::onTunnelData(const QByteArray &data)
{
    m_tunnelBytesToClient += data.size();
    writeToClient(data);
    pauseUpstreamWhileClientQueueFull();
}

// NOTE: TlsSocket does not half-close a connection, so when the cluster closes its side the
// client's connection closes fully once the cluster's last bytes are written, and the client
// cannot send anything after that.
void ProxyConnection::onTunnelClosed()
{
    logTunnelEnd(QStringLiteral("cluster"));
    dropUpstream();
    closeAfterWrites();
}

// Forwards what the client sent before it closed and lets the upstream connection finish
// sending on its own, because this object is deleted once the client's connection has closed.
void ProxyConnection::handOverTunnelOnClientClose()
{
    logTunnelEnd(QStringLiteral("client"));
    QByteArray rest = m_unparsed + m_client->readAll();
    m_unparsed.clear();
    m_tunnelBytesToCluster += rest.size();
    m_upstream->sendRequestBody(rest);
    m_upstream->disconnect(this);
    m_upstream->closeTunnelAfterWrites(m_limits.idleTimeout, parent());
    m_upstream = nullptr;
}

void ProxyConnection::logTunnelEnd(const QString &closedBy) const
{
    qCDebug(lcProxy).noquote()
        << QStringLiteral("%1 %2 -> cluster \"%3\": %4 closed the tunnel after %5 ms, %6 bytes "
                          "to the cluster, %7 bytes to the client")
               .arg(QString::fromLatin1(m_exchange.method),
                    m_exchange.logPath(),
                    m_exchange.clusterName,
                    closedBy)
               .arg(m_exchange.elapsed.elapsed())
               .arg(m_tunnelBytesToCluster)
               .arg(m_tunnelBytesToClient);
}

void ProxyConnection::onUpstreamFailed(const KubernetesStatus &status, const QString &logReason)
{
    if (resendOnNewConnection(logReason))
        return;
    dropUpstream();
    if (!m_exchange.active || !m_exchange.forwarding || m_closing)
        return;

    if (m_exchange.responseStarted) {
        // The status line is out, so the client can only see the failure as a cut-off body. A
        // watch ends this way whenever the API server restarts, and clients start a new one.
        qCInfo(lcProxy).noquote()
            << QStringLiteral("%1 %2 -> cluster \"%3\": response cut off after its head (%4). %5")
                   .arg(QString::fromLatin1(m_exchange.method),
                        m_exchange.logPath(),
                        m_exchange.clusterName,
                        logReason,
                        status.message());
        abort();
        return;
    }
    qCWarning(lcProxy).noquote() << QStringLiteral("%1 %2 -> cluster \"%3\": %4 %5. %6")
                                        .arg(QString::fromLatin1(m_exchange.method),
                                             m_exchange.logPath(),
                                             m_exchange.clusterName)
                                        .arg(status.code())
                                        .arg(logReason, status.message());

    const bool close = !m_exchange.requestComplete || !m_exchange.clientKeepAlive;
    reportResponseStarted(status.code(), true);
    m_exchange.responseStarted = true;
    m_exchange.responseComplete = true;
    writeToClient(status.toHttpResponse(close));
    if (close)
        closeAfterWrites();
    else
        finishExchange();
}

// Sends the request again on a new connection when the server closed a reused connection while
// the request was on its way. Only a request that mayResend() allows is sent again, and only
// once: the new connection has carried no earlier response, so when it fails too, the client
// gets the error.
bool ProxyConnection::resendOnNewConnection(const QString &logReason)
{
    if (!m_upstream || !m_upstream->failedBeforeResponseOnReuse() ||
        m_exchange.resendableHead.isEmpty() || !m_exchange.active || !m_exchange.forwarding ||
        m_exchange.responseStarted || m_closing)
        return false;
    // A new connection, not one from the pool: the server may have closed all of them. It uses
    // the cluster settings that admitted the request, even when setClusters() has changed them
    // since.
    const UpstreamCluster cluster = m_upstream->cluster();
    dropUpstream();
    qCInfo(lcProxy).noquote()
        << QStringLiteral("%1 %2 -> cluster \"%3\": a reused connection closed before any "
                          "response (%4). Sending the request again on a new connection.")
               .arg(QString::fromLatin1(m_exchange.method),
                    m_exchange.logPath(),
                    m_exchange.clusterName,
                    logReason);
    adoptUpstream(new UpstreamConnection(
        cluster, m_clientTlsContexts->forTrusted(cluster.caCertificates), m_limits, this));
    sendRequestHead(m_exchange.resendableHead);
    return true;
}

void ProxyConnection::reportResponseStarted(int code, bool forwarded) const
{
    if (!m_responseStarted)
        return;
    const qint64 elapsedMs = m_exchange.elapsed.isValid() ? m_exchange.elapsed.elapsed() : 0;
    m_responseStarted(code, forwarded, elapsedMs);
}

void ProxyConnection::finishExchange()
{
    m_exchange = Exchange{};
    m_parser.startNextMessage();
    setDeadline(Deadline::Idle);
    // A pipelined request may wait already. Otherwise the next readyRead() brings it.
    if (!m_unparsed.isEmpty() || m_client->bytesAvailable() > 0)
        QMetaObject::invokeMethod(this, &ProxyConnection::readClient, Qt::QueuedConnection);
}

UpstreamConnection *ProxyConnection::upstreamFor(const UpstreamCluster &cluster)
{
    // The CA certificates are compared too: after setClusters() changed them, a connection
    // verified against the old ones must not carry the next request.
    if (m_upstream && m_upstream->isReusable() &&
        mayShareConnection(m_upstream->cluster(), cluster))
        return m_upstream;

    releaseUpstream();
    UpstreamConnection *pooled = m_pool ? m_pool->take(cluster, m_limits) : nullptr;
    if (pooled) {
        pooled->setParent(this);
        adoptUpstream(pooled);
    } else {
        adoptUpstream(new UpstreamConnection(
            cluster, m_clientTlsContexts->forTrusted(cluster.caCertificates), m_limits, this));
    }
    return m_upstream;
}

void ProxyConnection::adoptUpstream(UpstreamConnection *connection)
{
    m_upstream = connection;
    connect(m_upstream,
            &UpstreamConnection::responseHeadReceived,
            this,
            &ProxyConnection::onResponseHead);
    connect(m_upstream,
            &UpstreamConnection::responseBodyReceived,
            this,
            &ProxyConnection::onResponseBody);
    connect(m_upstream,
            &UpstreamConnection::responseFinished,
            this,
            &ProxyConnection::onResponseFinished);
    connect(m_upstream, &UpstreamConnection::upgraded, this, &ProxyConnection::onUpgraded);
    connect(
        m_upstream, &UpstreamConnection::tunnelDataReceived, this, &ProxyConnection::onTunnelData);
    connect(m_upstream, &UpstreamConnection::tunnelClosed, this, &ProxyConnection::onTunnelClosed);
    connect(m_upstream, &UpstreamConnection::failed, this, &ProxyConnection::onUpstreamFailed);
    connect(m_upstream, &UpstreamConnection::writeQueueDrained, this, &ProxyConnection::readClient);
}

void ProxyConnection::releaseUpstream()
{
    if (!m_pool || !m_upstream || !m_upstream->isReusable()) {
        dropUpstream();
        return;
    }
    m_upstream->disconnect(this);
    // A response can end while reading was paused for this client.
    m_upstream->setReadingPaused(false);
    m_pool->keep(std::exchange(m_upstream, nullptr), m_limits.upstreamIdleTimeout);
    m_clientWriteQueueFull = false;
}

void ProxyConnection::dropUpstream()
{
    if (!m_upstream)
        return;
    m_upstream->disconnect(this);
    m_upstream->abort();
    m_upstream->deleteLater();
    m_upstream = nullptr;
    m_clientWriteQueueFull = false;
}

void ProxyConnection::writeToClient(const QByteArray &data)
{
    if (!data.isEmpty() && !m_closed)
        m_client->write(data);
}

// Stops reading from the cluster while more than ProxyLimits::maxQueuedBytes wait to be written
// to the client. onClientBytesWritten() resumes at half of that.
void ProxyConnection::pauseUpstreamWhileClientQueueFull()
{
    if (m_clientWriteQueueFull || clientQueuedBytes() <= m_limits.maxQueuedBytes)
        return;
    m_clientWriteQueueFull = true;
    if (m_upstream)
        m_upstream->setReadingPaused(true);
}

qint64 ProxyConnection::clientQueuedBytes() const
{
    return m_client->bytesToWrite();
}

void ProxyConnection::onClientBytesWritten()
{
    if (!m_clientWriteQueueFull || clientQueuedBytes() > m_limits.maxQueuedBytes / 2)
        return;
    m_clientWriteQueueFull = false;
    if (m_upstream)
        m_upstream->setReadingPaused(false);
}

void ProxyConnection::onClientDisconnected()
{
    if (m_closed)
        return;
    m_closed = true;
    m_closing = true;
    setDeadline(Deadline::None);
    m_deadlineTimer.stop();
    if (m_tunnel && m_upstream) {
        handOverTunnelOnClientClose();
    } else if (m_exchange.forwarding && !m_exchange.responseComplete) {
        qCDebug(lcProxy).noquote()
            << QStringLiteral("%1 %2 -> cluster \"%3\": client closed the connection after %4 ms")
                   .arg(QString::fromLatin1(m_exchange.method),
                        m_exchange.logPath(),
                        m_exchange.clusterName)
                   .arg(m_exchange.elapsed.elapsed());
    }
    releaseUpstream();
    Q_EMIT closed();
}

// Closes the client connection once everything written has been sent. The idle deadline bounds
// the wait for a client that stops reading.
void ProxyConnection::closeAfterWrites()
{
    m_closing = true;
    setDeadline(Deadline::Idle);
    m_client->disconnectFromHost();
}

// Two timers started and stopped for every request cost about 2,200 of its 93,000 instructions
// (callgrind). So the one timer is started again only when a deadline comes before the time it
// is set for. For a later deadline it fires early, and is set again for the time that is left.
void ProxyConnection::setDeadline(Deadline deadline)
{
    m_deadline = deadline;
    if (deadline == Deadline::None)
        return; // the timer may fire, and then finds nothing to do
    const std::chrono::milliseconds timeout =
        deadline == Deadline::RequestHead ? m_limits.headerTimeout : m_limits.idleTimeout;
    m_deadlineAt = QDeadlineTimer(timeout);
    if (!m_deadlineTimer.isActive() || m_deadlineAt < m_deadlineTimerFiresAt) {
        m_deadlineTimer.start(timeout);
        m_deadlineTimerFiresAt = m_deadlineAt;
    }
}

void ProxyConnection::onDeadlineTimer()
{
    if (m_deadline == Deadline::None)
        return;
    if (!m_deadlineAt.hasExpired()) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(m_deadlineAt.remainingTimeAsDuration());
        m_deadlineTimer.start(left);
        m_deadlineTimerFiresAt = m_deadlineAt;
        return;
    }
    const Deadline expired = m_deadline;
    m_deadline = Deadline::None;
    if (expired == Deadline::RequestHead)
        onHeaderTimeout();
    else
        onIdleTimeout();
}

void ProxyConnection::onHeaderTimeout()
{
    const auto seconds = QString::number(m_limits.headerTimeout.count() / 1000.0);
    rejectUnparsableRequest(408,
                            QStringLiteral("request head not received within %1 s").arg(seconds));
}

void ProxyConnection::onIdleTimeout()
{
    if (m_closing) {
        abort();
        return;
    }
    qCDebug(lcProxy).noquote()
        << QStringLiteral("Closing idle connection from client port %1").arg(m_clientPort);
    closeAfterWrites();
}

void ProxyConnection::logRejection(int code, const QString &reason) const
{
    const QString method =
        m_exchange.method.isEmpty() ? QStringLiteral("-") : QString::fromLatin1(m_exchange.method);
    const QString path = m_exchange.target.isEmpty() ? QStringLiteral("-") : m_exchange.logPath();
    qCInfo(lcProxy).noquote() << QStringLiteral("Rejected %1 %2 from client port %3: %4 %5")
                                     .arg(method, path)
                                     .arg(m_clientPort)
                                     .arg(code)
                                     .arg(reason);
}

} // namespace lamplighter
