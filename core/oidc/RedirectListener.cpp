#include "oidc/RedirectListener.h"

#include "Logging.h"
#include "oidc/OAuthProtocol.h"

#include <QHostAddress>
#include <QTcpSocket>
#include <QTimer>
#include <QUrlQuery>
#include <openssl/crypto.h>
#include <unistd.h>
#include <utility>

namespace lamplighter {

namespace {

const QString callbackPath = QStringLiteral("/callback");

QByteArray reasonPhrase(int status)
{
    switch (status) {
    case 200:
        return QByteArrayLiteral("OK");
    case 404:
        return QByteArrayLiteral("Not Found");
    case 405:
        return QByteArrayLiteral("Method Not Allowed");
    case 431:
        return QByteArrayLiteral("Request Header Fields Too Large");
    default:
        return QByteArrayLiteral("Bad Request");
    }
}

QByteArray renderPage(const QString &text)
{
    return QStringLiteral(
               "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
               "<title>Lamplighter</title></head>\n<body>\n<p>%1</p>\n</body>\n</html>\n")
        .arg(text.toHtmlEscaped())
        .toUtf8();
}

// Tells whether a line of the request head contains a control character other than tab. A bare
// CR or LF inside a line is one, which keeps a request from smuggling an extra header line.
bool containsControlCharacter(const QByteArray &line)
{
    for (const char c : line) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && byte != '\t') || byte == 0x7f)
            return true;
    }
    return false;
}

bool isValidHeaderLine(const QByteArray &line)
{
    const qsizetype colon = line.indexOf(':');
    if (colon <= 0)
        return false;
    const QByteArray name = line.left(colon);
    return !name.contains(' ') && !name.contains('\t');
}

// Compares in constant time, so that the time to reject a guess reveals nothing about how much of
// it was right. The length is not secret: every state has 43 characters. An empty expected value
// never matches.
bool equalsInConstantTime(const QByteArray &a, const QByteArray &b)
{
    return !b.isEmpty() && a.size() == b.size() &&
           CRYPTO_memcmp(a.constData(), b.constData(), static_cast<size_t>(a.size())) == 0;
}

// Returns the name of a parameter that occurs more than once, which RFC 6749, section 3.1 forbids
// in an authorization response; empty when none does.
QString findRepeatedParameter(const QUrlQuery &query)
{
    QStringList seen;
    const auto items = query.queryItems();
    for (const auto &item : items) {
        if (seen.contains(item.first))
            return item.first;
        seen.append(item.first);
    }
    return QString();
}

} // namespace

RedirectListener::RedirectListener(AuthorizationExpectations expectations, QObject *parent)
    : QObject(parent)
    , m_expectations(std::move(expectations))
    , m_listener(lcOidc, [this](int descriptor) { adoptConnection(descriptor); })
    , m_ipv6Listener(lcOidc, [this](int descriptor) { adoptConnection(descriptor); })
{}

RedirectListener::~RedirectListener()
{
    close();
}

Status RedirectListener::listen(RedirectHost host)
{
    const Status listening = m_listener.listen(QHostAddress(QHostAddress::LocalHost), 0);
    if (!listening.ok()) {
        return Error{QStringLiteral("Failed to listen on 127.0.0.1 for the sign-in redirect: %1.")
                         .arg(listening.errorMessage())};
    }
    if (host == RedirectHost::Localhost) {
        const Status listeningOnIpv6 =
            m_ipv6Listener.listen(QHostAddress(QHostAddress::LocalHostIPv6), m_listener.port());
        // Without IPv6, a browser that tries ::1 first falls back to 127.0.0.1 after ::1 refuses
        // the connection, which common browsers do. If another program listens on that port on ::1,
        // the browser may reach that program instead, and the code is useless to it without the
        // PKCE verifier.
        if (!listeningOnIpv6.ok()) {
            qCInfo(lcOidc).noquote()
                << QStringLiteral("Not listening on [::1]:%1 for the sign-in redirect: %2")
                       .arg(m_listener.port())
                       .arg(listeningOnIpv6.errorMessage());
        }
    }

    m_redirectUri.setScheme(QStringLiteral("http"));
    m_redirectUri.setHost(host == RedirectHost::Localhost ? QStringLiteral("localhost")
                                                          : QStringLiteral("127.0.0.1"));
    m_redirectUri.setPort(m_listener.port());
    m_redirectUri.setPath(callbackPath);
    qCInfo(lcOidc).noquote() << "Waiting for the authorization response on"
                             << m_redirectUri.toString();
    return Done{};
}

