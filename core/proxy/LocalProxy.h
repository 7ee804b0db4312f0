#pragma once

#include "ProxyLimits.h"
#include "ProxySettings.h"
#include "UpstreamApp.h"
#include "UpstreamCluster.h"
#include "tls/LocalCertificate.h"
#include "util/Result.h"

#include <QByteArray>
#include <QObject>
#include <QUrl>
#include <memory>
#include <vector>

namespace lamplighter {

class ProxyServer;

// The local proxy through which Kubernetes clients on the desktop reach the clusters as the
// signed-in person. It listens with TLS on 127.0.0.1 only, accepts requests that carry the
// session key as their bearer token, and forwards `/clusters/<name>/<path>` to that cluster's
// API server with the person's ID token in place of the session key. Browsers reach web apps at
// `/apps/<name>/<path>` with a session cookie that a one-time launch ticket sets.
//
// Its connections run on worker threads (defaultProxyWorkerThreads()). Call its functions on the
// thread that created it. It emits idTokenExpired() from a worker thread.
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
    // Sets the web apps served to browsers at /apps/<name>/.
    void setApps(std::vector<UpstreamApp> apps);
    // Creates a one-time launch ticket for an app (32 random bytes, base64url), valid for
    // ProxyLimits::launchTicketLifetime. A browser that opens launchUrl() with it receives the
    // session cookie that later requests to the apps need. Fails for an app that is not
    // configured, naming the configured ones, or when the random generator fails.
    Result<QByteArray> createLaunchTicket(const QString &appName);
    // Returns https://127.0.0.1:<port>/apps/<name>/?ticket=<ticket>.
    QUrl launchUrl(const QString &appName, const QByteArray &ticket) const;
    // Forgets every launch ticket and browser session cookie, so that browsers must open the
    // apps again with a new ticket, and closes every open client connection, tunnels included.
    void endBrowserSessions();
    // Sets the ID token forwarded from the next request on, on open connections too. An empty
    // token means signed out: requests are rejected with 401 until a token is set. Once
    // expiresAt has passed, requests are rejected with 401 too, and idTokenExpired() is emitted,
    // because an expired token would only earn the client the cluster's bare "Unauthorized".
    void setIdToken(const QByteArray &idToken, const QDateTime &expiresAt = QDateTime());

    // Withdraws the ID token and rejects requests with 401 and reason as the message, for
    // states other than signed out, such as a refresh that keeps failing.
    void setUnavailable(const QString &reason);
    // Sets the limits of the connections accepted afterwards. Open connections keep theirs.
    void setLimits(const ProxyLimits &limits);

    // Starts listening on 127.0.0.1. Port 0 picks a free port. Fails without a certificate or a
    // session key, or when the port cannot be bound.
    Status listen(quint16 port = 0);
    // Returns the listening port, or 0 when not listening.
    quint16 port() const;
    // Sets the number of threads that the connections run on, defaultProxyWorkerThreads()
    // unless set. Call it while the proxy is not listening.
    void setWorkerThreads(int count);
    // Returns the number of threads that the connections run on.
    int workerThreads() const;
    // Returns the number of connections to clusters that are kept open for the next client.
    int idleUpstreamConnections() const;
    // Returns the kubeconfig server URL for a cluster: https://127.0.0.1:<port>/clusters/<name>.
    // client-go keeps the path and appends API paths to it.
    QUrl clusterUrl(const QString &clusterName) const;
    // Stops listening and aborts every open connection.
    void close();

Q_SIGNALS:
    // A client sent a request after the ID token's expiry; the owner should refresh it.
    void idTokenExpired();

private:
    class Gate;

    // Makes the connections see the changes made to m_settings so far.
    void publishSettings();

    // The settings as the owner's thread changes them. The connections read the published copy.
    ProxySettings m_settings;
    std::shared_ptr<SharedProxySettings> m_sharedSettings;
    std::shared_ptr<Gate> m_gate;
    ProxyServer *m_server;
    QString m_serverContextError;
    LocalCertificate m_certificate;
};

} // namespace lamplighter
