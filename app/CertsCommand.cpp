#include "CertsCommand.h"

#include "Logging.h"
#include "TerminationSignals.h"
#include "clusterproxy/CertificateRotation.h"
#include "clusterproxy/CertificateRotationConfig.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QTimer>
#include <cstdio>

namespace lamplighter {

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kDefaultIntervalSeconds = 3600;
// One day at most, so that a certificate in its last 30 days is renewed well before it expires.
constexpr int kMaxIntervalSeconds = 24 * 60 * 60;
const char kDefaultConfigPath[] = "/etc/lamplighter-cluster-proxy/config.yaml";

void printError(const QString &message)
{
    std::fprintf(stderr, "lamplighter-cluster-proxy certs: %s\n", qPrintable(message));
}

// Runs one pass and returns the number of entries that failed.
int runPass(CertificateRotation &rotation)
{
    const QList<Result<SecretAction>> results = rotation.runOnce(QDateTime::currentDateTimeUtc());
    int failed = 0;
    for (const Result<SecretAction> &result : results) {
        if (!result)
            ++failed;
    }
    qCInfo(lcKube).noquote()
        << QStringLiteral("Checked %1 TLS Secret(s), %2 failed").arg(results.size()).arg(failed);
    return failed;
}

} // namespace

int runCertsCommand(QCoreApplication &app, QtMessageHandler logHandler)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Creates the TLS Secrets of the configuration's keys entries and renews "
                       "those it created when they expire within 30 days."));
    parser.addHelpOption();
    const QCommandLineOption configOption(
        QStringLiteral("config"),
        QStringLiteral("Read the configuration from FILE (default %1).")
            .arg(QLatin1String(kDefaultConfigPath)),
        QStringLiteral("FILE"),
        QLatin1String(kDefaultConfigPath));
    const QCommandLineOption onceOption(
        QStringLiteral("once"),
        QStringLiteral("Check every entry once and exit, with status 1 when an entry failed."));
    const QCommandLineOption intervalOption(
        QStringLiteral("interval"),
        QStringLiteral("Check every entry every SECONDS seconds, from 1 to %1 (default %2).")
            .arg(kMaxIntervalSeconds)
            .arg(kDefaultIntervalSeconds),
        QStringLiteral("SECONDS"),
        QString::number(kDefaultIntervalSeconds));
    parser.addOptions({configOption, onceOption, intervalOption});

    QStringList arguments = app.arguments();
    arguments.removeAt(1); // the subcommand name
    if (!parser.parse(arguments)) {
        printError(parser.errorText() + QStringLiteral(". See certs --help."));
        return kExitUsage;
    }
    if (parser.isSet(QStringLiteral("help")))
        parser.showHelp(0);
    if (!parser.positionalArguments().isEmpty()) {
        printError(QStringLiteral("unexpected argument \"%1\". See certs --help.")
                       .arg(parser.positionalArguments().constFirst()));
        return kExitUsage;
    }
    bool intervalOk = false;
    const int interval = parser.value(intervalOption).toInt(&intervalOk);
    if (!intervalOk || interval < 1 || interval > kMaxIntervalSeconds) {
        printError(QStringLiteral("--interval must be a whole number of seconds from 1 to %1, "
                                  "got \"%2\"")
                       .arg(kMaxIntervalSeconds)
                       .arg(parser.value(intervalOption)));
        return kExitUsage;
    }

    const Result<CertificateRotationConfig> config =
        loadCertificateRotationConfig(parser.value(configOption));
    if (!config) {
        printError(config.errorMessage());
        return kExitUsage;
    }

    qInstallMessageHandler(logHandler);
    for (const QString &warning : config->warnings)
        qCWarning(lcConfig).noquote() << warning;
    if (config->keys.isEmpty())
        qCWarning(lcConfig).noquote()
            << QStringLiteral("%1 has no entries in keys or openunison.keys, so there is nothing "
                              "to do")
                   .arg(parser.value(configOption));

    CertificateRotation rotation(*config);
    if (parser.isSet(onceOption))
        return runPass(rotation) == 0 ? 0 : kExitFailure;

    quitOnTerminationSignals(&app);
    qCInfo(lcKube).noquote() << QStringLiteral("Checking %1 TLS Secret(s) every %2 s")
                                    .arg(config->keys.size())
                                    .arg(interval);
    QTimer timer;
    timer.setInterval(interval * 1000);
    QObject::connect(&timer, &QTimer::timeout, &app, [&rotation] { runPass(rotation); });
    QTimer::singleShot(0, &app, [&rotation] { runPass(rotation); });
    timer.start();
    const int status = app.exec();
    qCInfo(lcKube).noquote() << QStringLiteral("Stopped checking TLS Secrets");
    return status;
}

} // namespace lamplighter
