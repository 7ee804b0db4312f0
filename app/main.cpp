#include "CommandLine.h"
#include "CredentialCommand.h"
#include "DesktopWindows.h"
#include "Logging.h"
#include "PluginCommand.h"
#include "SessionCommands.h"
#include "TerminationSignals.h"
#include "TrayIcon.h"
#include "config/Config.h"
#include "config/ConfigWatcher.h"
#include "kube/Kubeconfig.h"
#include "oidc/BrowserLauncher.h"
#include "session/ControlChannel.h"
#include "session/Session.h"

#include <QApplication>
#include <QDeadlineTimer>
#include <QDesktopServices>
#include <QDir>
#include <QFileInfo>
#include <QJsonObject>
#include <QLockFile>
#include <QLoggingCategory>
#include <QProcess>
#include <QSystemTrayIcon>
#include <QTextStream>
#include <QThread>
#include <QTimer>
#include <QUrl>
#include <cstdio>
#include <optional>

using namespace lamplighter;

namespace {

// Exit codes, as in kubectl: 0 success, 1 failure, 2 bad usage or configuration.
constexpr int exitFailure = 1;
constexpr int exitUsage = 2;

// How long a command waits for a running instance; login waits for the person in the browser.
constexpr int statusTimeoutMs = 10'000;

// How long a second start waits for the running instance to listen on the control socket, which
// it does right after taking the instance lock.
constexpr int handOverTimeoutMs = 5'000;

// The control request with which a second start requests the running instance's portal.
const QString showPortalCommand = QStringLiteral("show-portal");

void printOut(const QString &text)
{
    QTextStream(stdout) << text;
}

void printError(const QString &text)
{
    QTextStream(stderr) << QStringLiteral("lamplighter: ") << text << Qt::endl;
}

QString commandName(Invocation::Command command)
{
    switch (command) {
    case Invocation::Command::Login:
        return QStringLiteral("login");
    case Invocation::Command::Logout:
        return QStringLiteral("logout");
    case Invocation::Command::Status:
        return QStringLiteral("status");
    case Invocation::Command::Kubeconfig:
        return QStringLiteral("kubeconfig");
    case Invocation::Command::Open:
        return QStringLiteral("open");
    case Invocation::Command::Credential:
    case Invocation::Command::PluginInstall:
    case Invocation::Command::Tray:
        break;
    }
    return QString();
}

std::optional<Config> readConfig(const Invocation &invocation)
{
    Result<Config> config = loadConfig(invocation.configPath);
    if (!config) {
        printError(config.errorMessage());
        return std::nullopt;
    }
    for (const QString &warning : std::as_const(config->warnings))
        qCWarning(lcConfig).noquote() << warning;
    return std::move(config).value();
}

// Prints a reply of the running instance or of a one-shot session; true when it succeeded.
bool printReply(const QJsonObject &reply)
{
    if (!reply.value(QStringLiteral("ok")).toBool()) {
        printError(reply.value(QStringLiteral("message")).toString());
        return false;
    }
    printOut(formatSessionDescription(reply));
    return true;
}

// Returns the lamplighter-keychain program: the one beside this executable in a build folder,
// otherwise the installed one.
QString keychainHelperProgram()
{
    const QString beside =
        QCoreApplication::applicationDirPath() + QStringLiteral("/lamplighter-keychain");
    return QFileInfo(beside).isExecutable() ? beside : QStringLiteral(LAMPLIGHTER_KEYCHAIN_HELPER);
}

// Returns whether a graphical session is there; without one QApplication aborts the process.
bool hasGraphicalSession()
{
    return qEnvironmentVariableIsSet("DISPLAY") || qEnvironmentVariableIsSet("WAYLAND_DISPLAY") ||
           qEnvironmentVariableIsSet("QT_QPA_PLATFORM");
}

// Requests the portal of the running instance, which holds lockPath, and returns the exit code.
// The instance takes the lock before it listens on the control socket, so a start in between
// waits for the socket.
int handOverToRunningInstance(const QString &lockPath, const Invocation &invocation)
{
    QDeadlineTimer deadline(handOverTimeoutMs);
    Result<QJsonObject> reply = Error{};
    bool connected = false;
    do {
        reply = sendControlRequest(defaultControlSocketPath(),
                                   {{QStringLiteral("command"), showPortalCommand}},
                                   statusTimeoutMs,
                                   &connected);
        if (connected)
            break;
        QThread::msleep(100);
    } while (!deadline.hasExpired());

    if (!reply) {
        printError(QStringLiteral("Lamplighter is already running (the lock file %1 is taken), "
                                  "but it did not answer on %2: %3")
                       .arg(lockPath, defaultControlSocketPath(), reply.errorMessage()));
        return exitFailure;
    }
    if (!reply->value(QStringLiteral("ok")).toBool()) {
        printError(reply->value(QStringLiteral("message")).toString());
        return exitFailure;
    }
    printOut(QStringLiteral("Lamplighter is already running; it shows its portal now.\n"));
    if (invocation.configPathGiven)
        printError(QStringLiteral("The running Lamplighter keeps its own configuration, so %1 was "
                                  "not read. Quit it from the tray first to start with this file.")
                       .arg(invocation.configPath));
    return 0;
}

int runTray(const Invocation &invocation, int argc, char *argv[])
{
    if (!hasGraphicalSession()) {
        printError(QStringLiteral("The tray needs a graphical session, but neither DISPLAY nor "
                                  "WAYLAND_DISPLAY is set. Start Lamplighter from your desktop "
                                  "session, or use `lamplighter login` and `status` here."));
        return exitUsage;
    }
    QApplication app(argc, argv);
    app.setQuitOnLastWindowClosed(false);
    quitOnTerminationSignals(&app);

    // The control socket depends on XDG_RUNTIME_DIR, but the kubeconfig and the certificate do
    // not, so a lock beside the kubeconfig keeps a second instance from overwriting them.
    const QString lockPath =
        QFileInfo(defaultKubeconfigPath()).absolutePath() + QStringLiteral("/instance.lock");
    QDir().mkpath(QFileInfo(lockPath).absolutePath());
    QLockFile instanceLock(lockPath);
    if (!instanceLock.tryLock(0))
        return handOverToRunningInstance(lockPath, invocation);
    // The running instance serves its own configuration, so a second start does not read one.
    std::optional<Config> config = readConfig(invocation);
    if (!config)
        return exitUsage;

    Session::Options options;
    options.urlOpener = [](const QUrl &url) {
        return QDesktopServices::openUrl(url);
    };
    options.keychainHelperProgram = keychainHelperProgram();
    Session session(*config, options);
    TrayIcon tray(&session);
    DesktopWindows windows(&session, *config);
    QObject::connect(&tray, &TrayIcon::portalRequested, &windows, &DesktopWindows::showPortal);
    QObject::connect(&tray, &TrayIcon::whoAmIRequested, &windows, &DesktopWindows::showWhoAmI);
    QObject::connect(&windows, &DesktopWindows::messageReady, &tray, &TrayIcon::notify);

    // A changed file applies its apps at once. What the session started with (the provider, the
    // clusters, the proxy's port) stays until the next start, and the notification names them.
    ConfigWatcher configWatcher(*config);
    QObject::connect(&configWatcher,
                     &ConfigWatcher::reloaded,
                     &tray,
                     [&tray, &windows, running = *config](const Config &reloaded) {
                         windows.setConfig(reloaded);
                         const QStringList blocks = blocksNeedingRestart(running, reloaded);
                         tray.notifyConfigurationReloaded(
                             blocks.isEmpty()
                                 ? QString()
                                 : QObject::tr("Changes to %1 take effect when Lamplighter "
                                               "starts again.")
                                       .arg(blocks.join(QStringLiteral(", "))));
                     });
    QObject::connect(
        &configWatcher, &ConfigWatcher::rejected, &tray, &TrayIcon::notifyConfigurationRejected);
    const ControlServer::Handler sessionHandler = makeControlHandler(&session);
    ControlServer control(
        [&tray, sessionHandler](const QJsonObject &request, ControlServer::Reply reply) {
            if (request.value(QStringLiteral("command")).toString() != showPortalCommand) {
                sessionHandler(request, reply);
                return;
            }
            qCInfo(lcApp) << "Another start of Lamplighter asked for the portal";
            Q_EMIT tray.portalRequested();
            reply({{QStringLiteral("ok"), true}});
        });
    const Status listening = control.listen(defaultControlSocketPath());
    if (!listening) {
        printError(listening.errorMessage());
        return exitFailure;
    }

    if (QSystemTrayIcon::isSystemTrayAvailable())
        tray.show();
    else
        qCWarning(lcApp) << "No system tray is available; Lamplighter keeps running. Use "
                            "`lamplighter status`, `login` and `logout` instead.";

    QObject::connect(&session, &Session::started, &app, [&app](const Status &status) {
        if (!status) {
            printError(status.errorMessage());
            app.exit(exitFailure);
            return;
        }
        qCInfo(lcApp) << "Lamplighter is running";
    });
    session.start();
    return app.exec();
}

// Opens url with xdg-open, which needs no GUI application object in this process. Without
// xdg-open, prints the URL for the person to open, as command-line OAuth clients do.
bool openUrlWithoutDesktopSession(const QUrl &url)
{
    if (QProcess::startDetached(QStringLiteral("xdg-open"), {url.toString(QUrl::FullyEncoded)}))
        return true;
    QTextStream(stderr) << QStringLiteral("Open this address in your browser to sign in:\n  ")
                        << url.toString(QUrl::FullyEncoded) << Qt::endl;
    return true;
}

// Runs command in this process, without a proxy, when no instance is running.
int runOneShot(const Invocation &invocation, int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    // A command prints its outcome itself; the session's progress lines would only repeat it.
    if (!qEnvironmentVariableIsSet("QT_LOGGING_RULES"))
        QLoggingCategory::setFilterRules(QStringLiteral("lamplighter.*.info=false"));
    std::optional<Config> config = readConfig(invocation);
    if (!config)
        return exitUsage;

    Session::Options options;
    options.serveProxy = false;
    options.refreshOnStart = false;
    options.urlOpener = openUrlWithoutDesktopSession;
    Session session(*config, options);
    const QString command =
        invocation.removeAllEntries ? logoutAllCommand : commandName(invocation.command);
    QObject::connect(&session, &Session::started, &app, [&](const Status &status) {
        if (!status) {
            printError(status.errorMessage());
            app.exit(exitFailure);
            return;
        }
        runSessionCommand(&session, command, [&](QJsonObject reply) {
            reply.insert(QStringLiteral("proxy"),
                         QStringLiteral("not running; start `lamplighter` to serve kubectl"));
            if (command == QLatin1String("login") && reply.value(QStringLiteral("ok")).toBool() &&
                session.tokensInMemoryOnly()) {
                reply.insert(QStringLiteral("ok"), false);
                reply.insert(QStringLiteral("message"),
                             QStringLiteral("Signed in, but no keychain answered, so the tokens "
                                            "cannot be kept after this command ends. Start a "
                                            "Secret Service such as gnome-keyring, or sign in "
                                            "from the tray."));
            } else if (command == QLatin1String("login") &&
                       reply.value(QStringLiteral("ok")).toBool() &&
                       !session.tokensNotStoredReason().isEmpty()) {
                reply.insert(QStringLiteral("ok"), false);
                reply.insert(QStringLiteral("message"),
                             QStringLiteral("Signed in, but the tokens cannot be kept after this "
                                            "command ends: %1")
                                 .arg(session.tokensNotStoredReason()));
            }
            const bool succeeded = printReply(reply);
            // Let pending keychain writes finish before the process ends.
            QTimer::singleShot(
                0, &app, [&app, succeeded] { app.exit(succeeded ? 0 : exitFailure); });
        });
    });
    session.start();
    return app.exec();
}

// Asks the running instance for a launch URL of the app and opens it with login.browser or
// xdg-open. The URL contains a one-time ticket, so it is never printed or logged.
int runOpen(const Invocation &invocation, int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    // The command prints its outcome itself.
    if (!qEnvironmentVariableIsSet("QT_LOGGING_RULES"))
        QLoggingCategory::setFilterRules(QStringLiteral("lamplighter.*.info=false"));
    std::optional<Config> config = readConfig(invocation);
    if (!config)
        return exitUsage;
    const Result<QJsonObject> reply =
        sendControlRequest(defaultControlSocketPath(),
                           {{QStringLiteral("command"), QStringLiteral("open")},
                            {QStringLiteral("app"), invocation.appName}},
                           statusTimeoutMs);
    if (!reply) {
        printError(QStringLiteral("Lamplighter is not running, so no proxy serves the apps. Start "
                                  "`lamplighter` first, then run `lamplighter open %1` again.")
                       .arg(invocation.appName));
        return exitFailure;
    }
    if (!reply->value(QStringLiteral("ok")).toBool()) {
        printError(reply->value(QStringLiteral("message")).toString());
        return exitFailure;
    }

    const QUrl url(reply->value(QStringLiteral("url")).toString(), QUrl::StrictMode);
    if (config->login.browserCommand.isEmpty()) {
        // xdg-open needs no GUI application object in this process, unlike QDesktopServices.
        if (!QProcess::startDetached(QStringLiteral("xdg-open"),
                                     {url.toString(QUrl::FullyEncoded)})) {
            printError(QStringLiteral("Failed to start xdg-open to open %1. Install xdg-utils or "
                                      "set login.browser in the configuration file to a browser "
                                      "command.")
                           .arg(invocation.appName));
            return exitFailure;
        }
    } else {
        const Status opened = BrowserLauncher(config->login.browserCommand, {}).open(url);
        if (!opened) {
            printError(opened.errorMessage());
            return exitFailure;
        }
    }
    printOut(QStringLiteral("Opened %1 in the browser.\n").arg(invocation.appName));
    return 0;
}

int runCommand(const Invocation &invocation, int argc, char *argv[])
{
    if (invocation.command == Invocation::Command::Open)
        return runOpen(invocation, argc, argv);
    if (invocation.command == Invocation::Command::Credential)
        return runCredential(invocation, argc, argv);
    if (invocation.command == Invocation::Command::PluginInstall)
        return runPluginInstall(invocation);

    const QString socketPath = defaultControlSocketPath();
    if (invocation.command == Invocation::Command::Kubeconfig) {
        QCoreApplication app(argc, argv);
        // The running instance returns the path it wrote, whatever this shell's XDG paths are.
        const Result<QJsonObject> reply = sendControlRequest(
            socketPath, {{QStringLiteral("command"), QStringLiteral("status")}}, statusTimeoutMs);
        const QString running =
            reply ? reply->value(QStringLiteral("kubeconfig")).toString() : QString();
        printOut((running.isEmpty() ? defaultKubeconfigPath() : running) + QLatin1Char('\n'));
        if (!reply)
            printError(QStringLiteral("Lamplighter is not running, so the proxy this kubeconfig "
                                      "points at does not answer; start `lamplighter` first."));
        return 0;
    }

    const int timeoutMs =
        invocation.command == Invocation::Command::Login ? 60 * 60 * 1000 : statusTimeoutMs;
    {
        QCoreApplication app(argc, argv);
        const QString command =
            invocation.removeAllEntries ? logoutAllCommand : commandName(invocation.command);
        const Result<QJsonObject> reply =
            sendControlRequest(socketPath, {{QStringLiteral("command"), command}}, timeoutMs);
        if (reply)
            return printReply(reply.value()) ? 0 : exitFailure;
        qCDebug(lcApp) << reply.errorMessage() << "- running the command here instead";
    }
    return runOneShot(invocation, argc, argv);
}

} // namespace

