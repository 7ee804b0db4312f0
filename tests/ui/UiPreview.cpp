// lamplighter-ui-preview: shows one of Lamplighter's windows with test data, for
// tests/ui/screenshots to take a picture of. Once the window is ready it writes READY_FILE, and
// it quits once READY_FILE.done exists.
//
//   lamplighter-ui-preview portal READY_FILE CONFIG [tokens]
//       The portal window with the apps of CONFIG, signed in as jane@example.com in the group
//       "developers". With "tokens", it shows its Tokens page.
//   lamplighter-ui-preview whoami READY_FILE APISERVER_URL CA_FILE TOKEN
//       The who-am-i dialog, asking the API server at APISERVER_URL (trusted with CA_FILE)
//       through a local proxy that forwards TOKEN.
//   lamplighter-ui-preview icon FILE.png
//       Draws a bar chart icon as a PNG, for an app's icon in CONFIG.

#include "PortalWindow.h"
#include "WhoAmIDialog.h"
#include "config/Config.h"
#include "kube/Kubeconfig.h"
#include "proxy/LocalProxy.h"
#include "tls/LocalCertificate.h"

#include <QApplication>
#include <QFile>
#include <QPainter>
#include <QRandomGenerator>
#include <QSaveFile>
#include <QTemporaryDir>
#include <QTextStream>
#include <QTimer>

using namespace lamplighter;

namespace {

int fail(const QString &message)
{
    QTextStream(stderr) << "lamplighter-ui-preview: " << message << '\n';
    return 1;
}

// Writes the ready file after the window has been painted, so that a screenshot shows it whole,
// then quits once the script has written READY_FILE.done.
void markReadyWhenPainted(const QString &readyFile)
{
    QTimer::singleShot(1500, [readyFile] {
        QSaveFile file(readyFile);
        if (!file.open(QIODevice::WriteOnly) || file.write("ready\n") < 0 || !file.commit())
            QTextStream(stderr) << "lamplighter-ui-preview: failed to write " << readyFile << '\n';
        auto *poll = new QTimer(qApp);
        QObject::connect(poll, &QTimer::timeout, qApp, [readyFile] {
            if (QFile::exists(readyFile + QStringLiteral(".done")))
                QCoreApplication::quit();
        });
        poll->start(200);
    });
}

int drawIcon(const QString &path)
{
    QImage image(128, 128, QImage::Format_ARGB32);
    image.fill(Qt::transparent);
    QPainter painter(&image);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(Qt::NoPen);
    painter.setBrush(QColor(0xf4, 0x6a, 0x0c));
    painter.drawRoundedRect(QRectF(4, 4, 120, 120), 26, 26);
    painter.setBrush(Qt::white);
    const int heights[] = {36, 64, 48, 84};
    for (int bar = 0; bar < 4; ++bar)
        painter.drawRoundedRect(QRectF(22 + bar * 22, 102 - heights[bar], 14, heights[bar]), 3, 3);
    painter.end();
    return image.save(path, "PNG") ? 0 : fail(QStringLiteral("failed to write %1").arg(path));
}

int showPortal(const QString &configPath, const QString &readyFile, bool tokensPage)
{
    const Result<Config> config = loadConfig(configPath);
    if (!config)
        return fail(config.errorMessage());

    PortalWindow window;
    window.setApps(config->apps);
    window.setIdentity(QStringLiteral("jane@example.com"),
                       {QStringLiteral("developers"), QStringLiteral("system:authenticated")});
    window.setKubeconfigPath(QStringLiteral("/home/jane/.local/state/lamplighter/kubeconfig"));
    QStringList clusters;
    for (const ClusterConfig &cluster : config->clusters)
        clusters.append(cluster.name);
    window.setClusterNames(clusters);
    if (tokensPage)
        window.showTokensPage();
    window.show();
    markReadyWhenPainted(readyFile);
    return QApplication::exec();
}

int showWhoAmI(const QStringList &arguments)
{
    const QString readyFile = arguments.at(0);
    const QUrl apiServer(arguments.at(1));
    QFile caFile(arguments.at(2));
    if (!caFile.open(QIODevice::ReadOnly))
        return fail(QStringLiteral("failed to read %1").arg(caFile.fileName()));
    const QList<QSslCertificate> ca = QSslCertificate::fromData(caFile.readAll(), QSsl::Pem);
    const QByteArray token = arguments.at(3).toLatin1();

    const Result<LocalCertificate> certificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    if (!certificate)
        return fail(certificate.errorMessage());
    QByteArray sessionKey(32, Qt::Uninitialized);
    for (char &byte : sessionKey)
        byte = char(QRandomGenerator::system()->bounded(256));
    sessionKey =
        sessionKey.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);

    LocalProxy proxy;
    proxy.setServerCertificate(*certificate);
    proxy.setSessionKey(sessionKey);
    proxy.setClusters({UpstreamCluster{QStringLiteral("prod"), apiServer, ca}});
    proxy.setIdToken(token);
    if (const Status listening = proxy.listen(); !listening)
        return fail(listening.errorMessage());

    QTemporaryDir folder;
    Kubeconfig kubeconfig;
    kubeconfig.contexts = {{QStringLiteral("prod"), proxy.clusterUrl(QStringLiteral("prod"))}};
    kubeconfig.certificateAuthorityPem = certificate->certificatePem();
    kubeconfig.sessionKey = sessionKey;
    const QString kubeconfigPath = folder.filePath(QStringLiteral("kubeconfig"));
    if (const Status written = kubeconfig.writeTo(kubeconfigPath); !written)
        return fail(written.errorMessage());
    const Result<ProxyEndpoint> endpoint = readProxyEndpoint(kubeconfigPath);
    if (!endpoint)
        return fail(endpoint.errorMessage());

    TokenSummary summary{QStringLiteral("https://login.example.com/realms/main"),
                         QStringLiteral("7c1e4b0a-3f9d-4d2e-9a61-2b8f0e5c9d13"),
                         QDateTime::currentDateTimeUtc().addSecs(3000)};
    WhoAmIDialog dialog(QStringLiteral("prod"), *endpoint, summary);
    QObject::connect(&dialog, &WhoAmIDialog::reviewFinished, &dialog, [readyFile] {
        markReadyWhenPainted(readyFile);
    });
    dialog.show();
    return QApplication::exec();
}

} // namespace

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    const QStringList arguments = QApplication::arguments().mid(1);
    const QString mode = arguments.value(0);

    if (mode == QStringLiteral("icon") && arguments.size() == 2)
        return drawIcon(arguments.at(1));
    if (mode == QStringLiteral("portal") && (arguments.size() == 3 || arguments.size() == 4))
        return showPortal(
            arguments.at(2), arguments.at(1), arguments.value(3) == QStringLiteral("tokens"));
    if (mode == QStringLiteral("whoami") && arguments.size() == 5)
        return showWhoAmI(arguments.mid(1));
    return fail(QStringLiteral("usage: lamplighter-ui-preview portal READY_FILE CONFIG [tokens] | "
                               "whoami READY_FILE APISERVER_URL CA_FILE TOKEN | icon FILE.png"));
}
