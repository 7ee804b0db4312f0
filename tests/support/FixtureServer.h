#pragma once

#include "util/Result.h"

#include <QObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QSslCertificate>
#include <QString>
#include <QStringList>
#include <QUrl>

namespace lamplighter::test {

// A Node.js server of tests/fixtures, such as the OpenID provider (oidc-provider/server.mjs) or the
// API server double (apiserver-double/server.mjs), that an integration test runs as a child
// process. Both print one JSON line to stdout once they listen, and log to stderr, which goes to a
// file.
class FixtureServer {
public:
    // name labels error messages and log() ("provider", "API server double"). Every start
    // appends the server's stderr to logPath.
    FixtureServer(QString name, QString logPath);
    ~FixtureServer();
    FixtureServer(const FixtureServer &) = delete;
    FixtureServer &operator=(const FixtureServer &) = delete;

    // Starts the OpenID provider on a free port of 127.0.0.1 with provider.crt and provider.key
    // of pkiDirectory, followed by extraArguments, and returns its issuer.
    Result<QUrl> startProvider(const QString &pkiDirectory,
                               const QStringList &extraArguments = QStringList());
    // Starts node with script, a path under tests/fixtures, and arguments. Waits up to 30 s for
    // the ready line and returns the URL in its field urlField. The error contains the log.
    Result<QUrl>
    start(const QString &script, const QStringList &arguments, const QString &urlField);
    // Sends SIGTERM and, when the server has not exited after 5 s, SIGKILL.
    void stop();
    bool isRunning() const { return m_process.state() != QProcess::NotRunning; }
    // Returns "NAME log:" and the content of the log file.
    QString log() const;
    QProcess &process() { return m_process; }

private:
    QString m_name;
    QString m_logPath;
    QProcess m_process;
};

// Returns the path of node, or an error when node or tests/fixtures/node_modules is missing.
Result<QString> findNode();

// Creates a test PKI in directory with tests/fixtures/make-test-pki.sh and returns its CA
// certificate.
Result<QSslCertificate> makeTestPki(const QString &directory);

// Returns a LoginConfig::browserCommand that runs tests/fixtures/browser-login.mjs on the
// authorization URL. The script completes the sign-in form in headless Chromium, and its output
// is appended to logPath.
QStringList browserLoginCommand(const QString &logPath);

// Starts tests/fixtures/browser-login.mjs on url as a child of parent, with its output appended
// to logPath, and returns the process.
QProcess *startBrowserLogin(const QUrl &url,
                            const QString &logPath,
                            QObject *parent,
                            const QProcessEnvironment &environment =
                                QProcessEnvironment(QProcessEnvironment::InheritFromParent));

} // namespace lamplighter::test