void RedirectListener::close()
{
    m_listener.close();
    m_ipv6Listener.close();
    const QList<QTcpSocket *> sockets = m_requestHeads.keys();
    m_requestHeads.clear();
    for (QTcpSocket *socket : sockets) {
        socket->disconnect(this);
        socket->abort();
        socket->deleteLater();
    }
}

void RedirectListener::adoptConnection(int descriptor)
{
    if (m_finished || m_requestHeads.size() >= maxConnections) {
        qCDebug(lcOidc) << "Closing a connection to the redirect listener: the flow has ended "
                           "or too many connections are open";
        ::close(descriptor);
        return;
    }
    auto *socket = new QTcpSocket(this);
    // Qt closes the descriptor itself only when it cannot make it non-blocking, and accept4 has
    // already made it so. Every other failure leaves the descriptor to be closed here.
    if (!socket->setSocketDescriptor(descriptor)) {
        qCWarning(lcOidc).noquote()
            << QStringLiteral("Dropping a connection to the sign-in redirect listener: %1")
                   .arg(socket->errorString());
        ::close(descriptor);
        delete socket;
        return;
    }

    m_requestHeads.insert(socket, QByteArray());
    connect(socket, &QTcpSocket::readyRead, this, [this, socket] { readRequest(socket); });
    connect(
        socket, &QTcpSocket::disconnected, this, [this, socket] { m_requestHeads.remove(socket); });
    connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
    QTimer::singleShot(m_connectionTimeout, socket, [socket] { socket->abort(); });
}

void RedirectListener::readRequest(QTcpSocket *socket)
{
    const auto entry = m_requestHeads.find(socket);
    if (entry == m_requestHeads.end())
        return;

    QByteArray &head = entry.value();
    head.append(socket->read(maxRequestHeadBytes - head.size()));
    const qsizetype end = head.indexOf("\r\n\r\n");
    if (end < 0) {
        if (head.size() >= maxRequestHeadBytes) {
            const QString text = QStringLiteral("The request head is larger than %1 KiB.")
                                     .arg(maxRequestHeadBytes / 1024);
            sendResponse(socket, Response{431, text});
        }
        return;
    }

    const Response response = handleRequestHead(head.left(end));
    sendResponse(socket, response);
    if (response.endsFlow)
        endFlow(response.result);
}

RedirectListener::Response RedirectListener::handleRequestHead(const QByteArray &head) const
{
    // The head ends before its final empty line, so every line but the last ends in CR.
    const QList<QByteArray> rawLines = head.split('\n');
    QList<QByteArray> lines;
    for (qsizetype i = 0; i < rawLines.size(); ++i) {
        QByteArray line = rawLines[i];
        if (i + 1 < rawLines.size()) {
            if (!line.endsWith('\r'))
                return Response{400, QStringLiteral("The request contains a bare line feed.")};
            line.chop(1);
        }
        if (containsControlCharacter(line))
            return Response{400, QStringLiteral("The request contains a control character.")};
        if (i > 0 && !isValidHeaderLine(line))
            return Response{400, QStringLiteral("The request contains an invalid header line.")};
        lines.append(line);
    }

    const QList<QByteArray> requestLine = lines.first().split(' ');
    if (requestLine.size() != 3 || (requestLine[2] != "HTTP/1.1" && requestLine[2] != "HTTP/1.0")) {
        return Response{400, QStringLiteral("The request line is invalid.")};
    }
    const QByteArray &method = requestLine[0];
    const QByteArray &target = requestLine[1];
    if (method != "GET")
        return Response{405, QStringLiteral("Only GET is allowed.")};
    if (!target.startsWith('/'))
        return Response{400, QStringLiteral("The request target is invalid.")};

    const QUrl url =
        QUrl::fromEncoded(QByteArrayLiteral("http://127.0.0.1") + target, QUrl::StrictMode);
    if (!url.isValid())
        return Response{400, QStringLiteral("The request target is invalid.")};
    if (url.path() != callbackPath) {
        // Browsers request /favicon.ico on their own, so that request is not worth a log line.
        if (url.path() != QLatin1String("/favicon.ico"))
            qCDebug(lcOidc) << "The redirect listener got a request for another path:"
                            << url.path();
        return Response{404, QStringLiteral("Not found.")};
    }

    // The query is application/x-www-form-urlencoded, in which "+" stands for a space, but
    // QUrlQuery keeps "+" as it is.
    QString encodedQuery = url.query(QUrl::FullyEncoded);
    encodedQuery.replace(QLatin1Char('+'), QStringLiteral("%20"));
    return handleCallback(QUrlQuery(encodedQuery));
}

