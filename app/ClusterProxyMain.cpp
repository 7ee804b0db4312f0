// lamplighter-cluster-proxy: the in-cluster proxy for clusters whose API server does not accept
// OpenID Connect tokens. It verifies each request's ID token and forwards the request with its
// own service account token, impersonating the person.

#include "CertsCommand.h"
#include "TerminationSignals.h"
#include "clusterproxy/ClusterProxy.h"
#include "clusterproxy/ClusterProxyConfig.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QJsonDocument>
#include <QJsonObject>
#include <cstdio>

using namespace lamplighter;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
const char kDefaultConfigPath[] = "/etc/lamplighter-cluster-proxy/config.yaml";

const char *levelName(QtMsgType type)
{
    switch (type) {
    case QtDebugMsg:
        return "debug";
    case QtInfoMsg:
        return "info";
    case QtWarningMsg:
        return "warning";
    case QtCriticalMsg:
        return "error";
    case QtFatalMsg:
        return "fatal";
    }
    return "info";
}

// Writes each log message as one JSON object per line on stderr, as log collectors in a cluster
// expect. Messages never contain a token: the proxy logs token digests and claims only.
void writeJsonLine(QtMsgType type, const QMessageLogContext &context, const QString &message)
{
    const QJsonObject line{
        {QStringLiteral("time"), QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs)},
        {QStringLiteral("level"), QLatin1String(levelName(type))},
        {QStringLiteral("category"),
         QLatin1String(context.category ? context.category : "default")},
        {QStringLiteral("message"), message},
    };
    const QByteArray text = QJsonDocument(line).toJson(QJsonDocument::Compact) + '\n';
    std::fwrite(text.constData(), 1, static_cast<size_t>(text.size()), stderr);
    std::fflush(stderr);
}

void printError(const QString &message)
{
    std::fprintf(stderr, "lamplighter-cluster-proxy: %s\n", qPrintable(message));
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("lamplighter-cluster-proxy"));
    QCoreApplication::setApplicationVersion(QStringLiteral(LAMPLIGHTER_VERSION));

    if (app.arguments().size() > 1 && app.arguments().at(1) == QLatin1String("certs"))
        return runCertsCommand(app, writeJsonLine);

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Verifies the ID token of each request and forwards the request to the "
                       "Kubernetes API server as the person it names, through impersonation.\n"
                       "The subcommand certs creates and renews TLS Secrets; see certs --help."));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption configOption(
        QStringLiteral("config"),
        QStringLiteral("Read the configuration from FILE (default %1).")
            .arg(QLatin1String(kDefaultConfigPath)),
        QStringLiteral("FILE"),
        QLatin1String(kDefaultConfigPath));
    parser.addOption(configOption);
    if (!parser.parse(app.arguments())) {
        printError(parser.errorText() + QStringLiteral(". See --help."));
        return kExitUsage;
    }
    if (parser.isSet(QStringLiteral("help")))
        parser.showHelp(0);
    if (parser.isSet(QStringLiteral("version")))
        parser.showVersion();
    if (!parser.positionalArguments().isEmpty()) {
        printError(QStringLiteral("unexpected argument \"%1\". See --help.")
                       .arg(parser.positionalArguments().constFirst()));
        return kExitUsage;
    }

    const Result<ClusterProxyConfig> config = loadClusterProxyConfig(parser.value(configOption));
    if (!config) {
        printError(config.errorMessage());
        return kExitUsage;
    }

    qInstallMessageHandler(writeJsonLine);
    quitOnTerminationSignals(&app);
    ClusterProxy proxy(*config);
    const Status started = proxy.start();
    if (!started) {
        qCritical().noquote() << started.errorMessage();
        return kExitFailure;
    }
    return app.exec();
}
