#pragma once

#include "UpstreamCluster.h"
#include "config/Config.h"

#include <QString>

namespace lamplighter {

// A web app that the local proxy serves to the browser at /apps/<name>/. Requests go to
// `upstream.server`, whose path prefixes the path after /apps/<name>, which is how the proxy
// fills in the "${fullURI}" of the app's proxyTo. The server's certificate is verified against
// `upstream.caCertificates` only.
// NOTE: Log lines and upstream error messages call the app's upstream a cluster, by the name of
// `upstream` (Session uses "apps/<name>").
struct UpstreamApp {
    QString name;
    UpstreamCluster upstream;
    bool injectToken = false; // add the ID token to every forwarded request
    AppTokenHeader tokenHeader = AppTokenHeader::Authorization;
};

} // namespace lamplighter
