#pragma once

#include "ProxyLimits.h"
#include "UpstreamCluster.h"
#include "tls/LocalCertificate.h"
#include "util/Result.h"

#include <QByteArray>
#include <QObject>
#include <QUrl>
#include <memory>
#include <vector>

class QSslServer;

namespace lamplighter {

struct ProxySettings;

// The local proxy through which Kubernetes clients on the desktop reach the clusters as the
// signed-in person. It listens with TLS on 127.0.0.1 only, accepts requests that carry the
// session key as their bearer token, and forwards `/clusters/<name>/<path>` to that cluster's
// API server with the person's ID token in place of the session key.
class LocalProxy : public QObject {
    Q_OBJECT
public:
    explicit LocalProxy(QObject *parent = nullptr);
    ~LocalProxy() override;

    // Sets the listener's certificate, which connections accepted afterwards use.
    void setServerCertificate(const LocalCertificate &certificate);
    // Sets the session key, the text clients send as "Authorization: Bearer <key>". The caller
    // generates it (32 random bytes, base64url-encoded).
    void setSessionKey(const QByteArray &key);
    void setClusters(std::vector<UpstreamCluster> clusters);
    // Sets the ID token forwarded from the next request on, on open connections too. An empty
    // token means signed out: requests are rejected with 401 until a token is set.
    void setIdToken(const QByteArray &idToken);
    void setLimits(const ProxyLimits &limits);

    // Starts listening on 127.0.0.1. Port 0 picks a free port. Fails without a certificate or a
    // session key, or when the port cannot be bound.
    Status listen(quint16 port = 0);
    // Returns the listening port, or 0 when not listening.
    quint16 port() const;
    // Returns the kubeconfig server URL for a cluster: https://127.0.0.1:<port>/clusters/<name>.
    // client-go keeps the path and appends API paths to it.
    QUrl clusterUrl(const QString &clusterName) const;
    // Stops listening and aborts every open connection.
    void close();

private:
    void acceptConnections();

    QSslServer *m_server;
    std::shared_ptr<ProxySettings> m_settings;
    LocalCertificate m_certificate;
};

} // namespace lamplighter
