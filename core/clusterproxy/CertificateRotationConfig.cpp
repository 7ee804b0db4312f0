#include "clusterproxy/CertificateRotationConfig.h"

#include "config/YamlReader.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHostAddress>
#include <QRegularExpression>
#include <QSet>

namespace lamplighter {

namespace {

const char kInClusterApiServer[] = "https://kubernetes.default.svc";
const char kInClusterCaFile[] = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
const char kInClusterTokenFile[] = "/var/run/secrets/kubernetes.io/serviceaccount/token";

// The cluster proxy's own top-level keys, so that one file can configure both commands.
const std::set<std::string> kClusterProxyKeys = {"listen",
                                                 "tls",
                                                 "issuer",
                                                 "claims",
                                                 "allowed_groups",
                                                 "allow_client_impersonation",
                                                 "namespaces"};

const QList<int> kKeySizes = {2048, 3072, 4096};

// Kubernetes object names: a DNS-1123 subdomain for Secrets, a DNS-1123 label for namespaces.
const QRegularExpression kSubdomain(
    QStringLiteral("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"));
const QRegularExpression kLabel(QStringLiteral("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"));
// A DNS name for a subjectAltName, optionally with a leading wildcard label.
const QRegularExpression kDnsName(QStringLiteral("^(\\*\\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?("
                                                 "\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$"));
// A label selector of the form key=value: a label key with an optional DNS prefix and a label
// value, which may be empty.
const QRegularExpression kEqualitySelector(
    QStringLiteral("^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?="
                   "([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"));

class CertificateRotationConfigReader : public YamlReader {
public:
    using YamlReader::YamlReader;

    // Adds a warning for each key of `map` that is not in `known`. `where` names the map.
    void warnUnknownKeys(const YAML::Node &map,
                         const std::set<std::string> &known,
                         const QString &where,
                         QStringList &warnings) const
    {
        for (const auto &entry : map) {
            const std::string key = entry.first.Scalar();
            if (known.count(key) != 0)
                continue;
            warnings.append(errorAt(entry.first.Mark(),
                                    QStringLiteral("unknown key \"%1\" in %2 is ignored")
                                        .arg(QString::fromStdString(key), where))
                                .message);
        }
    }

    Result<YAML::Node>
    mapping(const YAML::Node &parent, const char *key, const QString &field) const
    {
        const YAML::Node node = parent[key];
        if (!node || node.IsNull())
            return errorAt(parent.Mark(), QStringLiteral("missing field \"%1\"").arg(field));
        if (!node.IsMap())
            return errorAt(node.Mark(), QStringLiteral("\"%1\" must be a mapping").arg(field));
        return node;
    }

    // Reads a string that must match `pattern`. `what` describes the expected form.
    Result<QString> matching(const YAML::Node &parent,
                             const char *key,
                             const QString &field,
                             const QRegularExpression &pattern,
                             const QString &what) const
    {
        const Result<QString> value = requiredString(parent, key, field);
        if (!value)
            return value;
        if (value->size() > 253 || !pattern.match(*value).hasMatch())
            return errorAt(
                parent[key].Mark(),
                QStringLiteral("\"%1\" must be %2, got \"%3\"").arg(field, what, *value));
        return value;
    }

