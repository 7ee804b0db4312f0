#pragma once

#include <QString>
#include <QStringList>

namespace lamplighter {

// The command and options the person gave on the command line.
struct Invocation {
    enum class Command { Tray, Login, Logout, Status, Kubeconfig, Open };
    Command command = Command::Tray;
    QString configPath;
    QString appName; // the app that `open` names
    bool helpRequested = false;
    bool versionRequested = false;
    QString helpText;     // for the command that was named, filled when helpRequested
    QString errorMessage; // set when the arguments are invalid
};

// Parses arguments (without the program name): `[--config FILE] [COMMAND [APP]] [--help]`.
Invocation parseCommandLine(const QStringList &arguments);

} // namespace lamplighter
