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
    {"logout",
     Invocation::Command::Logout,
     "Sign out and remove the tokens from the keychain. With --all, remove every keychain entry "
     "that Lamplighter wrote, for any provider, as before uninstalling."},
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
    {"credential",
     Invocation::Command::Credential,
     "Print an ExecCredential with the ID token for kubectl's exec credential plugin, refreshed "
     "first when it expires soon."},
    {"plugin",
     Invocation::Command::PluginInstall,
     "With `install`, copy Lamplighter's Headlamp plugin into Headlamp desktop's plugins "
     "folder, replacing an older copy."},
};

// What `logout --help` adds after the options.
const char logoutDetails[] = R"(
Without --all, logout removes the tokens of the configured provider only.

With --all, logout also removes the tokens of providers that are no longer in the
configuration, the local proxy's private key and the index in which Lamplighter lists
its keychain entries, and prints how many entries it removed (the index included).
A running Lamplighter does this itself and creates a new proxy key when it starts
again.
)";

// What `credential --help` adds after the options: behaviour, exit codes and the kubeconfig entry.
const char credentialDetails[] = R"(
kubectl runs this command through the users[].user.exec entry of a kubeconfig and
reads the ExecCredential (client.authentication.k8s.io/v1, or v1beta1 when
KUBERNETES_EXEC_INFO asks for it) from standard output. The ID token is printed
there and nowhere else.

When the ID token has expired or expires soon, it is refreshed first. A running
Lamplighter refreshes it for every caller at once; otherwise a lock file lets one
process refresh while the others wait and then read the new tokens from the
keychain. The browser opens only with --login, and never when kubectl runs the
plugin without a terminal (interactiveMode Never). Without --login, a missing or
ended session fails with a message to run `lamplighter login`.

Exit status: 0 printed, 1 failed (for example, not signed in), 2 invalid usage,
configuration or KUBERNETES_EXEC_INFO.

A kubeconfig user for the cluster "prod" of the configuration:

users:
- name: prod-lamplighter
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: lamplighter
      args: [credential, --cluster, prod]
      interactiveMode: Never
      provideClusterInfo: false

