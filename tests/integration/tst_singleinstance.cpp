#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLockFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

namespace {

constexpr int waitMs = 20'000;

} // namespace

// Two starts of the lamplighter executable in one user session: the second hands its request
// to the first over the control socket and exits, and `lamplighter open` still reaches the
// first. Each test runs the executable with its own HOME and XDG_RUNTIME_DIR, on Qt's offscreen
// platform and without a D-Bus session bus, so the tokens and the proxy key stay in memory.
class TestSingleInstance : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void secondStartHandsOverToFirst();
    void openReachesRunningInstance();
    void unansweredLockFails();

private:
    QProcessEnvironment environment() const;
    QString configPath() const { return m_directory->filePath(QStringLiteral("config.yaml")); }
    QString kubeconfigPath() const;
    // Starts the first instance and waits until it serves; false when it did not.
    bool startFirstInstance();
    // Runs lamplighter with arguments to its end; returns its exit code, or -1 on a timeout.
    int
    run(const QStringList &arguments, QByteArray *output = nullptr, QByteArray *errors = nullptr);

    std::unique_ptr<QTemporaryDir> m_directory;
    QProcess *m_first = nullptr;
    QByteArray m_firstLog;
};

void TestSingleInstance::init()
{
    m_directory = std::make_unique<QTemporaryDir>();
    QVERIFY(m_directory->isValid());
    const QString runtime = m_directory->filePath(QStringLiteral("run"));
    QVERIFY(QDir().mkpath(runtime));
    QVERIFY(QFile::setPermissions(
        runtime, QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));

    // Nothing listens on port 9 of 127.0.0.1; no test here signs in or reaches a cluster. The
    // browser command records that it ran, without the launch URL and its ticket.
    QFile config(configPath());
    QVERIFY(config.open(QIODevice::WriteOnly));
    config.write(QStringLiteral(R"(oidc:
  issuer: https://127.0.0.1:9/
  client_id: lamplighter
clusters:
- name: demo
  server: https://127.0.0.1:9
login:
  browser: [sh, -c, 'echo opened >> %1', sh]
openunison:
  apps:
  - name: headlamp
    label: Headlamp
    injectToken: true
    proxyTo: https://127.0.0.1:9${fullURI}
    az_groups: []
)")
                     .arg(m_directory->filePath(QStringLiteral("browser-starts")))
                     .toUtf8());
    config.close();
    m_firstLog.clear();
}

void TestSingleInstance::cleanup()
{
    if (m_first) {
        m_first->terminate();
        if (!m_first->waitForFinished(5000))
            m_first->kill();
        delete m_first;
        m_first = nullptr;
    }
    if (QTest::currentTestFailed())
        qInfo("The first instance logged:\n%s", m_firstLog.constData());
    m_directory.reset();
}

QProcessEnvironment TestSingleInstance::environment() const
{
    QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
    environment.insert(QStringLiteral("HOME"), m_directory->filePath(QStringLiteral("home")));
    environment.insert(QStringLiteral("XDG_RUNTIME_DIR"),
                       m_directory->filePath(QStringLiteral("run")));
    environment.remove(QStringLiteral("XDG_STATE_HOME"));
    environment.remove(QStringLiteral("XDG_CONFIG_HOME"));
    environment.remove(QStringLiteral("XDG_DATA_HOME"));
    environment.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    environment.insert(QStringLiteral("DBUS_SESSION_BUS_ADDRESS"),
                       QStringLiteral("unix:path=/nonexistent/lamplighter-test-bus"));
    return environment;
}

QString TestSingleInstance::kubeconfigPath() const
{
    return m_directory->filePath(QStringLiteral("home/.local/state/lamplighter/kubeconfig"));
}

bool TestSingleInstance::startFirstInstance()
{
    m_first = new QProcess(this);
    m_first->setProcessEnvironment(environment());
    m_first->setProcessChannelMode(QProcess::MergedChannels);
    connect(m_first, &QProcess::readyRead, this, [this] { m_firstLog += m_first->readAll(); });
    m_first->start(QStringLiteral(LAMPLIGHTER_BINARY), {QStringLiteral("--config"), configPath()});
    return QTest::qWaitFor([this] { return m_firstLog.contains("Lamplighter is running"); },
                           waitMs);
}

