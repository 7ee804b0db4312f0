#include "config/ConfigWatcher.h"

#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <cstdio>
#include <memory>

using namespace lamplighter;

namespace {

// Generous, because a loaded machine delivers file system events late. No test measures time.
constexpr int signalTimeoutMs = 20000;

// Returns a valid configuration whose only cluster is `clusterName`. Line 7 is
// enable_impersonation.
QByteArray configText(const char *clusterName, const char *impersonation = "false")
{
    return QByteArray("oidc:\n"
                      "  issuer: https://idp.example.test\n"
                      "  client_id: lamplighter\n"
                      "clusters:\n"
                      "- name: ") +
           clusterName +
           "\n"
           "  server: https://api.example.test:6443\n"
           "enable_impersonation: " +
           impersonation + "\n";
}

} // namespace

class TestConfigWatcher : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void goodEditReloaded();
    void brokenEditRejected();
    void fixAfterBrokenEditReloaded();
    void renameOverFileNoticed();
    void deletedFileRejected();
    void recreatedFileReloaded();
    void warningsOfGoodEditEmitted();
    void unrelatedFileIgnored();
    void busyFolderStillReloads();

private:
    bool writeInPlace(const QByteArray &text);
    bool replaceByRename(const QByteArray &text);
    QString currentClusterName() const;

    std::unique_ptr<QTemporaryDir> m_dir;
    QString m_path;
    std::unique_ptr<ConfigWatcher> m_watcher;
};

void TestConfigWatcher::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
    m_path = m_dir->filePath(QStringLiteral("config.yaml"));
    QVERIFY(writeInPlace(configText("first")));
    Result<Config> initial = loadConfig(m_path);
    QVERIFY2(initial.ok(), qPrintable(initial.errorMessage()));
    m_watcher = std::make_unique<ConfigWatcher>(std::move(initial).value());
    QCOMPARE(currentClusterName(), QStringLiteral("first"));
}

void TestConfigWatcher::cleanup()
{
    m_watcher.reset();
    m_dir.reset();
}

// Truncates and rewrites the file, as an editor that saves in place does.
bool TestConfigWatcher::writeInPlace(const QByteArray &text)
{
    QFile file(m_path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return false;
    return file.write(text) == text.size();
}

// Writes a new file beside the configuration and renames it over it, as many editors save.
bool TestConfigWatcher::replaceByRename(const QByteArray &text)
{
    const QString temporary = m_dir->filePath(QStringLiteral(".config.yaml.swp"));
    QFile file(temporary);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return false;
    if (file.write(text) != text.size())
        return false;
    file.close();
    // QFile::rename() does not replace an existing file, but rename(2) does, atomically.
    return std::rename(QFile::encodeName(temporary).constData(),
                       QFile::encodeName(m_path).constData()) == 0;
}

QString TestConfigWatcher::currentClusterName() const
{
    const Config &config = m_watcher->current();
    return config.clusters.empty() ? QString() : config.clusters.front().name;
}

void TestConfigWatcher::goodEditReloaded()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy rejected(m_watcher.get(), &ConfigWatcher::rejected);

    QVERIFY(writeInPlace(configText("second", "true")));

    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 1, signalTimeoutMs);
    const Config emitted = reloaded.first().first().value<Config>();
    QCOMPARE(emitted.clusters.front().name, QStringLiteral("second"));
    QVERIFY(emitted.enableImpersonation);
    QCOMPARE(currentClusterName(), QStringLiteral("second"));
    QVERIFY(m_watcher->current().enableImpersonation);
    QCOMPARE(rejected.count(), 0);
}

void TestConfigWatcher::brokenEditRejected()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy rejected(m_watcher.get(), &ConfigWatcher::rejected);

    QVERIFY(writeInPlace(configText("second", "maybe")));

    QTRY_COMPARE_WITH_TIMEOUT(rejected.count(), 1, signalTimeoutMs);
    const QString message = rejected.first().first().toString();
    QVERIFY2(message.startsWith(m_path + QStringLiteral(":7:23: ")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("\"enable_impersonation\" must be true or false")),
             qPrintable(message));
    QCOMPARE(reloaded.count(), 0);
    QCOMPARE(currentClusterName(), QStringLiteral("first"));
    QVERIFY(!m_watcher->current().enableImpersonation);
}

void TestConfigWatcher::fixAfterBrokenEditReloaded()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy rejected(m_watcher.get(), &ConfigWatcher::rejected);

    QVERIFY(writeInPlace("oidc: [unclosed\n"));
    QTRY_COMPARE_WITH_TIMEOUT(rejected.count(), 1, signalTimeoutMs);
    QVERIFY2(rejected.first().first().toString().contains(QStringLiteral("invalid YAML")),
             qPrintable(rejected.first().first().toString()));

    QVERIFY(writeInPlace(configText("third")));
    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 1, signalTimeoutMs);
    QCOMPARE(currentClusterName(), QStringLiteral("third"));
    QCOMPARE(rejected.count(), 1);
}

