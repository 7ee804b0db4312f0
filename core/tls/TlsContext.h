#pragma once

#include "util/Result.h"

#include <QHash>
#include <QList>
#include <QMutex>
#include <QSslCertificate>
#include <QSslKey>
#include <memory>

typedef struct ssl_ctx_st SSL_CTX;

namespace lamplighter {

// An OpenSSL context that many TLS connections share: protocol versions, ALPN, the server's
// certificate and key or the client's trusted certificates. Sharing one context keeps its
// certificate store out of every connection, which matters with a thousand open watches.
// Connections made from it release their record buffers while idle (SSL_MODE_RELEASE_BUFFERS).
class TlsContext {
public:
    ~TlsContext();
    TlsContext(const TlsContext &) = delete;
    TlsContext &operator=(const TlsContext &) = delete;

    // A context for the local proxy's listener: TLS 1.2 or later, HTTP/1.1 as the only ALPN
    // protocol, no client certificates.
    static Result<std::shared_ptr<const TlsContext>> forServer(const QSslCertificate &certificate,
                                                               const QSslKey &privateKey);
    // A server context like forServer(), from a PEM certificate chain file (the server's
    // certificate first) and a PEM private key file, as a Kubernetes TLS Secret contains them.
    static Result<std::shared_ptr<const TlsContext>> forServerFiles(const QString &certificateFile,
                                                                    const QString &keyFile);
    // A context for connections to a server that must present a certificate issued by one of
    // `trusted`, never by a system CA. It offers only HTTP/1.1 through ALPN, because API servers
    // pick HTTP/2 when it is offered. The host name is checked per connection.
    static Result<std::shared_ptr<const TlsContext>>
    forClient(const QList<QSslCertificate> &trusted);

    SSL_CTX *handle() const { return m_context; }
    bool isServer() const { return m_server; }

private:
    TlsContext(SSL_CTX *context, bool server);

    SSL_CTX *m_context;
    bool m_server;
};

// Client contexts by the certificates they trust, so that every connection to a cluster shares
// one context, and clusters with the same CA share it too.
class ClientTlsContexts {
public:
    Result<std::shared_ptr<const TlsContext>> forTrusted(const QList<QSslCertificate> &trusted);
    // Forgets every context; connections that hold one keep it until they close.
    void clear();

private:
    // Connections on every worker thread of a proxy look up contexts here.
    QMutex m_mutex;
    QHash<QByteArray, std::shared_ptr<const TlsContext>> m_contexts;
};

} // namespace lamplighter