With args [credential, --cluster, prod, --login] and interactiveMode: IfAvailable,
kubectl in a terminal opens the browser when a sign-in is needed.
)";

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
        QString argument;
        if (command->command == Invocation::Command::Open)
            argument = QStringLiteral(" APP");
        if (command->command == Invocation::Command::Logout)
            text += QLatin1String(logoutDetails);
        if (command->command == Invocation::Command::Credential) {
            argument = QStringLiteral(" --cluster NAME");
            text += QLatin1String(credentialDetails);
        }
        if (command->command == Invocation::Command::PluginInstall)
            argument = QStringLiteral(" install [--from DIR]");
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
                       "otherwise %1, or the system-wide /etc/xdg/lamplighter/config.yaml when "
                       "that is missing).")
            .arg(personalConfigPath()),
        QStringLiteral("file"));
    const QCommandLineOption helpOption({QStringLiteral("h"), QStringLiteral("help")},
                                        QStringLiteral("Show this help and exit."));
    const QCommandLineOption versionOption(QStringLiteral("version"),
                                           QStringLiteral("Print the version and exit."));
    QCommandLineOption clusterOption(
        QStringLiteral("cluster"),
        QStringLiteral("The cluster of the configuration (clusters[].name) that kubectl "
                       "connects to."),
        QStringLiteral("name"));
    QCommandLineOption loginOption(
        QStringLiteral("login"),
        QStringLiteral("Open the browser to sign in when no session can be refreshed. "
                       "Without it, the command fails instead."));
    QCommandLineOption fromOption(
        QStringLiteral("from"),
        QStringLiteral("Copy the plugin from <dir>, which contains package.json and main.js or "
                       "dist/main.js (default: the copy that Lamplighter's package installs)."),
        QStringLiteral("dir"));
    QCommandLineOption allOption(
        QStringLiteral("all"),
        QStringLiteral("Also remove the tokens of every other provider, the proxy's private key "
                       "and the entry index: every keychain entry that Lamplighter wrote."));
    // The general help lists only the options that every command takes.
    if (!arguments.contains(QStringLiteral("logout")))
        allOption.setFlags(QCommandLineOption::HiddenFromHelp);
    if (!arguments.contains(QStringLiteral("credential"))) {
        clusterOption.setFlags(QCommandLineOption::HiddenFromHelp);
        loginOption.setFlags(QCommandLineOption::HiddenFromHelp);
    }
    if (!arguments.contains(QStringLiteral("plugin")))
        fromOption.setFlags(QCommandLineOption::HiddenFromHelp);
    parser.addOption(configOption);
    parser.addOption(helpOption);
    parser.addOption(versionOption);
    parser.addOption(clusterOption);
    parser.addOption(loginOption);
    parser.addOption(allOption);
    parser.addOption(fromOption);
    parser.addPositionalArgument(
        QStringLiteral("command"),
        QStringLiteral("login, logout, status, kubeconfig, open APP, credential or plugin "
                       "install."));

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
                               "kubeconfig, open, credential or plugin.")
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
        const bool plugin = named->command == Invocation::Command::PluginInstall;
        if (plugin && !parser.isSet(helpOption)) {
            if (positional.size() < 2)
                invocation.errorMessage =
                    QStringLiteral("The command \"plugin\" needs the subcommand \"install\".");
            else if (positional.at(1) != QLatin1String("install"))
                invocation.errorMessage =
                    QStringLiteral("Unknown subcommand \"%1\" of \"plugin\"; expected "
                                   "\"install\".")
                        .arg(positional.at(1));
            else if (positional.size() > 2)
                invocation.errorMessage =
                    QStringLiteral("The command \"plugin install\" takes no arguments, got "
                                   "\"%1\". Name the source folder with --from.")
                        .arg(positional.at(2));
            if (!invocation.errorMessage.isEmpty())
                return invocation;
        }
        if (!takesApp && !plugin && positional.size() > 1) {
            invocation.errorMessage = QStringLiteral("The command \"%1\" takes no arguments, got "
                                                     "\"%2\".")
                                          .arg(positional.first(), positional.at(1));
            return invocation;
        }
        invocation.command = named->command;
    }

    const bool credential = invocation.command == Invocation::Command::Credential;
    if (!credential && (parser.isSet(clusterOption) || parser.isSet(loginOption))) {
        invocation.errorMessage =
            QStringLiteral("The options --cluster and --login apply only to the command "
                           "\"credential\".");
        return invocation;
    }
    if (parser.isSet(allOption) && invocation.command != Invocation::Command::Logout) {
        invocation.errorMessage =
            QStringLiteral("The option --all applies only to the command \"logout\".");
        return invocation;
    }
    invocation.removeAllEntries = parser.isSet(allOption);
    const bool pluginInstall = invocation.command == Invocation::Command::PluginInstall;
    if (!pluginInstall && parser.isSet(fromOption)) {
        invocation.errorMessage =
            QStringLiteral("The option --from applies only to the command \"plugin install\".");
        return invocation;
    }
    if (pluginInstall) {
        invocation.pluginSource = parser.value(fromOption);
        if (parser.isSet(fromOption) && invocation.pluginSource.isEmpty()) {
            invocation.errorMessage =
                QStringLiteral("The option --from needs a folder, got an empty value.");
            return invocation;
        }
    }
    if (credential) {
        invocation.clusterName = parser.value(clusterOption);
        invocation.loginAllowed = parser.isSet(loginOption);
        if (invocation.clusterName.isEmpty() && !parser.isSet(helpOption)) {
            invocation.errorMessage =
                QStringLiteral("The command \"credential\" needs --cluster NAME, the name of a "
                               "cluster of the configuration.");
            return invocation;
        }
    }

    invocation.configPath = parser.value(configOption);
    if (invocation.configPath.isEmpty())
        invocation.configPath = qEnvironmentVariable("LAMPLIGHTER_CONFIG");
    invocation.configPathGiven = !invocation.configPath.isEmpty();
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
