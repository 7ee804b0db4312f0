#pragma once

#include "BrowserResponse.h"
#include "HttpHead.h"
#include "KubernetesStatus.h"
#include "ProxySettings.h"

#include <optional>

namespace lamplighter {

// The proxy's decision on a request whose head has been read: forward it to a cluster or an app
// with a rewritten head, reject it with a Kubernetes Status, or send a response of its own.
struct RequestAdmission {
    std::optional<KubernetesStatus> rejection;
    // A response of the proxy's own for a browser on an app route: the redirect that sets the
    // session cookie, or a plain-text rejection.
    std::optional<BrowserResponse> browserResponse;
    QString logReason; // a few words for the log line of a rejection, never a secret
    bool closeConnection = false;
    bool idTokenExpired = false; // rejected because the ID token's expiry has passed

    // The server a forwarded request goes to, a cluster's API server or an app's upstream.
    const UpstreamCluster *cluster = nullptr;
    HttpHead upstreamHead;
    // A body of the proxy's own that replaces the client's, which must then have none; the
    // upstream head frames it with Content-Length.
    std::optional<QByteArray> upstreamBody;
};

// Decides what to do with a request. The checks run in this order: Host and Origin (against DNS
// rebinding and web pages), the session key, the route to a cluster and its path, the shape of an
// upgrade (WebSocket or SPDY/3.1 only), and whether anyone is signed in with an ID token that is
// still valid at now. Nothing is forwarded unless every check passes.
RequestAdmission
admitRequest(const HttpHead &request, const ProxySettings &settings, const QDateTime &now);

// Helpers that the admission of app requests shares.
RequestAdmission rejectWithStatus(int code, const QString &message, const QString &logReason);
bool hasDotSegmentOrFragment(const QByteArray &pathAndQuery);
bool requestsUpgrade(const HttpHead &request);
std::optional<RequestAdmission> checkUpgrade(const HttpHead &request);
// Returns a rejection unless someone is signed in with an ID token that is still valid at now.
std::optional<RequestAdmission> checkIdToken(const ProxySettings &settings, const QDateTime &now);

} // namespace lamplighter
