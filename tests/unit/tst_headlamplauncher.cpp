#include "HeadlampLauncher.h"

#include <QDesktopServices>
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

namespace {

// Creates a file with `content` and the given permissions, creating its folder first.
bool writeFile(const QString &path,
               const QByteArray &content,
               QFileDevice::Permissions permissions = QFileDevice::ReadOwner |
                                                      QFileDevice::WriteOwner)
{
    QDir().mkpath(QFileInfo(path).absolutePath());
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(content) != content.size())
        return false;
    file.close();
    return file.setPermissions(permissions);
}

bool writeExecutable(const QString &path)
{
    return writeFile(path,
                     "#!/bin/sh\nexit 0\n",
                     QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
}

// Returns arguments as /proc/PID/cmdline contains them: each one followed by a NUL byte.
QByteArray commandLine(const QList<QByteArray> &arguments)
{
    QByteArray joined;
    for (const QByteArray &argument : arguments)
        joined += argument + '\0';
    return joined;
}

// Stands in for the system browser through QDesktopServices::setUrlHandler.
class BrowserRecorder : public QObject {
    Q_OBJECT
public:
    QList<QUrl> openedUrls;

public Q_SLOTS:
    void openUrl(const QUrl &url) { openedUrls.append(url); }
};

} // namespace

class TestHeadlampLauncher : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void nothingInstalled();
    void executableOnPath();
    void nonExecutableSkipped();
    void folderNamedHeadlampSkipped();
    void pathBeatsAppImage();
    void appImageInFolder();
    void highestAppImageVersion();
    void flatpakExport();
    void appImageBeatsFlatpak();
    void usualPlacesForUser();
    void kubeconfigsFromEnvironment();
    void kubeconfigsDefaultToKubeConfig();
    void kubeconfigsWithoutUserFiles();
    void argumentsJoinKubeconfigs();
    void runningHeadlampFound();
    void startDesktopRunsProgram();
    void startDesktopFailsForMissingProgram();
    void windowProgramMissing();
    void windowGetsUrlThroughEnvironment();
    void browserOpensLaunchUrl();

private:
    HeadlampSearchPaths searchPaths() const;
    QString path(const QString &relative) const { return m_dir->filePath(relative); }

    std::unique_ptr<QTemporaryDir> m_dir;
};

void TestHeadlampLauncher::init()
{
    m_dir = std::make_unique<QTemporaryDir>();
    QVERIFY(m_dir->isValid());
}

HeadlampSearchPaths TestHeadlampLauncher::searchPaths() const
{
    HeadlampSearchPaths paths;
    paths.executableDirectories = {path(QStringLiteral("bin1")), path(QStringLiteral("bin2"))};
    paths.appImageDirectories = {path(QStringLiteral("Applications")),
                                 path(QStringLiteral("Downloads"))};
    paths.flatpakExportDirectories = {path(QStringLiteral("user-flatpak")),
                                      path(QStringLiteral("system-flatpak"))};
    return paths;
}

void TestHeadlampLauncher::nothingInstalled()
{
    QVERIFY(writeExecutable(path(QStringLiteral("bin1/kubectl"))));
    QVERIFY(writeExecutable(path(QStringLiteral("Applications/Other-1.0.AppImage"))));

    QVERIFY(!findHeadlampDesktop(searchPaths()).has_value());
}

void TestHeadlampLauncher::executableOnPath()
{
    QVERIFY(writeExecutable(path(QStringLiteral("bin2/headlamp"))));

    const std::optional<HeadlampDesktop> found = findHeadlampDesktop(searchPaths());
    QVERIFY(found.has_value());
    QCOMPARE(found->kind, HeadlampDesktop::Kind::Executable);
    QCOMPARE(found->program, path(QStringLiteral("bin2/headlamp")));
}

void TestHeadlampLauncher::nonExecutableSkipped()
{
    QVERIFY(writeFile(path(QStringLiteral("bin1/headlamp")), "not a program"));
    QVERIFY(writeFile(path(QStringLiteral("Downloads/Headlamp-0.45.0-x86_64.AppImage")), "ELF"));

    QVERIFY(!findHeadlampDesktop(searchPaths()).has_value());
}

