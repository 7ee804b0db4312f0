#pragma once

#include "HttpHead.h"

#include <QByteArray>
#include <QString>

namespace lamplighter {

// A response that the proxy itself sends: on an app route the redirect that sets the session
// cookie or a rejection with a short plain-text message, and the cluster proxy's own endpoints.
// It is never cached.
struct BrowserResponse {
    int code = 0;
    std::vector<HttpHeader> headers; // added after the fixed ones
    QString message;                 // the plain-text body; empty for a redirect
    // A body of another type, sent as it is in place of `message` when not empty.
    QByteArray body;
    QByteArray contentType = "application/json";

    // Returns a whole HTTP/1.1 response. `closeConnection` adds "Connection: close".
    QByteArray toHttpResponse(bool closeConnection) const;
};

} // namespace lamplighter
