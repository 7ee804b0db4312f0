#include "TlsContext.h"

#include "X509Certificate.h"
#include "util/OpenSslError.h"
#include "util/OpenSslPointers.h"

#include <QFile>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace lamplighter {

namespace {

// ALPN wire format: each protocol name preceded by its length.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

using ContextPointer = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX_free>>;

// Reads `data` in place, so `data` must outlive the BIO. The deleted overload below rejects a
// temporary at compile time.
BioPointer memoryBio(const QByteArray &data)
{
    return BioPointer(BIO_new_mem_buf(data.constData(), static_cast<int>(data.size())));
}
BioPointer memoryBio(QByteArray &&data) = delete;

// Settings that both sides share: TLS 1.2 as the oldest version, no renegotiation, and the
// buffer and write modes that the non-blocking TlsSocket relies on.
ContextPointer newContext(const SSL_METHOD *method)
{
    ContextPointer context(SSL_CTX_new(method));
    if (!context)
        return context;
    SSL_CTX_set_min_proto_version(context.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(context.get(),
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                            SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(context.get(),
                     SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read as many bytes as the socket has, instead of a record header and then its body in two
    // system calls.
    SSL_CTX_set_read_ahead(context.get(), 1);
    return context;
}

// Accepts HTTP/1.1 when the client offers it and carries on without ALPN otherwise, as a
// server that speaks only HTTP/1.1 may.
int selectHttp11(SSL *,
                 const unsigned char **selected,
                 unsigned char *selectedLength,
                 const unsigned char *offered,
                 unsigned int offeredLength,
                 void *)
{
    unsigned char *choice = nullptr;
    const int outcome = SSL_select_next_proto(
        &choice, selectedLength, kAlpnHttp11, sizeof kAlpnHttp11, offered, offeredLength);
    if (outcome != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *selected = choice;
    return SSL_TLSEXT_ERR_OK;
}

} // namespace

TlsContext::TlsContext(SSL_CTX *context, bool server)
    : m_context(context)
    , m_server(server)
{}

TlsContext::~TlsContext()
{
    SSL_CTX_free(m_context);
}

Result<std::shared_ptr<const TlsContext>> TlsContext::forServer(const QSslCertificate &certificate,
                                                                const QSslKey &privateKey)
{
    ContextPointer context = newContext(TLS_server_method());
    if (!context)
        return Error{QStringLiteral("Could not create the TLS context of the local proxy: %1")
                         .arg(takeOpenSslError())};

    const X509Pointer x509 = toX509(certificate);
    const QByteArray keyPem = privateKey.toPem();
    const BioPointer keyBio = memoryBio(keyPem);
    const KeyPointer key(PEM_read_bio_PrivateKey(keyBio.get(), nullptr, nullptr, nullptr));
    if (!x509 || !key || SSL_CTX_use_certificate(context.get(), x509.get()) != 1 ||
        SSL_CTX_use_PrivateKey(context.get(), key.get()) != 1 ||
        SSL_CTX_check_private_key(context.get()) != 1) {
        return Error{QStringLiteral("The local proxy's certificate or key cannot be used for "
                                    "TLS: %1")
                         .arg(takeOpenSslError(QStringLiteral("it does not parse")))};
    }
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_alpn_select_cb(context.get(), selectHttp11, nullptr);
    // Clients reconnect often (kubectl starts a new process per command), and resuming a
    // session skips the certificate signature.
    SSL_CTX_set_session_cache_mode(context.get(), SSL_SESS_CACHE_SERVER);
    return std::shared_ptr<const TlsContext>(new TlsContext(context.release(), true));
}

Result<std::shared_ptr<const TlsContext>> TlsContext::forServerFiles(const QString &certificateFile,
                                                                     const QString &keyFile)
{
    ContextPointer context = newContext(TLS_server_method());
    if (!context)
        return Error{QStringLiteral("Could not create a TLS context: %1").arg(takeOpenSslError())};
    const QByteArray certificatePath = QFile::encodeName(certificateFile);
    const QByteArray keyPath = QFile::encodeName(keyFile);
    if (SSL_CTX_use_certificate_chain_file(context.get(), certificatePath.constData()) != 1)
        return Error{QStringLiteral("Cannot use the TLS certificate file %1: %2")
                         .arg(certificateFile, takeOpenSslError())};
    if (SSL_CTX_use_PrivateKey_file(context.get(), keyPath.constData(), SSL_FILETYPE_PEM) != 1)
        return Error{
            QStringLiteral("Cannot use the TLS key file %1: %2").arg(keyFile, takeOpenSslError())};
    if (SSL_CTX_check_private_key(context.get()) != 1) {
        takeOpenSslError(); // the message below is clearer than OpenSSL's
        return Error{QStringLiteral("The TLS key in %1 does not belong to the certificate in %2.")
                         .arg(keyFile, certificateFile)};
    }
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_alpn_select_cb(context.get(), selectHttp11, nullptr);
    SSL_CTX_set_session_cache_mode(context.get(), SSL_SESS_CACHE_SERVER);
    return std::shared_ptr<const TlsContext>(new TlsContext(context.release(), true));
}

Result<std::shared_ptr<const TlsContext>>
TlsContext::forClient(const QList<QSslCertificate> &trusted)
{
    ContextPointer context = newContext(TLS_client_method());
    if (!context)
        return Error{QStringLiteral("Could not create a TLS context: %1").arg(takeOpenSslError())};

    X509_STORE *store = SSL_CTX_get_cert_store(context.get());
    for (const QSslCertificate &certificate : trusted) {
        const X509Pointer x509 = toX509(certificate);
        if (!x509 || X509_STORE_add_cert(store, x509.get()) != 1) {
            return Error{QStringLiteral("The CA certificate \"%1\" cannot be used for TLS: %2")
                             .arg(certificate.subjectDisplayName(), takeOpenSslError())};
        }
    }
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_set_alpn_protos(context.get(), kAlpnHttp11, sizeof kAlpnHttp11) != 0)
        return Error{
            QStringLiteral("Could not set the TLS ALPN protocols: %1").arg(takeOpenSslError())};
    return std::shared_ptr<const TlsContext>(new TlsContext(context.release(), false));
}

Result<std::shared_ptr<const TlsContext>>
ClientTlsContexts::forTrusted(const QList<QSslCertificate> &trusted)
{
    QByteArray key;
    for (const QSslCertificate &certificate : trusted)
        key += certificate.digest(QCryptographicHash::Sha256);
    const QMutexLocker locker(&m_mutex);
    if (const auto found = m_contexts.constFind(key); found != m_contexts.cend())
        return *found;
    Result<std::shared_ptr<const TlsContext>> created = TlsContext::forClient(trusted);
    if (created)
        m_contexts.insert(key, *created);
    return created;
}

void ClientTlsContexts::clear()
{
    const QMutexLocker locker(&m_mutex);
    m_contexts.clear();
}

} // namespace lamplighter