void TestHeadlampLauncher::folderNamedHeadlampSkipped()
{
    QVERIFY(QDir().mkpath(path(QStringLiteral("bin1/headlamp"))));
    QVERIFY(writeExecutable(path(QStringLiteral("bin2/headlamp"))));

    const std::optional<HeadlampDesktop> found = findHeadlampDesktop(searchPaths());
    QVERIFY(found.has_value());
    QCOMPARE(found->program, path(QStringLiteral("bin2/headlamp")));
}

void TestHeadlampLauncher::pathBeatsAppImage()
{
    QVERIFY(writeExecutable(path(QStringLiteral("Applications/Headlamp-0.45.0-x86_64.AppImage"))));
    QVERIFY(writeExecutable(path(QStringLiteral("bin1/headlamp"))));

    const std::optional<HeadlampDesktop> found = findHeadlampDesktop(searchPaths());
    QVERIFY(found.has_value());
    QCOMPARE(found->kind, HeadlampDesktop::Kind::Executable);
}

void TestHeadlampLauncher::appImageInFolder()
{
    const QString appImage = path(QStringLiteral("Downloads/Headlamp-0.45.0-x86_64.AppImage"));
    QVERIFY(writeExecutable(appImage));

    const std::optional<HeadlampDesktop> found = findHeadlampDesktop(searchPaths());
    QVERIFY(found.has_value());
    QCOMPARE(found->kind, HeadlampDesktop::Kind::AppImage);
    QCOMPARE(found->program, appImage);
}

void TestHeadlampLauncher::highestAppImageVersion()
{
    QVERIFY(writeExecutable(path(QStringLiteral("Applications/Headlamp-0.44.0-x86_64.AppImage"))));
    QVERIFY(writeExecutable(path(QStringLiteral("Applications/Headlamp-0.45.0-x86_64.AppImage"))));

    const std::optional<HeadlampDesktop> found = findHeadlampDesktop(searchPaths());
    QVERIFY(found.has_value());
    QCOMPARE(found->program, path(QStringLiteral("Applications/Headlamp-0.45.0-x86_64.AppImage")));
}

void TestHeadlampLauncher::flatpakExport()
{
    QVERIFY(writeExecutable(path(QStringLiteral("system-flatpak/io.kinvolk.Headlamp"))));

    const std::optional<HeadlampDesktop> found = findHeadlampDesktop(searchPaths());
    QVERIFY(found.has_value());
    QCOMPARE(found->kind, HeadlampDesktop::Kind::Flatpak);
    QCOMPARE(found->program, path(QStringLiteral("system-flatpak/io.kinvolk.Headlamp")));
}

void TestHeadlampLauncher::appImageBeatsFlatpak()
{
    QVERIFY(writeExecutable(path(QStringLiteral("user-flatpak/io.kinvolk.Headlamp"))));
    QVERIFY(writeExecutable(path(QStringLiteral("Downloads/Headlamp-0.45.0-x86_64.AppImage"))));

    const std::optional<HeadlampDesktop> found = findHeadlampDesktop(searchPaths());
    QVERIFY(found.has_value());
    QCOMPARE(found->kind, HeadlampDesktop::Kind::AppImage);
}

void TestHeadlampLauncher::usualPlacesForUser()
{
    QProcessEnvironment environment;
    environment.insert(QStringLiteral("PATH"), QStringLiteral("/usr/local/bin:/usr/bin::"));
    environment.insert(QStringLiteral("XDG_DATA_HOME"), QStringLiteral("/data/jane"));

    const HeadlampSearchPaths paths =
        HeadlampSearchPaths::forUser(environment, QStringLiteral("/home/jane"));

    QCOMPARE(paths.executableDirectories,
             (QStringList{QStringLiteral("/usr/local/bin"), QStringLiteral("/usr/bin")}));
    QVERIFY(paths.appImageDirectories.contains(QStringLiteral("/home/jane/Applications")));
    QVERIFY(paths.appImageDirectories.contains(QStringLiteral("/home/jane/Downloads")));
    QCOMPARE(paths.flatpakExportDirectories,
             (QStringList{QStringLiteral("/data/jane/flatpak/exports/bin"),
                          QStringLiteral("/var/lib/flatpak/exports/bin")}));
}

