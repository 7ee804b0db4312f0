#include "ProxyHeaders.h"

#include "ProxyRoute.h"

#include <QVarLengthArray>
#include <algorithm>
#include <charconv>
#include <iterator>
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
    if (startsWithIgnoringCase(name, "proxy-"))
        return true;
    // The length picks the candidates, because every field of every message comes here.
    switch (name.size()) {
    case 2:
        return fieldNameEquals(name, "TE");
    case 7:
        return fieldNameEquals(name, "Trailer") || fieldNameEquals(name, "Upgrade");
    case 10:
        return fieldNameEquals(name, "Connection") || fieldNameEquals(name, "Keep-Alive");
    case 17:
        return fieldNameEquals(name, "Transfer-Encoding");
    default:
        return false;
    }
}

// Tells which fields of one head describe only the connection it came on and must not be
// forwarded: those that isHopByHopName() lists, and those that the head's Connection fields name.
class HopByHopFields {
public:
    explicit HopByHopFields(const HttpHead &head)
    {
        for (const HttpHeader &header : head.headers) {
            if (fieldNameEquals(header.name, "Connection"))
                m_connectionValues.append(header.value);
        }
        for (const QByteArray &value : m_connectionValues) {
            for (QByteArrayView rest(value); !rest.isEmpty();) {
                const qsizetype comma = rest.indexOf(',');
                const QByteArrayView token = (comma < 0 ? rest : rest.first(comma)).trimmed();
                rest = comma < 0 ? QByteArrayView() : rest.sliced(comma + 1);
                if (!token.isEmpty())
                    m_namedFields.append(token);
            }
        }
    }
    // The names point into the bytes of the held values.
    Q_DISABLE_COPY_MOVE(HopByHopFields)

    bool contains(QByteArrayView name) const
    {
        return isHopByHopName(name) ||
               std::any_of(m_namedFields.cbegin(),
                           m_namedFields.cend(),
                           [name](QByteArrayView named) { return fieldNameEquals(name, named); });
    }

private:
    // Copies share the bytes, and both arrays stay on the stack for the usual few names, because
    // every request and every response comes here.
    QVarLengthArray<QByteArray, 4> m_connectionValues;
    QVarLengthArray<QByteArrayView, 8> m_namedFields;
};

// Returns true for the client's request fields that never reach a server, apart from the
// hop-by-hop ones.
bool isWithheldRequestField(QByteArrayView name)
{
    // Only the proxy sets credentials: Authorization, and X-Forwarded-Id-Token, from which
    // Headlamp's -proxy-auth mode reads the token. CGI-style servers read "Impersonate_User" as
    // "Impersonate-User", so no name with an underscore passes, as nginx does by default. The
    // proxy sets Host and Content-Length again.
    return fieldNameEquals(name, "Authorization") ||
           fieldNameEquals(name, "X-Forwarded-Id-Token") ||
           startsWithIgnoringCase(name, "impersonate-") || name.contains('_') ||
           fieldNameEquals(name, "Host") || fieldNameEquals(name, "Content-Length");
}

