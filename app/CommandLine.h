#pragma once

#include <QString>
#include <QStringList>

namespace lamplighter {

// The command and options the person gave on the command line.
struct Invocation {
    enum class Command { Tray, Login, Logout, Status, Kubeconfig, Open, Credential, PluginInstall };
    Command command = Command::Tray;
    QString configPath;
    bool configPathGiven = false;  // by --config or LAMPLIGHTER_CONFIG rather than the default
    QString appName;               // the app that `open` names
    QString clusterName;           // the cluster that `credential --cluster` names
    bool loginAllowed = false;     // `credential --login`: may open the browser to sign in
    bool removeAllEntries = false; // `logout --all`: removes every keychain entry
    QString pluginSource;          // the folder that `plugin install --from` names, else empty
    bool helpRequested = false;
    bool versionRequested = false;
    QString helpText;     // for the command that was named, filled when helpRequested
    QString errorMessage; // set when the arguments are invalid
};

// Parses arguments (without the program name):
// `[--config FILE] [COMMAND [APP]] [--cluster NAME] [--login] [--all] [--from DIR] [--help]`,
// where COMMAND `plugin` takes the subcommand `install`.
Invocation parseCommandLine(const QStringList &arguments);

} // namespace lamplighter
