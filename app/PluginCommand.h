#pragma once

#include "CommandLine.h"
#include "util/Result.h"

#include <QString>

namespace lamplighter {

// A built Headlamp plugin: the bundle that `headlamp-plugin build` writes and its package.json.
struct HeadlampPluginSource {
    QString mainScript; // main.js, or dist/main.js in a plugin's source folder
    QString packageJson;
    QString name;    // package.json "name", also the folder name under the plugins folder
    QString version; // package.json "version", empty when missing
};

// Returns the folder that Headlamp desktop on Linux loads plugins from:
// $XDG_DATA_HOME/Headlamp/plugins when ~/.local/share/Headlamp exists, otherwise
// $XDG_CONFIG_HOME/Headlamp/plugins. XDG_DATA_HOME defaults to ~/.local/share and
// XDG_CONFIG_HOME to ~/.config; a relative value counts as unset, as the XDG spec requires.
QString headlampPluginsFolder();

// Returns the folder that `plugin install` copies from without --from, where the Lamplighter
// package installs the built plugin.
QString defaultHeadlampPluginSource();

// Finds the built plugin in folder, which contains package.json and either main.js (an installed
// copy) or dist/main.js (the plugin's source folder after a build). Fails with the missing path
// and how to build it, or on a package.json without a usable "name".
Result<HeadlampPluginSource> findHeadlampPlugin(const QString &folder);

// Copies the plugin's main.js and package.json into pluginsFolder/<name>, creating
// pluginsFolder when missing, and returns that folder. The files go to a temporary folder inside
// pluginsFolder first, which then replaces an older copy with renameat2(RENAME_EXCHANGE), so
// Headlamp finds either the old or the new copy. A file system without RENAME_EXCHANGE gets two
// renames, with a moment without a copy between them.
Result<QString> installHeadlampPlugin(const HeadlampPluginSource &plugin,
                                      const QString &pluginsFolder);

// Runs `lamplighter plugin install` and returns the exit code: 0 installed, 1 failed.
int runPluginInstall(const Invocation &invocation);

} // namespace lamplighter
