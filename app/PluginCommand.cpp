#include "PluginCommand.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTextStream>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>

namespace lamplighter {
namespace {

// An XDG base directory variable, or fallback when it is unset, empty or relative.
QString xdgFolder(const char *variable, const QString &fallback)
{
    const QString value = qEnvironmentVariable(variable);
    return QDir::isAbsolutePath(value) ? value : fallback;
}

QString systemError()
{
    return QString::fromLocal8Bit(std::strerror(errno));
}

// A name that is one folder name: not empty, not hidden, without a path separator.
bool isFolderName(const QString &name)
{
    return !name.isEmpty() && !name.startsWith(QLatin1Char('.')) &&
           !name.contains(QLatin1Char('/')) && !name.contains(QLatin1Char('\\'));
}

void removeFileOrFolder(const QString &path)
{
    const QFileInfo info(path);
    if (info.isDir() && !info.isSymLink())
        QDir(path).removeRecursively();
    else
        QFile::remove(path);
}

// Puts the folder staged in place of destination. An existing destination is swapped with
// staged in one renameat2(RENAME_EXCHANGE) call, so that staged then contains the old copy.
// File systems without RENAME_EXCHANGE get two renames, with a moment without a copy between.
Status replaceFolder(const QString &staged, const QString &destination)
{
    const QByteArray from = QFile::encodeName(staged);
    const QByteArray to = QFile::encodeName(destination);
    const QFileInfo existing(destination);
    if (!existing.exists() && !existing.isSymLink()) {
        if (std::rename(from.constData(), to.constData()) == 0)
            return Done{};
        return Error{QStringLiteral("Failed to rename %1 to %2: %3")
                         .arg(staged, destination, systemError())};
    }

    if (::renameat2(AT_FDCWD, from.constData(), AT_FDCWD, to.constData(), RENAME_EXCHANGE) == 0)
        return Done{};
    if (errno != EINVAL && errno != ENOSYS)
        return Error{QStringLiteral("Failed to replace %1 with %2: %3")
                         .arg(destination, staged, systemError())};

    const QString aside = staged + QStringLiteral("-old");
    const QByteArray asideName = QFile::encodeName(aside);
    if (std::rename(to.constData(), asideName.constData()) != 0)
        return Error{QStringLiteral("Failed to move the older copy %1 aside: %2")
                         .arg(destination, systemError())};
    if (std::rename(from.constData(), to.constData()) != 0) {
        const QString reason = systemError();
        std::rename(asideName.constData(), to.constData());
        return Error{
            QStringLiteral("Failed to rename %1 to %2: %3").arg(staged, destination, reason)};
    }
    removeFileOrFolder(aside);
    return Done{};
}

Status copyInto(const QString &source, const QString &target)
{
    QFile file(source);
    if (!file.copy(target))
        return Error{
            QStringLiteral("Failed to copy %1 to %2: %3").arg(source, target, file.errorString())};
    // Headlamp reads the files, and the source may have been read-only.
    QFile::setPermissions(
        target, QFile::ReadOwner | QFile::WriteOwner | QFile::ReadGroup | QFile::ReadOther);
    return Done{};
}

} // namespace

QString headlampPluginsFolder()
{
    const QString home = QDir::homePath();
    const QString defaultDataHome = home + QStringLiteral("/.local/share");
    // Headlamp tests for this exact path, whatever XDG_DATA_HOME is.
    if (QFileInfo(defaultDataHome + QStringLiteral("/Headlamp")).isDir())
        return xdgFolder("XDG_DATA_HOME", defaultDataHome) + QStringLiteral("/Headlamp/plugins");
    return xdgFolder("XDG_CONFIG_HOME", home + QStringLiteral("/.config")) +
           QStringLiteral("/Headlamp/plugins");
}

QString defaultHeadlampPluginSource()
{
    return QStringLiteral(LAMPLIGHTER_HEADLAMP_PLUGIN_INSTALL_DIR);
}

Result<HeadlampPluginSource> findHeadlampPlugin(const QString &folder)
{
    const QString root = QDir(folder).absolutePath();
    HeadlampPluginSource plugin;
    plugin.packageJson = root + QStringLiteral("/package.json");
    plugin.mainScript = root + QStringLiteral("/main.js");
    if (!QFileInfo(plugin.mainScript).isFile())
        plugin.mainScript = root + QStringLiteral("/dist/main.js");

    const QString buildHint =
        QStringLiteral("Build the plugin with `npm ci && npm run build` in "
                       "packaging/headlamp-plugin of Lamplighter's source, then run "
                       "`lamplighter plugin install --from packaging/headlamp-plugin`.");
    if (!QFileInfo(plugin.mainScript).isFile())
        return Error{QStringLiteral("No built Headlamp plugin in %1: neither %1/main.js nor "
                                    "%1/dist/main.js exists. %2")
                         .arg(root, buildHint)};
    QFile packageFile(plugin.packageJson);
    if (!packageFile.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("Failed to read %1: %2. %3")
                         .arg(plugin.packageJson, packageFile.errorString(), buildHint)};

    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(packageFile.readAll(), &parseError);
    if (parseError.error != QJsonParseError::NoError || !document.isObject())
        return Error{QStringLiteral("%1 is not a JSON object: %2")
                         .arg(plugin.packageJson,
                              parseError.error != QJsonParseError::NoError
                                  ? parseError.errorString()
                                  : QStringLiteral("the top level is not an object"))};
    const QJsonValue name = document.object().value(QStringLiteral("name"));
    if (!name.isString() || !isFolderName(name.toString()))
        return Error{QStringLiteral("%1 has an invalid \"name\" %2. Headlamp uses it as a folder "
                                    "name, so it must be a non-empty string without \"/\" or "
                                    "\"\\\" that does not start with \".\".")
                         .arg(plugin.packageJson,
                              name.isString() ? QStringLiteral("\"%1\"").arg(name.toString())
                                              : QStringLiteral("(missing or not a string)"))};
    plugin.name = name.toString();
    plugin.version = document.object().value(QStringLiteral("version")).toString();
    return plugin;
}

Result<QString> installHeadlampPlugin(const HeadlampPluginSource &plugin,
                                      const QString &pluginsFolder)
{
    const QString writeHint = QStringLiteral("Check that the folder is yours and writable, or "
                                             "set XDG_DATA_HOME or XDG_CONFIG_HOME.");
    if (!QDir().mkpath(pluginsFolder))
        return Error{QStringLiteral("Failed to create the Headlamp plugins folder %1. %2")
                         .arg(pluginsFolder, writeHint)};
    QTemporaryDir staged(pluginsFolder + QStringLiteral("/.") + plugin.name +
                         QStringLiteral("-XXXXXX"));
    if (!staged.isValid())
        return Error{QStringLiteral("Failed to write into the Headlamp plugins folder %1: %2. %3")
                         .arg(pluginsFolder, staged.errorString(), writeHint)};
    QFile::setPermissions(staged.path(),
                          QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner |
                              QFile::ReadGroup | QFile::ExeGroup | QFile::ReadOther |
                              QFile::ExeOther);

    for (const QString &source : {plugin.mainScript, plugin.packageJson}) {
        const Status copied = copyInto(source, staged.filePath(QFileInfo(source).fileName()));
        if (!copied)
            return Error{copied.errorMessage()};
    }

    const QString destination = pluginsFolder + QLatin1Char('/') + plugin.name;
    const Status replaced = replaceFolder(staged.path(), destination);
    if (!replaced)
        return Error{replaced.errorMessage()};
    // After a swap the staged path contains the older copy, which may be a file rather than a
    // folder.
    if (QFileInfo::exists(staged.path()) || QFileInfo(staged.path()).isSymLink())
        removeFileOrFolder(staged.path());
    return destination;
}

int runPluginInstall(const Invocation &invocation)
{
    const QString source =
        invocation.pluginSource.isEmpty() ? defaultHeadlampPluginSource() : invocation.pluginSource;
    QTextStream err(stderr);
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(source);
    if (!plugin) {
        err << QStringLiteral("lamplighter: ") << plugin.errorMessage() << Qt::endl;
        return 1;
    }
    const Result<QString> installed = installHeadlampPlugin(*plugin, headlampPluginsFolder());
    if (!installed) {
        err << QStringLiteral("lamplighter: ") << installed.errorMessage() << Qt::endl;
        return 1;
    }
    QTextStream(stdout) << QStringLiteral("Installed the Headlamp plugin \"%1\"%2 into %3. "
                                          "Restart Headlamp desktop if it is running, so that it "
                                          "loads this copy.\n")
                               .arg(plugin->name,
                                    plugin->version.isEmpty()
                                        ? QString()
                                        : QStringLiteral(" %1").arg(plugin->version),
                                    *installed);
    return 0;
}

} // namespace lamplighter
