#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QString>
#include <QUrl>
#include <vector>

namespace lamplighter {

// One context of the kubeconfig that Lamplighter writes: a cluster reached through the local
// proxy.
struct KubeconfigContext {
    QString name; // context and cluster name
    QUrl server;  // the local proxy's URL for this cluster
};

// The kubeconfig file that points kubectl and Headlamp desktop at the local proxy. It is
// Lamplighter's own file; the user's ~/.kube/config is never touched.
struct Kubeconfig {
    std::vector<KubeconfigContext> contexts;
    QByteArray certificateAuthorityPem; // the proxy's certificate, trusted as the CA
    QByteArray sessionKey;              // sent by clients as their bearer token

    // Returns the kubeconfig as YAML (apiVersion v1, kind Config), the first context current.
    QByteArray toYaml() const;

    // Writes the file atomically with mode 0600, creating its folder with mode 0700, so that
    // a client watching the file never reads half of it and no other user can read the key.
    Status writeTo(const QString &path) const;
};

// $XDG_STATE_HOME/lamplighter/kubeconfig, or ~/.local/state/lamplighter/kubeconfig.
QString defaultKubeconfigPath();

} // namespace lamplighter