    Status readApiServer(const YAML::Node &root, CertificateRotationConfig &config) const;
    Status
    readKeys(const YAML::Node &list, const QString &field, CertificateRotationConfig &config) const;
    Result<CertificateKey>
    readKey(const YAML::Node &entry, const QString &field, QStringList &warnings) const;
    Status readCreateData(const YAML::Node &data,
                          const QString &field,
                          CertificateKey &key,
                          QStringList &warnings) const;
};

Status CertificateRotationConfigReader::readApiServer(const YAML::Node &root,
                                                      CertificateRotationConfig &config) const
{
    const YAML::Node configured = root["api_server"];
    // A new node, so that the defaults never change the document. reset() rebinds the handle,
    // where assignment would overwrite the node it refers to.
    YAML::Node apiServer(YAML::NodeType::Map);
    if (!configured || configured.IsNull()) {
        apiServer["url"] = kInClusterApiServer;
        apiServer["certificate_authority"] = kInClusterCaFile;
        apiServer["token_file"] = kInClusterTokenFile;
    } else if (!configured.IsMap()) {
        return errorAt(configured.Mark(), QStringLiteral("\"api_server\" must be a mapping"));
    } else {
        apiServer.reset(configured);
        warnUnknownKeys(apiServer,
                        {"url", "certificate_authority", "token_file"},
                        QStringLiteral("api_server"),
                        config.warnings);
    }

    const Result<QUrl> url = httpsUrl(apiServer, "url", QStringLiteral("api_server.url"));
    if (!url)
        return url.error();
    config.apiServer = *url;
    const YAML::Node ca = apiServer["certificate_authority"];
    if (!ca)
        return errorAt(apiServer.Mark(),
                       QStringLiteral("missing field \"api_server.certificate_authority\""));
    QString resolved;
    const Result<QList<QSslCertificate>> certificates =
        certificatesFromFile(ca, QStringLiteral("api_server.certificate_authority"), &resolved);
    if (!certificates)
        return certificates.error();
    config.apiServerCaCertificates = *certificates;
    const Result<QString> token =
        requiredString(apiServer, "token_file", QStringLiteral("api_server.token_file"));
    if (!token)
        return token.error();
    config.serviceAccountTokenFile = QFileInfo(QFileInfo(path()).dir(), *token).absoluteFilePath();
    return Done{};
}

Status CertificateRotationConfigReader::readKeys(const YAML::Node &list,
                                                 const QString &field,
                                                 CertificateRotationConfig &config) const
{
    if (!list || list.IsNull())
        return Done{};
    if (!list.IsSequence())
        return errorAt(list.Mark(), QStringLiteral("\"%1\" must be a list").arg(field));
    for (std::size_t i = 0; i < list.size(); ++i) {
        const Result<CertificateKey> key =
            readKey(list[i], QStringLiteral("%1[%2]").arg(field).arg(i), config.warnings);
        if (!key)
            return key.error();
        config.keys.append(*key);
    }
    return Done{};
}

Result<CertificateKey> CertificateRotationConfigReader::readKey(const YAML::Node &entry,
                                                                const QString &field,
                                                                QStringList &warnings) const
{
    if (!entry.IsMap())
        return errorAt(entry.Mark(), QStringLiteral("\"%1\" must be a mapping").arg(field));
    warnUnknownKeys(
        entry,
        {"name", "tls_secret_name", "replace_if_exists", "import_into_ks", "create_data"},
        field,
        warnings);

    CertificateKey key;
    const Result<QString> name = requiredString(entry, "name", field + QStringLiteral(".name"));
    if (!name)
        return name.error();
    key.name = *name;
    const Result<QString> secretName =
        matching(entry,
                 "tls_secret_name",
                 field + QStringLiteral(".tls_secret_name"),
                 kSubdomain,
                 QStringLiteral("a Secret name (lower case letters, digits, '-' and '.')"));
    if (!secretName)
        return secretName.error();
    key.secretName = *secretName;
    const Result<bool> replace =
        optionalBool(entry, "replace_if_exists", field + QStringLiteral(".replace_if_exists"));
    if (!replace)
        return replace.error();
    key.replaceIfExists = *replace;
    // OpenUnison imports the key pair into its own keystore. There is no keystore here, so the
    // value is only checked for its type.
    if (const YAML::Node importInto = entry["import_into_ks"]; importInto && !importInto.IsNull()) {
        if (!importInto.IsScalar())
            return errorAt(importInto.Mark(),
                           QStringLiteral("\"%1.import_into_ks\" must be a string").arg(field));
    }

    const QString dataField = field + QStringLiteral(".create_data");
    const Result<YAML::Node> data = mapping(entry, "create_data", dataField);
    if (!data)
        return data.error();
    const Status read = readCreateData(*data, dataField, key, warnings);
    if (!read)
        return read.error();
    return key;
}

Status CertificateRotationConfigReader::readCreateData(const YAML::Node &data,
                                                       const QString &field,
                                                       CertificateKey &key,
                                                       QStringList &warnings) const
{
    static const char *const kSelectorSpellings[] = {
        "delete_pods_labels", "delete_pods_label", "delete_pod_labels"};
    warnUnknownKeys(data,
                    {"ca_cert",
                     "key_size",
                     "server_name",
                     "subject_alternative_names",
                     "target_namespace",
                     kSelectorSpellings[0],
                     kSelectorSpellings[1],
                     kSelectorSpellings[2]},
                    field,
                    warnings);

    const Result<bool> caCertificate =
        optionalBool(data, "ca_cert", field + QStringLiteral(".ca_cert"));
    if (!caCertificate)
        return caCertificate.error();
    key.caCertificateInChain = *caCertificate;

    if (const YAML::Node size = data["key_size"]; size && !size.IsNull()) {
        bool ok = false;
        const int bits = size.IsScalar() ? QString::fromStdString(size.Scalar()).toInt(&ok) : 0;
        if (!ok || !kKeySizes.contains(bits))
            return errorAt(size.Mark(),
                           QStringLiteral("\"%1.key_size\" must be 2048, 3072 or 4096 (RSA key "
                                          "bits), got \"%2\"")
                               .arg(field,
                                    size.IsScalar() ? QString::fromStdString(size.Scalar())
                                                    : QStringLiteral("a non-scalar value")));
        key.keySize = bits;
    }

    const QString dnsOrIp = QStringLiteral("a DNS name or an IP address");
    const Result<QString> serverName = matching(data,
                                                "server_name",
                                                field + QStringLiteral(".server_name"),
                                                kDnsName,
                                                QStringLiteral("a DNS name"));
    if (!serverName)
        return serverName.error();
    key.serverName = *serverName;

    const QString namesField = field + QStringLiteral(".subject_alternative_names");
    const Result<QStringList> names = stringList(data, "subject_alternative_names", namesField);
    if (!names)
        return names.error();
    for (int i = 0; i < names->size(); ++i) {
        const QString &name = names->at(i);
        if (QHostAddress(name).isNull() && !kDnsName.match(name).hasMatch())
            return errorAt(data["subject_alternative_names"][i].Mark(),
                           QStringLiteral("\"%1[%2]\" must be %3, got \"%4\"")
                               .arg(namesField)
                               .arg(i)
                               .arg(dnsOrIp, name));
    }
    key.subjectAlternativeNames = *names;

    const Result<QString> targetNamespace =
        matching(data,
                 "target_namespace",
                 field + QStringLiteral(".target_namespace"),
                 kLabel,
                 QStringLiteral("a namespace name (lower case letters, digits and '-')"));
    if (!targetNamespace)
        return targetNamespace.error();
    key.targetNamespace = *targetNamespace;

    for (const char *spelling : kSelectorSpellings) {
        const QString selectorsField = field + QLatin1Char('.') + QLatin1String(spelling);
        const Result<QStringList> selectors = stringList(data, spelling, selectorsField);
        if (!selectors)
            return selectors.error();
        for (int i = 0; i < selectors->size(); ++i) {
            if (!kEqualitySelector.match(selectors->at(i)).hasMatch())
                return errorAt(data[spelling][i].Mark(),
                               QStringLiteral("\"%1[%2]\" must be a label selector KEY=VALUE, "
                                              "got \"%3\"")
                                   .arg(selectorsField)
                                   .arg(i)
                                   .arg(selectors->at(i)));
        }
        key.deletePodsSelectors += *selectors;
    }
    key.deletePodsSelectors.removeDuplicates();
    return Done{};
}

} // namespace

Result<CertificateRotationConfig> loadCertificateRotationConfig(const QString &path)
{
    const CertificateRotationConfigReader reader(path);
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("%1: cannot read the configuration file: %2")
                         .arg(path, file.errorString())};
    YAML::Node root;
    try {
        root = YAML::Load(file.readAll().toStdString());
    } catch (const YAML::Exception &exception) {
        return reader.errorAt(
            exception.mark,
            QStringLiteral("invalid YAML: %1").arg(QString::fromStdString(exception.msg)));
    }
    if (!root.IsMap())
        return reader.errorAt(root.Mark(), QStringLiteral("the file must be a YAML mapping"));