int TestSingleInstance::run(const QStringList &arguments, QByteArray *output, QByteArray *errors)
{
    QProcess process;
    process.setProcessEnvironment(environment());
    process.start(QStringLiteral(LAMPLIGHTER_BINARY), arguments);
    // The first instance must go on serving while this process waits for it.
    if (!QTest::qWaitFor([&process] { return process.state() == QProcess::NotRunning; }, waitMs)) {
        process.kill();
        process.waitForFinished();
        return -1;
    }
    if (output)
        *output = process.readAllStandardOutput();
    if (errors)
        *errors = process.readAllStandardError();
    return process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
}

void TestSingleInstance::secondStartHandsOverToFirst()
{
    QVERIFY(startFirstInstance());
    QFile kubeconfig(kubeconfigPath());
    QVERIFY2(kubeconfig.open(QIODevice::ReadOnly), qPrintable(kubeconfigPath()));
    const QByteArray kubeconfigBefore = kubeconfig.readAll();
    kubeconfig.close();

    QByteArray output;
    QByteArray errors;
    QCOMPARE(run({QStringLiteral("--config"), configPath()}, &output, &errors), 0);
    QVERIFY2(output.contains("Lamplighter is already running; it shows its portal now."),
             output.constData());
    // The second start named a configuration file, which the running instance does not read.
    QVERIFY2(errors.contains("keeps its own configuration, so " + configPath().toUtf8() +
                             " was not read"),
             errors.constData());

    QTRY_VERIFY_WITH_TIMEOUT(m_firstLog.contains("Another start of Lamplighter asked for the "
                                                 "portal"),
                             waitMs);
    QCOMPARE(m_first->state(), QProcess::Running);
    // The second start wrote no kubeconfig of its own: the session key is still the first's.
    QVERIFY(kubeconfig.open(QIODevice::ReadOnly));
    QCOMPARE(kubeconfig.readAll(), kubeconfigBefore);

    QCOMPARE(run({QStringLiteral("status")}, &output), 0);
    QVERIFY2(output.contains("State:       signed out"), output.constData());
}

void TestSingleInstance::openReachesRunningInstance()
{
    QVERIFY(startFirstInstance());

    QByteArray output;
    QByteArray errors;
    QCOMPARE(run({QStringLiteral("--config"),
                  configPath(),
                  QStringLiteral("open"),
                  QStringLiteral("headlamp")},
                 &output,
                 &errors),
             0);
    QVERIFY2(output.contains("Opened headlamp in the browser."), errors.constData());
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(m_directory->filePath(QStringLiteral("browser-starts"))),
                             waitMs);
    QTRY_VERIFY_WITH_TIMEOUT(m_firstLog.contains("Created a launch ticket for app \"headlamp\""),
                             waitMs);
}

void TestSingleInstance::unansweredLockFails()
{
    // A lock that a live process holds, with no instance listening on the control socket, as
    // when the first instance hangs before it listens.
    const QString lockPath =
        m_directory->filePath(QStringLiteral("home/.local/state/lamplighter/instance.lock"));
    QVERIFY(QDir().mkpath(QFileInfo(lockPath).absolutePath()));
    QLockFile lock(lockPath);
    QVERIFY(lock.tryLock(0));

    QByteArray errors;
    QCOMPARE(run({QStringLiteral("--config"), configPath()}, nullptr, &errors), 1);
    QVERIFY2(errors.contains("Lamplighter is already running (the lock file"), errors.constData());
    QVERIFY2(errors.contains(lockPath.toUtf8()), errors.constData());
    QVERIFY2(errors.contains("did not answer"), errors.constData());
    QVERIFY(!QFile::exists(kubeconfigPath()));
}

QTEST_GUILESS_MAIN(TestSingleInstance)
#include "tst_singleinstance.moc"
