#include "oidc/BrowserLauncher.h"

#include "Logging.h"

#include <QProcess>
#include <utility>

namespace lamplighter {

BrowserLauncher::BrowserLauncher(QStringList browserCommand, UrlOpener urlOpener)
    : m_browserCommand(std::move(browserCommand))
    , m_urlOpener(std::move(urlOpener))
{}

Status BrowserLauncher::open(const QUrl &url) const
{
    const QString endpoint = url.adjusted(QUrl::RemoveQuery | QUrl::RemoveFragment).toString();
    if (!m_browserCommand.isEmpty()) {
        qCInfo(lcOidc).noquote() << "Opening" << endpoint << "with the browser command"
                                 << m_browserCommand.first();
        return startCommand(url);
    }

    if (!m_urlOpener) {
        return Error{QStringLiteral("No browser is available to open the sign-in page. Set "
                                    "login.browser in the configuration file to a browser "
                                    "command.")};
    }
    qCInfo(lcOidc).noquote() << "Opening" << endpoint << "in the desktop's browser";
    if (!m_urlOpener(url)) {
        return Error{QStringLiteral("The desktop's browser could not be opened for the sign-in "
                                    "page. Set login.browser in the configuration file to a "
                                    "browser command.")};
    }
    return Done{};
}

Status BrowserLauncher::startCommand(const QUrl &url) const
{
    QProcess process;
    process.setProgram(m_browserCommand.first());
    process.setArguments(m_browserCommand.mid(1) << url.toString(QUrl::FullyEncoded));
    // A detached process inherits standard output, which a command-line mode such as a kubectl
    // credential plugin uses for its result, so the browser's output goes nowhere. Its standard
    // error is kept for diagnostics.
    process.setStandardInputFile(QProcess::nullDevice());
    process.setStandardOutputFile(QProcess::nullDevice());
    if (process.startDetached())
        return Done{};

    const QString command = m_browserCommand.join(QLatin1Char(' '));
    const QString reason = process.errorString();
    qCWarning(lcOidc).noquote() << "Failed to start the browser command" << command << ":"
                                << reason;
    return Error{QStringLiteral("Failed to start the browser command \"%1\": %2. Check "
                                "login.browser in the configuration file.")
                     .arg(command, reason)};
}

} // namespace lamplighter
