#include "ServerCertificateCheck.h"

#include "X509Certificate.h"
#include "util/OpenSslError.h"
#include "util/OpenSslPointers.h"

#include <QHostAddress>
#include <cstdlib>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <vector>

namespace lamplighter {

namespace {

// Frees a stack without the certificates on it, which are owned elsewhere.
struct BorrowingStackDeleter {
    void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};

// The folder of hashed CA certificates that OpenSSL itself would use: SSL_CERT_DIR when set,
// otherwise the folder it was built with (/usr/lib/ssl/certs, a link to /etc/ssl/certs, on
// Debian).
const char *systemCertificateFolder()
{
    const char *fromEnvironment = std::getenv(X509_get_default_cert_dir_env());
    return fromEnvironment && *fromEnvironment ? fromEnvironment : X509_get_default_cert_dir();
}

} // namespace

Status checkServerCertificateChain(const QList<QSslCertificate> &chain,
                                   const QList<QSslCertificate> &anchors,
                                   const QString &host)
{
    if (chain.isEmpty())
        return Error{QStringLiteral("the server sent no certificate")};
    if (host.isEmpty())
        return Error{QStringLiteral("missing host name for the check of the server's certificate")};

    const X509StorePointer store(X509_STORE_new());
    if (!store)
        return Error{takeOpenSslError()};
    for (const QSslCertificate &anchor : anchors) {
        const X509Pointer x509 = toX509(anchor);
        if (!x509 || X509_STORE_add_cert(store.get(), x509.get()) != 1) {
            return Error{QStringLiteral("invalid CA certificate \"%1\": %2")
                             .arg(anchor.subjectDisplayName(), takeOpenSslError())};
        }
    }
    // A missing folder only means that no system certificate is found in it.
    X509_STORE_load_path(store.get(), systemCertificateFolder());
    ERR_clear_error();

    std::vector<X509Pointer> certificates;
    for (const QSslCertificate &certificate : chain) {
        certificates.push_back(toX509(certificate));
        if (!certificates.back())
            return Error{
                QStringLiteral("invalid certificate from the server: %1").arg(takeOpenSslError())};
    }
    // The stack borrows the intermediates, which `certificates` owns.
    const std::unique_ptr<STACK_OF(X509), BorrowingStackDeleter> intermediates(sk_X509_new_null());
    if (!intermediates)
        return Error{takeOpenSslError()};
    for (std::size_t i = 1; i < certificates.size(); ++i) {
        if (sk_X509_push(intermediates.get(), certificates[i].get()) == 0)
            return Error{takeOpenSslError()};
    }

    const X509StoreContextPointer context(X509_STORE_CTX_new());
    if (!context ||
        X509_STORE_CTX_init(
            context.get(), store.get(), certificates.front().get(), intermediates.get()) != 1 ||
        X509_STORE_CTX_set_default(context.get(), "ssl_server") != 1) {
        return Error{takeOpenSslError()};
    }
    X509_VERIFY_PARAM *parameters = X509_STORE_CTX_get0_param(context.get());
    const QByteArray hostBytes = host.toUtf8();
    const bool isAddress = !QHostAddress(host).isNull();
    const int hostSet =
        isAddress
            ? X509_VERIFY_PARAM_set1_ip_asc(parameters, hostBytes.constData())
            : X509_VERIFY_PARAM_set1_host(parameters, hostBytes.constData(), hostBytes.size());
    if (hostSet != 1)
        return Error{
            QStringLiteral("\"%1\" is not a host name that a certificate can name").arg(host)};
    X509_VERIFY_PARAM_set_hostflags(parameters, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);

    if (X509_verify_cert(context.get()) == 1)
        return Done{};
    const int error = X509_STORE_CTX_get_error(context.get());
    ERR_clear_error();
    return Error{QString::fromLatin1(X509_verify_cert_error_string(error))};
}

} // namespace lamplighter
