#include "CommandLine.h"

#include "config/Config.h"

#include <QCommandLineParser>

namespace lamplighter {
namespace {

struct CommandInfo {
    const char *name;
    Invocation::Command command;
    const char *summary;
};

const CommandInfo commands[] = {
    {"login",
     Invocation::Command::Login,
     "Sign in through the browser. A running Lamplighter signs in itself; otherwise the tokens "
     "are stored in the keychain for the next start."},
    {"logout", Invocation::Command::Logout, "Sign out and remove the tokens from the keychain."},
    {"status",
     Invocation::Command::Status,
     "Print who is signed in, until when the ID token is valid, and where the proxy listens."},
    {"kubeconfig",
     Invocation::Command::Kubeconfig,
     "Print the path of the kubeconfig that points kubectl and Headlamp at the local proxy."},
    {"open",
     Invocation::Command::Open,
     "Open APP, one of openunison.apps in the configuration, in the browser through the running "
     "Lamplighter's local proxy."},
};

QString usage(QCommandLineParser &parser, const CommandInfo *command)
{
    parser.clearPositionalArguments();
    if (command)
        parser.setApplicationDescription(QLatin1String(command->summary));
    // Qt's first line names the running binary; the usage line is always written for
    // "lamplighter", whatever the file is called.
    QString text = parser.helpText();
    text = text.mid(text.indexOf(QLatin1Char('\n')) + 1);
    if (command) {
        const QString argument =
            command->command == Invocation::Command::Open ? QStringLiteral(" APP") : QString();
        return QStringLiteral("Usage: lamplighter %1%2 [options]\n%3")
            .arg(QLatin1String(command->name), argument, text);
    }
    text.prepend(QStringLiteral("Usage: lamplighter [options] [command]\n"));
    text +=
        QStringLiteral("\nWithout a command, Lamplighter starts in the system tray and runs the "
                       "local proxy.\n\nCommands:\n");
    for (const CommandInfo &info : commands)
        text +=
            QStringLiteral("  %1  %2\n")
                .arg(QString::fromLatin1(info.name).leftJustified(11), QLatin1String(info.summary));
    text += QStringLiteral("\nRun `lamplighter COMMAND --help` for a command's options.\n");
    return text;
}

} // namespace

Invocation parseCommandLine(const QStringList &arguments)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Signs you in to Kubernetes with OpenID Connect and serves kubectl and "
                       "Headlamp through a local proxy."));
    const QCommandLineOption configOption(
        {QStringLiteral("c"), QStringLiteral("config")},
        QStringLiteral("Read the configuration from <file> (default: $LAMPLIGHTER_CONFIG if set, "
                       "otherwise %1).")
            .arg(defaultConfigPath()),
        QStringLiteral("file"));
    const QCommandLineOption helpOption({QStringLiteral("h"), QStringLiteral("help")},
                                        QStringLiteral("Show this help and exit."));
    const QCommandLineOption versionOption(QStringLiteral("version"),
                                           QStringLiteral("Print the version and exit."));
    parser.addOption(configOption);
    parser.addOption(helpOption);
    parser.addOption(versionOption);
    parser.addPositionalArgument(QStringLiteral("command"),
                                 QStringLiteral("login, logout, status, kubeconfig or open APP."));

    Invocation invocation;
    if (!parser.parse(QStringList{QStringLiteral("lamplighter")} + arguments)) {
        invocation.errorMessage = parser.errorText();
        return invocation;
    }

    const QStringList positional = parser.positionalArguments();
    const CommandInfo *named = nullptr;
    if (!positional.isEmpty()) {
        for (const CommandInfo &info : commands) {
            if (positional.first() == QLatin1String(info.name))
                named = &info;
        }
        if (!named) {
            invocation.errorMessage =
                QStringLiteral("Unknown command \"%1\"; expected login, logout, status, "
                               "kubeconfig or open.")
                    .arg(positional.first());
            return invocation;
        }
        const bool takesApp = named->command == Invocation::Command::Open;
        if (takesApp && positional.size() != 2 && !parser.isSet(helpOption)) {
            invocation.errorMessage =
                QStringLiteral("The command \"open\" takes one argument, the name of an app.");
            return invocation;
        }
        if (takesApp && positional.size() == 2)
            invocation.appName = positional.at(1);
        if (!takesApp && positional.size() > 1) {
            invocation.errorMessage = QStringLiteral("The command \"%1\" takes no arguments, got "
                                                     "\"%2\".")
                                          .arg(positional.first(), positional.at(1));
            return invocation;
        }
        invocation.command = named->command;
    }

    invocation.configPath = parser.value(configOption);
    if (invocation.configPath.isEmpty())
        invocation.configPath = qEnvironmentVariable("LAMPLIGHTER_CONFIG");
    if (invocation.configPath.isEmpty())
        invocation.configPath = defaultConfigPath();
    invocation.helpRequested = parser.isSet(helpOption);
    invocation.versionRequested = parser.isSet(versionOption);
    if (invocation.helpRequested) {
        invocation.helpText = usage(parser, named);
    }
    return invocation;
}

} // namespace lamplighter
