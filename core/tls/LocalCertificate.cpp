#include "LocalCertificate.h"

#include "Logging.h"
#include "util/OpenSslError.h"
#include "util/OpenSslPointers.h"

#include <memory>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace lamplighter {

namespace {

constexpr int kValidityDays = 397;
constexpr int kRenewalDays = 30;
constexpr qint64 kBackdateSeconds = 60 * 60;
constexpr int kSerialBits = 128;
const char kCommonName[] = "Lamplighter local proxy";

Error generationError(const char *step)
{
    return Error{QStringLiteral("Failed to generate the local proxy certificate (%1): %2")
                     .arg(QLatin1String(step), takeOpenSslError())};
}

QByteArray readBio(BIO *bio)
{
    char *data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return QByteArray(data, static_cast<qsizetype>(size));
}

// Reads `data` in place, so `data` must outlive the BIO. The deleted overload below rejects a
// temporary at compile time.
BioPointer memoryBio(const QByteArray &data)
{
    return BioPointer(BIO_new_mem_buf(data.constData(), static_cast<int>(data.size())));
}
BioPointer memoryBio(QByteArray &&data) = delete;

// Refuses every passphrase prompt, so an encrypted key fails instead of reading the terminal.
int refusePassphrase(char *, int, int, void *)
{
    return -1;
}

bool addExtension(X509 *certificate, int nid, const char *value)
{
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, certificate, certificate, nullptr, nullptr, 0);
    const X509ExtensionPointer extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
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

bool setSubjectAndIssuer(X509 *certificate)
{
    X509_NAME *name = X509_get_subject_name(certificate);
    const auto *commonName = reinterpret_cast<const unsigned char *>(kCommonName);
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1 &&
           X509_set_issuer_name(certificate, name) == 1;
}

// Adds the X.509 v3 extensions. The subject key identifier must come before the authority key
// identifier, which copies it from the issuer, here the certificate itself.
bool addExtensions(X509 *certificate)
{
    return addExtension(certificate, NID_basic_constraints, "critical,CA:TRUE") &&
           addExtension(certificate, NID_key_usage, "critical,digitalSignature,keyCertSign") &&
           addExtension(certificate, NID_ext_key_usage, "serverAuth") &&
           addExtension(certificate, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") &&
           addExtension(certificate, NID_subject_key_identifier, "hash") &&
           addExtension(certificate, NID_authority_key_identifier, "keyid:always");
}

QByteArray certificateToPem(X509 *certificate)
{
    const BioPointer bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), certificate) != 1)
        return {};
    return readBio(bio.get());
}

// Writes the key in the SEC 1 or PKCS#1 ("traditional") form, which QSslKey reads for EC and RSA.
QByteArray privateKeyToPem(EVP_PKEY *key)
{
    const BioPointer bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey_traditional(
                    bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return {};
    return readBio(bio.get());
}

Result<QSsl::KeyAlgorithm> qtKeyAlgorithm(EVP_PKEY *key)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
        return QSsl::Ec;
    case EVP_PKEY_RSA:
        return QSsl::Rsa;
    default:
        return Error{QStringLiteral("The local proxy private key has an unsupported type (%1). "
                                    "Only EC and RSA keys are supported.")
                         .arg(QString::fromLatin1(EVP_PKEY_get0_type_name(key)))};
    }
}

Result<LocalCertificate> toLocalCertificate(const QByteArray &certificatePem,
                                            const QByteArray &keyPem,
                                            QSsl::KeyAlgorithm algorithm)
{
    LocalCertificate result;
    result.certificate = QSslCertificate(certificatePem, QSsl::Pem);
    result.privateKey = QSslKey(keyPem, algorithm, QSsl::Pem, QSsl::PrivateKey);
    if (result.certificate.isNull())
        return Error{QStringLiteral("Qt could not read the local proxy certificate.")};
    if (result.privateKey.isNull())
        return Error{QStringLiteral("Qt could not read the local proxy private key.")};
    return result;
}

} // namespace

QByteArray LocalCertificate::certificatePem() const
{
    return certificate.toPem();
}

QByteArray LocalCertificate::privateKeyPem() const
{
    return privateKey.toPem();
}

bool LocalCertificate::needsRenewal(const QDateTime &now) const
{
    if (certificate.isNull() || privateKey.isNull())
        return true;
    if (now < certificate.effectiveDate())
        return true;
    return now >= certificate.expiryDate().addDays(-kRenewalDays);
}

Result<LocalCertificate> LocalCertificate::generate(const QDateTime &now)
{
    const KeyPointer key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!key)
        return generationError("EC P-256 key generation");

    const X509Pointer certificate(X509_new());
    if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1)
        return generationError("certificate allocation");
    if (!setRandomSerial(certificate.get()))
        return generationError("serial number");
    if (!setValidity(certificate.get(), now))
        return generationError("validity period");
    if (!setSubjectAndIssuer(certificate.get()))
        return generationError("subject name");
    if (X509_set_pubkey(certificate.get(), key.get()) != 1)
        return generationError("public key");
    if (!addExtensions(certificate.get()))
        return generationError("extensions");
    if (X509_sign(certificate.get(), key.get(), EVP_sha256()) <= 0)
        return generationError("signature");

    const QByteArray certificatePem = certificateToPem(certificate.get());
    const QByteArray keyPem = privateKeyToPem(key.get());
    if (certificatePem.isEmpty() || keyPem.isEmpty())
        return generationError("PEM encoding");

    Result<LocalCertificate> result = toLocalCertificate(certificatePem, keyPem, QSsl::Ec);
    if (result)
        qCInfo(lcTls) << "Generated the local proxy certificate, serial"
                      << result->certificate.serialNumber() << "expires"
                      << result->certificate.expiryDate().toString(Qt::ISODate);
    return result;
}

Result<LocalCertificate> LocalCertificate::fromPem(const QByteArray &certificatePem,
                                                   const QByteArray &privateKeyPem)
{
    const BioPointer certificateBio = memoryBio(certificatePem);
    const X509Pointer certificate(
        PEM_read_bio_X509(certificateBio.get(), nullptr, refusePassphrase, nullptr));
    if (!certificate) {
        ERR_clear_error();
        return Error{QStringLiteral("The local proxy certificate is not a valid PEM certificate.")};
    }

    const BioPointer keyBio = memoryBio(privateKeyPem);
    const KeyPointer key(PEM_read_bio_PrivateKey(keyBio.get(), nullptr, refusePassphrase, nullptr));
    if (!key) {
        ERR_clear_error();
        return Error{
            QStringLiteral("The local proxy private key is not a valid unencrypted PEM key.")};
    }

    if (X509_check_private_key(certificate.get(), key.get()) != 1) {
        ERR_clear_error();
        return Error{QStringLiteral(
            "The local proxy private key does not match the local proxy certificate.")};
    }

    const Result<QSsl::KeyAlgorithm> algorithm = qtKeyAlgorithm(key.get());
    if (!algorithm)
        return algorithm.error();
    return toLocalCertificate(
        certificateToPem(certificate.get()), privateKeyToPem(key.get()), *algorithm);
}

} // namespace lamplighter
