#pragma once

#include "HttpHead.h"
#include "KubernetesStatus.h"
#include "ProxySettings.h"

#include <optional>

namespace lamplighter {

// The proxy's decision on a request whose head has been read: forward it to a cluster with a
// rewritten head, or reject it with a Kubernetes Status.
struct RequestAdmission {
    std::optional<KubernetesStatus> rejection;
    QString logReason; // a few words for the log line of a rejection, never a secret
    bool closeConnection = false;
    bool idTokenExpired = false; // rejected because the ID token's expiry has passed

    const UpstreamCluster *cluster = nullptr; // set when the request is forwarded
    HttpHead upstreamHead;
};

// Decides what to do with a request. The checks run in this order: Host and Origin (against DNS
// rebinding and web pages), the session key, the route to a cluster and its path, the shape of an
// upgrade (WebSocket or SPDY/3.1 only), and whether anyone is signed in with an ID token that is
// still valid at now. Nothing is forwarded unless every check passes.
RequestAdmission
admitRequest(const HttpHead &request, const ProxySettings &settings, const QDateTime &now);

} // namespace lamplighter
