#include "CredentialCommand.h"

#include "Logging.h"
#include "config/Config.h"
#include "kube/Kubeconfig.h"
#include "session/ControlChannel.h"
#include "session/Session.h"

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLockFile>
#include <QLoggingCategory>
#include <QProcess>
#include <QTextStream>
#include <QThread>
#include <QUrl>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>

namespace lamplighter {
namespace {

const QString execCredentialV1 = QStringLiteral("client.authentication.k8s.io/v1");
const QString execCredentialV1beta1 = QStringLiteral("client.authentication.k8s.io/v1beta1");

constexpr int exitFailure = 1;
constexpr int exitUsage = 2;

// A running Lamplighter may first wait for another process's refresh and then for the provider.
constexpr int credentialTimeoutMs = 120'000;
// A sign-in waits for the person in the browser.
constexpr int loginTimeoutMs = 60 * 60 * 1000;

void printError(const QString &text)
{
    QTextStream(stderr) << QStringLiteral("lamplighter credential: ") << text << Qt::endl;
}

// Tells whether this run may open the browser to sign in.
bool maySignIn(const Invocation &invocation, const ExecInfo &execInfo)
{
    return invocation.loginAllowed && execInfo.interactive;
}

// Returns what the person can do when a sign-in is needed but this run may not start one.
QString signInAdvice(const Invocation &invocation)
{
    if (!invocation.loginAllowed)
        return QStringLiteral("Run `lamplighter login`, or pass --login so that `lamplighter "
                              "credential` opens the browser itself.");
    return QStringLiteral("kubectl runs this plugin without a terminal (KUBERNETES_EXEC_INFO "
                          "has spec.interactive false, as with interactiveMode Never), so it "
                          "does not open the browser. Run `lamplighter login`.");
}

int printCredential(const ExecInfo &execInfo, const QByteArray &idToken, const QDateTime &expiresAt)
{
    const QByteArray credential = formatExecCredential(execInfo.apiVersion, idToken, expiresAt);
    if (std::fwrite(credential.constData(), 1, size_t(credential.size()), stdout) !=
            size_t(credential.size()) ||
        std::fflush(stdout) != 0) {
        printError(QStringLiteral("Failed to write the ExecCredential to standard output."));
        return exitFailure;
    }
    return 0;
}

Result<std::pair<QByteArray, QDateTime>> readIdTokenReply(const QJsonObject &reply)
{
    const QByteArray idToken = reply.value(QStringLiteral("idToken")).toString().toLatin1();
    const QDateTime expiresAt =
        QDateTime::fromString(reply.value(QStringLiteral("expiresAt")).toString(), Qt::ISODate);
    if (idToken.isEmpty() || !expiresAt.isValid())
        return Error{QStringLiteral("The running Lamplighter sent no ID token or no expiry. "
                                    "Restart it, so that it is the same version as this command.")};
    return std::make_pair(idToken, expiresAt);
}

// Gets the ID token from the running instance, which refreshes once for all callers. Returns
// nothing when no instance listens, so the caller refreshes here instead.
std::optional<int> runThroughInstance(const Invocation &invocation, const ExecInfo &execInfo)
{
    const QString socketPath = defaultControlSocketPath();
    const QJsonObject request{{QStringLiteral("command"), QStringLiteral("credential")}};
    bool connected = false;
    Result<QJsonObject> reply =
        sendControlRequest(socketPath, request, credentialTimeoutMs, &connected);
    if (!connected)
        return std::nullopt;

    if (reply && !reply->value(QStringLiteral("ok")).toBool() &&
        reply->value(QStringLiteral("needsLogin")).toBool() && maySignIn(invocation, execInfo)) {
        const Result<QJsonObject> login = sendControlRequest(
            socketPath, {{QStringLiteral("command"), QStringLiteral("login")}}, loginTimeoutMs);
        if (!login) {
            printError(login.errorMessage());
            return exitFailure;
        }
        if (!login->value(QStringLiteral("ok")).toBool()) {
            printError(login->value(QStringLiteral("message")).toString());
            return exitFailure;
        }
        reply = sendControlRequest(socketPath, request, credentialTimeoutMs);
    }

    if (!reply) {
        printError(reply.errorMessage());
        return exitFailure;
    }
    if (!reply->value(QStringLiteral("ok")).toBool()) {
        QString message = reply->value(QStringLiteral("message")).toString();
        if (reply->value(QStringLiteral("needsLogin")).toBool())
            message += QLatin1Char(' ') + signInAdvice(invocation);
        printError(message);
        return exitFailure;
    }
    const auto token = readIdTokenReply(reply.value());
    if (!token) {
        printError(token.errorMessage());
        return exitFailure;
    }
    return printCredential(execInfo, token->first, token->second);
}

// Opens the sign-in page with xdg-open, which needs no GUI application object in this process,
// or prints its address when xdg-open is missing. Standard output is kubectl's, so the address
// goes to standard error.
bool openUrlWithoutDesktopSession(const QUrl &url)
{
    if (QProcess::startDetached(QStringLiteral("xdg-open"), {url.toString(QUrl::FullyEncoded)}))
        return true;
    QTextStream(stderr) << QStringLiteral("Open this address in your browser to sign in:\n  ")
                        << url.toString(QUrl::FullyEncoded) << Qt::endl;
    return true;
}

// The outcome of one try to get the ID token in this process, returned by app.exec() as an int.
enum class Attempt { Printed, Failed, NeedsSignIn };

// Gets the ID token in this process, refreshing it when needed, and prints the credential. With
// signIn set, a missing or ended session starts a sign-in in the browser. Without it, the try
// ends with Attempt::NeedsSignIn and the reason in signInReason.
// The session's refresh takes the lock file that all Lamplighter processes of this user share
// and reads the keychain again under it. So of many parallel callers only the first refreshes,
// and the others read its tokens.
Attempt tryInThisProcess(const Config &config,
                         const ExecInfo &execInfo,
                         bool signIn,
                         QString *signInReason,
                         QCoreApplication &app)
{
    Session::Options options;
    options.serveProxy = false;
    options.refreshOnStart = false;
    options.urlOpener = openUrlWithoutDesktopSession;
    Session session(config, options);
    auto finish = [&app](Attempt attempt) {
        app.exit(int(attempt));
    };

    bool signInStarted = false;
    std::function<void()> requestIdToken;
    requestIdToken = [&] {
        session.requestFreshIdToken([&](const Session::IdTokenResult &result) {
            if (!result.idToken.isEmpty()) {
                const bool printed =
                    printCredential(execInfo, result.idToken, result.expiresAt) == 0;
                finish(printed ? Attempt::Printed : Attempt::Failed);
                return;
            }
            if (result.needsLogin && !signIn) {
                *signInReason = result.errorMessage;
                finish(Attempt::NeedsSignIn);
                return;
            }
            if (result.needsLogin && !signInStarted) {
                signInStarted = true;
                session.signIn();
                return;
            }
            printError(result.errorMessage);
            finish(Attempt::Failed);
        });
    };

    QObject::connect(&session, &Session::stateChanged, &app, [&](Session::State state) {
        if (!signInStarted || state == Session::State::SigningIn)
            return;
        if (state == Session::State::SignedIn) {
            if (session.tokensInMemoryOnly())
                printError(QStringLiteral("No keychain responded, so the tokens are lost when this "
                                          "command ends. Start a Secret Service such as "
                                          "gnome-keyring, or run `lamplighter` in the tray."));
            requestIdToken();
            return;
        }
        printError(session.errorMessage().isEmpty() ? QStringLiteral("Sign-in did not finish.")
                                                    : session.errorMessage());
        finish(Attempt::Failed);
    });
    QObject::connect(&session, &Session::started, &app, [&](const Status &status) {
        if (!status) {
            printError(status.errorMessage());
            finish(Attempt::Failed);
            return;
        }
        requestIdToken();
    });
    session.start();
    return Attempt(app.exec());
}

// Takes lock, trying again every 100 ms for up to timeout. QLockFile::tryLock() waits up to 5 s
// between its tries, and the callers that wait for a sign-in should follow it at once.
Status lockWithin(QLockFile &lock, std::chrono::seconds timeout)
{
    const QDeadlineTimer deadline(timeout);
    while (!lock.tryLock(0)) {
        if (lock.error() != QLockFile::LockFailedError)
            return Error{QStringLiteral("Failed to create the lock file %1. Check that its folder "
                                        "is writable.")
                             .arg(lock.fileName())};
        if (deadline.hasExpired())
            return Error{QStringLiteral("Timed out after %1 s waiting for the lock file %2, which "
                                        "another sign-in holds. Finish that sign-in, or remove "
                                        "the file if no Lamplighter process runs.")
                             .arg(timeout.count())
                             .arg(lock.fileName())};
        QThread::msleep(100);
    }
    return Done{};
}

// Gets the ID token when no instance runs. A sign-in, when one is needed and allowed, runs
// under a lock file, and the process that waited for it reads the keychain again, so parallel
// callers open the browser only once.
int runInThisProcess(const Config &config,
                     const Invocation &invocation,
                     const ExecInfo &execInfo,
                     QCoreApplication &app)
{
    QString signInReason;
    Attempt attempt = tryInThisProcess(config, execInfo, false, &signInReason, app);
    if (attempt != Attempt::NeedsSignIn)
        return attempt == Attempt::Printed ? 0 : exitFailure;
    if (!maySignIn(invocation, execInfo)) {
        printError(signInReason + QLatin1Char(' ') + signInAdvice(invocation));
        return exitFailure;
    }

    const QString lockPath =
        QFileInfo(defaultKubeconfigPath()).absolutePath() + QStringLiteral("/sign-in.lock");
    QDir().mkpath(QFileInfo(lockPath).absolutePath());
    QLockFile signInLock(lockPath);
    // The sign-in of another process may take as long as the person needs in the browser.
    signInLock.setStaleLockTime(0);
    const Status locked = lockWithin(signInLock, config.login.timeout + std::chrono::seconds(30));
    if (!locked) {
        printError(locked.errorMessage());
        return exitFailure;
    }
    attempt = tryInThisProcess(config, execInfo, true, &signInReason, app);
    return attempt == Attempt::Printed ? 0 : exitFailure;
}

} // namespace

Result<ExecInfo> parseExecInfo(const QByteArray &json)
{
    ExecInfo info;
    if (json.trimmed().isEmpty())
        return info;

    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(json, &parseError);
    if (!document.isObject())
        return Error{QStringLiteral("Invalid KUBERNETES_EXEC_INFO: it is not a JSON object (%1).")
                         .arg(parseError.error == QJsonParseError::NoError
                                  ? QStringLiteral("a JSON value of another type")
                                  : parseError.errorString())};
    const QJsonObject object = document.object();

    const QString kind = object.value(QStringLiteral("kind")).toString();
    if (object.contains(QStringLiteral("kind")) && kind != QLatin1String("ExecCredential"))
        return Error{QStringLiteral("Invalid KUBERNETES_EXEC_INFO: kind is \"%1\", expected "
                                    "ExecCredential.")
                         .arg(kind)};

    const QString apiVersion = object.value(QStringLiteral("apiVersion")).toString();
    if (apiVersion.isEmpty())
        return Error{QStringLiteral("Invalid KUBERNETES_EXEC_INFO: apiVersion is missing.")};
    if (apiVersion != execCredentialV1 && apiVersion != execCredentialV1beta1)
        return Error{QStringLiteral("KUBERNETES_EXEC_INFO requests apiVersion \"%1\", which "
                                    "lamplighter credential does not serve. Set apiVersion: %2 (or "
                                    "%3) in the users[].user.exec entry of the kubeconfig.")
                         .arg(apiVersion, execCredentialV1, execCredentialV1beta1)};
    info.apiVersion = apiVersion;

    const QJsonValue interactive =
        object.value(QStringLiteral("spec")).toObject().value(QStringLiteral("interactive"));
    if (!interactive.isUndefined() && !interactive.isBool())
        return Error{QStringLiteral("Invalid KUBERNETES_EXEC_INFO: spec.interactive is not true "
                                    "or false.")};
    // kubectl always sets spec.interactive. A caller that leaves it out is taken as not
    // interactive, as Go reads a missing boolean, so it cannot open a browser by accident.
    info.interactive = interactive.isBool() && interactive.toBool();
    return info;
}

QByteArray formatExecCredential(const QString &apiVersion,
                                const QByteArray &idToken,
                                const QDateTime &expiresAt)
{
    const QJsonObject status{
        {QStringLiteral("token"), QString::fromLatin1(idToken)},
        {QStringLiteral("expirationTimestamp"),
         expiresAt.toUTC().toString(QStringLiteral("yyyy-MM-ddTHH:mm:ssZ"))},
    };
    const QJsonObject credential{
        {QStringLiteral("apiVersion"), apiVersion},
        {QStringLiteral("kind"), QStringLiteral("ExecCredential")},
        {QStringLiteral("status"), status},
    };
    return QJsonDocument(credential).toJson(QJsonDocument::Compact) + '\n';
}

int runCredential(const Invocation &invocation, int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    // kubectl reads standard output, and progress lines would only clutter standard error.
    if (!qEnvironmentVariableIsSet("QT_LOGGING_RULES"))
        QLoggingCategory::setFilterRules(QStringLiteral("lamplighter.*.info=false"));

    const Result<ExecInfo> execInfo = parseExecInfo(qgetenv("KUBERNETES_EXEC_INFO"));
    if (!execInfo) {
        printError(execInfo.errorMessage());
        return exitUsage;
    }
    Result<Config> config = loadConfig(invocation.configPath);
    if (!config) {
        printError(config.errorMessage());
        return exitUsage;
    }
    QStringList clusterNames;
    for (const ClusterConfig &cluster : config->clusters)
        clusterNames.append(cluster.name);
    if (!clusterNames.contains(invocation.clusterName)) {
        printError(QStringLiteral("The cluster \"%1\" is not in the configuration %2. Its "
                                  "clusters are: %3.")
                       .arg(invocation.clusterName,
                            config->path,
                            clusterNames.isEmpty() ? QStringLiteral("none")
                                                   : clusterNames.join(QStringLiteral(", "))));
        return exitUsage;
    }

    if (const std::optional<int> exitCode = runThroughInstance(invocation, execInfo.value()))
        return *exitCode;
    return runInThisProcess(config.value(), invocation, execInfo.value(), app);
}

} // namespace lamplighter