void TestHeadlampLauncher::kubeconfigsFromEnvironment()
{
    const QString work = path(QStringLiteral("work.yaml"));
    const QString lab = path(QStringLiteral("lab.yaml"));
    const QString ours = path(QStringLiteral("state/lamplighter/kubeconfig"));
    QVERIFY(writeFile(work, "apiVersion: v1\n"));
    QVERIFY(writeFile(lab, "apiVersion: v1\n"));
    QProcessEnvironment environment;
    environment.insert(
        QStringLiteral("KUBECONFIG"),
        QStringList{work, path(QStringLiteral("missing.yaml")), lab, work, ours}.join(
            QLatin1Char(':')));

    const QStringList kubeconfigs =
        headlampKubeconfigs(ours, environment, path(QStringLiteral("home")));

    QCOMPARE(kubeconfigs, (QStringList{work, lab, ours}));
}

void TestHeadlampLauncher::kubeconfigsDefaultToKubeConfig()
{
    const QString home = path(QStringLiteral("home"));
    QVERIFY(writeFile(home + QStringLiteral("/.kube/config"), "apiVersion: v1\n"));
    const QString ours = path(QStringLiteral("state/lamplighter/kubeconfig"));

    const QStringList kubeconfigs = headlampKubeconfigs(ours, QProcessEnvironment(), home);

    QCOMPARE(kubeconfigs, (QStringList{home + QStringLiteral("/.kube/config"), ours}));
}

void TestHeadlampLauncher::kubeconfigsWithoutUserFiles()
{
    const QString ours = path(QStringLiteral("state/lamplighter/kubeconfig"));

    const QStringList kubeconfigs =
        headlampKubeconfigs(ours, QProcessEnvironment(), path(QStringLiteral("home")));

    QCOMPARE(kubeconfigs, QStringList{ours});
}

void TestHeadlampLauncher::argumentsJoinKubeconfigs()
{
    QCOMPARE(
        headlampArguments({QStringLiteral("/a/config"), QStringLiteral("/b/kubeconfig")}),
        (QStringList{QStringLiteral("--kubeconfig"), QStringLiteral("/a/config:/b/kubeconfig")}));
}

void TestHeadlampLauncher::runningHeadlampFound()
{
    const QString proc = path(QStringLiteral("proc"));
    QVERIFY(writeFile(proc + QStringLiteral("/1/comm"), "systemd\n"));
    QVERIFY(writeFile(proc + QStringLiteral("/42/comm"), "lamplighter\n"));
    QVERIFY(writeFile(proc + QStringLiteral("/self/comm"), "headlamp\n"));
    QVERIFY(!isHeadlampRunning(proc));

    QVERIFY(writeFile(proc + QStringLiteral("/977/comm"), "headlamp\n"));
    QVERIFY(isHeadlampRunning(proc));
}

void TestHeadlampLauncher::startDesktopRunsProgram()
{
    // The fake Headlamp records its arguments, one per line.
    const QString record = path(QStringLiteral("arguments.txt"));
    const QString program = path(QStringLiteral("bin1/headlamp"));
    QVERIFY(
        writeFile(program,
                  QStringLiteral("#!/bin/sh\nprintf '%s\\n' \"$@\" > %1.part && mv %1.part %1\n")
                      .arg(record)
                      .toUtf8(),
                  QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));
    const QString proc = path(QStringLiteral("proc"));
    QVERIFY(QDir().mkpath(proc));

    HeadlampLauncher::Settings settings;
    settings.searchPaths = searchPaths();
    settings.procRoot = proc;
    settings.kubeconfigs = {QStringLiteral("/home/jane/.kube/config"),
                            QStringLiteral("/home/jane/.local/state/lamplighter/kubeconfig")};
    const HeadlampLauncher launcher(settings);
    const std::optional<HeadlampDesktop> desktop = launcher.findDesktop();
    QVERIFY(desktop.has_value());

    const Result<QString> started = launcher.startDesktop(*desktop);
    QVERIFY2(started.ok(), qPrintable(started.errorMessage()));
    QCOMPARE(started.value(), QStringLiteral("Headlamp is starting with your clusters."));
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(record), 10'000);
    QFile file(record);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll(),
             QByteArray("--kubeconfig\n/home/jane/.kube/config:/home/jane/.local/state/"
                        "lamplighter/kubeconfig\n"));

    // With Headlamp running on Lamplighter's kubeconfig, the message explains that the window was
    // raised and the clusters appear there.
    QVERIFY(writeFile(proc + QStringLiteral("/977/comm"), "headlamp\n"));
    QVERIFY(writeFile(proc + QStringLiteral("/977/cmdline"),
                      commandLine({"/opt/Headlamp/headlamp",
                                   "--kubeconfig",
                                   "/home/jane/.local/state/lamplighter/kubeconfig"})));
    const Result<QString> raised = launcher.startDesktop(*desktop);
    QVERIFY(raised.ok());
    QVERIFY2(raised.value().contains(QStringLiteral("already running with Lamplighter's")),
             qPrintable(raised.value()));

    QVERIFY(
        writeFile(proc + QStringLiteral("/977/cmdline"), commandLine({"/opt/Headlamp/headlamp"})));
    const Result<QString> raisedWithout = launcher.startDesktop(*desktop);
    QVERIFY(raisedWithout.ok());
    QVERIFY2(raisedWithout.value().contains(QStringLiteral("Quit Headlamp and open it again")),
             qPrintable(raisedWithout.value()));
}

