#pragma once

#include <QtGlobal>
#include <chrono>

namespace lamplighter {

// Limits that protect the local proxy from clients and servers that send too much or too slowly.
struct ProxyLimits {
    // Maximum bytes in a request or response head: the start line and every header line.
    qsizetype maxHeadBytes = 64 * 1024;
    int maxHeaderCount = 100;
    // Maximum bytes queued for a socket before the proxy stops reading from the other side.
    qint64 maxQueuedBytes = 1024 * 1024;
    // Maximum time from the first byte of a request to the end of its head. A client that sends
    // nothing after the TLS handshake is closed after idleTimeout.
    std::chrono::milliseconds headerTimeout{30000};
    // Time after which an idle keep-alive client connection is closed. It is longer than the 90 s
    // IdleConnTimeout of Go's http.DefaultTransport, so Go clients with that default close first.
    std::chrono::milliseconds idleTimeout{120000};
    // Time for which a connection to a cluster stays open for the next client after its own
    // client closed. A server may close an idle connection at any moment, and a request sent at
    // that moment fails, so the time is short, but long enough to span the commands of a script.
    std::chrono::milliseconds upstreamIdleTimeout{30000};
    // Maximum time to connect to a cluster and finish the TLS handshake.
    std::chrono::milliseconds upstreamConnectTimeout{30000};
    // Maximum time for a client's TLS handshake. A connection still in its handshake counts
    // against the listener's backlog, so a short limit keeps stalled handshakes from blocking it.
    std::chrono::milliseconds clientHandshakeTimeout{10000};
    // Maximum client connections open at once, watches included. More are closed on accept, so
    // the process keeps file descriptors for the connections to the clusters.
    int maxClientConnections = 4096;
    // Maximum connections accepted but still in their TLS handshake.
    int maxPendingHandshakes = 256;
    // Time within which a browser must use a launch ticket from LocalProxy::createLaunchTicket().
    std::chrono::milliseconds launchTicketLifetime{60000};
};

} // namespace lamplighter