// Renaming over the file ends the watch on the old file, and the watcher must still see edits.
void TestConfigWatcher::renameOverFileNoticed()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy rejected(m_watcher.get(), &ConfigWatcher::rejected);

    QVERIFY(replaceByRename(configText("renamed")));
    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 1, signalTimeoutMs);
    QCOMPARE(currentClusterName(), QStringLiteral("renamed"));

    QVERIFY(replaceByRename(configText("renamed-again")));
    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 2, signalTimeoutMs);
    QCOMPARE(currentClusterName(), QStringLiteral("renamed-again"));

    QVERIFY(writeInPlace(configText("edited")));
    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 3, signalTimeoutMs);
    QCOMPARE(currentClusterName(), QStringLiteral("edited"));
    QCOMPARE(rejected.count(), 0);
}

void TestConfigWatcher::deletedFileRejected()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy rejected(m_watcher.get(), &ConfigWatcher::rejected);

    QVERIFY(QFile::remove(m_path));

    QTRY_COMPARE_WITH_TIMEOUT(rejected.count(), 1, signalTimeoutMs);
    const QString message = rejected.first().first().toString();
    QVERIFY2(message.startsWith(m_path + QStringLiteral(": ")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("cannot read the configuration file")),
             qPrintable(message));
    QCOMPARE(reloaded.count(), 0);
    QCOMPARE(currentClusterName(), QStringLiteral("first"));
}

void TestConfigWatcher::recreatedFileReloaded()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy rejected(m_watcher.get(), &ConfigWatcher::rejected);

    QVERIFY(QFile::remove(m_path));
    QTRY_COMPARE_WITH_TIMEOUT(rejected.count(), 1, signalTimeoutMs);

    QVERIFY(writeInPlace(configText("restored")));
    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 1, signalTimeoutMs);
    QCOMPARE(currentClusterName(), QStringLiteral("restored"));
}

void TestConfigWatcher::warningsOfGoodEditEmitted()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy warnings(m_watcher.get(), &ConfigWatcher::warningsFound);

    QVERIFY(writeInPlace(configText("second") + "logon:\n  timeout_seconds: 60\n"));

    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 1, signalTimeoutMs);
    QCOMPARE(warnings.count(), 1);
    const QStringList emitted = warnings.first().first().toStringList();
    QCOMPARE(emitted.size(), 1);
    QVERIFY2(emitted.first().startsWith(m_path + QStringLiteral(":8:1: unknown field \"logon\"")),
             qPrintable(emitted.first()));
    QCOMPARE(m_watcher->current().warnings, emitted);
}

// Another file changing in the folder wakes the watcher, but the configuration is unchanged.
void TestConfigWatcher::unrelatedFileIgnored()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    QSignalSpy rejected(m_watcher.get(), &ConfigWatcher::rejected);

    QFile other(m_dir->filePath(QStringLiteral("notes.txt")));
    QVERIFY(other.open(QIODevice::WriteOnly));
    QVERIFY(other.write("not the configuration\n") > 0);
    other.close();

    // Nothing may arrive. This waits for the watcher's delay to pass a few times over.
    QVERIFY(!reloaded.wait(3000));
    QCOMPARE(reloaded.count(), 0);
    QCOMPARE(rejected.count(), 0);
}

// Another program creates and removes a file beside the configuration more often than the
// watcher's quiet delay, so the folder never goes quiet. An edit must still be read.
void TestConfigWatcher::busyFolderStillReloads()
{
    QSignalSpy reloaded(m_watcher.get(), &ConfigWatcher::reloaded);
    const QString busyPath = m_dir->filePath(QStringLiteral("busy.lock"));
    int changes = 0;
    QTimer busy;
    busy.setInterval(50);
    connect(&busy, &QTimer::timeout, this, [&busyPath, &changes] {
        QFile file(busyPath);
        const bool changed = file.exists() ? file.remove() : file.open(QIODevice::WriteOnly);
        if (changed)
            ++changes;
    });
    busy.start();

    QVERIFY(writeInPlace(configText("while-busy")));

    QTRY_COMPARE_WITH_TIMEOUT(reloaded.count(), 1, signalTimeoutMs);
    QCOMPARE(currentClusterName(), QStringLiteral("while-busy"));
    QVERIFY(changes > 0);
}

QTEST_GUILESS_MAIN(TestConfigWatcher)
#include "tst_configwatcher.moc"
