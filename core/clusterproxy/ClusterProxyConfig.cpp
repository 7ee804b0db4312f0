#include "clusterproxy/ClusterProxyConfig.h"

#include "config/YamlReader.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>

namespace lamplighter {

namespace {

const QStringList kSupportedAlgorithms = {
    QStringLiteral("RS256"),
    QStringLiteral("RS384"),
    QStringLiteral("RS512"),
    QStringLiteral("PS256"),
    QStringLiteral("PS384"),
    QStringLiteral("PS512"),
    QStringLiteral("ES256"),
    QStringLiteral("ES384"),
    QStringLiteral("ES512"),
};

class ClusterProxyConfigReader : public YamlReader {
public:
    using YamlReader::YamlReader;

    // Reads a mapping and checks its keys; a missing key reads as an empty map node.
    Result<YAML::Node> section(const YAML::Node &parent,
                               const char *key,
                               const std::set<std::string> &known,
                               bool required) const
    {
        const YAML::Node node = parent[key];
        if (!node || node.IsNull()) {
            if (required)
                return errorAt(parent.Mark(),
                               QStringLiteral("missing section \"%1\"").arg(QLatin1String(key)));
            return YAML::Node(YAML::NodeType::Map);
        }
        if (!node.IsMap())
            return errorAt(node.Mark(),
                           QStringLiteral("\"%1\" must be a mapping").arg(QLatin1String(key)));
        const Status keys = rejectUnknownKeys(node, known, QLatin1String(key));
        if (!keys)
            return keys.error();
        return node;
    }

    // Resolves a file path from the configuration; relative paths start at the file's folder.
    Result<QString> filePath(const YAML::Node &parent, const char *key, const QString &field) const
    {
        const Result<QString> text = requiredString(parent, key, field);
        if (!text)
            return text;
        return QFileInfo(QFileInfo(path()).dir(), *text).absoluteFilePath();
    }

    // Reads a string that may be empty; a missing or null key reads as empty.
    Result<QString> prefix(const YAML::Node &parent, const char *key, const QString &field) const
    {
        const YAML::Node node = parent[key];
        if (!node || node.IsNull())
            return QString();
        if (!node.IsScalar())
            return errorAt(node.Mark(), QStringLiteral("\"%1\" must be a string").arg(field));
        return QString::fromStdString(node.Scalar());
    }