int main(int argc, char *argv[])
{
    QStringList arguments;
    for (int i = 1; i < argc; ++i)
        arguments.append(QString::fromLocal8Bit(argv[i]));
    const Invocation invocation = parseCommandLine(arguments);
    if (!invocation.errorMessage.isEmpty()) {
        printError(invocation.errorMessage + QStringLiteral(" See `lamplighter --help`."));
        return exitUsage;
    }
    if (invocation.helpRequested) {
        printOut(invocation.helpText);
        return 0;
    }
    if (invocation.versionRequested) {
        printOut(QStringLiteral("lamplighter %1\n").arg(QStringLiteral(LAMPLIGHTER_VERSION)));
        return 0;
    }

    if (!qEnvironmentVariableIsSet("QT_MESSAGE_PATTERN"))
        qSetMessagePattern(QStringLiteral("%{time yyyy-MM-ddThh:mm:ss.zzz} %{category} "
                                          "%{if-warning}warning: %{endif}%{if-critical}error: "
                                          "%{endif}%{message}"));
    QCoreApplication::setApplicationName(QStringLiteral("lamplighter"));
    QCoreApplication::setApplicationVersion(QStringLiteral(LAMPLIGHTER_VERSION));
    if (invocation.command == Invocation::Command::Tray)
        return runTray(invocation, argc, argv);
    return runCommand(invocation, argc, argv);
}