RedirectListener::Response RedirectListener::handleCallback(const QUrlQuery &query) const
{
    const QString repeated = findRepeatedParameter(query);
    if (!repeated.isEmpty()) {
        return Response{
            400, QStringLiteral("The parameter \"%1\" occurs more than once.").arg(repeated)};
    }
    if (!query.hasQueryItem(QStringLiteral("state")))
        return Response{400, QStringLiteral("The request has no state parameter.")};

    const QByteArray state =
        query.queryItemValue(QStringLiteral("state"), QUrl::FullyDecoded).toUtf8();
    if (!equalsInConstantTime(state, m_expectations.state)) {
        qCInfo(lcOidc)
            << "The redirect listener ignored a response with a state of another sign-in";
        return Response{
            400,
            QStringLiteral("This response belongs to another sign-in. Start the sign-in "
                           "again from Lamplighter.")};
    }

    const QString error = query.queryItemValue(QStringLiteral("error"), QUrl::FullyDecoded);
    const QByteArray code =
        query.queryItemValue(QStringLiteral("code"), QUrl::FullyDecoded).toUtf8();
    if (error.isEmpty() && code.isEmpty())
        return Response{400,
                        QStringLiteral("The request has neither a code nor an error parameter.")};

    // RFC 9207: an "iss" that names another issuer means the browser brought a response from
    // another provider (a mix-up attack), so neither its code nor its error may be used.
    Response end;
    end.endsFlow = true;
    const bool hasIssuer = query.hasQueryItem(QStringLiteral("iss"));
    const QString issuer = query.queryItemValue(QStringLiteral("iss"), QUrl::FullyDecoded);
    if (hasIssuer && issuer != m_expectations.issuer) {
        end.result = Error{QStringLiteral("The authorization response names the issuer \"%1\" but "
                                          "the sign-in was started with \"%2\", so it was "
                                          "rejected. Try again, and check oidc.issuer in the "
                                          "configuration file if it happens again.")
                               .arg(describeOAuthError(issuer, QString()), m_expectations.issuer)};
    } else if (!hasIssuer && m_expectations.issuerRequired) {
        end.result = Error{QStringLiteral("The authorization response has no \"iss\" parameter "
                                          "although the provider %1 announces that it sends one, "
                                          "so it was rejected.")
                               .arg(m_expectations.issuer)};
    } else if (!error.isEmpty()) {
        const QString description =
            query.queryItemValue(QStringLiteral("error_description"), QUrl::FullyDecoded);
        end.result = Error{QStringLiteral("The identity provider rejected the sign-in: %1.")
                               .arg(describeOAuthError(error, description))};
    } else {
        end.result = code;
    }

    // NOTE: The page reports success before the code is exchanged for tokens, and that exchange
    // can still fail. The application, not this page, reports such a failure.
    if (end.result.ok()) {
        end.status = 200;
        end.text = QStringLiteral("Signed in to Lamplighter. You can close this tab.");
    } else {
        end.status = 400;
        end.text = QStringLiteral("Sign-in to Lamplighter failed: %1 You can close this tab.")
                       .arg(end.result.error().message);
    }
    return end;
}

void RedirectListener::sendResponse(QTcpSocket *socket, const Response &response)
{
    m_requestHeads.remove(socket);
    disconnect(socket, &QTcpSocket::readyRead, this, nullptr);

    const QByteArray body = renderPage(response.text);
    QByteArray head = "HTTP/1.1 " + QByteArray::number(response.status) + ' ' +
                      reasonPhrase(response.status) + "\r\n";
    head += "Content-Type: text/html; charset=utf-8\r\n";
    head += "Content-Length: " + QByteArray::number(body.size()) + "\r\n";
    head += "Cache-Control: no-store\r\n";
    head += "Content-Security-Policy: default-src 'none'\r\n";
    head += "Referrer-Policy: no-referrer\r\n";
    head += "X-Content-Type-Options: nosniff\r\n";
    if (response.status == 405)
        head += "Allow: GET\r\n";
    head += "Connection: close\r\n\r\n";

    socket->write(head + body);
    socket->disconnectFromHost();

    // The page must reach the browser even if the owner deletes this listener right after
    // finished(), so the connection that ends the flow no longer belongs to the server.
    if (response.endsFlow) {
        socket->disconnect(this);
        socket->setParent(nullptr);
    }
}

void RedirectListener::endFlow(Result<QByteArray> result)
{
    m_result = std::move(result);
    m_finished = true;
    close();
    if (m_result.ok())
        qCInfo(lcOidc) << "Received the authorization response";
    else
        qCWarning(lcOidc).noquote() << m_result.error().message;
    Q_EMIT finished();
}

} // namespace lamplighter
