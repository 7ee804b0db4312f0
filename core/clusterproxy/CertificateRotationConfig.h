#pragma once

#include "util/Result.h"

#include <QList>
#include <QSslCertificate>
#include <QString>
#include <QStringList>
#include <QUrl>

namespace lamplighter {

// One entry of `keys`: a TLS Secret that `lamplighter-cluster-proxy certs` creates and renews.
// The field names follow OpenUnison's `keys` entries.
struct CertificateKey {
    QString name;                 // name, used in log lines and errors
    QString secretName;           // tls_secret_name
    bool replaceIfExists = false; // replace_if_exists: also replace a Secret we did not create
    // create_data.ca_cert: when true, tls.crt contains the server certificate followed by the CA
    // certificate. ca.crt contains the CA certificate either way.
    bool caCertificateInChain = false;
    int keySize = 2048;                  // create_data.key_size, RSA bits
    QString serverName;                  // create_data.server_name, subject CN and first SAN
    QStringList subjectAlternativeNames; // create_data.subject_alternative_names, DNS or IP
    QString targetNamespace;             // create_data.target_namespace
    // create_data.delete_pods_labels (also delete_pods_label, delete_pod_labels): one
    // `key=value` label selector per item.
    QStringList deletePodsSelectors;
};

// The configuration of `lamplighter-cluster-proxy certs`: the API server connection, from the
// same api_server section as the cluster proxy's, and the TLS Secrets to manage.
struct CertificateRotationConfig {
    QUrl apiServer;                                 // api_server.url, https
    QList<QSslCertificate> apiServerCaCertificates; // api_server.certificate_authority
    QString serviceAccountTokenFile;                // api_server.token_file
    QList<CertificateKey> keys;                     // keys and openunison.keys
    QStringList warnings; // unknown keys that were ignored, each naming the key and its position
};

// Reads the `certs` configuration file. The file is the cluster proxy's configuration with a
// `keys` list, a file with only `api_server` and `keys`, or an OpenUnison values file with
// `openunison.keys`. Without `api_server`, the in-cluster defaults apply (the
// kubernetes.default.svc Service and the service account files under
// /var/run/secrets/kubernetes.io/serviceaccount). Errors name the file, line, column and field.
Result<CertificateRotationConfig> loadCertificateRotationConfig(const QString &path);

} // namespace lamplighter
