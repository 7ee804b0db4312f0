#pragma once

#include "config/Config.h"

#include <QByteArray>
#include <QFileSystemWatcher>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QTimer>
#include <optional>

namespace lamplighter {

// Reloads the configuration file when it changes on disk and keeps the last good version.
//
// It watches the file and its folder, because many editors save by writing a new file and
// renaming it over the old one, which ends a watch on the file alone. The file is read once the
// changes have paused briefly (at most a few seconds after the first one), so that a save that
// writes in several steps is read once. A version that fails to load is rejected and the
// previous one stays current.
//
// Only the configuration file is watched: a changed CA file that it names is read again at the
// next change of the configuration file itself.
class ConfigWatcher : public QObject {
    Q_OBJECT
public:
    // Starts watching `initial.path`. `initial` stays current until a changed file loads.
    explicit ConfigWatcher(Config initial, QObject *parent = nullptr);

    // Returns the last version that loaded without an error.
    const Config &current() const { return m_current; }

    // Returns the path of the watched file.
    const QString &path() const { return m_current.path; }

Q_SIGNALS:
    // A changed file loaded; `config` is now current().
    void reloaded(const Config &config);
    // The warnings (Config::warnings) of a changed file that loaded, emitted just before
    // reloaded() and only when there are some.
    void warningsFound(const QStringList &warnings);
    // The changed file, or its absence, failed to load. `message` names the file and, where
    // there is one, the line and column. current() is unchanged.
    void rejected(const QString &message);

private:
    void scheduleReload();
    void reload();
    void watchFile();

    Config m_current;
    QString m_absolutePath; // of the watched file, as QFileSystemWatcher lists it
    QFileSystemWatcher m_watcher;
    QTimer m_quietTimer;    // restarted by every change
    QTimer m_maxDelayTimer; // started by the first change after a reload
    // The bytes of the last version read, good or bad, so that an event that leaves the file as
    // it was (another file in the folder changed) emits nothing. Empty when it could not be read.
    std::optional<QByteArray> m_lastContents;
    bool m_haveRead = false; // whether m_lastContents describes a read, even a failed one
};

} // namespace lamplighter
