#pragma once

#include "util/Result.h"

#include <QList>
#include <QSslCertificate>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <chrono>
#include <vector>

namespace lamplighter {

// The identity provider, read from the "oidc" block (the keys of an OpenUnison values file).
struct ProviderConfig {
    QUrl issuer;           // oidc.issuer, https
    QString clientId;      // oidc.client_id
    QStringList scopes;    // oidc.scopes, "openid" always included
    QString userNameClaim; // oidc.claims.sub, default "sub"
    QString groupsClaim;   // oidc.claims.groups, default "groups"
    QString caFile;        // oidc.ca_file, extra CA for the issuer's TLS; may be empty
    QList<QSslCertificate> caCertificates; // read from caFile
    // oidc.clock_skew_seconds: how far the provider's clock may be from the desktop's when the
    // "exp", "nbf" and "iat" of its ID tokens are checked.
    // NOTE: the refresh schedule and the local proxy compare "exp" with the desktop's clock
    // without this allowance, so tokens from a provider that runs behind by more than their
    // lifetime count as expired on arrival.
    std::chrono::seconds clockSkew{60};
};

// The way a cluster learns who the person is.
enum class ClusterMode {
    Oidc,          // the API server validates the ID token itself
    Impersonation, // a cluster proxy validates it and impersonates the person
};

// One Kubernetes cluster that the local proxy forwards to, from the "clusters" list.
struct ClusterConfig {
    QString name;                          // clusters[].name, also the kubeconfig context name
    QUrl server;                           // clusters[].server, https
    QString caFile;                        // clusters[].certificate_authority
    QList<QSslCertificate> caCertificates; // read from caFile or certificate_authority_data
    ClusterMode mode = ClusterMode::Oidc;  // clusters[].mode
};

// The local proxy, from the "proxy" block.
struct ProxyConfig {
    quint16 port = 0; // proxy.port; 0 lets the system pick one
};

// The login flow, from the "login" block.
struct LoginConfig {
    // login.browser: a command and its arguments, to which the authorization URL is appended;
    // empty opens the system browser.
    QStringList browserCommand;
    std::chrono::seconds timeout{300}; // login.timeout_seconds
    // login.redirect_host: "127.0.0.1" (the default) or "localhost", the host of the redirect URI.
    bool redirectToLocalhost = false;
};

// The portal window, from the "portal" block.
struct PortalConfig {
    // portal.headlamp: where the in-cluster Headlamp opens when Headlamp desktop is not
    // installed: "window" (Lamplighter's own window, the default) or "browser".
    bool headlampInBrowser = false;
};

// The request header through which the local proxy passes the ID token to an app.
enum class AppTokenHeader {
    Authorization,     // "Authorization: Bearer <ID token>"
    XForwardedIdToken, // "X-Forwarded-Id-Token: <ID token>", read by Headlamp's -proxy-auth mode
};

// One web app that the local proxy serves to the browser at /apps/<name>/, from the
// "openunison.apps" list of an OpenUnison values file.
struct AppConfig {
    QString name;             // apps[].name, a lower-case DNS label
    QString label;            // apps[].label, shown to people; defaults to the name
    QString org;              // apps[].org, OpenUnison's organization id, kept as text
    QUrl badgeUrl;            // apps[].badgeUrl; may be empty
    bool injectToken = false; // apps[].injectToken
    // apps[].proxyTo: an https URL that ends with "${fullURI}", which the proxy replaces with the
    // path after /apps/<name> and the query.
    QString proxyTo;
    QUrl upstream;                // proxyTo without "${fullURI}": scheme, host, port and path
    QStringList authorizedGroups; // apps[].az_groups
    QByteArray icon;              // apps[].icon, decoded PNG bytes; may be empty
    AppTokenHeader tokenHeader = AppTokenHeader::Authorization; // apps[].tokenHeader
    QString caFile;                                             // apps[].ca_file; may be empty
    QList<QSslCertificate> caCertificates;                      // read from caFile
};

// The format version of the configuration file that this build writes in its examples and reads
// without migration. A file without "format_version" is version 1.
constexpr int currentConfigFormatVersion = 1;

// The whole configuration file.
struct Config {
    QString path; // the file it was read from
    // format_version as the file gives it, 1 when missing. Older versions are migrated in memory
    // when read, and the file itself is never rewritten.
    int formatVersion = 1;
    ProviderConfig provider;
    std::vector<ClusterConfig> clusters;
    ProxyConfig proxy;
    LoginConfig login;
    PortalConfig portal;
    std::vector<AppConfig> apps; // openunison.apps

    // The switches of an OpenUnison values file, read with OpenUnison's defaults.
    // NOTE: they are read and kept, but nothing in Lamplighter acts on them yet.
    bool enableImpersonation = false; // enable_impersonation
    bool headlampEnabled = true;      // headlamp.enabled
    bool kubeAuthEnabled = true;      // openunison.kubeAuth.enabled

    // One line per key that was ignored, as "FILE:LINE:COLUMN: MESSAGE". The caller logs them,
    // because loadConfig() does not.
    QStringList warnings;
};

// Reads and validates a configuration file. An error names the file, line and column and what
// was expected there. A key that Lamplighter does not read is not an error: it adds a line to
// Config::warnings.
Result<Config> loadConfig(const QString &path);

// Returns the blocks whose change from `running` to `reloaded` takes effect only when
// Lamplighter starts again ("oidc", "clusters", "proxy", "login"), in that order.
QStringList blocksNeedingRestart(const Config &running, const Config &reloaded);

// Returns the person's own configuration path, $XDG_CONFIG_HOME/lamplighter/config.yaml.
QString personalConfigPath();
// Returns the file read when no other is named: the person's own when it exists, otherwise the
// first lamplighter/config.yaml in $XDG_CONFIG_DIRS (the Debian package installs
// /etc/xdg/lamplighter/config.yaml). When neither exists it returns the person's own path, so
// that the error names the file to create.
QString defaultConfigPath();

} // namespace lamplighter
