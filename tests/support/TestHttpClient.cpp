#include "TestHttpClient.h"

#include <QSignalSpy>
#include <QSslConfiguration>
#include <QTest>

using lamplighter::HttpMessageParser;

QList<QByteArray> headerNames(const lamplighter::HttpHead &head)
{
    QList<QByteArray> names;
    for (const lamplighter::HttpHeader &header : head.headers)
        names.append(header.name);
    return names;
}

TestHttpClient::TestHttpClient(const QSslCertificate &trustedCertificate, QObject *parent)
    : QObject(parent)
    , m_parser(HttpMessageParser::Type::Response, HttpMessageParser::Limits{})
{
    QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
    configuration.setCaCertificates({trustedCertificate});
    m_socket.setSslConfiguration(configuration);
    m_socket.setReadBufferSize(64 * 1024);
    connect(&m_socket, &QSslSocket::readyRead, this, &TestHttpClient::readResponses);
    connect(&m_socket, &QSslSocket::disconnected, this, [this] {
        readResponses();
        m_parser.parseEndOfStream();
        readResponses();
    });
}

// The socket is a member, so its last signals must not reach members destroyed before it.
TestHttpClient::~TestHttpClient()
{
    m_socket.disconnect(this);
    m_socket.abort();
}

bool TestHttpClient::connectToProxy(quint16 port)
{
    QSignalSpy encrypted(&m_socket, &QSslSocket::encrypted);
    m_socket.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port);
    return encrypted.wait(10000);
}

void TestHttpClient::send(const QByteArray &bytes)
{
    m_socket.write(bytes);
}

std::optional<TestResponse> TestHttpClient::waitForResponse(int timeoutMs)
{
    if (!QTest::qWaitFor([this] { return !m_responses.isEmpty(); }, timeoutMs))
        return std::nullopt;
    return m_responses.takeFirst();
}

bool TestHttpClient::waitForPartialBody(const QByteArray &text, int timeoutMs)
{
    return QTest::qWaitFor([&] { return m_partialBody.contains(text); }, timeoutMs);
}

bool TestHttpClient::waitForDisconnected(int timeoutMs)
{
    return QTest::qWaitFor([this] { return m_socket.state() == QAbstractSocket::UnconnectedState; },
                           timeoutMs);
}

bool TestHttpClient::isConnected() const
{
    return m_socket.state() == QAbstractSocket::ConnectedState;
}

void TestHttpClient::setReadingPaused(bool paused)
{
    m_readingPaused = paused;
    if (!paused)
        QMetaObject::invokeMethod(this, &TestHttpClient::readResponses, Qt::QueuedConnection);
}

QByteArray TestHttpClient::request(const QByteArray &method,
                                   const QByteArray &target,
                                   quint16 port,
                                   const QByteArray &sessionKey,
                                   const QList<QByteArray> &extraHeaders,
                                   const QByteArray &body)
{
    QByteArray request = method + ' ' + target + " HTTP/1.1\r\n";
    request += "Host: 127.0.0.1:" + QByteArray::number(port) + "\r\n";
    if (!sessionKey.isEmpty())
        request += "Authorization: Bearer " + sessionKey + "\r\n";
    for (const QByteArray &header : extraHeaders)
        request += header + "\r\n";
    return request + "\r\n" + body;
}

void TestHttpClient::readResponses()
{
    while (!m_readingPaused) {
        if (m_unparsed.isEmpty())
            m_unparsed = m_socket.read(64 * 1024);
        if (!m_unparsed.isEmpty()) {
            const qsizetype consumed = m_parser.parse(m_unparsed);
            m_unparsed.remove(0, consumed);
        }

        const QByteArray body = m_parser.takeBody();
        m_bodyBytesReceived += body.size();
        if (!m_discardingBody)
            m_partialBody += body;

        if (m_parser.error()) {
            qWarning("Test client could not parse a response: %s",
                     qPrintable(m_parser.error()->reason));
            return;
        }
        if (m_parser.isMessageComplete()) {
            m_responses.append(TestResponse{m_parser.head(), m_partialBody});
            m_partialBody.clear();
            m_bodyBytesReceived = 0;
            m_parser.startNextMessage();
            continue;
        }
        if (m_unparsed.isEmpty() && m_socket.bytesAvailable() == 0)
            return;
    }
}
