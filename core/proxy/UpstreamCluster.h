#pragma once

#include <QList>
#include <QSslCertificate>
#include <QString>
#include <QUrl>

namespace lamplighter {

// A Kubernetes API server the local proxy forwards to. The proxy verifies the server's TLS
// certificate against `caCertificates` only. It never uses the system's CA store, so a cluster
// with an empty list fails verification.
struct UpstreamCluster {
    QString name;
    QUrl server; // an https URL, whose path (if any) prefixes every forwarded path
    QList<QSslCertificate> caCertificates;
};

// Returns true when a connection opened for `opened` may carry the requests for `requested`: the
// same cluster name and server, verified against the same CA certificates. Lists that share
// their data, as copies of one setting do, compare without reading the certificates.
inline bool mayShareConnection(const UpstreamCluster &opened, const UpstreamCluster &requested)
{
    return opened.name == requested.name && opened.server == requested.server &&
           opened.caCertificates == requested.caCertificates;
}

} // namespace lamplighter