    CertificateRotationConfig config;
    const YAML::Node openUnison = root["openunison"];
    const bool valuesFile = openUnison && !openUnison.IsNull();
    // An OpenUnison values file has many top-level keys of its own, so they are not listed.
    if (!valuesFile) {
        std::set<std::string> known = kClusterProxyKeys;
        known.insert({"api_server", "keys"});
        reader.warnUnknownKeys(root, known, QStringLiteral("the top level"), config.warnings);
    }

    const Status apiServer = reader.readApiServer(root, config);
    if (!apiServer)
        return apiServer.error();
    const Status keys = reader.readKeys(root["keys"], QStringLiteral("keys"), config);
    if (!keys)
        return keys.error();
    if (valuesFile) {
        if (!openUnison.IsMap())
            return reader.errorAt(openUnison.Mark(),
                                  QStringLiteral("\"openunison\" must be a mapping"));
        const Status openUnisonKeys =
            reader.readKeys(openUnison["keys"], QStringLiteral("openunison.keys"), config);
        if (!openUnisonKeys)
            return openUnisonKeys.error();
    }

    QSet<QString> secrets;
    QSet<QString> names;
    for (const CertificateKey &key : std::as_const(config.keys)) {
        const QString secret = key.targetNamespace + QLatin1Char('/') + key.secretName;
        if (secrets.contains(secret))
            return Error{QStringLiteral("%1: two entries of \"keys\" manage the Secret %2. Keep "
                                        "one entry per Secret.")
                             .arg(path, secret)};
        if (names.contains(key.name))
            return Error{QStringLiteral("%1: two entries of \"keys\" have the name \"%2\". Give "
                                        "each entry its own name.")
                             .arg(path, key.name)};
        secrets.insert(secret);
        names.insert(key.name);
    }
    return config;
}

} // namespace lamplighter
