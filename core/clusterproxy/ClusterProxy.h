#pragma once

#include "clusterproxy/ClusterProxyConfig.h"
#include "util/Result.h"

#include <QByteArray>
#include <QDateTime>
#include <QFileSystemWatcher>
#include <QObject>
#include <QTimer>
#include <memory>

class QNetworkAccessManager;

namespace lamplighter {

class Discovery;
class IdTokenVerifier;
class ImpersonatingGate;
class NamespaceLister;
class ProxyServer;
class SharedProxySettings;

// The running cluster proxy: it discovers the issuer and fetches its keys (retrying until both
// work), keeps the service account token and the TLS certificate current as Kubernetes rotates
// their files, and serves requests through an ImpersonatingGate.
class ClusterProxy : public QObject {
    Q_OBJECT
public:
    explicit ClusterProxy(ClusterProxyConfig config, QObject *parent = nullptr);
    ~ClusterProxy() override;

    // Reads the TLS files and the service account token, starts listening and starts the
    // issuer's discovery. Fails when a file cannot be used or the address cannot be bound.
    Status start();
    quint16 port() const;

private:
    void discoverIssuer();
    void onDiscovered();
    void retryDiscoveryLater();
    void reloadFiles();
    Status loadTlsFiles();
    Status loadServiceAccountToken();
    void watchFiles();
    void probeApiServer();

    ClusterProxyConfig m_config;
    std::shared_ptr<SharedProxySettings> m_settings;
    QNetworkAccessManager *m_network;
    Discovery *m_discovery = nullptr;
    IdTokenVerifier *m_verifier = nullptr;
    std::shared_ptr<ImpersonatingGate> m_gate;
    ProxyServer *m_server = nullptr;
    NamespaceLister *m_lister = nullptr;
    QFileSystemWatcher m_watcher;
    QTimer m_retryTimer;
    QTimer m_reloadTimer;
    QTimer m_probeTimer;
    QNetworkAccessManager *m_apiServerNetwork;
    int m_discoveryAttempts = 0;
    QDateTime m_tlsFilesModified;
    QByteArray m_serviceAccountToken;
    QString m_apiServerProblem;
};

} // namespace lamplighter
