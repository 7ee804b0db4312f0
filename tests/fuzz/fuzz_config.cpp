// libFuzzer target: configuration loading with loadConfig(). The input is the text of a
// config.yaml, written to a file in a temporary folder that also contains ca.pem, a valid CA
// certificate that relative ca_file and certificate_authority paths can name. For each
// configuration that loads, the target checks the documented guarantees and writes the
// kubeconfig that Session writes for its clusters.

#include "FuzzSupport.h"
#include "KubeconfigCheck.h"
#include "config/Config.h"

#include <QFile>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QUrl>
#include <cstdint>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

struct Folder {
    QTemporaryDir directory;
    QString configPath;

    Folder()
    {
        requireProperty(directory.isValid(), "a temporary folder can be created");
        configPath = directory.filePath(QStringLiteral("config.yaml"));
        const QString certificate = directory.filePath(QStringLiteral("ca.pem"));
        requireProperty(QFile::copy(QStringLiteral(LAMPLIGHTER_FUZZ_CA_FILE), certificate),
                        "the test CA certificate can be copied");
    }
};

Folder &folder()
{
    static Folder instance;
    return instance;
}

bool isDnsLabel(const QString &name)
{
    static const QRegularExpression label(QStringLiteral("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"));
    return label.match(name).hasMatch();
}

void checkConfig(const Config &config)
{
    requireProperty(config.provider.issuer.scheme() == QLatin1String("https"),
                    "the issuer is an https URL");
    requireProperty(config.provider.scopes.contains(QStringLiteral("openid")),
                    "the scopes always include openid");
    requireProperty(!config.provider.clientId.isEmpty(), "the client id is not empty");
    for (const ClusterConfig &cluster : config.clusters) {
        requireProperty(cluster.server.scheme() == QLatin1String("https"),
                        "every cluster's server is an https URL");
        requireProperty(!cluster.name.isEmpty(), "every cluster has a name");
    }
    for (const AppConfig &app : config.apps) {
        requireProperty(isDnsLabel(app.name), "every app's name is a DNS label");
        requireProperty(app.upstream.scheme() == QLatin1String("https"),
                        "every app's upstream is an https URL");
    }
    requireProperty(blocksNeedingRestart(config, config).isEmpty(),
                    "a configuration compared with itself needs no restart");

    Kubeconfig kubeconfig;
    for (const ClusterConfig &cluster : config.clusters) {
        kubeconfig.contexts.push_back(
            {cluster.name,
             QUrl(QStringLiteral("https://127.0.0.1:8443/clusters/") + cluster.name)});
    }
    kubeconfig.certificateAuthorityPem = "-----BEGIN CERTIFICATE-----\n...\n";
    kubeconfig.sessionKey = "ZmF1eC1zZXNzaW9uLWtleS1mb3ItdGhlLWZ1enplcg";
    checkKubeconfigRoundTrip(kubeconfig);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    ensureApplication();
    folder();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    QFile file(folder().configPath);
    requireProperty(file.open(QIODevice::WriteOnly | QIODevice::Truncate),
                    "the configuration file can be written");
    file.write(reinterpret_cast<const char *>(data), qint64(size));
    file.close();

    const Result<Config> config = loadConfig(folder().configPath);
    if (!config) {
        requireProperty(config.errorMessage().startsWith(folder().configPath),
                        "an error names the configuration file");
        return 0;
    }
    checkConfig(config.value());
    return 0;
}