void TestHeadlampLauncher::startDesktopFailsForMissingProgram()
{
    HeadlampLauncher::Settings settings;
    settings.procRoot = path(QStringLiteral("proc"));
    settings.kubeconfigs = {path(QStringLiteral("kubeconfig"))};
    const HeadlampLauncher launcher(settings);
    const QString missing = path(QStringLiteral("bin1/headlamp"));

    const Result<QString> started =
        launcher.startDesktop(HeadlampDesktop{HeadlampDesktop::Kind::Executable, missing});

    QVERIFY(!started.ok());
    QVERIFY2(started.errorMessage().contains(missing), qPrintable(started.errorMessage()));
}

void TestHeadlampLauncher::windowProgramMissing()
{
    HeadlampLauncher::Settings settings;
    settings.windowProgram = path(QStringLiteral("lamplighter-headlamp-window"));
    const HeadlampLauncher launcher(settings);

    const Status opened =
        launcher.openInCluster(QUrl(QStringLiteral("https://127.0.0.1:8443/apps/headlamp/")),
                               HeadlampLauncher::InClusterView::Window);

    QVERIFY(!opened.ok());
    QVERIFY2(opened.errorMessage().contains(settings.windowProgram),
             qPrintable(opened.errorMessage()));
}

void TestHeadlampLauncher::windowGetsUrlThroughEnvironment()
{
    // The fake window records its arguments and the launch URL it finds in its environment.
    const QString record = path(QStringLiteral("window.txt"));
    const QString program = path(QStringLiteral("lamplighter-headlamp-window"));
    QVERIFY(writeFile(program,
                      QStringLiteral("#!/bin/sh\n{ printf '%s\\n' \"$@\"; "
                                     "printf 'url=%s\\n' \"$LAMPLIGHTER_HEADLAMP_URL\"; } "
                                     "> %1.part && mv %1.part %1\n")
                          .arg(record)
                          .toUtf8(),
                      QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));
    HeadlampLauncher::Settings settings;
    settings.windowProgram = program;
    settings.proxyCertificate = QStringLiteral("/home/jane/.local/share/lamplighter/proxy.pem");
    const HeadlampLauncher launcher(settings);
    const QUrl launchUrl(QStringLiteral("https://127.0.0.1:8443/apps/headlamp/?ticket=abc123"));

    const Status opened =
        launcher.openInCluster(launchUrl, HeadlampLauncher::InClusterView::Window);

    QVERIFY2(opened.ok(), qPrintable(opened.errorMessage()));
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(record), 10'000);
    QFile file(record);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll(),
             QByteArray("--ca-file\n/home/jane/.local/share/lamplighter/proxy.pem\n"
                        "url=https://127.0.0.1:8443/apps/headlamp/?ticket=abc123\n"));
}

void TestHeadlampLauncher::browserOpensLaunchUrl()
{
    BrowserRecorder browser;
    QDesktopServices::setUrlHandler(QStringLiteral("https"), &browser, "openUrl");
    HeadlampLauncher::Settings settings;
    settings.windowProgram = path(QStringLiteral("lamplighter-headlamp-window"));
    const HeadlampLauncher launcher(settings);
    const QUrl launchUrl(QStringLiteral("https://127.0.0.1:8443/apps/headlamp/?ticket=abc123"));

    const Status opened =
        launcher.openInCluster(launchUrl, HeadlampLauncher::InClusterView::Browser);
    QDesktopServices::unsetUrlHandler(QStringLiteral("https"));

    QVERIFY2(opened.ok(), qPrintable(opened.errorMessage()));
    QCOMPARE(browser.openedUrls, QList<QUrl>{launchUrl});
}

QTEST_MAIN(TestHeadlampLauncher)
#include "tst_headlamplauncher.moc"
