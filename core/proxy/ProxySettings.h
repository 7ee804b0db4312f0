#pragma once

#include "ProxyLimits.h"
#include "UpstreamCluster.h"

#include <QByteArray>
#include <vector>

namespace lamplighter {

// The configuration that LocalProxy shares with its open connections. Connections read it for
// every request, so a new ID token applies from the next request on.
struct ProxySettings {
    QByteArray sessionKey;
    QByteArray idToken; // empty when signed out
    std::vector<UpstreamCluster> clusters;
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
};

} // namespace lamplighter
