#pragma once

#include <QByteArray>
#include <QList>
#include <QSslCertificate>
#include <QString>
#include <QUrl>

namespace lamplighter {

// The URL of a server that the proxy forwards to, with the parts of it that every forwarded
// request needs worked out once, when the settings are made, rather than for each request.
class UpstreamServer {
public:
    UpstreamServer() = default;
    // Implicit, so that a URL can be given wherever a server is expected.
    UpstreamServer(const QUrl &url);

    const QUrl &url() const { return m_url; }

    // The Host field value: the host, in brackets for IPv6, and the port when the URL names one.
    const QByteArray &hostHeader() const { return m_hostHeader; }

    // The target to send: the URL's path without its trailing slashes, followed by
    // `pathAndQuery`.
    QByteArray target(const QByteArray &pathAndQuery) const;

    friend bool operator==(const UpstreamServer &a, const UpstreamServer &b)
    {
        return a.m_url == b.m_url;
    }
    friend bool operator!=(const UpstreamServer &a, const UpstreamServer &b) { return !(a == b); }

private:
    QUrl m_url;
    QByteArray m_hostHeader;
    QByteArray m_pathPrefix;
};

// A Kubernetes API server the local proxy forwards to. The proxy verifies the server's TLS
// certificate against `caCertificates` only. It never uses the system's CA store, so a cluster
// with an empty list fails verification.
struct UpstreamCluster {
    QString name;
    UpstreamServer server; // an https URL, whose path (if any) prefixes every forwarded path
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
