#include "CommandLine.h"
#include "PluginCommand.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QTest>
#include <unistd.h>

using namespace lamplighter;

namespace {

QByteArray readAll(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QByteArray();
    return file.readAll();
}

bool writeFile(const QString &path, const QByteArray &content)
{
    QDir().mkpath(QFileInfo(path).absolutePath());
    QFile file(path);
    return file.open(QIODevice::WriteOnly | QIODevice::Truncate) &&
           file.write(content) == content.size();
}

const QByteArray kPackageJson = R"({"name": "lamplighter", "version": "0.1.0"})";

} // namespace

// Each test gets a fresh HOME with XDG_DATA_HOME and XDG_CONFIG_HOME unset, so nothing touches
// the real home folder.
class TestPluginCommand : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void configFolderWithoutHeadlampData();
    void dataFolderWhenHeadlampDataExists();
    void dataRuleChecksDefaultPathOnly();
    void relativeXdgValuesIgnored();

    void findsBuiltSourceFolder();
    void findsInstalledCopy();
    void sourceNotBuilt();
    void sourceWithoutPackageJson();
    void invalidPackageName_data();
    void invalidPackageName();

    void installsIntoEmptyFolder();
    void replacesOlderCopy();
    void replacesFileInPlaceOfFolder();
    void pluginsFolderBlockedByFile();
    void pluginsFolderReadOnly();

    void runInstallsFromOption();
    void runFailsWithoutDefaultSource();

    void parsesPluginInstall();
    void invalidPluginArguments_data();
    void invalidPluginArguments();

private:
    // Writes a built plugin source folder (package.json and dist/main.js) and returns its path.
    QString makeSource(const QByteArray &script, const QByteArray &packageJson = kPackageJson);

    std::unique_ptr<QTemporaryDir> m_root;
    QString m_home;
};

void TestPluginCommand::init()
{
    m_root = std::make_unique<QTemporaryDir>();
    QVERIFY(m_root->isValid());
    m_home = m_root->filePath(QStringLiteral("home"));
    QVERIFY(QDir().mkpath(m_home));
    qputenv("HOME", QFile::encodeName(m_home));
    qunsetenv("XDG_DATA_HOME");
    qunsetenv("XDG_CONFIG_HOME");
}

