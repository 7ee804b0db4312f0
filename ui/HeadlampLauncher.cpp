#include "HeadlampLauncher.h"

#include "Logging.h"

#include <QDesktopServices>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>

namespace lamplighter {
namespace {

const QString flatpakApplicationId = QStringLiteral("io.kinvolk.Headlamp");

bool isExecutableFile(const QString &path)
{
    const QFileInfo info(path);
    return info.isFile() && info.isExecutable();
}

std::optional<QString> findAppImage(const QString &directory)
{
    const QDir folder(directory);
    const QStringList candidates = folder.entryList(
        {QStringLiteral("Headlamp*.AppImage"), QStringLiteral("headlamp*.AppImage")},
        QDir::Files,
        QDir::Name | QDir::Reversed);
    // Reversed name order puts the highest version of names such as Headlamp-0.45.0-x86_64
    // first, as long as the versions have digits of equal length.
    for (const QString &name : candidates) {
        const QString path = folder.filePath(name);
        if (isExecutableFile(path))
            return path;
    }
    return std::nullopt;
}

// The command lines of the Headlamp desktop processes under procRoot, one string each with the
// arguments separated by spaces.
QStringList headlampCommandLines(const QString &procRoot)
{
    QStringList commandLines;
    const QDir proc(procRoot);
    for (const QString &entry : proc.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
        bool isProcessId = false;
        entry.toLongLong(&isProcessId);
        if (!isProcessId)
            continue;
        QFile comm(proc.filePath(entry + QStringLiteral("/comm")));
        if (!comm.open(QIODevice::ReadOnly))
            continue;
        // The kernel truncates process names to 15 bytes, so "headlamp-server" still matches.
        if (!comm.readAll().trimmed().startsWith("headlamp"))
            continue;
        QFile cmdline(proc.filePath(entry + QStringLiteral("/cmdline")));
        QByteArray arguments;
        if (cmdline.open(QIODevice::ReadOnly))
            arguments = cmdline.readAll();
        commandLines.append(QString::fromLocal8Bit(arguments.replace('\0', ' ')).trimmed());
    }
    return commandLines;
}

} // namespace

HeadlampSearchPaths HeadlampSearchPaths::forUser(const QProcessEnvironment &environment,
                                                 const QString &homePath)
{
    HeadlampSearchPaths paths;
    paths.executableDirectories =
        environment.value(QStringLiteral("PATH")).split(QLatin1Char(':'), Qt::SkipEmptyParts);
    paths.appImageDirectories = {homePath + QStringLiteral("/Applications"),
                                 homePath + QStringLiteral("/.local/bin"),
                                 homePath + QStringLiteral("/bin"),
                                 homePath + QStringLiteral("/Downloads"),
                                 QStringLiteral("/opt")};

    QString dataHome = environment.value(QStringLiteral("XDG_DATA_HOME"));
    if (dataHome.isEmpty() || QDir::isRelativePath(dataHome))
        dataHome = homePath + QStringLiteral("/.local/share");
    paths.flatpakExportDirectories = {dataHome + QStringLiteral("/flatpak/exports/bin"),
                                      QStringLiteral("/var/lib/flatpak/exports/bin")};
    return paths;
}

std::optional<HeadlampDesktop> findHeadlampDesktop(const HeadlampSearchPaths &paths)
{
    for (const QString &directory : paths.executableDirectories) {
        const QString path = QDir(directory).filePath(QStringLiteral("headlamp"));
        if (isExecutableFile(path))
            return HeadlampDesktop{HeadlampDesktop::Kind::Executable, path};
    }
    for (const QString &directory : paths.appImageDirectories) {
        if (const std::optional<QString> path = findAppImage(directory))
            return HeadlampDesktop{HeadlampDesktop::Kind::AppImage, *path};
    }
    // Flatpak exports a launcher script per installed app, which runs `flatpak run` with the
    // script's arguments, so the flatpak command need not be run to find the app.
    for (const QString &directory : paths.flatpakExportDirectories) {
        const QString path = QDir(directory).filePath(flatpakApplicationId);
        if (isExecutableFile(path))
            return HeadlampDesktop{HeadlampDesktop::Kind::Flatpak, path};
    }
    return std::nullopt;
}

QStringList headlampKubeconfigs(const QString &lamplighterKubeconfig,
                                const QProcessEnvironment &environment,
                                const QString &homePath)
{
    QStringList userFiles =
        environment.value(QStringLiteral("KUBECONFIG")).split(QLatin1Char(':'), Qt::SkipEmptyParts);
    if (userFiles.isEmpty())
        userFiles.append(homePath + QStringLiteral("/.kube/config"));

    QStringList kubeconfigs;
    for (const QString &file : std::as_const(userFiles)) {
        const QFileInfo info(file);
        const QString path = info.absoluteFilePath();
        if (info.isFile() && info.isReadable() && path != lamplighterKubeconfig &&
            !kubeconfigs.contains(path))
            kubeconfigs.append(path);
    }
    kubeconfigs.append(lamplighterKubeconfig);
    return kubeconfigs;
}

QStringList headlampArguments(const QStringList &kubeconfigs)
{
    return {QStringLiteral("--kubeconfig"), kubeconfigs.join(QLatin1Char(':'))};
}

bool isHeadlampRunning(const QString &procRoot)
{
    return !headlampCommandLines(procRoot).isEmpty();
}

HeadlampLauncher::HeadlampLauncher(Settings settings)
    : m_settings(std::move(settings))
{}

std::optional<HeadlampDesktop> HeadlampLauncher::findDesktop() const
{
    return findHeadlampDesktop(m_settings.searchPaths);
}

Result<QString> HeadlampLauncher::startDesktop(const HeadlampDesktop &desktop) const
{
    const QStringList running = headlampCommandLines(m_settings.procRoot);
    const QStringList arguments = headlampArguments(m_settings.kubeconfigs);
    qint64 processId = 0;
    if (!QProcess::startDetached(desktop.program, arguments, QString(), &processId))
        return Error{QObject::tr("Failed to start Headlamp (%1). Check that the file is "
                                 "executable, or remove it to use the in-cluster Headlamp.")
                         .arg(desktop.program)};
    qCInfo(lcApp).noquote() << "Started Headlamp desktop" << desktop.program << "as process"
                            << processId;

    if (running.isEmpty())
        return QObject::tr("Headlamp is starting with your clusters.");

    // A second start only raises the running window and drops its arguments.
    const QString lamplighterKubeconfig =
        m_settings.kubeconfigs.isEmpty() ? QString() : m_settings.kubeconfigs.constLast();
    for (const QString &commandLine : running) {
        if (!lamplighterKubeconfig.isEmpty() && commandLine.contains(lamplighterKubeconfig))
            return QObject::tr("Headlamp is already running with Lamplighter's kubeconfig. Its "
                               "clusters appear there within about 10 seconds once the file is "
                               "written.");
    }
    return QObject::tr("Headlamp is already running without Lamplighter's kubeconfig, so its "
                       "window was only raised. Quit Headlamp and open it again from Lamplighter "
                       "to see Lamplighter's clusters.");
}

Status HeadlampLauncher::openInCluster(const QUrl &launchUrl, InClusterView view) const
{
    if (view == InClusterView::Browser) {
        if (!QDesktopServices::openUrl(launchUrl))
            return Error{QObject::tr("Failed to open the system browser for Headlamp. Set "
                                     "login.browser in the configuration, or open Headlamp in "
                                     "Lamplighter's window.")};
        return Done{};
    }

    if (!isExecutableFile(m_settings.windowProgram))
        return Error{QObject::tr("The Headlamp window program %1 is not found. Reinstall "
                                 "Lamplighter, or open Headlamp in the browser.")
                         .arg(m_settings.windowProgram)};
    QProcess process;
    process.setProgram(m_settings.windowProgram);
    QStringList arguments;
    if (!m_settings.proxyCertificate.isEmpty())
        arguments << QStringLiteral("--ca-file") << m_settings.proxyCertificate;
    process.setArguments(arguments);
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    environment.insert(QString::fromLatin1(headlampWindowUrlVariable),
                       launchUrl.toString(QUrl::FullyEncoded));
    process.setProcessEnvironment(environment);
    qint64 processId = 0;
    if (!process.startDetached(&processId))
        return Error{QObject::tr("Failed to start the Headlamp window %1: %2")
                         .arg(m_settings.windowProgram, process.errorString())};
    qCInfo(lcApp) << "Started the Headlamp window as process" << processId;
    return Done{};
}

} // namespace lamplighter