// Builds the part of an upstream head that clusters and apps share: everything but the
// credential, which `credential` supplies when it has a name.
HttpHead forwardedHead(const HttpHead &request,
                       const QByteArray &target,
                       const UpstreamServer &server,
                       const std::vector<HttpHeader> &credentials)
{
    const bool upgrade = isUpgradeRequest(request);
    const HopByHopFields hopByHop(request);
    HttpHead upstream = request.withoutFields();
    upstream.target = target;
    upstream.versionMinor = 1;
    // Only the kept fields are copied, in one pass, because this runs for every forwarded
    // request. Room is made for Host, the credentials and two framing or upgrade fields.
    upstream.headers.reserve(request.headers.size() + credentials.size() + 3);
    // QByteArrayLiteral names cost no allocation.
    upstream.headers.push_back(HttpHeader{QByteArrayLiteral("Host"), server.hostHeader()});
    for (const HttpHeader &header : request.headers) {
        if (!isWithheldRequestField(header.name) && !hopByHop.contains(header.name))
            upstream.headers.push_back(header);
    }
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

// Returns true for the response fields that no server behind the proxy may send to a client.
// Every Access-Control-* field goes, so that none grants CORS through the proxy. A Set-Cookie of
// the proxy's own session cookie goes too, so that no app replaces it in the browser.
bool isWithheldResponseField(const HttpHeader &header)
{
    return startsWithIgnoringCase(header.name, "access-control-") ||
           (fieldNameEquals(header.name, "Set-Cookie") &&
            setCookieName(header.value).toLower() ==
                QByteArray(kBrowserSessionCookieName).toLower());
}

// Returns true for a field of a response that goes on to the client: not hop-by-hop, not
// withheld, and not Content-Length when `dropContentLength` is set.
bool keptForClient(const HttpHeader &header, const HopByHopFields &hopByHop, bool dropContentLength)
{
    return !hopByHop.contains(header.name) && !isWithheldResponseField(header) &&
           !(dropContentLength && fieldNameEquals(header.name, "Content-Length"));
}

// Copies `response` for the client with the fields that keptForClient() keeps, with room for
// `extraFields` more.
HttpHead clientHeadFrom(const HttpHead &response, bool dropContentLength, size_t extraFields)
{
    const HopByHopFields hopByHop(response);
    HttpHead client = response.withoutFields();
    client.headers.reserve(response.headers.size() + extraFields);
    for (const HttpHeader &header : response.headers) {
        if (keptForClient(header, hopByHop, dropContentLength))
            client.headers.push_back(header);
    }
    return client;
}

// The fields that the proxy adds after the kept ones of a response for the client: the
// frame-ancestors policy, and the framing of the body and of the connection.
class AddedResponseFields {
public:
    AddedResponseFields(const HttpHead &response,
                        HttpBodyFraming clientFraming,
                        bool closeConnection)
    {
        // Pages of other loopback ports must not frame anything served through the proxy.
        m_fields.append({"Content-Security-Policy", "frame-ancestors 'self'"});
        // The proxy frames the body itself, so it sets Content-Length again.
        if (clientFraming == HttpBodyFraming::ContentLength) {
            const char *end =
                std::to_chars(std::begin(m_length), std::end(m_length), response.contentLength).ptr;
            m_fields.append({"Content-Length", QByteArrayView(m_length, end - m_length)});
        } else if (clientFraming == HttpBodyFraming::Chunked) {
            m_fields.append({"Transfer-Encoding", "chunked"});
        }
        if (closeConnection)
            m_fields.append({"Connection", "close"});
    }
    // The Content-Length view points into this object.
    Q_DISABLE_COPY_MOVE(AddedResponseFields)

    const QVarLengthArray<HttpFieldView, 3> &fields() const { return m_fields; }

private:
    char m_length[24];
    QVarLengthArray<HttpFieldView, 3> m_fields;
};

} // namespace

HttpHead upstreamRequestHead(const HttpHead &request,
                             const QByteArray &target,
                             const UpstreamServer &server,
                             const BearerToken &idToken)
{
    return forwardedHead(request,
                         target,
                         server,
                         {HttpHeader{QByteArrayLiteral("Authorization"), idToken.authorization()}});
}

HttpHead upstreamRequestHead(const HttpHead &request,
                             const QByteArray &target,
                             const UpstreamServer &server,
                             const std::vector<HttpHeader> &credentials)
{
    return forwardedHead(request, target, server, credentials);
}

HttpHead appUpstreamRequestHead(const HttpHead &request,
                                const QByteArray &target,
                                const UpstreamServer &server,
                                const BearerToken &idToken,
                                bool forwardedIdTokenHeader)
{
    std::vector<HttpHeader> credentials;
    if (!idToken.isEmpty() && forwardedIdTokenHeader)
        credentials.push_back(HttpHeader{"X-Forwarded-Id-Token", idToken.token()});
    else if (!idToken.isEmpty())
        credentials.push_back(
            HttpHeader{QByteArrayLiteral("Authorization"), idToken.authorization()});

    HttpHead stripped = request;
    stripped.removeAll("X-Forwarded-Id-Token");
    removeWithheldCookies(stripped);
    return forwardedHead(stripped, target, server, credentials);
}

HttpHead
clientResponseHead(const HttpHead &response, HttpBodyFraming clientFraming, bool closeConnection)
{
    HttpHead client = clientHeadFrom(response, clientFraming != HttpBodyFraming::None, 3);
    const AddedResponseFields added(response, clientFraming, closeConnection);
    for (const HttpFieldView &field : added.fields())
        client.append(field.name.toByteArray(), field.value.toByteArray());
    return client;
}

QByteArray serializedClientResponseHead(const HttpHead &response,
                                        HttpBodyFraming clientFraming,
                                        bool closeConnection)
{
    const HopByHopFields hopByHop(response);
    const bool dropContentLength = clientFraming != HttpBodyFraming::None;
    const AddedResponseFields added(response, clientFraming, closeConnection);
    QVarLengthArray<HttpFieldView, 32> fields;
    for (const HttpHeader &header : response.headers) {
        if (keptForClient(header, hopByHop, dropContentLength))
            fields.append({header.name, header.value});
    }
    fields.append(added.fields().constData(), added.fields().size());
    return serializeResponseHead(response.statusCode, response.reasonPhrase, fields);
}

HttpHead clientUpgradeResponseHead(const HttpHead &response)
{
    HttpHead client = clientHeadFrom(response, false, 2);
    appendUpgradeFields(client, response.value("Upgrade"));
    return client;
}

HttpHead clientInterimResponseHead(const HttpHead &response)
{
    return clientHeadFrom(response, false, 0);
}

} // namespace lamplighter
