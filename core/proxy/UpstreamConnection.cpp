#include "UpstreamConnection.h"

#include "Logging.h"
#include "tls/TlsSocket.h"

namespace lamplighter {

namespace {

constexpr qint64 kReadChunkBytes = 64 * 1024;
constexpr qint64 kSocketReadBufferBytes = 256 * 1024;

HttpMessageParser::Limits parserLimits(const ProxyLimits &limits)
{
    return HttpMessageParser::Limits{limits.maxHeadBytes, limits.maxHeaderCount};
}

} // namespace

UpstreamConnection::UpstreamConnection(const UpstreamCluster &cluster,
                                       const Result<std::shared_ptr<const TlsContext>> &tlsContext,
                                       const ProxyLimits &limits,
                                       QObject *parent)
    : QObject(parent)
    , m_cluster(cluster)
    , m_limits(limits)
    , m_tlsContextError(tlsContext.errorMessage())
    , m_socket(new TlsSocket(tlsContext ? *tlsContext : nullptr, this))
    , m_parser(HttpMessageParser::Type::Response, parserLimits(limits))
{
    m_socket->setReadBufferLimit(kSocketReadBufferBytes);
    m_connectTimer.setSingleShot(true);
    m_connectTimer.setInterval(limits.upstreamConnectTimeout);

    connect(&m_connectTimer, &QTimer::timeout, this, &UpstreamConnection::onConnectTimeout);
    connect(m_socket, &TlsSocket::encrypted, this, &UpstreamConnection::onEncrypted);
    connect(m_socket, &TlsSocket::errorOccurred, this, &UpstreamConnection::onSocketError);
    connect(m_socket, &TlsSocket::disconnected, this, &UpstreamConnection::onDisconnected);
    connect(m_socket, &TlsSocket::readyRead, this, &UpstreamConnection::readResponse);
    connect(m_socket, &TlsSocket::bytesWritten, this, &UpstreamConnection::onBytesWritten);
}

UpstreamConnection::~UpstreamConnection() = default;

bool UpstreamConnection::appliesLimits(const ProxyLimits &limits) const
{
    return limits.maxHeadBytes == m_limits.maxHeadBytes &&
           limits.maxHeaderCount == m_limits.maxHeaderCount &&
           limits.maxQueuedBytes == m_limits.maxQueuedBytes;
}

bool UpstreamConnection::isReusable() const
{
    return !m_closed && !m_peerClosed && !m_requestActive;
}

void UpstreamConnection::sendRequestHead(const QByteArray &head, bool isHeadRequest)
{
    m_requestActive = true;
    m_responseStarted = false;
    m_isHeadRequest = isHeadRequest;
    m_isUpgradeRequest = false;
    m_finalHeadEmitted = false;
    m_parser.startNextMessage(isHeadRequest);
    if (m_socket->state() == TlsSocket::State::Unconnected && !m_closed)
        connectToServer();
    write(head);
}

void UpstreamConnection::sendUpgradeRequestHead(const QByteArray &head)
{
    sendRequestHead(head, false);
    m_isUpgradeRequest = true;
}

void UpstreamConnection::sendRequestBody(const QByteArray &data)
{
    write(data);
}

void UpstreamConnection::closeTunnelAfterWrites(std::chrono::milliseconds timeout, QObject *owner)
{
    m_closed = true;
    m_socket->disconnect(this);
    // The client's connection and its ProxyConnection, the parent, may go first. The owner
    // deletes this object if it goes before the timeout, as a stopped worker thread does.
    setParent(owner);
    if (m_socket->state() == TlsSocket::State::Unconnected) {
        deleteLater();
        return;
    }
    connect(m_socket, &TlsSocket::disconnected, this, &QObject::deleteLater);
    QTimer::singleShot(timeout, this, [this] {
        m_socket->abort();
        deleteLater();
    });
    m_socket->disconnectFromHost();
}

void UpstreamConnection::setReadingPaused(bool paused)
{
    if (m_readingPaused == paused)
        return;
    m_readingPaused = paused;
    if (!paused)
        QMetaObject::invokeMethod(this, &UpstreamConnection::readResponse, Qt::QueuedConnection);
}

void UpstreamConnection::abort()
{
    m_closed = true;
    m_requestActive = false;
    m_connectTimer.stop();
    m_socket->disconnect(this);
    m_socket->abort();
}

void UpstreamConnection::connectToServer()
{
    if (m_cluster.server.url().scheme() != QLatin1String("https")) {
        fail(502,
             QStringLiteral("The server URL %1 of cluster \"%2\" does not use https. Change it "
                            "in the Lamplighter configuration.")
                 .arg(serverForMessages(), m_cluster.name),
             QStringLiteral("server URL is not https"));
        return;
    }
    if (!m_tlsContextError.isEmpty()) {
        fail(502,
             QStringLiteral("The CA certificates of cluster \"%1\" cannot be used: %2. Check the "
                            "cluster's certificate_authority in Lamplighter's configuration.")
                 .arg(m_cluster.name, m_tlsContextError),
             QStringLiteral("unusable CA certificates"));
        return;
    }
    const QString host = m_cluster.server.url().host();
    const quint16 port = static_cast<quint16>(m_cluster.server.url().port(443));
    m_connectTimer.start();
    m_socket->connectToHost(host, port);
}

void UpstreamConnection::write(const QByteArray &data)
{
    if (m_closed || data.isEmpty())
        return;
    m_socket->write(data); // sent once the handshake is done
    if (queuedBytes() > m_limits.maxQueuedBytes)
        m_writeQueueFull = true;
}

qint64 UpstreamConnection::queuedBytes() const
{
    return m_socket->bytesToWrite();
}

void UpstreamConnection::onBytesWritten()
{
    if (m_writeQueueFull && queuedBytes() <= m_limits.maxQueuedBytes / 2) {
        m_writeQueueFull = false;
        Q_EMIT writeQueueDrained();
    }
}

void UpstreamConnection::onEncrypted()
{
    m_connectTimer.stop();
    m_encrypted = true;
    qCDebug(lcProxy).noquote() << QStringLiteral("Connected to cluster \"%1\" at %2 with %3")
                                      .arg(m_cluster.name,
                                           serverForMessages(),
                                           m_socket->cipherName());
}

void UpstreamConnection::readResponse()
{
    if (m_tunnel) {
        readTunnel();
        return;
    }
    while (!m_closed && !m_readingPaused) {
        if (m_unparsed.isEmpty()) {
            m_unparsed = m_socket->read(kReadChunkBytes);
            if (m_unparsed.isEmpty())
                break;
        }
        m_responseStarted = true;
        if (!m_requestActive) {
            // A server must not send anything between responses.
            fail(502,
                 QStringLiteral("Cluster \"%1\" at %2 sent data without a request.")
                     .arg(m_cluster.name, serverForMessages()),
                 QStringLiteral("unexpected data from cluster"));
            return;
        }
        const qsizetype consumed = m_parser.parse(m_unparsed);
        m_unparsed.remove(0, consumed);
        if (m_unparsed.isEmpty())
            m_unparsed.clear(); // frees the buffer of a connection that goes quiet
        if (!handleParsedResponse())
            return;
    }

    // A body delimited by the end of the connection ends once every buffered byte is parsed.
    if (m_peerClosed && m_requestActive && !m_readingPaused && m_unparsed.isEmpty() &&
        m_socket->bytesAvailable() == 0) {
        m_parser.parseEndOfStream();
        if (handleParsedResponse() && m_requestActive) {
            fail(502,
                 QStringLiteral("Cluster \"%1\" at %2 closed the connection before the response "
                                "was complete.")
                     .arg(m_cluster.name, serverForMessages()),
                 QStringLiteral("cluster closed the connection"));
        }
    }
}

// Emits what the last parse produced. Returns false when parsing must stop because the response
// is finished or failed, or because a receiver aborted this connection.
bool UpstreamConnection::handleParsedResponse()
{
    if (const std::optional<HttpParseError> &error = m_parser.error()) {
        fail(502,
             QStringLiteral("Cluster \"%1\" at %2 sent an invalid response: %3.")
                 .arg(m_cluster.name, serverForMessages(), error->reason),
             QStringLiteral("invalid response from cluster"));
        return false;
    }

    if (m_parser.isHeadComplete() && !m_finalHeadEmitted) {
        const int statusCode = m_parser.head().statusCode;
        if (statusCode == 101)
            return handleSwitchingProtocols();
        if (statusCode / 100 == 1) {
            Q_EMIT responseHeadReceived(m_parser.head());
            m_parser.startNextMessage(m_isHeadRequest);
            return !m_closed;
        }
        m_finalHeadEmitted = true;
        Q_EMIT responseHeadReceived(m_parser.head());
        if (m_closed)
            return false;
    }

    const QByteArray body = m_parser.takeBody();
    if (!body.isEmpty()) {
        Q_EMIT responseBodyReceived(body);
        if (m_closed)
            return false;
    }

    if (m_parser.isMessageComplete()) {
        finishResponse();
        return false;
    }
    return true;
}

// Turns the connection into a tunnel after a 101 response, or fails when the request did not ask
// to upgrade or the response names no protocol.
bool UpstreamConnection::handleSwitchingProtocols()
{
    if (!m_isUpgradeRequest || !m_parser.head().contains("Upgrade")) {
        const QString problem = m_isUpgradeRequest ? QStringLiteral("without an Upgrade header")
                                                   : QStringLiteral("without an upgrade request");
        fail(502,
             QStringLiteral("Cluster \"%1\" at %2 switched protocols %3.")
                 .arg(m_cluster.name, serverForMessages(), problem),
             QStringLiteral("invalid upgrade from cluster"));
        return false;
    }

    // m_unparsed contains the bytes that followed the head, which belong to the new protocol.
    m_tunnel = true;
    m_finalHeadEmitted = true;
    Q_EMIT upgraded(m_parser.head());
    if (!m_closed)
        QMetaObject::invokeMethod(this, &UpstreamConnection::readResponse, Qt::QueuedConnection);
    return false;
}

void UpstreamConnection::readTunnel()
{
    while (!m_closed && !m_readingPaused) {
        QByteArray data;
        data.swap(m_unparsed);
        if (data.isEmpty())
            data = m_socket->read(kReadChunkBytes);
        if (data.isEmpty())
            break;
        Q_EMIT tunnelDataReceived(data);
    }

    if (m_peerClosed && !m_closed && !m_readingPaused && m_socket->bytesAvailable() == 0) {
        m_closed = true;
        m_requestActive = false;
        Q_EMIT tunnelClosed();
    }
}

void UpstreamConnection::finishResponse()
{
    m_requestActive = false;
    // Bytes after the end of the response belong to no request. On a reused connection they would
    // be read as the next request's response, which may be another client's.
    const bool reusable = m_parser.head().keepAlive && !m_peerClosed && m_unparsed.isEmpty() &&
                          m_socket->bytesAvailable() == 0;
    if (reusable) {
        m_carriedResponse = true;
    } else {
        m_closed = true;
        m_socket->disconnectFromHost();
    }
    Q_EMIT responseFinished(reusable);
}

void UpstreamConnection::onSocketError()
{
    if (m_closed)
        return;
    switch (m_socket->failure()) {
    case TlsSocket::Failure::Verification:
        fail(502,
             QStringLiteral("TLS verification of cluster \"%1\" at %2 failed: %3. Check the "
                            "cluster's certificate_authority in Lamplighter's configuration.")
                 .arg(m_cluster.name, serverForMessages(), m_socket->errorString()),
             QStringLiteral("TLS verification failed"));
        return;
    case TlsSocket::Failure::Handshake:
        fail(502,
             QStringLiteral("The TLS handshake with cluster \"%1\" at %2 failed: %3.")
                 .arg(m_cluster.name, serverForMessages(), m_socket->errorString()),
             QStringLiteral("TLS handshake failed"));
        return;
    default:
        break;
    }

    const QString step =
        m_encrypted ? QStringLiteral("Connection to") : QStringLiteral("Connecting to");
    fail(502,
         QStringLiteral("%1 cluster \"%2\" at %3 failed: %4.")
             .arg(step, m_cluster.name, serverForMessages(), m_socket->errorString()),
         QStringLiteral("connection to cluster failed"));
}

void UpstreamConnection::onDisconnected()
{
    if (m_closed)
        return;
    m_peerClosed = true;
    if (!m_encrypted) {
        fail(502,
             QStringLiteral("Cluster \"%1\" at %2 closed the connection during the TLS handshake.")
                 .arg(m_cluster.name, serverForMessages()),
             QStringLiteral("TLS handshake failed"));
        return;
    }
    if (m_requestActive || m_tunnel)
        readResponse();
    else
        Q_EMIT closedWhileIdle();
}

void UpstreamConnection::onConnectTimeout()
{
    fail(504,
         QStringLiteral("Timed out after %1 s connecting to cluster \"%2\" at %3.")
             .arg(QString::number(m_limits.upstreamConnectTimeout.count() / 1000.0),
                  m_cluster.name,
                  serverForMessages()),
         QStringLiteral("timed out connecting to cluster"));
}

void UpstreamConnection::fail(int code, const QString &message, const QString &logReason)
{
    if (m_closed)
        return;
    const bool reportToReceiver = m_requestActive;
    // Bytes still in the socket's buffer would show that the server acted on the request.
    m_failedBeforeResponseOnReuse = reportToReceiver && m_carriedResponse && !m_responseStarted &&
                                    m_socket->bytesAvailable() == 0;
    abort();
    if (reportToReceiver) {
        Q_EMIT failed(KubernetesStatus(code, message), logReason);
        return;
    }
    qCDebug(lcProxy).noquote() << QStringLiteral("Idle connection closed: %1").arg(message);
    Q_EMIT closedWhileIdle();
}

QString UpstreamConnection::serverForMessages() const
{
    return m_cluster.server.url().toDisplayString(QUrl::RemoveUserInfo);
}

} // namespace lamplighter
