#include "FixtureServer.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>
#include <QTest>

namespace lamplighter::test {

namespace {

const QString fixturesDirectory = QStringLiteral(LAMPLIGHTER_FIXTURES_DIR);
constexpr int processStartTimeoutMs = 10'000;
constexpr int readyLineTimeoutMs = 30'000;
constexpr int stopTimeoutMs = 5'000;
constexpr int makePkiTimeoutMs = 60'000;

QString nodeProgram()
{
    return QStandardPaths::findExecutable(QStringLiteral("node"));
}

QString readFile(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return QString();
    return QString::fromUtf8(file.readAll());
}

} // namespace

FixtureServer::FixtureServer(QString name, QString logPath)
    : m_name(std::move(name))
    , m_logPath(std::move(logPath))
{}

FixtureServer::~FixtureServer()
{
    stop();
}

Result<QUrl> FixtureServer::startProvider(const QString &pkiDirectory,
                                          const QStringList &extraArguments)
{
    const QStringList arguments = QStringList{QStringLiteral("--port"),
                                              QStringLiteral("0"),
                                              QStringLiteral("--cert"),
                                              pkiDirectory + QStringLiteral("/provider.crt"),
                                              QStringLiteral("--key"),
                                              pkiDirectory + QStringLiteral("/provider.key")} +
                                  extraArguments;
    return start(QStringLiteral("oidc-provider/server.mjs"), arguments, QStringLiteral("issuer"));
}

Result<QUrl>
FixtureServer::start(const QString &script, const QStringList &arguments, const QString &urlField)
{
    m_process.setProgram(nodeProgram());
    m_process.setArguments(QStringList{fixturesDirectory + QLatin1Char('/') + script} + arguments);
    m_process.setStandardErrorFile(m_logPath, QIODevice::Append);
    m_process.start();
    if (!m_process.waitForStarted(processStartTimeoutMs))
        return Error{
            QStringLiteral("The %1 did not start: %2").arg(m_name, m_process.errorString())};

    const bool lineOrExit = QTest::qWaitFor(
        [this] { return m_process.canReadLine() || m_process.state() == QProcess::NotRunning; },
        readyLineTimeoutMs);
    if (!lineOrExit) {
        return Error{QStringLiteral("The %1 did not print its ready line within %2 s.\n%3")
                         .arg(m_name)
                         .arg(readyLineTimeoutMs / 1000)
                         .arg(log())};
    }
    if (!m_process.canReadLine() && m_process.state() == QProcess::NotRunning) {
        return Error{
            QStringLiteral("The %1 exited with code %2 before it printed its ready line.\n%3")
                .arg(m_name)
                .arg(m_process.exitCode())
                .arg(log())};
    }
    // The ready line names the server's URL and port, no secret, so errors may show it.
    const QByteArray readyLine = m_process.readLine().trimmed();
    const QUrl url(QJsonDocument::fromJson(readyLine).object().value(urlField).toString());
    if (!url.isValid() || url.isEmpty() || url.port() <= 0) {
        return Error{QStringLiteral("The ready line of the %1 has no URL with a port in \"%2\": "
                                    "%3\n%4")
                         .arg(m_name, urlField, QString::fromUtf8(readyLine), log())};
    }
    return url;
}

void FixtureServer::stop()
{
    if (m_process.state() == QProcess::NotRunning)
        return;
    m_process.terminate();
    if (!m_process.waitForFinished(stopTimeoutMs))
        m_process.kill();
    m_process.waitForFinished(stopTimeoutMs);
}

QString FixtureServer::log() const
{
    return m_name + QStringLiteral(" log:\n") + readFile(m_logPath);
}

Result<QString> findNode()
{
    const QString node = nodeProgram();
    if (node.isEmpty())
        return Error{QStringLiteral("node is not on PATH; run scripts/install-deps")};
    if (!QFile::exists(fixturesDirectory + QStringLiteral("/node_modules/oidc-provider")))
        return Error{QStringLiteral("tests/fixtures/node_modules is missing; run npm ci in "
                                    "tests/fixtures")};
    return node;
}

Result<QSslCertificate> makeTestPki(const QString &directory)
{
    QProcess makePki;
    makePki.start(fixturesDirectory + QStringLiteral("/make-test-pki.sh"), {directory});
    if (!makePki.waitForFinished(makePkiTimeoutMs)) {
        makePki.kill();
        makePki.waitForFinished(stopTimeoutMs);
        return Error{QStringLiteral("make-test-pki.sh did not finish within %1 s: %2")
                         .arg(makePkiTimeoutMs / 1000)
                         .arg(makePki.errorString())};
    }
    if (makePki.exitStatus() != QProcess::NormalExit || makePki.exitCode() != 0) {
        return Error{QStringLiteral("make-test-pki.sh failed with exit code %1: %2")
                         .arg(makePki.exitCode())
                         .arg(QString::fromLocal8Bit(makePki.readAllStandardError()))};
    }
    const QString caPath = directory + QStringLiteral("/ca.crt");
    const QList<QSslCertificate> ca = QSslCertificate::fromPath(caPath);
    if (ca.size() != 1) {
        return Error{
            QStringLiteral("%1 contains %2 certificates, expected 1").arg(caPath).arg(ca.size())};
    }
    return ca.first();
}

QStringList browserLoginCommand(const QString &logPath)
{
    // BrowserLauncher appends the authorization URL, which becomes "$3" of the shell.
    return {QStringLiteral("/bin/sh"),
            QStringLiteral("-c"),
            QStringLiteral("exec \"$1\" \"$2\" \"$3\" >> \"$0\" 2>&1"),
            logPath,
            nodeProgram(),
            fixturesDirectory + QStringLiteral("/browser-login.mjs")};
}

QProcess *startBrowserLogin(const QUrl &url,
                            const QString &logPath,
                            QObject *parent,
                            const QProcessEnvironment &environment)
{
    auto *browser = new QProcess(parent);
    browser->setProcessEnvironment(environment);
    browser->setProcessChannelMode(QProcess::MergedChannels);
    browser->setStandardOutputFile(logPath, QIODevice::Append);
    browser->start(nodeProgram(),
                   {fixturesDirectory + QStringLiteral("/browser-login.mjs"),
                    url.toString(QUrl::FullyEncoded)});
    return browser;
}

} // namespace lamplighter::test
