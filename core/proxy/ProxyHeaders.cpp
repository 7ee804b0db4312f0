#include "ProxyHeaders.h"

#include "ProxyRoute.h"

#include <QVarLengthArray>
#include <algorithm>
#include <vector>

namespace lamplighter {

namespace {

// The prefix of the WebSocket subprotocol that carries a bearer token for browsers that cannot
// set Authorization. Kubernetes reads it in
// staging/src/k8s.io/apiserver/pkg/authentication/request/websocket/protocol.go.
constexpr QByteArrayView kBearerSubprotocolPrefix = "base64url.bearer.authorization.k8s.io.";

// Removes the bearer token subprotocols from every Sec-WebSocket-Protocol field and drops a
// field that has no subprotocol left. An entry that contains the prefix anywhere goes, because
// kube-apiserver trims Unicode spaces such as U+00A0 around each entry, not only ASCII ones.
void removeBearerSubprotocols(HttpHead &head)
{
    QList<QByteArray> kept;
    for (const QByteArray &value : head.values("Sec-WebSocket-Protocol")) {
        for (const QByteArray &entry : value.split(',')) {
            const QByteArray protocol = entry.trimmed();
            if (!protocol.isEmpty() && !protocol.toLower().contains(kBearerSubprotocolPrefix))
                kept.append(protocol);
        }
    }
    head.removeAll("Sec-WebSocket-Protocol");
    if (!kept.isEmpty())
        head.append("Sec-WebSocket-Protocol", kept.join(", "));
}

void appendUpgradeFields(HttpHead &head, const QByteArray &protocol)
{
    head.append("Connection", "Upgrade");
    head.append("Upgrade", protocol);
}

} // namespace

bool isUpgradeRequest(const HttpHead &request)
{
    return request.contains("Upgrade") && request.hasToken("Connection", "upgrade");
}

namespace {

// The fields that RFC 9110, section 7.6.1, names as meant for one hop, and the proxy-* fields.
bool isHopByHopName(QByteArrayView name)
{
    static constexpr QByteArrayView hopByHop[] = {
        "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade"};
    for (QByteArrayView entry : hopByHop) {
        if (fieldNameEquals(name, entry))
            return true;
    }
    return startsWithIgnoringCase(name, "proxy-");
}

} // namespace

void removeHopByHopHeaders(HttpHead &head)
{
    // Connection may name further fields that only this hop uses. Its values are held here, so
    // that the names taken from them stay valid while the fields are removed in one pass. Copies
    // share the bytes, and the arrays stay on the stack for the usual few names, because this
    // runs for every request and every response.
    QVarLengthArray<QByteArray, 4> connectionValues;
    QVarLengthArray<QByteArrayView, 8> namedFields;
    for (const HttpHeader &header : head.headers) {
        if (fieldNameEquals(header.name, "Connection"))
            connectionValues.append(header.value);
    }
    for (const QByteArray &value : connectionValues) {
        for (QByteArrayView rest(value); !rest.isEmpty();) {
            const qsizetype comma = rest.indexOf(',');
            const QByteArrayView token = (comma < 0 ? rest : rest.first(comma)).trimmed();
            rest = comma < 0 ? QByteArrayView() : rest.sliced(comma + 1);
            if (!token.isEmpty())
                namedFields.append(token);
        }
    }

    head.headers.erase(std::remove_if(head.headers.begin(),
                                      head.headers.end(),
                                      [&namedFields](const HttpHeader &header) {
                                          if (isHopByHopName(header.name))
                                              return true;
                                          return std::any_of(namedFields.cbegin(),
                                                             namedFields.cend(),
                                                             [&header](QByteArrayView named) {
                                                                 return fieldNameEquals(header.name,
                                                                                        named);
                                                             });
                                      }),
                       head.headers.end());
}

namespace {

// Builds the part of an upstream head that clusters and apps share: everything but the
// credential, which `credential` supplies when it has a name.
HttpHead forwardedHead(const HttpHead &request,
                       const QByteArray &target,
                       const QUrl &server,
                       const std::vector<HttpHeader> &credentials)
{
    const bool upgrade = isUpgradeRequest(request);
    HttpHead upstream = request;
    upstream.target = target;
    upstream.versionMinor = 1;
    removeHopByHopHeaders(upstream);
    upstream.removeAll("Authorization");
    // Headlamp's -proxy-auth mode reads the token from this field, which only the proxy sets.
    upstream.removeAll("X-Forwarded-Id-Token");
    upstream.removeAllWithPrefix("impersonate-");
    // CGI-style servers read "Impersonate_User" as "Impersonate-User", so no header name with an
    // underscore passes, as nginx does by default.
    upstream.headers.erase(
        std::remove_if(upstream.headers.begin(),
                       upstream.headers.end(),
                       [](const HttpHeader &header) { return header.name.contains('_'); }),
        upstream.headers.end());
    upstream.removeAll("Host");
    upstream.removeAll("Content-Length");

    // QByteArrayLiteral names cost no allocation, and this runs for every forwarded request.
    upstream.headers.insert(upstream.headers.begin(),
                            HttpHeader{QByteArrayLiteral("Host"), upstreamHostHeader(server)});
    for (const HttpHeader &credential : credentials)
        upstream.append(credential.name, credential.value);
    if (request.framing == HttpBodyFraming::Chunked)
        upstream.append(QByteArrayLiteral("Transfer-Encoding"), QByteArrayLiteral("chunked"));
    else if (request.framing == HttpBodyFraming::ContentLength)
        upstream.append(QByteArrayLiteral("Content-Length"),
                        QByteArray::number(request.contentLength));
    if (upgrade) {
        appendUpgradeFields(upstream, request.value("Upgrade"));
        removeBearerSubprotocols(upstream);
    }
    return upstream;
}

// Returns true for the cookies that must not reach an app: the proxy's own session cookie and
// Headlamp's token cookies (headlamp-auth-<cluster>.<chunk>).
bool isWithheldCookie(const QByteArray &name)
{
    const QByteArray lower = name.toLower();
    return lower == QByteArray(kBrowserSessionCookieName).toLower() ||
           lower.startsWith("headlamp-auth-");
}

// Rewrites the Cookie fields as one field without the withheld cookies, or none when nothing
// is left.
void removeWithheldCookies(HttpHead &head)
{
    QList<QByteArray> kept;
    for (const QByteArray &value : head.values("Cookie")) {
        for (const QByteArray &pair : value.split(';')) {
            const QByteArray trimmed = pair.trimmed();
            if (trimmed.isEmpty())
                continue;
            const qsizetype equals = trimmed.indexOf('=');
            const QByteArray name = (equals < 0 ? trimmed : trimmed.left(equals)).trimmed();
            if (!isWithheldCookie(name))
                kept.append(trimmed);
        }
    }
    head.removeAll("Cookie");
    if (!kept.isEmpty())
        head.append("Cookie", kept.join("; "));
}

QByteArray setCookieName(const QByteArray &value)
{
    const qsizetype equals = value.indexOf('=');
    return (equals < 0 ? value : value.left(equals)).trimmed();
}

// Removes the response fields that no server behind the proxy may send to a client. Every
// Access-Control-* field goes, so that none grants CORS through the proxy. A Set-Cookie of the
// proxy's own session cookie goes too, so that no app replaces it in the browser.
void removeWithheldResponseFields(HttpHead &head)
{
    head.removeAllWithPrefix("access-control-");
    head.headers.erase(
        std::remove_if(head.headers.begin(),
                       head.headers.end(),
                       [](const HttpHeader &header) {
                           return fieldNameEquals(header.name, "Set-Cookie") &&
                                  setCookieName(header.value).toLower() ==
                                      QByteArray(kBrowserSessionCookieName).toLower();
                       }),
        head.headers.end());
}

} // namespace

HttpHead upstreamRequestHead(const HttpHead &request,
                             const QByteArray &target,
                             const QUrl &server,
                             const QByteArray &idToken)
{
    return forwardedHead(request,
                         target,
                         server,
                         {HttpHeader{QByteArrayLiteral("Authorization"), "Bearer " + idToken}});
}

HttpHead upstreamRequestHead(const HttpHead &request,
                             const QByteArray &target,
                             const QUrl &server,
                             const std::vector<HttpHeader> &credentials)
{
    return forwardedHead(request, target, server, credentials);
}

HttpHead appUpstreamRequestHead(const HttpHead &request,
                                const QByteArray &target,
                                const QUrl &server,
                                const QByteArray &idToken,
                                bool forwardedIdTokenHeader)
{
    std::vector<HttpHeader> credentials;
    if (!idToken.isEmpty() && forwardedIdTokenHeader)
        credentials.push_back(HttpHeader{"X-Forwarded-Id-Token", idToken});
    else if (!idToken.isEmpty())
        credentials.push_back(HttpHeader{QByteArrayLiteral("Authorization"), "Bearer " + idToken});

    HttpHead stripped = request;
    stripped.removeAll("X-Forwarded-Id-Token");
    removeWithheldCookies(stripped);
    return forwardedHead(stripped, target, server, credentials);
}

HttpHead
clientResponseHead(const HttpHead &response, HttpBodyFraming clientFraming, bool closeConnection)
{
    HttpHead client = response;
    removeHopByHopHeaders(client);
    removeWithheldResponseFields(client);
    // Pages of other loopback ports must not frame anything served through the proxy.
    client.append(QByteArrayLiteral("Content-Security-Policy"),
                  QByteArrayLiteral("frame-ancestors 'self'"));
    if (clientFraming != HttpBodyFraming::None)
        client.removeAll("Content-Length");
    if (clientFraming == HttpBodyFraming::ContentLength)
        client.append(QByteArrayLiteral("Content-Length"),
                      QByteArray::number(response.contentLength));
    else if (clientFraming == HttpBodyFraming::Chunked)
        client.append("Transfer-Encoding", "chunked");
    if (closeConnection)
        client.append("Connection", "close");
    return client;
}

HttpHead clientUpgradeResponseHead(const HttpHead &response)
{
    HttpHead client = response;
    removeHopByHopHeaders(client);
    removeWithheldResponseFields(client);
    appendUpgradeFields(client, response.value("Upgrade"));
    return client;
}

HttpHead clientInterimResponseHead(const HttpHead &response)
{
    HttpHead client = response;
    removeHopByHopHeaders(client);
    removeWithheldResponseFields(client);
    return client;
}

} // namespace lamplighter
