#pragma once

#include "BrowserSessions.h"
#include "ProxyLimits.h"
#include "UpstreamApp.h"
#include "UpstreamCluster.h"
#include "tls/TlsContext.h"

#include <QByteArray>
#include <QDateTime>
#include <QString>
#include <functional>
#include <memory>
#include <vector>

namespace lamplighter {

// The configuration that LocalProxy shares with its open connections. Connections read it for
// every request, so a new ID token applies from the next request on.
struct ProxySettings {
    QByteArray sessionKey;
    QByteArray idToken;         // empty when signed out
    QDateTime idTokenExpiresAt; // UTC; invalid when the expiry is not known
    QString unavailableReason;  // why there is no token, for the 401 message; empty: signed out
    std::function<void()> idTokenExpired; // called when a request finds the token expired
    // A callback for metrics, called as each response head goes to a client. It receives the
    // status code, whether the request was forwarded, and the milliseconds since its head was read.
    std::function<void(int code, bool forwarded, qint64 elapsedMs)> responseStarted;
    std::vector<UpstreamCluster> clusters;
    std::vector<UpstreamApp> apps;
    // Launch tickets and browser cookies. Connections consume tickets through this pointer,
    // although they see the rest of the settings as const.
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

} // namespace lamplighter