void TestPluginCommand::cleanup()
{
    // A test may leave a folder without write permission, which removeRecursively cannot empty.
    const QString plugins = m_root->filePath(QStringLiteral("config/Headlamp/plugins"));
    QFile::setPermissions(plugins, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    m_root.reset();
}

QString TestPluginCommand::makeSource(const QByteArray &script, const QByteArray &packageJson)
{
    const QString source = m_root->filePath(QStringLiteral("source"));
    writeFile(source + QStringLiteral("/dist/main.js"), script);
    writeFile(source + QStringLiteral("/package.json"), packageJson);
    return source;
}

void TestPluginCommand::configFolderWithoutHeadlampData()
{
    QCOMPARE(headlampPluginsFolder(), m_home + QStringLiteral("/.config/Headlamp/plugins"));

    const QString config = m_root->filePath(QStringLiteral("config"));
    qputenv("XDG_CONFIG_HOME", QFile::encodeName(config));
    QCOMPARE(headlampPluginsFolder(), config + QStringLiteral("/Headlamp/plugins"));
}

void TestPluginCommand::dataFolderWhenHeadlampDataExists()
{
    QVERIFY(QDir().mkpath(m_home + QStringLiteral("/.local/share/Headlamp")));
    qputenv("XDG_CONFIG_HOME", QFile::encodeName(m_root->filePath(QStringLiteral("config"))));
    QCOMPARE(headlampPluginsFolder(), m_home + QStringLiteral("/.local/share/Headlamp/plugins"));

    const QString data = m_root->filePath(QStringLiteral("data"));
    qputenv("XDG_DATA_HOME", QFile::encodeName(data));
    QCOMPARE(headlampPluginsFolder(), data + QStringLiteral("/Headlamp/plugins"));
}

void TestPluginCommand::dataRuleChecksDefaultPathOnly()
{
    // Headlamp tests ~/.local/share/Headlamp, not $XDG_DATA_HOME/Headlamp.
    const QString data = m_root->filePath(QStringLiteral("data"));
    QVERIFY(QDir().mkpath(data + QStringLiteral("/Headlamp")));
    qputenv("XDG_DATA_HOME", QFile::encodeName(data));
    QCOMPARE(headlampPluginsFolder(), m_home + QStringLiteral("/.config/Headlamp/plugins"));

    // A file of that name is not the folder.
    QVERIFY(QDir().mkpath(m_home + QStringLiteral("/.local/share")));
    QVERIFY(writeFile(m_home + QStringLiteral("/.local/share/Headlamp"), "not a folder"));
    QCOMPARE(headlampPluginsFolder(), m_home + QStringLiteral("/.config/Headlamp/plugins"));
}

void TestPluginCommand::relativeXdgValuesIgnored()
{
    qputenv("XDG_CONFIG_HOME", "relative/config");
    QCOMPARE(headlampPluginsFolder(), m_home + QStringLiteral("/.config/Headlamp/plugins"));

    QVERIFY(QDir().mkpath(m_home + QStringLiteral("/.local/share/Headlamp")));
    qputenv("XDG_DATA_HOME", "relative/data");
    QCOMPARE(headlampPluginsFolder(), m_home + QStringLiteral("/.local/share/Headlamp/plugins"));
}

void TestPluginCommand::findsBuiltSourceFolder()
{
    const QString source = makeSource("built();");
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(source);
    QVERIFY2(plugin, qPrintable(plugin.errorMessage()));
    QCOMPARE(plugin->mainScript, source + QStringLiteral("/dist/main.js"));
    QCOMPARE(plugin->packageJson, source + QStringLiteral("/package.json"));
    QCOMPARE(plugin->name, QStringLiteral("lamplighter"));
    QCOMPARE(plugin->version, QStringLiteral("0.1.0"));
}

void TestPluginCommand::findsInstalledCopy()
{
    const QString installed = m_root->filePath(QStringLiteral("share/lamplighter/headlamp-plugin"));
    QVERIFY(writeFile(installed + QStringLiteral("/main.js"), "installed();"));
    QVERIFY(writeFile(installed + QStringLiteral("/dist/main.js"), "stale();"));
    QVERIFY(writeFile(installed + QStringLiteral("/package.json"), R"({"name": "lamplighter"})"));
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(installed);
    QVERIFY2(plugin, qPrintable(plugin.errorMessage()));
    QCOMPARE(plugin->mainScript, installed + QStringLiteral("/main.js"));
    QVERIFY(plugin->version.isEmpty());
}

void TestPluginCommand::sourceNotBuilt()
{
    const QString source = m_root->filePath(QStringLiteral("source"));
    QVERIFY(writeFile(source + QStringLiteral("/package.json"), kPackageJson));
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(source);
    QVERIFY(!plugin);
    QVERIFY2(plugin.errorMessage().contains(source + QStringLiteral("/dist/main.js")),
             qPrintable(plugin.errorMessage()));
    QVERIFY2(plugin.errorMessage().contains(QStringLiteral("npm ci && npm run build")),
             qPrintable(plugin.errorMessage()));

    const QString missing = m_root->filePath(QStringLiteral("missing"));
    const Result<HeadlampPluginSource> nothing = findHeadlampPlugin(missing);
    QVERIFY(!nothing);
    QVERIFY2(nothing.errorMessage().contains(missing), qPrintable(nothing.errorMessage()));
}

void TestPluginCommand::sourceWithoutPackageJson()
{
    const QString source = makeSource("built();");
    QVERIFY(QFile::remove(source + QStringLiteral("/package.json")));
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(source);
    QVERIFY(!plugin);
    QVERIFY2(plugin.errorMessage().startsWith(
                 QStringLiteral("Failed to read %1/package.json").arg(source)),
             qPrintable(plugin.errorMessage()));
}

void TestPluginCommand::invalidPackageName_data()
{
    QTest::addColumn<QByteArray>("packageJson");
    QTest::addColumn<QString>("expected");

    QTest::newRow("not JSON") << QByteArray("{name") << QStringLiteral("is not a JSON object");
    QTest::newRow("array") << QByteArray("[]") << QStringLiteral("is not a JSON object");
    QTest::newRow("no name") << QByteArray("{}") << QStringLiteral("(missing or not a string)");
    QTest::newRow("number") << QByteArray(R"({"name": 3})")
                            << QStringLiteral("(missing or not a string)");
    QTest::newRow("empty") << QByteArray(R"({"name": ""})")
                           << QStringLiteral("invalid \"name\" \"\"");
    QTest::newRow("slash") << QByteArray(R"({"name": "../escape"})")
                           << QStringLiteral("invalid \"name\" \"../escape\"");
    QTest::newRow("scope") << QByteArray(R"({"name": "@team/plugin"})")
                           << QStringLiteral("invalid \"name\" \"@team/plugin\"");
    QTest::newRow("hidden") << QByteArray(R"({"name": ".hidden"})")
                            << QStringLiteral("invalid \"name\" \".hidden\"");
}

void TestPluginCommand::invalidPackageName()
{
    QFETCH(QByteArray, packageJson);
    QFETCH(QString, expected);
    const QString source = makeSource("built();", packageJson);
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(source);
    QVERIFY(!plugin);
    QVERIFY2(plugin.errorMessage().contains(source + QStringLiteral("/package.json")),
             qPrintable(plugin.errorMessage()));
    QVERIFY2(plugin.errorMessage().contains(expected), qPrintable(plugin.errorMessage()));
}

void TestPluginCommand::installsIntoEmptyFolder()
{
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(makeSource("built();"));
    QVERIFY2(plugin, qPrintable(plugin.errorMessage()));
    const QString plugins = headlampPluginsFolder();

    const Result<QString> installed = installHeadlampPlugin(*plugin, plugins);
    QVERIFY2(installed, qPrintable(installed.errorMessage()));
    QCOMPARE(*installed, plugins + QStringLiteral("/lamplighter"));
    QCOMPARE(readAll(*installed + QStringLiteral("/main.js")), QByteArray("built();"));
    QCOMPARE(readAll(*installed + QStringLiteral("/package.json")), kPackageJson);
    QCOMPARE(QDir(*installed).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden),
             (QStringList{QStringLiteral("main.js"), QStringLiteral("package.json")}));
    QCOMPARE(QDir(plugins).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden),
             QStringList{QStringLiteral("lamplighter")});
    QVERIFY(QFileInfo(*installed).permissions().testFlag(QFile::ReadOther));
    QVERIFY(QFileInfo(*installed + QStringLiteral("/main.js"))
                .permissions()
                .testFlag(QFile::ReadOther));
}

