#pragma once

#include "BearerToken.h"
#include "HttpHead.h"
#include "UpstreamCluster.h"

namespace lamplighter {

// The name of the cookie through which a browser proves that it opened an app with a launch
// ticket.
inline constexpr char kBrowserSessionCookieName[] = "lamplighter-session";

// Returns true when `request` requests a protocol switch, because it has an Upgrade field and
// "upgrade" among the Connection tokens (RFC 9110, section 7.8).
bool isUpgradeRequest(const HttpHead &request);

// Builds the head to send to a cluster from a client's request. The hop-by-hop fields, which
// describe only the client's connection (RFC 9110, section 7.6.1), are dropped: Connection and
// every field it names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding and Upgrade. The
// client's Authorization and
// every Impersonate-* field are dropped, so that only the person's ID token reaches the server
// and a local client cannot act as anyone else. Host names the server, and the body framing is
// set again from `request.framing`. An upgrade request keeps "Connection: Upgrade" and its
// Upgrade field, but loses every bearer token subprotocol
// (base64url.bearer.authorization.k8s.io.*) from Sec-WebSocket-Protocol, because the API server
// would authenticate the client with such a token in place of the ID token.
HttpHead upstreamRequestHead(const HttpHead &request,
                             const QByteArray &target,
                             const UpstreamServer &server,
                             const BearerToken &idToken);
// Builds the head as above, with `credentials` in place of the ID token: the cluster proxy's
// service account token and the Impersonate-* fields of the person it acts for.
HttpHead upstreamRequestHead(const HttpHead &request,
                             const QByteArray &target,
                             const UpstreamServer &server,
                             const std::vector<HttpHeader> &credentials);

// Builds the head to send to an app's upstream from a browser's request. As for a cluster, the
// client's Authorization, Impersonate-* and bearer token subprotocols are dropped, and so is
// X-Forwarded-Id-Token, because Headlamp's -proxy-auth mode trusts that header. The Cookie header
// loses the lamplighter-session cookie and every headlamp-auth-* cookie, because Headlamp would
// send a token from such a cookie to the API server in place of the injected one. Unless
// `idToken` is empty, it is added as `Authorization: Bearer <token>`, or as the bare token in
// X-Forwarded-Id-Token when `forwardedIdTokenHeader` is set.
HttpHead appUpstreamRequestHead(const HttpHead &request,
                                const QByteArray &target,
                                const UpstreamServer &server,
                                const BearerToken &idToken,
                                bool forwardedIdTokenHeader);

// Builds the head to send to the client from a cluster's response. `clientFraming` is the body
// framing towards the client: None, ContentLength (the server's length), Chunked, or UntilClose,
// where the head has no length and the proxy closes the connection after the body. Every
// Access-Control-* field is dropped, so that no server behind the proxy grants CORS through it.
// NOTE: The proxy sends serializedClientResponseHead(), and the tests compare it with this head.
HttpHead
clientResponseHead(const HttpHead &response, HttpBodyFraming clientFraming, bool closeConnection);

// Returns clientResponseHead(response, clientFraming, closeConnection).serializeResponse(),
// written without building that head, because the proxy sends one for every response.
QByteArray serializedClientResponseHead(const HttpHead &response,
                                        HttpBodyFraming clientFraming,
                                        bool closeConnection);

// Builds the head to send to the client from a cluster's 101 (Switching Protocols) response. It
// keeps "Connection: Upgrade" and the Upgrade field, and drops the other hop-by-hop fields and
// what clientResponseHead() withholds: Access-Control-* and the proxy's session cookie.
HttpHead clientUpgradeResponseHead(const HttpHead &response);
// Builds the head to send to the client from an interim response (1xx other than 101, such as
// 103 Early Hints), without hop-by-hop fields and what clientResponseHead() withholds.
HttpHead clientInterimResponseHead(const HttpHead &response);

} // namespace lamplighter
