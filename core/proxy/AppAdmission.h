#pragma once

#include "RequestAdmission.h"

namespace lamplighter {

// Decides what to do with a request under /apps/, after the Host, Origin and CORS checks. A
// request with `?ticket=` on an app's start page trades a launch ticket for the session cookie
// through a 303 redirect. Any other request needs an issued session cookie and is forwarded to
// the app's upstream, with the ID token when the app injects it. Rejections are plain text,
// because a person reads them in a browser.
RequestAdmission
admitAppRequest(const HttpHead &request, const ProxySettings &settings, const QDateTime &now);

} // namespace lamplighter