void TestPluginCommand::replacesOlderCopy()
{
    const QString plugins = headlampPluginsFolder();
    QVERIFY(writeFile(plugins + QStringLiteral("/lamplighter/main.js"), "old();"));
    QVERIFY(writeFile(plugins + QStringLiteral("/lamplighter/leftover.js"), "left();"));
    QVERIFY(writeFile(plugins + QStringLiteral("/other/main.js"), "other();"));

    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(makeSource("new();"));
    QVERIFY2(plugin, qPrintable(plugin.errorMessage()));
    const Result<QString> installed = installHeadlampPlugin(*plugin, plugins);
    QVERIFY2(installed, qPrintable(installed.errorMessage()));

    QCOMPARE(readAll(*installed + QStringLiteral("/main.js")), QByteArray("new();"));
    QVERIFY(!QFileInfo::exists(*installed + QStringLiteral("/leftover.js")));
    QCOMPARE(readAll(plugins + QStringLiteral("/other/main.js")), QByteArray("other();"));
    // Neither the staged folder nor the older copy stays behind.
    QCOMPARE(QDir(plugins).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden),
             (QStringList{QStringLiteral("lamplighter"), QStringLiteral("other")}));
}

void TestPluginCommand::replacesFileInPlaceOfFolder()
{
    const QString plugins = headlampPluginsFolder();
    QVERIFY(writeFile(plugins + QStringLiteral("/lamplighter"), "a file"));
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(makeSource("new();"));
    QVERIFY2(plugin, qPrintable(plugin.errorMessage()));
    const Result<QString> installed = installHeadlampPlugin(*plugin, plugins);
    QVERIFY2(installed, qPrintable(installed.errorMessage()));
    QVERIFY(QFileInfo(*installed).isDir());
    QCOMPARE(readAll(*installed + QStringLiteral("/main.js")), QByteArray("new();"));
    QCOMPARE(QDir(plugins).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden),
             QStringList{QStringLiteral("lamplighter")});
}

void TestPluginCommand::pluginsFolderBlockedByFile()
{
    // A file where a folder must be stops even root, unlike permissions.
    const QString config = m_root->filePath(QStringLiteral("config"));
    qputenv("XDG_CONFIG_HOME", QFile::encodeName(config));
    QVERIFY(writeFile(config + QStringLiteral("/Headlamp"), "not a folder"));
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(makeSource("built();"));
    QVERIFY2(plugin, qPrintable(plugin.errorMessage()));

    const Result<QString> installed = installHeadlampPlugin(*plugin, headlampPluginsFolder());
    QVERIFY(!installed);
    QVERIFY2(installed.errorMessage().startsWith(
                 QStringLiteral("Failed to create the Headlamp plugins folder %1/Headlamp/plugins.")
                     .arg(config)),
             qPrintable(installed.errorMessage()));
    QVERIFY2(installed.errorMessage().contains(QStringLiteral("XDG_CONFIG_HOME")),
             qPrintable(installed.errorMessage()));
}

