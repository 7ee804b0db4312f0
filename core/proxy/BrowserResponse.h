#pragma once

#include "HttpHead.h"

#include <QByteArray>
#include <QString>

namespace lamplighter {

// A response that the proxy itself sends to a browser on an app route: the redirect that sets
// the session cookie, or a rejection with a short plain-text message. It is never cached.
struct BrowserResponse {
    int code = 0;
    std::vector<HttpHeader> headers; // added after the fixed ones
    QString message;                 // the plain-text body; empty for a redirect

    // Returns a whole HTTP/1.1 response. `closeConnection` adds "Connection: close".
    QByteArray toHttpResponse(bool closeConnection) const;
};

} // namespace lamplighter
