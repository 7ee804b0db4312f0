#include "config/ConfigWatcher.h"

#include "Logging.h"

#include <QFile>
#include <QFileInfo>
#include <chrono>
#include <utility>

namespace lamplighter {
namespace {

// The quiet time after the last change before the file is read: long enough to cover an
// editor's write, fsync and rename, short enough to feel immediate.
constexpr std::chrono::milliseconds quietDelay{300};
// The maximum wait after the first change, so that a folder that never goes quiet (another
// program writing a file beside the configuration) cannot hold a reload back forever.
constexpr std::chrono::milliseconds maxDelay{2000};

// Returns the file's bytes, or nothing when it cannot be read (missing, or not readable).
std::optional<QByteArray> readContents(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return std::nullopt;
    return file.readAll();
}

} // namespace

ConfigWatcher::ConfigWatcher(Config initial, QObject *parent)
    : QObject(parent)
    , m_current(std::move(initial))
    , m_absolutePath(QFileInfo(m_current.path).absoluteFilePath())
{
    m_quietTimer.setSingleShot(true);
    m_quietTimer.setInterval(quietDelay);
    m_maxDelayTimer.setSingleShot(true);
    m_maxDelayTimer.setInterval(maxDelay);
    connect(&m_quietTimer, &QTimer::timeout, this, &ConfigWatcher::reload);
    connect(&m_maxDelayTimer, &QTimer::timeout, this, &ConfigWatcher::reload);
    connect(&m_watcher, &QFileSystemWatcher::fileChanged, this, &ConfigWatcher::scheduleReload);
    connect(
        &m_watcher, &QFileSystemWatcher::directoryChanged, this, &ConfigWatcher::scheduleReload);

    const QString folder = QFileInfo(m_absolutePath).absolutePath();
    if (!m_watcher.addPath(folder))
        qCWarning(lcConfig) << "Failed to watch the folder" << folder << "so" << path()
                            << "is not reloaded when it is saved by renaming over it or created "
                               "again";
    watchFile();

    m_lastContents = readContents(path());
    m_haveRead = m_lastContents.has_value();
    // If the file went away after it was loaded, the first reload reports that.
    if (!m_haveRead)
        scheduleReload();
}

void ConfigWatcher::scheduleReload()
{
    m_quietTimer.start();
    if (!m_maxDelayTimer.isActive())
        m_maxDelayTimer.start();
}

// A rename over the file or its deletion ends the watch on it, so the file is watched again
// whenever it exists.
void ConfigWatcher::watchFile()
{
    if (!QFileInfo::exists(m_absolutePath) || m_watcher.files().contains(m_absolutePath))
        return;
    if (!m_watcher.addPath(m_absolutePath))
        qCWarning(lcConfig) << "Failed to watch" << m_absolutePath
                            << "so only changes seen through its folder reload it";
}

void ConfigWatcher::reload()
{
    m_quietTimer.stop();
    m_maxDelayTimer.stop();
    watchFile();

    std::optional<QByteArray> contents = readContents(path());
    if (m_haveRead && contents == m_lastContents)
        return;
    m_haveRead = true;
    m_lastContents = std::move(contents);

    Result<Config> config = loadConfig(path());
    if (!config) {
        qCWarning(lcConfig).noquote()
            << config.errorMessage() << "-- keeping the previous configuration until it is fixed";
        Q_EMIT rejected(config.errorMessage());
        return;
    }

    m_current = std::move(config).value();
    qCInfo(lcConfig) << "Reloaded" << path();
    if (!m_current.warnings.isEmpty()) {
        for (const QString &warning : std::as_const(m_current.warnings))
            qCWarning(lcConfig).noquote() << warning;
        Q_EMIT warningsFound(m_current.warnings);
    }
    Q_EMIT reloaded(m_current);
}

} // namespace lamplighter