void TestPluginCommand::pluginsFolderReadOnly()
{
    if (::geteuid() == 0)
        QSKIP("root may write into a read-only folder; pluginsFolderBlockedByFile covers root");
    const QString config = m_root->filePath(QStringLiteral("config"));
    qputenv("XDG_CONFIG_HOME", QFile::encodeName(config));
    const QString plugins = headlampPluginsFolder();
    QVERIFY(writeFile(plugins + QStringLiteral("/lamplighter/main.js"), "old();"));
    QVERIFY(QFile::setPermissions(plugins, QFile::ReadOwner | QFile::ExeOwner));
    const Result<HeadlampPluginSource> plugin = findHeadlampPlugin(makeSource("new();"));
    QVERIFY2(plugin, qPrintable(plugin.errorMessage()));

    const Result<QString> installed = installHeadlampPlugin(*plugin, plugins);
    QVERIFY(!installed);
    QVERIFY2(
        installed.errorMessage().startsWith(
            QStringLiteral("Failed to write into the Headlamp plugins folder %1").arg(plugins)),
        qPrintable(installed.errorMessage()));
    QCOMPARE(readAll(plugins + QStringLiteral("/lamplighter/main.js")), QByteArray("old();"));
}

void TestPluginCommand::runInstallsFromOption()
{
    Invocation invocation;
    invocation.command = Invocation::Command::PluginInstall;
    invocation.pluginSource = makeSource("built();");
    QCOMPARE(runPluginInstall(invocation), 0);
    QCOMPARE(readAll(m_home + QStringLiteral("/.config/Headlamp/plugins/lamplighter/main.js")),
             QByteArray("built();"));
}

void TestPluginCommand::runFailsWithoutDefaultSource()
{
    // The test build points the default at a folder that does not exist.
    QVERIFY(!QFileInfo::exists(defaultHeadlampPluginSource()));
    Invocation invocation;
    invocation.command = Invocation::Command::PluginInstall;
    QCOMPARE(runPluginInstall(invocation), 1);
    QVERIFY(!QFileInfo::exists(m_home + QStringLiteral("/.config/Headlamp")));
}

void TestPluginCommand::parsesPluginInstall()
{
    const Invocation plain =
        parseCommandLine({QStringLiteral("plugin"), QStringLiteral("install")});
    QVERIFY2(plain.errorMessage.isEmpty(), qPrintable(plain.errorMessage));
    QCOMPARE(plain.command, Invocation::Command::PluginInstall);
    QVERIFY(plain.pluginSource.isEmpty());

    const Invocation from = parseCommandLine({QStringLiteral("plugin"),
                                              QStringLiteral("install"),
                                              QStringLiteral("--from"),
                                              QStringLiteral("/opt/plugin")});
    QVERIFY2(from.errorMessage.isEmpty(), qPrintable(from.errorMessage));
    QCOMPARE(from.command, Invocation::Command::PluginInstall);
    QCOMPARE(from.pluginSource, QStringLiteral("/opt/plugin"));

    const Invocation help = parseCommandLine({QStringLiteral("plugin"), QStringLiteral("--help")});
    QVERIFY2(help.errorMessage.isEmpty(), qPrintable(help.errorMessage));
    QVERIFY2(
        help.helpText.contains(QStringLiteral("Usage: lamplighter plugin install [--from DIR]")),
        qPrintable(help.helpText));
    QVERIFY2(help.helpText.contains(QStringLiteral("--from")), qPrintable(help.helpText));

    const Invocation general = parseCommandLine({QStringLiteral("--help")});
    QVERIFY(general.helpText.contains(QStringLiteral("plugin")));
    QVERIFY(!general.helpText.contains(QStringLiteral("--from")));
}

void TestPluginCommand::invalidPluginArguments_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<QString>("expected");

    QTest::newRow("no subcommand")
        << QStringList{QStringLiteral("plugin")} << QStringLiteral("needs the subcommand");
    QTest::newRow("unknown subcommand")
        << QStringList{QStringLiteral("plugin"), QStringLiteral("remove")}
        << QStringLiteral("Unknown subcommand \"remove\"");
    QTest::newRow("extra argument")
        << QStringList{QStringLiteral("plugin"), QStringLiteral("install"), QStringLiteral("dir")}
        << QStringLiteral("takes no arguments, got \"dir\"");
    QTest::newRow("empty from") << QStringList{QStringLiteral("plugin"),
                                               QStringLiteral("install"),
                                               QStringLiteral("--from=")}
                                << QStringLiteral("--from needs a folder");
    QTest::newRow("from on status")
        << QStringList{QStringLiteral("status"), QStringLiteral("--from"), QStringLiteral("dir")}
        << QStringLiteral("applies only to the command \"plugin install\"");
}

void TestPluginCommand::invalidPluginArguments()
{
    QFETCH(QStringList, arguments);
    QFETCH(QString, expected);
    const Invocation invocation = parseCommandLine(arguments);
    QVERIFY2(invocation.errorMessage.contains(expected), qPrintable(invocation.errorMessage));
}

QTEST_GUILESS_MAIN(TestPluginCommand)
#include "tst_plugincommand.moc"
