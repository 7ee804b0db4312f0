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

} // namespace lamplighter
