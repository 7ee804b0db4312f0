#include "clusterproxy/TlsSecretCertificate.h"

#include "util/OpenSslError.h"
#include "util/OpenSslPointers.h"

#include <QHostAddress>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace lamplighter {

namespace {

constexpr int kValidityDays = 365;
constexpr qint64 kBackdateSeconds = 60 * 60;
constexpr int kSerialBits = 128;

Error generationError(const char *step)
{
    return Error{QStringLiteral("Failed to generate the TLS certificate (%1): %2")
                     .arg(QLatin1String(step), takeOpenSslError())};
}

QByteArray readBio(BIO *bio)
{
    char *data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return QByteArray(data, static_cast<qsizetype>(size));
}

// Adds an extension in OpenSSL's configuration syntax, with `issuer` as the issuing certificate
// for the authority key identifier.
bool addExtension(X509 *certificate, X509 *issuer, int nid, const QByteArray &value)
{
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
    const X509ExtensionPointer extension(
        X509V3_EXT_conf_nid(nullptr, &context, nid, value.constData()));
    return extension && X509_add_ext(certificate, extension.get(), -1) == 1;
}

bool setRandomSerial(X509 *certificate)
{
    const BignumPointer serial(BN_new());
    if (!serial || BN_rand(serial.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
        return false;
    return BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate)) != nullptr;
}

bool setValidity(X509 *certificate, const QDateTime &now)
{
    const time_t notBefore = static_cast<time_t>(now.toSecsSinceEpoch() - kBackdateSeconds);
    const time_t notAfter = notBefore + static_cast<time_t>(kValidityDays) * 24 * 60 * 60;
    return ASN1_TIME_set(X509_getm_notBefore(certificate), notBefore) != nullptr &&
           ASN1_TIME_set(X509_getm_notAfter(certificate), notAfter) != nullptr;
}

bool setCommonName(X509 *certificate, const QString &commonName)
{
    const QByteArray utf8 = commonName.toUtf8();
    X509_NAME *name = X509_get_subject_name(certificate);
    return X509_NAME_add_entry_by_txt(name,
                                      "CN",
                                      MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char *>(utf8.constData()),
                                      -1,
                                      -1,
                                      0) == 1;
}

// Creates a version 3 certificate for `key` with a random serial and the validity period, but
// without an issuer, extensions or signature.
X509Pointer newCertificate(EVP_PKEY *key, const QString &commonName, const QDateTime &now)
{
    X509Pointer certificate(X509_new());
    if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1 ||
        !setRandomSerial(certificate.get()) || !setValidity(certificate.get(), now) ||
        !setCommonName(certificate.get(), commonName) ||
        X509_set_pubkey(certificate.get(), key) != 1)
        return nullptr;
    return certificate;
}

// Returns the subjectAltName value, for example "DNS:a.svc,IP:10.0.0.1", without duplicates.
QByteArray alternativeNamesValue(const QString &serverName, const QStringList &alternativeNames)
{
    QStringList entries;
    for (const QString &name : QStringList{serverName} + alternativeNames) {
        const QHostAddress address(name);
        const QString entry = address.isNull() ? QStringLiteral("DNS:") + name
                                               : QStringLiteral("IP:") + address.toString();
        if (!entries.contains(entry))
            entries.append(entry);
    }
    return entries.join(QLatin1Char(',')).toUtf8();
}

QByteArray certificateToPem(X509 *certificate)
{
    const BioPointer bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), certificate) != 1)
        return {};
    return readBio(bio.get());
}

QByteArray privateKeyToPem(EVP_PKEY *key)
{
    const BioPointer bio(BIO_new(BIO_s_mem()));
    if (!bio ||
        PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return {};
    return readBio(bio.get());
}

} // namespace

Result<TlsSecretCertificate> TlsSecretCertificate::generate(int keySize,
                                                            const QString &serverName,
                                                            const QStringList &alternativeNames,
                                                            bool appendCaCertificate,
                                                            const QDateTime &now)
{
    const auto bits = static_cast<size_t>(keySize);
    const KeyPointer caKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
    const KeyPointer serverKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
    if (!caKey || !serverKey)
        return generationError("RSA key generation");

    const X509Pointer ca(newCertificate(caKey.get(), serverName + QStringLiteral(" CA"), now));
    if (!ca)
        return generationError("CA certificate fields");
    // The subject key identifier must come before the authority key identifier, which copies
    // it from the issuer, here the CA itself.
    const bool caExtensions =
        X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get())) == 1 &&
        addExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
        addExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign") &&
        addExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash") &&
        addExtension(ca.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
    if (!caExtensions)
        return generationError("CA certificate extensions");
    if (X509_sign(ca.get(), caKey.get(), EVP_sha256()) <= 0)
        return generationError("CA certificate signature");

    const X509Pointer server(newCertificate(serverKey.get(), serverName, now));
    if (!server)
        return generationError("server certificate fields");
    const bool serverExtensions =
        X509_set_issuer_name(server.get(), X509_get_subject_name(ca.get())) == 1 &&
        addExtension(server.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") &&
        addExtension(
            server.get(), ca.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
        addExtension(server.get(), ca.get(), NID_ext_key_usage, "serverAuth") &&
        addExtension(server.get(),
                     ca.get(),
                     NID_subject_alt_name,
                     alternativeNamesValue(serverName, alternativeNames)) &&
        addExtension(server.get(), ca.get(), NID_subject_key_identifier, "hash") &&
        addExtension(server.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
    if (!serverExtensions)
        return generationError("server certificate extensions");
    if (X509_sign(server.get(), caKey.get(), EVP_sha256()) <= 0)
        return generationError("server certificate signature");

    TlsSecretCertificate result;
    result.caCertificatePem = certificateToPem(ca.get());
    result.certificatePem = certificateToPem(server.get());
    result.privateKeyPem = privateKeyToPem(serverKey.get());
    if (result.caCertificatePem.isEmpty() || result.certificatePem.isEmpty() ||
        result.privateKeyPem.isEmpty())
        return generationError("PEM encoding");
    if (appendCaCertificate)
        result.certificatePem += result.caCertificatePem;
    return result;
}

} // namespace lamplighter
