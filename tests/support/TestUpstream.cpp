#include "TestUpstream.h"

#include "proxy/HttpMessageParser.h"

#include <QDateTime>
#include <QPointer>
#include <QSslConfiguration>
#include <QSslSocket>
#include <algorithm>

using lamplighter::encodeChunk;
using lamplighter::HttpMessageParser;
using lamplighter::lastChunk;

namespace {

constexpr qint64 kLargeBodyChunkBytes = 64 * 1024;
constexpr qint64 kMaxQueuedBytes = 256 * 1024;

QByteArray responseHead(const QByteArray &statusLine, const QList<QByteArray> &headers)
{
    QByteArray head = "HTTP/1.1 " + statusLine + "\r\n";
    for (const QByteArray &header : headers)
        head += header + "\r\n";
    return head + "\r\n";
}

QByteArray jsonResponse(const QByteArray &body)
{
    return responseHead("200 OK",
                        {"Content-Type: application/json",
                         "Content-Length: " + QByteArray::number(body.size())}) +
           body;
}

// A 200 response of exactly 64 KiB, head and body.
QByteArray responseFilling64KiB()
{
    constexpr qsizetype kTotalBytes = 64 * 1024;
    qsizetype bodyBytes = kTotalBytes;
    QByteArray head;
    // The head's length depends on the digits of Content-Length, which settle after two tries.
    for (int attempt = 0; attempt < 2; ++attempt) {
        head = responseHead(
            "200 OK",
            {"Content-Type: text/plain", "Content-Length: " + QByteArray::number(bodyBytes)});
        bodyBytes = kTotalBytes - head.size();
    }
    return head + QByteArray(bodyBytes, 'x');
}

} // namespace

// One accepted connection, which parses requests one at a time and writes the responses.
class TestUpstreamConnection : public QObject {
public:
    TestUpstreamConnection(TestUpstream *server, QSslSocket *socket, int id)
        : QObject(socket)
        , m_server(server)
        , m_socket(socket)
        , m_id(id)
        , m_parser(HttpMessageParser::Type::Request, HttpMessageParser::Limits{})
    {
        connect(socket, &QSslSocket::readyRead, this, [this] { readRequests(); });
        connect(socket, &QSslSocket::encryptedBytesWritten, this, [this] { writeLargeBody(); });
        connect(socket, &QSslSocket::disconnected, socket, &QObject::deleteLater);
        // Bytes may have arrived together with the end of the handshake.
        QMetaObject::invokeMethod(
            this, [this] { readRequests(); }, Qt::QueuedConnection);
    }

    ~TestUpstreamConnection() override { m_server->m_streamConnections.removeAll(this); }

    void writeStreamEvent(int index)
    {
        m_socket->write(encodeChunk(TestUpstream::streamEvent(index)));
    }

    void endStream() { m_socket->write(lastChunk()); }

private:
    void readRequests()
    {
        m_unparsed += m_socket->readAll();
        while (!m_unparsed.isEmpty()) {
            const qsizetype consumed = m_parser.parse(m_unparsed);
            m_unparsed.remove(0, consumed);
            if (m_parser.error()) {
                m_socket->abort();
                return;
            }
            recordProgress();
            if (!m_parser.isMessageComplete())
                return;
            respond();
            m_parser.startNextMessage();
        }
    }

    void recordProgress()
    {
        if (m_parser.isHeadComplete() && !m_recording) {
            RecordedRequest request;
            request.connectionId = m_id;
            request.head = m_parser.head();
            m_server->m_requests.append(request);
            m_recording = true;
            Q_EMIT m_server->requestHeadReceived();
        }
        if (m_recording) {
            RecordedRequest &request = m_server->m_requests.last();
            request.body += m_parser.takeBody();
            request.complete = m_parser.isMessageComplete();
        }
    }

