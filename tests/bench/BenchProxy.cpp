// Runs Lamplighter's LocalProxy on its own, forwarding one cluster named "bench" to an HTTPS
// upstream, for tests/bench/run. The session key comes from LAMPLIGHTER_BENCH_SESSION_KEY and
// the forwarded ID token from LAMPLIGHTER_BENCH_ID_TOKEN, so neither shows up in `ps` output.

#include "TerminationSignals.h"
#include "proxy/LocalProxy.h"
#include "proxy/UpstreamCluster.h"
#include "tls/LocalCertificate.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QSaveFile>
#include <QSslCertificate>
#include <QUrl>
#include <cstdio>

using namespace lamplighter;

namespace {

int fail(const QString &message)
{
    std::fprintf(stderr, "lamplighter-bench-proxy: %s\n", qPrintable(message));
    return 1;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("lamplighter-bench-proxy"));
    // Ends normally on SIGTERM, so that a leak checker runs after every object is destroyed.
    quitOnTerminationSignals(&app);

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Runs the local proxy on 127.0.0.1 with one cluster, \"bench\", for "
                       "benchmarks. Environment: LAMPLIGHTER_BENCH_SESSION_KEY (required), "
                       "LAMPLIGHTER_BENCH_ID_TOKEN (default: a fixed placeholder)."));
    parser.addHelpOption();
    const QCommandLineOption upstreamOption(QStringLiteral("upstream"),
                                            QStringLiteral("The cluster's https URL."),
                                            QStringLiteral("URL"));
    const QCommandLineOption caOption(
        QStringLiteral("ca"),
        QStringLiteral("PEM file with the cluster's CA certificates."),
        QStringLiteral("FILE"));
    const QCommandLineOption portFileOption(
        QStringLiteral("port-file"),
        QStringLiteral("File to write the listening port to once the proxy listens."),
        QStringLiteral("FILE"));
    const QCommandLineOption certificateFileOption(
        QStringLiteral("certificate-file"),
        QStringLiteral("File to write the proxy's generated PEM certificate to, for clients."),
        QStringLiteral("FILE"));
    parser.addOption(upstreamOption);
    parser.addOption(caOption);
    parser.addOption(portFileOption);
    parser.addOption(certificateFileOption);
    parser.process(app);

    const QUrl upstream(parser.value(upstreamOption), QUrl::StrictMode);
    if (!upstream.isValid() || upstream.scheme() != QLatin1String("https"))
        return fail(QStringLiteral("--upstream must be an https URL, got \"%1\".")
                        .arg(parser.value(upstreamOption)));
    if (!parser.isSet(caOption) || !parser.isSet(portFileOption))
        return fail(QStringLiteral("--ca and --port-file are required. See --help."));

    const QList<QSslCertificate> caCertificates =
        QSslCertificate::fromPath(parser.value(caOption), QSsl::Pem);
    if (caCertificates.isEmpty())
        return fail(QStringLiteral("No PEM certificate found in --ca file \"%1\".")
                        .arg(parser.value(caOption)));

    const QByteArray sessionKey = qgetenv("LAMPLIGHTER_BENCH_SESSION_KEY");
    if (sessionKey.isEmpty())
        return fail(QStringLiteral("LAMPLIGHTER_BENCH_SESSION_KEY is not set."));
    QByteArray idToken = qgetenv("LAMPLIGHTER_BENCH_ID_TOKEN");
    if (idToken.isEmpty())
        idToken = QByteArrayLiteral("bench-id-token");

    Result<LocalCertificate> certificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    if (!certificate)
        return fail(certificate.errorMessage());

    LocalProxy proxy;
    proxy.setServerCertificate(certificate.value());
    proxy.setSessionKey(sessionKey);
    proxy.setClusters({UpstreamCluster{QStringLiteral("bench"), upstream, caCertificates}});
    proxy.setIdToken(idToken);
    const Status listening = proxy.listen(0);
    if (!listening)
        return fail(listening.errorMessage());

    if (parser.isSet(certificateFileOption)) {
        QSaveFile file(parser.value(certificateFileOption));
        if (!file.open(QIODevice::WriteOnly) || file.write(certificate->certificatePem()) < 0 ||
            !file.commit())
            return fail(QStringLiteral("Failed to write the certificate to \"%1\": %2")
                            .arg(file.fileName(), file.errorString()));
    }
    // tests/bench/run gives its nginx reverse proxy as many worker processes.
    std::printf("worker threads: %d\n", proxy.workerThreads());
    std::fflush(stdout);
    // Written last and atomically, so a reader that sees the port also finds the certificate
    // and the line above.
    QSaveFile portFile(parser.value(portFileOption));
    if (!portFile.open(QIODevice::WriteOnly) ||
        portFile.write(QByteArray::number(proxy.port()) + '\n') < 0 || !portFile.commit())
        return fail(QStringLiteral("Failed to write the port to \"%1\": %2")
                        .arg(portFile.fileName(), portFile.errorString()));

    std::printf("%u\n", proxy.port());
    std::fflush(stdout);
    return app.exec();
}
