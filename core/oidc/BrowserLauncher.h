#pragma once

#include "util/Result.h"

#include <QStringList>
#include <QUrl>
#include <functional>

namespace lamplighter {

// Opens a URL in the desktop's browser and returns whether that worked. The application sets
// one that calls QDesktopServices::openUrl, because the core library does not link Qt GUI.
using UrlOpener = std::function<bool(const QUrl &)>;

// Opens the authorization URL in the person's browser: with the configured browser command when
// there is one (login.browser), otherwise with the desktop's URL opener.
class BrowserLauncher {
public:
    BrowserLauncher(QStringList browserCommand, UrlOpener urlOpener);

    // Opens url. The command, if set, is started detached with url appended as its last argument;
    // the error then names the command. The URL itself never appears in an error or a log line,
    // because its query contains the state and the nonce.
    Status open(const QUrl &url) const;

private:
    Status startCommand(const QUrl &url) const;

    QStringList m_browserCommand;
    UrlOpener m_urlOpener;
};

} // namespace lamplighter