    Status readListen(const YAML::Node &root, ClusterProxyConfig &config) const;
    Status readIssuer(const YAML::Node &root, ClusterProxyConfig &config) const;
    Status readClaims(const YAML::Node &root, ClusterProxyConfig &config) const;
    Status readApiServer(const YAML::Node &root, ClusterProxyConfig &config) const;
    Status readNamespaces(const YAML::Node &root, ClusterProxyConfig &config) const;
};

Status ClusterProxyConfigReader::readListen(const YAML::Node &root,
                                            ClusterProxyConfig &config) const
{
    const Result<QString> listen =
        optionalString(root, "listen", QStringLiteral("listen"), QStringLiteral("0.0.0.0:8443"));
    if (!listen)
        return listen.error();
    const qsizetype colon = listen->lastIndexOf(QLatin1Char(':'));
    bool portOk = false;
    const uint port = colon > 0 ? listen->mid(colon + 1).toUInt(&portOk) : 0;
    QString host = colon > 0 ? listen->left(colon) : QString();
    if (host.startsWith(QLatin1Char('[')) && host.endsWith(QLatin1Char(']')))
        host = host.mid(1, host.size() - 2);
    if (!portOk || port > 65535 || !config.listenAddress.setAddress(host)) {
        return errorAt(root["listen"].Mark(),
                       QStringLiteral("\"listen\" must be ADDRESS:PORT with an IP address and a "
                                      "port from 0 to 65535, got \"%1\"")
                           .arg(*listen));
    }
    config.listenPort = static_cast<quint16>(port);

    const Result<YAML::Node> tls = section(root, "tls", {"certificate", "key"}, true);
    if (!tls)
        return tls.error();
    const Result<QString> certificate =
        filePath(*tls, "certificate", QStringLiteral("tls.certificate"));
    if (!certificate)
        return certificate.error();
    const Result<QString> key = filePath(*tls, "key", QStringLiteral("tls.key"));
    if (!key)
        return key.error();
    config.tlsCertificateFile = *certificate;
    config.tlsKeyFile = *key;
    return Done{};
}

Status ClusterProxyConfigReader::readIssuer(const YAML::Node &root,
                                            ClusterProxyConfig &config) const
{
    const Result<YAML::Node> issuer = section(root,
                                              "issuer",
                                              {"url",
                                               "client_id",
                                               "audiences",
                                               "certificate_authority",
                                               "allowed_algorithms",
                                               "required_claims",
                                               "leeway_seconds"},
                                              true);
    if (!issuer)
        return issuer.error();
    const Result<QUrl> url = httpsUrl(*issuer, "url", QStringLiteral("issuer.url"));
    if (!url)
        return url.error();
    config.issuer = *url;
    const Result<QString> clientId =
        requiredString(*issuer, "client_id", QStringLiteral("issuer.client_id"));
    if (!clientId)
        return clientId.error();
    config.clientId = *clientId;
    const Result<QStringList> audiences =
        stringList(*issuer, "audiences", QStringLiteral("issuer.audiences"));
    if (!audiences)
        return audiences.error();
    config.audiences = audiences->isEmpty() ? QStringList{config.clientId} : *audiences;

    if (const YAML::Node node = (*issuer)["certificate_authority"]; node && !node.IsNull()) {
        QString resolved;
        const Result<QList<QSslCertificate>> certificates =
            certificatesFromFile(node, QStringLiteral("issuer.certificate_authority"), &resolved);
        if (!certificates)
            return certificates.error();
        config.issuerCaCertificates = *certificates;
    }

    const Result<QStringList> algorithms =
        stringList(*issuer, "allowed_algorithms", QStringLiteral("issuer.allowed_algorithms"));
    if (!algorithms)
        return algorithms.error();
    for (int i = 0; i < algorithms->size(); ++i) {
        if (!kSupportedAlgorithms.contains(algorithms->at(i))) {
            return errorAt(
                (*issuer)["allowed_algorithms"][i].Mark(),
                QStringLiteral("\"issuer.allowed_algorithms[%1]\" is %2, which is not "
                               "supported. Supported are %3.")
                    .arg(i)
                    .arg(algorithms->at(i), kSupportedAlgorithms.join(QStringLiteral(", "))));
        }
    }
    config.allowedAlgorithms = *algorithms;

    const YAML::Node required = (*issuer)["required_claims"];
    if (required && !required.IsNull()) {
        if (!required.IsMap())
            return errorAt(required.Mark(),
                           QStringLiteral("\"issuer.required_claims\" must map claim names to "
                                          "the values they must have"));
        for (const auto &entry : required) {
            const QString claim = QString::fromStdString(entry.first.as<std::string>());
            const Result<QString> value =
                string(entry.second, QStringLiteral("issuer.required_claims.%1").arg(claim));
            if (!value)
                return value.error();
            config.requiredClaims.insert(claim, *value);
        }
    }

    const YAML::Node leeway = (*issuer)["leeway_seconds"];
    if (leeway && !leeway.IsNull()) {
        bool ok = false;
        const int seconds =
            leeway.IsScalar() ? QString::fromStdString(leeway.Scalar()).toInt(&ok) : 0;
        if (!ok || seconds < 0 || seconds > 600)
            return errorAt(leeway.Mark(),
                           QStringLiteral("\"issuer.leeway_seconds\" must be a whole number "
                                          "from 0 to 600"));
        config.leeway = std::chrono::seconds(seconds);
    }
    return Done{};
}

Status ClusterProxyConfigReader::readClaims(const YAML::Node &root,
                                            ClusterProxyConfig &config) const
{
    const Result<YAML::Node> claims =
        section(root,
                "claims",
                {"username", "username_prefix", "groups", "groups_prefix", "extras"},
                false);
    if (!claims)
        return claims.error();
    const Result<QString> userName = optionalString(
        *claims, "username", QStringLiteral("claims.username"), config.userNameClaim);
    const Result<QString> groups =
        optionalString(*claims, "groups", QStringLiteral("claims.groups"), config.groupsClaim);
    for (const Result<QString> *value : {&userName, &groups}) {
        if (!*value)
            return value->error();
    }
    config.userNameClaim = *userName;
    config.groupsClaim = *groups;
    // A prefix may be empty on purpose, so it is read as given.
    const Result<QString> userNamePrefix =
        prefix(*claims, "username_prefix", QStringLiteral("claims.username_prefix"));
    if (!userNamePrefix)
        return userNamePrefix.error();
    const Result<QString> groupsPrefix =
        prefix(*claims, "groups_prefix", QStringLiteral("claims.groups_prefix"));
    if (!groupsPrefix)
        return groupsPrefix.error();
    config.userNamePrefix = *userNamePrefix;
    config.groupsPrefix = *groupsPrefix;

    const YAML::Node extras = (*claims)["extras"];
    if (extras && !extras.IsNull()) {
        if (!extras.IsMap())
            return errorAt(extras.Mark(),
                           QStringLiteral("\"claims.extras\" must map extra keys to claim names"));
        static const QRegularExpression validKey(QStringLiteral("^[a-z0-9][a-z0-9./-]*$"));
        for (const auto &entry : extras) {
            const QString key = QString::fromStdString(entry.first.Scalar());
            if (!validKey.match(key).hasMatch())
                return errorAt(entry.first.Mark(),
                               QStringLiteral("\"claims.extras\" key \"%1\" must be lower case "
                                              "letters, digits, '.', '-' and '/'")
                                   .arg(key));
            const Result<QString> claim =
                string(entry.second, QStringLiteral("claims.extras.%1").arg(key));
            if (!claim)
                return claim.error();
            config.extraClaims.append({key, *claim});
        }
    }

    const Result<QStringList> allowed =
        stringList(root, "allowed_groups", QStringLiteral("allowed_groups"));
    if (!allowed)
        return allowed.error();
    config.allowedGroups = *allowed;
    const Result<bool> clientImpersonation = optionalBool(
        root, "allow_client_impersonation", QStringLiteral("allow_client_impersonation"));
    if (!clientImpersonation)
        return clientImpersonation.error();
    config.allowClientImpersonation = *clientImpersonation;
    return Done{};
}

Status ClusterProxyConfigReader::readApiServer(const YAML::Node &root,
                                               ClusterProxyConfig &config) const
{
    const Result<YAML::Node> apiServer =
        section(root, "api_server", {"url", "certificate_authority", "token_file"}, true);
    if (!apiServer)
        return apiServer.error();
    const Result<QUrl> url = httpsUrl(*apiServer, "url", QStringLiteral("api_server.url"));
    if (!url)
        return url.error();
    config.apiServer = *url;
    const YAML::Node ca = (*apiServer)["certificate_authority"];
    if (!ca)
        return errorAt(apiServer->Mark(),
                       QStringLiteral("missing field \"api_server.certificate_authority\""));
    QString resolved;
    const Result<QList<QSslCertificate>> certificates =
        certificatesFromFile(ca, QStringLiteral("api_server.certificate_authority"), &resolved);
    if (!certificates)
        return certificates.error();
    config.apiServerCaCertificates = *certificates;
    const Result<QString> token =
        filePath(*apiServer, "token_file", QStringLiteral("api_server.token_file"));
    if (!token)
        return token.error();
    config.serviceAccountTokenFile = *token;
    return Done{};
}

Status ClusterProxyConfigReader::readNamespaces(const YAML::Node &root,
                                                ClusterProxyConfig &config) const
{
    const Result<YAML::Node> namespaces = section(
        root,
        "namespaces",
        {"mode", "verb", "resource", "admin_groups", "service_url", "certificate_authority"},
        false);
    if (!namespaces)
        return namespaces.error();
    const Result<QString> mode = optionalString(
        *namespaces, "mode", QStringLiteral("namespaces.mode"), QStringLiteral("none"));
    if (!mode)
        return mode.error();
    if (*mode == QLatin1String("all"))
        config.namespaceListing = NamespaceListing::All;
    else if (*mode == QLatin1String("test"))
        config.namespaceListing = NamespaceListing::Test;
    else if (*mode == QLatin1String("service"))
        config.namespaceListing = NamespaceListing::Service;
    else if (*mode == QLatin1String("none"))
        config.namespaceListing = NamespaceListing::None;
    else
        return errorAt((*namespaces)["mode"].Mark(),
                       QStringLiteral("\"namespaces.mode\" must be all, test, service or none, "
                                      "got \"%1\"")
                           .arg(*mode));

    const Result<QString> verb = optionalString(
        *namespaces, "verb", QStringLiteral("namespaces.verb"), config.namespaceVerb);
    const Result<QString> resource = optionalString(
        *namespaces, "resource", QStringLiteral("namespaces.resource"), config.namespaceResource);
    for (const Result<QString> *value : {&verb, &resource}) {
        if (!*value)
            return value->error();
    }
    config.namespaceVerb = *verb;
    config.namespaceResource = *resource;
    const Result<QStringList> admins =
        stringList(*namespaces, "admin_groups", QStringLiteral("namespaces.admin_groups"));
    if (!admins)
        return admins.error();
    config.adminGroups = *admins;
    if (config.namespaceListing == NamespaceListing::Service) {
        const Result<QUrl> url =
            httpsUrl(*namespaces, "service_url", QStringLiteral("namespaces.service_url"));
        if (!url)
            return url.error();
        config.namespaceServiceUrl = *url;
        if (const YAML::Node ca = (*namespaces)["certificate_authority"]; ca && !ca.IsNull()) {
            QString resolved;
            const Result<QList<QSslCertificate>> certificates = certificatesFromFile(
                ca, QStringLiteral("namespaces.certificate_authority"), &resolved);
            if (!certificates)
                return certificates.error();
            config.namespaceServiceCaCertificates = *certificates;
        }
    }
    return Done{};
}

} // namespace

QUrl apiServerUrl(const ClusterProxyConfig &config, const QString &path)
{
    QUrl url = config.apiServer;
    QString prefix = url.path();
    while (prefix.endsWith(QLatin1Char('/')))
        prefix.chop(1);
    url.setPath(prefix + path);
    return url;
}

Result<ClusterProxyConfig> loadClusterProxyConfig(const QString &path)
{
    const ClusterProxyConfigReader reader(path);
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
    const Status known = reader.rejectUnknownKeys(root,
                                                  {"listen",
                                                   "tls",
                                                   "issuer",
                                                   "claims",
                                                   "allowed_groups",
                                                   "allow_client_impersonation",
                                                   "api_server",
                                                   "namespaces",
                                                   // Read by the certs subcommand only.
                                                   "keys"},
                                                  QStringLiteral("the top level"));
    if (!known)
        return known.error();

    ClusterProxyConfig config;
    for (const auto &step : {&ClusterProxyConfigReader::readListen,
                             &ClusterProxyConfigReader::readIssuer,
                             &ClusterProxyConfigReader::readClaims,
                             &ClusterProxyConfigReader::readApiServer,
                             &ClusterProxyConfigReader::readNamespaces}) {
        const Status read = (reader.*step)(root, config);
        if (!read)
            return read.error();
    }
    return config;
}

} // namespace lamplighter
