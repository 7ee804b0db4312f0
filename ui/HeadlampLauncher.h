#pragma once

#include "util/Result.h"

#include <QProcessEnvironment>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <optional>

namespace lamplighter {

// The folders in which Headlamp desktop is looked for.
struct HeadlampSearchPaths {
    QStringList executableDirectories;    // searched for an executable "headlamp" (PATH)
    QStringList appImageDirectories;      // searched for an executable Headlamp*.AppImage
    QStringList flatpakExportDirectories; // searched for io.kinvolk.Headlamp, Flatpak's launcher

    // Returns the usual places for a user: PATH, ~/Applications, ~/.local/bin, ~/bin,
    // ~/Downloads and /opt for AppImages, and the user's and the system's Flatpak exports.
    static HeadlampSearchPaths forUser(const QProcessEnvironment &environment,
                                       const QString &homePath);
};

// An installed Headlamp desktop and the program that starts it.
struct HeadlampDesktop {
    enum class Kind { Executable, AppImage, Flatpak };
    Kind kind = Kind::Executable;
    QString program;
};

// Looks for Headlamp desktop: an executable on the PATH first, then an AppImage, then the
// Flatpak io.kinvolk.Headlamp. Returns nothing when none is installed.
std::optional<HeadlampDesktop> findHeadlampDesktop(const HeadlampSearchPaths &paths);

// Returns the kubeconfig files for Headlamp's --kubeconfig: the user's own (the entries of
// KUBECONFIG, or ~/.kube/config) that exist, then Lamplighter's. Headlamp fails to load the
// whole list when one file is unreadable, so missing files are left out. Lamplighter's comes last
// because Headlamp lets a later file's context replace an earlier one of the same name.
QStringList headlampKubeconfigs(const QString &lamplighterKubeconfig,
                                const QProcessEnvironment &environment,
                                const QString &homePath);

// Returns the arguments that start Headlamp desktop with these kubeconfig files.
QStringList headlampArguments(const QStringList &kubeconfigs);

// Returns whether a Headlamp desktop process runs, by the process names under procRoot (/proc).
bool isHeadlampRunning(const QString &procRoot = QStringLiteral("/proc"));

// Opens Headlamp for the person: Headlamp desktop when it is installed, otherwise the in-cluster
// Headlamp through the local proxy, in lamplighter-headlamp-window or in the system browser.
class HeadlampLauncher {
public:
    enum class InClusterView { Window, Browser };

    struct Settings {
        HeadlampSearchPaths searchPaths;
        QString procRoot = QStringLiteral("/proc");
        QStringList kubeconfigs;  // from headlampKubeconfigs()
        QString windowProgram;    // the lamplighter-headlamp-window executable
        QString proxyCertificate; // PEM file of the local proxy's certificate, for the window
    };

    explicit HeadlampLauncher(Settings settings);

    std::optional<HeadlampDesktop> findDesktop() const;

    // Starts Headlamp desktop and returns a message for the person. When Headlamp already runs,
    // a second start only raises its window, which the message explains.
    Result<QString> startDesktop(const HeadlampDesktop &desktop) const;

    // Opens the in-cluster Headlamp at a launch URL of the local proxy. The URL contains a
    // one-time ticket, so the window gets it through its environment, never its command line.
    Status openInCluster(const QUrl &launchUrl, InClusterView view) const;

private:
    Settings m_settings;
};

// The environment variable through which lamplighter-headlamp-window receives its launch URL.
inline constexpr char headlampWindowUrlVariable[] = "LAMPLIGHTER_HEADLAMP_URL";

} // namespace lamplighter
