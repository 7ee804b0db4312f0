#include "ProviderDouble.h"

#include <QFile>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QSslConfiguration>
#include <QSslKey>
#include <QSslSocket>

namespace lamplighter::test {

QUrlQuery ProviderDouble::Request::form() const
{
    QString text = QString::fromUtf8(body);
    text.replace(QLatin1Char('+'), QStringLiteral("%20"));
    return QUrlQuery(text);
}

ProviderDouble::ProviderDouble(QObject *parent)
    : QObject(parent)
{
    // QSslServer in Qt 6.4 emits newConnection() before the TLS handshake, when no connection is
    // pending yet, and pendingConnectionAvailable() once the handshake is done.
    connect(&m_server,
            &QTcpServer::pendingConnectionAvailable,
            this,
            &ProviderDouble::handleConnection);
}

QString ProviderDouble::start(const QString &pkiDirectory)
{
    QProcess pki;
    pki.start(QStringLiteral(LAMPLIGHTER_FIXTURES_DIR "/make-test-pki.sh"), {pkiDirectory});
    if (!pki.waitForFinished(60'000) || pki.exitCode() != 0)
        return QStringLiteral("make-test-pki.sh failed: ") +
               QString::fromLocal8Bit(pki.readAllStandardError());

    QFile certificateFile(pkiDirectory + QStringLiteral("/provider.crt"));
    QFile keyFile(pkiDirectory + QStringLiteral("/provider.key"));
    QFile caFile(pkiDirectory + QStringLiteral("/ca.crt"));
    if (!certificateFile.open(QIODevice::ReadOnly) || !keyFile.open(QIODevice::ReadOnly) ||
        !caFile.open(QIODevice::ReadOnly))
        return QStringLiteral("failed to read the test PKI in ") + pkiDirectory;

    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setLocalCertificate(QSslCertificate(certificateFile.readAll()));
    tls.setPrivateKey(QSslKey(keyFile.readAll(), QSsl::Ec));
    tls.setPeerVerifyMode(QSslSocket::VerifyNone);
    m_server.setSslConfiguration(tls);
    m_caCertificate = QSslCertificate(caFile.readAll());

    if (!m_server.listen(QHostAddress(QHostAddress::LocalHost), 0))
        return m_server.errorString();
    return QString();
}

QString ProviderDouble::issuer() const
{
    return QStringLiteral("https://127.0.0.1:%1").arg(m_server.serverPort());
}

QUrl ProviderDouble::url(const QString &path) const
{
    return QUrl(issuer() + path);
}

void ProviderDouble::setHandler(const QString &path, Handler handler)
{
    m_handlers.insert(path, std::move(handler));
}

void ProviderDouble::setJson(const QString &path, const QJsonObject &object, int status)
{
    const QByteArray body = QJsonDocument(object).toJson(QJsonDocument::Compact);
    setHandler(path, [body, status](const Request &) {
        Response response;
        response.status = status;
        response.body = body;
        return response;
    });
}

void ProviderDouble::serveDiscovery(const QJsonObject &overrides)
{
    QJsonObject document{
        {QStringLiteral("issuer"), issuer()},
        {QStringLiteral("authorization_endpoint"), issuer() + QStringLiteral("/authorize")},
        {QStringLiteral("token_endpoint"), issuer() + QStringLiteral("/token")},
        {QStringLiteral("jwks_uri"), issuer() + QStringLiteral("/jwks")},
        {QStringLiteral("response_types_supported"), QJsonArray{QStringLiteral("code")}},
        {QStringLiteral("code_challenge_methods_supported"), QJsonArray{QStringLiteral("S256")}},
    };
    for (auto it = overrides.begin(); it != overrides.end(); ++it) {
        if (it.value().isNull())
            document.remove(it.key());
        else
            document.insert(it.key(), it.value());
    }
    setJson(QStringLiteral("/.well-known/openid-configuration"), document);
}

QList<ProviderDouble::Request> ProviderDouble::requestsTo(const QString &path) const
{
    QList<Request> matching;
    for (const Request &request : m_requests) {
        if (request.path == path)
            matching.append(request);
    }
    return matching;
}

void ProviderDouble::handleConnection()
{
    while (QTcpSocket *connection = m_server.nextPendingConnection()) {
        auto *socket = qobject_cast<QSslSocket *>(connection);
        m_buffers.insert(socket, QByteArray());
        connect(socket, &QSslSocket::readyRead, this, [this, socket] { readRequest(socket); });
        connect(socket, &QSslSocket::disconnected, this, [this, socket] {
            m_buffers.remove(socket);
            socket->deleteLater();
        });
        if (socket->bytesAvailable() > 0)
            readRequest(socket);
    }
}

void ProviderDouble::readRequest(QSslSocket *socket)
{
    if (!m_buffers.contains(socket))
        return;
    QByteArray &buffer = m_buffers[socket];
    buffer.append(socket->readAll());

    const qsizetype headEnd = buffer.indexOf("\r\n\r\n");
    if (headEnd < 0)
        return;
    const QList<QByteArray> lines = buffer.left(headEnd).split('\n');
    qsizetype contentLength = 0;
    QByteArray contentType;
    for (const QByteArray &line : lines) {
        if (line.toLower().startsWith("content-length:"))
            contentLength = line.mid(15).trimmed().toLongLong();
        else if (line.toLower().startsWith("content-type:"))
            contentType = line.mid(13).trimmed();
    }
    if (buffer.size() < headEnd + 4 + contentLength)
        return;

    const QList<QByteArray> requestLine = lines.first().trimmed().split(' ');
    Request request;
    request.method = requestLine.value(0);
    request.path = QUrl::fromEncoded(requestLine.value(1)).path();
    request.contentType = contentType;
    request.body = buffer.mid(headEnd + 4, contentLength);
    m_buffers.remove(socket);
    m_requests.append(request);
    respond(socket, request);
}

void ProviderDouble::respond(QSslSocket *socket, const Request &request)
{
    const auto handler = m_handlers.constFind(request.path);
    Response response;
    if (handler == m_handlers.constEnd()) {
        response.status = 404;
        response.body = "{\"error\":\"not_found\"}";
    } else {
        response = (*handler)(request);
    }
    if (response.closeWithoutResponse) {
        socket->abort();
        return;
    }

    QByteArray head = "HTTP/1.1 " + QByteArray::number(response.status) + " Test\r\n";
    head += "Content-Type: " + response.contentType + "\r\n";
    head += "Content-Length: " + QByteArray::number(response.body.size()) + "\r\n";
    if (!response.location.isEmpty())
        head += "Location: " + response.location + "\r\n";
    head += "Connection: close\r\n\r\n";
    socket->write(head + response.body);
    socket->disconnectFromHost();
}

} // namespace lamplighter::test
