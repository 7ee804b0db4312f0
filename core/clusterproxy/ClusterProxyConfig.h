#pragma once

#include "util/Result.h"

#include <QHostAddress>
#include <QList>
#include <QMap>
#include <QPair>
#include <QSslCertificate>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <chrono>

namespace lamplighter {

// The source of the namespaces a user may see, from namespaces.mode.
enum class NamespaceListing {
    All,     // the proxy's own service account lists them for everyone
    Test,    // those where a SelfSubjectAccessReview for the user allows verb on resource
    Service, // a configured URL returns them for the user
    None,    // the API server's own response is passed on
};

// The configuration of lamplighter-cluster-proxy, read from its YAML file.
struct ClusterProxyConfig {
    QHostAddress listenAddress; // listen: "ADDRESS:PORT"
    quint16 listenPort = 0;     // 0 lets the system pick a port, for tests
    QString tlsCertificateFile; // tls.certificate, PEM
    QString tlsKeyFile;         // tls.key, PEM

    QUrl issuer;                                 // issuer.url, https
    QString clientId;                            // issuer.client_id
    QStringList audiences;                       // issuer.audiences, default [client_id]
    QList<QSslCertificate> issuerCaCertificates; // issuer.certificate_authority; empty: system CAs
    QStringList allowedAlgorithms;               // issuer.allowed_algorithms; empty: all supported
    QMap<QString, QString> requiredClaims;       // issuer.required_claims: claim -> exact value
    std::chrono::seconds leeway{60};             // issuer.leeway_seconds

    QString userNameClaim = QStringLiteral("sub");  // claims.username
    QString userNamePrefix;                         // claims.username_prefix
    QString groupsClaim = QStringLiteral("groups"); // claims.groups
    QString groupsPrefix;                           // claims.groups_prefix
    // claims.extras: extra key -> claim, sent as Impersonate-Extra-<key> with the claim's string
    // or strings. Keys are lower case letters, digits, '.', '-' and '/'.
    QList<QPair<QString, QString>> extraClaims;

    QStringList allowedGroups; // allowed_groups, after the prefix; empty lets everyone in
    // allow_client_impersonation: check a client's own Impersonate-* fields with access reviews
    // made as the person, and act as whom they name when every review allows it, so that
    // `kubectl --as` works. Off: the fields are dropped.
    bool allowClientImpersonation = false;

    QUrl apiServer;                                 // api_server.url, https
    QList<QSslCertificate> apiServerCaCertificates; // api_server.certificate_authority
    QString serviceAccountTokenFile;                // api_server.token_file

    NamespaceListing namespaceListing = NamespaceListing::None; // namespaces.mode
    QString namespaceVerb = QStringLiteral("get");              // namespaces.verb
    QString namespaceResource = QStringLiteral("pods");         // namespaces.resource
    QStringList adminGroups;                                    // namespaces.admin_groups
    QUrl namespaceServiceUrl;                                   // namespaces.service_url
    // namespaces.certificate_authority: trusted for service_url besides the system's CAs
    QList<QSslCertificate> namespaceServiceCaCertificates;
};

// Returns the API server URL of `config` with `path` appended to its own path, for an API
// server behind a path-routing proxy. `path` starts with '/'.
QUrl apiServerUrl(const ClusterProxyConfig &config, const QString &path);

// Reads and checks the configuration file. Errors name the file, line, column and field.
Result<ClusterProxyConfig> loadClusterProxyConfig(const QString &path);

} // namespace lamplighter