    void respond()
    {
        m_recording = false;
        ++m_requestsOnConnection;
        const RecordedRequest &request = m_server->m_requests.last();
        const QByteArray target = request.head.target;
        const QByteArray path =
            target.left(target.indexOf('?') < 0 ? target.size() : target.indexOf('?'));
        if (path == "/close-unanswered" ||
            (path == "/close-unanswered-on-reuse" && m_requestsOnConnection > 1)) {
            m_socket->disconnectFromHost();
        } else if (path == "/api") {
            m_socket->write(jsonResponse(
                R"({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":)"
                R"([{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1:6443"}]})"));
        } else if (path == "/echo") {
            m_socket->write(
                responseHead("200 OK",
                             {"Content-Type: application/octet-stream",
                              "Content-Length: " + QByteArray::number(request.body.size())}) +
                request.body);
        } else if (path == "/stream") {
            m_socket->write(responseHead(
                "200 OK", {"Content-Type: application/json", "Transfer-Encoding: chunked"}));
            m_server->m_streamConnections.append(this);
            m_server->m_streamEventsSent = 1;
            writeStreamEvent(0);
        } else if (path == "/large") {
            m_socket->write(responseHead(
                "200 OK",
                {"Content-Type: application/octet-stream", "Transfer-Encoding: chunked"}));
            m_server->m_largeBodyBytesWritten = 0;
            m_writingLargeBody = true;
            writeLargeBody();
        } else if (path == "/extra-response") {
            m_socket->write(responseFilling64KiB() + responseHead("200 OK", {"Content-Length: 6"}) +
                            "forged");
        } else if (path.endsWith("/set-cookies")) {
            m_socket->write(responseHead("200 OK",
                                         {"Content-Type: text/plain",
                                          "Content-Length: 2",
                                          "Set-Cookie: lamplighter-session=forged; Path=/",
                                          "Set-Cookie: theme=dark; Path=/"}) +
                            "ok");
        } else if (path.endsWith("/early-hints")) {
            // Both heads carry fields that the proxy must withhold from its clients.
            m_socket->write(responseHead("103 Early Hints",
                                         {"Link: </style.css>; rel=preload",
                                          "Access-Control-Allow-Origin: *",
                                          "Set-Cookie: lamplighter-session=forged; Path=/"}) +
                            responseHead("200 OK",
                                         {"Content-Type: text/plain",
                                          "Content-Length: 2",
                                          "Access-Control-Allow-Origin: *"}) +
                            "ok");
        } else if (path == "/close") {
            m_socket->write(
                responseHead(
                    "200 OK",
                    {"Content-Type: text/plain", "Content-Length: 7", "Connection: close"}) +
                "closing");
            m_socket->disconnectFromHost();
        } else {
            m_socket->write(jsonResponse(R"({"path":")" + path + R"("})"));
        }
    }

    // Writes the next pieces of the /large body while little is queued, so the amount written
    // follows what the reader takes.
    void writeLargeBody()
    {
        while (m_writingLargeBody &&
               m_socket->bytesToWrite() + m_socket->encryptedBytesToWrite() < kMaxQueuedBytes) {
            qint64 &written = m_server->m_largeBodyBytesWritten;
            const qint64 size =
                std::min(kLargeBodyChunkBytes, m_server->m_largeBodyBytes - written);
            if (size <= 0) {
                m_socket->write(lastChunk());
                m_writingLargeBody = false;
                return;
            }
            QByteArray piece(size, Qt::Uninitialized);
            for (qint64 i = 0; i < size; ++i)
                piece[i] = TestUpstream::largeBodyByte(written + i);
            m_socket->write(encodeChunk(piece));
            written += size;
        }
    }

    TestUpstream *m_server;
    QSslSocket *m_socket;
    int m_id;
    HttpMessageParser m_parser;
    QByteArray m_unparsed;
    bool m_recording = false;
    bool m_writingLargeBody = false;
    int m_requestsOnConnection = 0;
};

TestUpstream::TestUpstream(QObject *parent)
    : QObject(parent)
{
    const auto generated = lamplighter::LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    if (generated)
        m_certificate = *generated;

    QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
    configuration.setLocalCertificate(m_certificate.certificate);
    configuration.setPrivateKey(m_certificate.privateKey);
    m_server.setSslConfiguration(configuration);
    connect(
        &m_server, &QSslServer::pendingConnectionAvailable, this, [this] { acceptConnections(); });
}

TestUpstream::~TestUpstream()
{
    // The connections refer to this object, so they go before its members do.
    m_server.close();
    qDeleteAll(m_server.findChildren<QSslSocket *>());
}

bool TestUpstream::listen()
{
    return !m_certificate.certificate.isNull() && m_server.listen(QHostAddress::LocalHost, 0);
}

QUrl TestUpstream::url() const
{
    return QUrl(QStringLiteral("https://127.0.0.1:%1").arg(port()));
}

lamplighter::UpstreamCluster TestUpstream::cluster(const QString &name) const
{
    return lamplighter::UpstreamCluster{name, url(), {m_certificate.certificate}};
}

void TestUpstream::releaseStreamEvent()
{
    for (TestUpstreamConnection *connection : m_streamConnections)
        connection->writeStreamEvent(m_streamEventsSent);
    ++m_streamEventsSent;
}

void TestUpstream::finishStream()
{
    for (TestUpstreamConnection *connection : m_streamConnections)
        connection->endStream();
    m_streamConnections.clear();
}

char TestUpstream::largeBodyByte(qint64 offset)
{
    return static_cast<char>('a' + offset % 26);
}

QByteArray TestUpstream::streamEvent(int index)
{
    return R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"pod-)" +
           QByteArray::number(index) + R"("}}})" + "\n";
}

int TestUpstream::openConnectionCount() const
{
    const QList<QSslSocket *> sockets = m_server.findChildren<QSslSocket *>();
    return int(std::count_if(sockets.begin(), sockets.end(), [](const QSslSocket *socket) {
        return socket->state() == QAbstractSocket::ConnectedState;
    }));
}

void TestUpstream::closeConnections()
{
    for (QSslSocket *socket : m_server.findChildren<QSslSocket *>())
        socket->disconnectFromHost();
}

void TestUpstream::acceptConnections()
{
    while (m_server.hasPendingConnections()) {
        auto *socket = qobject_cast<QSslSocket *>(m_server.nextPendingConnection());
        if (!socket)
            continue;
        ++m_connectionCount;
        new TestUpstreamConnection(this, socket, m_connectionCount);
    }
}
