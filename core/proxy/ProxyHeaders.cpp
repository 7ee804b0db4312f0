#include "ProxyHeaders.h"

#include "ProxyRoute.h"

#include <array>

namespace lamplighter {

void removeHopByHopHeaders(HttpHead &head)
{
    static const std::array<QByteArray, 6> hopByHop = {
        "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade"};

    // Connection may name fields that only this hop uses. Tokens such as "close" name none.
    for (const QByteArray &name : head.tokens("Connection"))
        head.removeAll(name);
    for (const QByteArray &name : hopByHop)
        head.removeAll(name);
    head.removeAllWithPrefix("proxy-");
}

HttpHead upstreamRequestHead(const HttpHead &request,
                             const QByteArray &target,
                             const QUrl &server,
                             const QByteArray &idToken)
{
    HttpHead upstream = request;
    upstream.target = target;
    upstream.versionMinor = 1;
    removeHopByHopHeaders(upstream);
    upstream.removeAll("Authorization");
    upstream.removeAllWithPrefix("impersonate-");
    upstream.removeAll("Host");
    upstream.removeAll("Content-Length");

    upstream.headers.insert(upstream.headers.begin(),
                            HttpHeader{"Host", upstreamHostHeader(server)});
    upstream.append("Authorization", "Bearer " + idToken);
    if (request.framing == HttpBodyFraming::Chunked)
        upstream.append("Transfer-Encoding", "chunked");
    else if (request.framing == HttpBodyFraming::ContentLength)
        upstream.append("Content-Length", QByteArray::number(request.contentLength));
    return upstream;
}

HttpHead
clientResponseHead(const HttpHead &response, HttpBodyFraming clientFraming, bool closeConnection)
{
    HttpHead client = response;
    removeHopByHopHeaders(client);
    if (clientFraming != HttpBodyFraming::None)
        client.removeAll("Content-Length");
    if (clientFraming == HttpBodyFraming::ContentLength)
        client.append("Content-Length", QByteArray::number(response.contentLength));
    else if (clientFraming == HttpBodyFraming::Chunked)
        client.append("Transfer-Encoding", "chunked");
    if (closeConnection)
        client.append("Connection", "close");
    return client;
}

} // namespace lamplighter
