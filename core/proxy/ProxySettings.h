#pragma once

#include "BearerToken.h"
#include "BrowserSessions.h"
#include "ProxyLimits.h"
#include "UpstreamApp.h"
#include "UpstreamCluster.h"
#include "tls/TlsContext.h"

#include <QByteArray>
#include <QDateTime>
#include <QMutex>
#include <QString>
#include <functional>
#include <memory>
#include <vector>

namespace lamplighter {

// The configuration of a proxy. Connections and gates read it through SharedProxySettings, on
// the proxy's worker threads.
struct ProxySettings {
    QByteArray sessionKey;
    BearerToken idToken;        // empty when signed out
    QDateTime idTokenExpiresAt; // UTC; invalid when the expiry is not known
    QString unavailableReason;  // why there is no token, for the 401 message; empty: signed out
    std::function<void()> idTokenExpired; // called when a request finds the token expired
    // A callback for metrics, called as each response head goes to a client. It receives the
    // status code, whether the request was forwarded, and the milliseconds since its head was read.
    std::function<void(int code, bool forwarded, qint64 elapsedMs)> responseStarted;
    std::vector<UpstreamCluster> clusters;
    std::vector<UpstreamApp> apps;
    // Launch tickets and browser cookies. Connections consume tickets through this pointer,
    // although they see the rest of the settings as const. Every copy of the settings shares
    // this object and clientTlsContexts, and both are safe to use from any thread.
    std::shared_ptr<BrowserSessions> browserSessions = std::make_shared<BrowserSessions>();
    // The TLS contexts of connections to clusters and apps, shared by all connections.
    std::shared_ptr<ClientTlsContexts> clientTlsContexts = std::make_shared<ClientTlsContexts>();
    ProxyLimits limits;
    quint16 port = 0; // the listening port, used to check Host and Origin

    const UpstreamCluster *findCluster(const QString &name) const
    {
        for (const UpstreamCluster &cluster : clusters) {
            if (cluster.name == name)
                return &cluster;
        }
        return nullptr;
    }

    const UpstreamApp *findApp(const QString &name) const
    {
        for (const UpstreamApp &app : apps) {
            if (app.name == name)
                return &app;
        }
        return nullptr;
    }
};

// The settings that a proxy's owner changes while connections on worker threads read them. The
// owner publishes a whole new copy, and a reader takes the copy that is current, which is never
// changed afterwards. A gate takes it for every request, so a new ID token applies from the
// next request on, on open connections too.
class SharedProxySettings {
public:
    explicit SharedProxySettings(ProxySettings settings = {})
        : m_current(std::make_shared<const ProxySettings>(std::move(settings)))
    {}

    std::shared_ptr<const ProxySettings> current() const
    {
        const QMutexLocker locker(&m_mutex);
        return m_current;
    }

    void publish(ProxySettings settings)
    {
        auto next = std::make_shared<const ProxySettings>(std::move(settings));
        const QMutexLocker locker(&m_mutex);
        m_current.swap(next);
        // The old copy is freed after the lock is released, or later by its last reader.
    }

private:
    mutable QMutex m_mutex;
    std::shared_ptr<const ProxySettings> m_current;
};

} // namespace lamplighter
