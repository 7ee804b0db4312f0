#include "clusterproxy/CertificateRotation.h"

#include "Logging.h"
#include "clusterproxy/KubernetesRestClient.h"
#include "clusterproxy/TlsSecretCertificate.h"

#include <QFile>
#include <QJsonArray>
#include <QSslCertificate>

namespace lamplighter {

namespace {

constexpr int kRenewalDays = 30;
// Service account tokens are JWTs of about 1 KiB. A larger file is not a token.
constexpr qint64 kMaxTokenBytes = 64 * 1024;

QString secretsPath(const CertificateKey &key)
{
    return QStringLiteral("/api/v1/namespaces/%1/secrets").arg(key.targetNamespace);
}

QString secretPath(const CertificateKey &key)
{
    return secretsPath(key) + QLatin1Char('/') + key.secretName;
}

QString secretId(const CertificateKey &key)
{
    return key.targetNamespace + QLatin1Char('/') + key.secretName;
}

KubernetesRequest secretRequest(const CertificateKey &key,
                                const char *method,
                                const QString &verb,
                                const QString &path)
{
    KubernetesRequest request;
    request.method = method;
    request.path = path;
    request.verb = verb;
    request.resource = QStringLiteral("secrets");
    request.namespaceName = key.targetNamespace;
    return request;
}

Result<QByteArray> readToken(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("Cannot read the service account token file %1 "
                                    "(api_server.token_file): %2")
                         .arg(path, file.errorString())};
    const QByteArray token = file.read(kMaxTokenBytes + 1).trimmed();
    if (token.isEmpty() || token.size() > kMaxTokenBytes)
        return Error{QStringLiteral("The service account token file %1 (api_server.token_file) "
                                    "is empty or larger than %2 bytes")
                         .arg(path)
                         .arg(kMaxTokenBytes)};
    return token;
}

// Returns the expiry of the first certificate in the Secret's tls.crt, or why there is none.
Result<QDateTime> certificateExpiry(const QJsonObject &secret)
{
    const QJsonValue encoded =
        secret.value(QStringLiteral("data")).toObject().value(QStringLiteral("tls.crt"));
    if (!encoded.isString())
        return Error{QStringLiteral("it has no tls.crt")};
    const auto decoded = QByteArray::fromBase64Encoding(encoded.toString().toLatin1(),
                                                        QByteArray::AbortOnBase64DecodingErrors);
    if (!decoded)
        return Error{QStringLiteral("its tls.crt is not valid base64")};
    const QList<QSslCertificate> certificates = QSslCertificate::fromData(*decoded, QSsl::Pem);
    if (certificates.isEmpty() || certificates.first().isNull())
        return Error{QStringLiteral("its tls.crt contains no PEM certificate")};
    return certificates.first().expiryDate();
}

// Returns the Secret's data: ca.crt, tls.crt and tls.key, base64-encoded as the API expects.
QJsonObject secretData(const TlsSecretCertificate &certificate)
{
    return QJsonObject{
        {QStringLiteral("ca.crt"), QString::fromLatin1(certificate.caCertificatePem.toBase64())},
        {QStringLiteral("tls.crt"), QString::fromLatin1(certificate.certificatePem.toBase64())},
        {QStringLiteral("tls.key"), QString::fromLatin1(certificate.privateKeyPem.toBase64())},
    };
}

} // namespace

const char CertificateRotation::kManagedByLabel[] = "app.kubernetes.io/managed-by";
const char CertificateRotation::kManagedByValue[] = "lamplighter-cluster-proxy";

CertificateRotation::CertificateRotation(CertificateRotationConfig config)
    : m_config(std::move(config))
{}

QList<Result<SecretAction>> CertificateRotation::runOnce(const QDateTime &now)
{
    QList<Result<SecretAction>> results;
    // The kubelet replaces a projected token before it expires, so it is read on every pass.
    const Result<QByteArray> token = readToken(m_config.serviceAccountTokenFile);
    KubernetesRestClient client(m_config.apiServer, m_config.apiServerCaCertificates);
    if (token)
        client.setToken(*token);

    for (const CertificateKey &key : std::as_const(m_config.keys)) {
        Result<SecretAction> result = token ? rotate(client, key, now) : token.error();
        if (!result)
            qCCritical(lcKube).noquote()
                << QStringLiteral("Entry \"%1\", Secret %2: %3")
                       .arg(key.name, secretId(key), result.errorMessage());
        results.append(std::move(result));
    }
    return results;
}

Result<SecretAction> CertificateRotation::rotate(KubernetesRestClient &client,
                                                 const CertificateKey &key,
                                                 const QDateTime &now)
{
    const KubernetesRequest get = secretRequest(key, "GET", QStringLiteral("get"), secretPath(key));
    const Result<KubernetesResponse> existing = client.send(get);
    if (!existing)
        return existing.error();
    if (existing->status != 200 && existing->status != 404)
        return client.responseError(get, *existing);

    QJsonObject secret;
    if (existing->status == 200) {
        secret = existing->body;
        const QJsonObject metadata = secret.value(QStringLiteral("metadata")).toObject();
        const bool ours = metadata.value(QStringLiteral("labels"))
                              .toObject()
                              .value(QLatin1String(kManagedByLabel))
                              .toString() == QLatin1String(kManagedByValue);
        if (!ours && !key.replaceIfExists) {
            qCInfo(lcKube).noquote()
                << QStringLiteral("Entry \"%1\": left Secret %2 alone, because it lacks the label "
                                  "%3=%4 and replace_if_exists is false")
                       .arg(key.name,
                            secretId(key),
                            QLatin1String(kManagedByLabel),
                            QLatin1String(kManagedByValue));
            return SecretAction::LeftAlone;
        }
        if (ours) {
            const Result<QDateTime> expiry = certificateExpiry(secret);
            if (expiry && *expiry > now.addDays(kRenewalDays)) {
                qCInfo(lcKube).noquote()
                    << QStringLiteral("Entry \"%1\": Secret %2 is valid until %3, no change")
                           .arg(key.name, secretId(key), expiry->toString(Qt::ISODate));
                return SecretAction::Unchanged;
            }
            qCInfo(lcKube).noquote()
                << QStringLiteral("Entry \"%1\": renewing Secret %2, because %3")
                       .arg(key.name,
                            secretId(key),
                            expiry ? QStringLiteral("its certificate expires at %1, within %2 days")
                                         .arg(expiry->toString(Qt::ISODate))
                                         .arg(kRenewalDays)
                                   : expiry.errorMessage());
        } else {
            qCInfo(lcKube).noquote()
                << QStringLiteral("Entry \"%1\": replacing Secret %2, which lacks the label %3, "
                                  "because replace_if_exists is true")
                       .arg(key.name, secretId(key), QLatin1String(kManagedByLabel));
        }
    }

    const Result<TlsSecretCertificate> certificate = TlsSecretCertificate::generate(
        key.keySize, key.serverName, key.subjectAlternativeNames, key.caCertificateInChain, now);
    if (!certificate)
        return certificate.error();

    // A replacement keeps the metadata that was read, resourceVersion included, and the type,
    // which the API server does not let an update change.
    QJsonObject metadata = secret.value(QStringLiteral("metadata")).toObject();
    metadata.insert(QStringLiteral("name"), key.secretName);
    metadata.insert(QStringLiteral("namespace"), key.targetNamespace);
    QJsonObject labels = metadata.value(QStringLiteral("labels")).toObject();
    labels.insert(QLatin1String(kManagedByLabel), QLatin1String(kManagedByValue));
    metadata.insert(QStringLiteral("labels"), labels);
    secret.insert(QStringLiteral("apiVersion"), QStringLiteral("v1"));
    secret.insert(QStringLiteral("kind"), QStringLiteral("Secret"));
    if (!secret.contains(QStringLiteral("type")))
        secret.insert(QStringLiteral("type"), QStringLiteral("kubernetes.io/tls"));
    secret.insert(QStringLiteral("metadata"), metadata);
    secret.insert(QStringLiteral("data"), secretData(*certificate));
    secret.remove(QStringLiteral("stringData"));

    const bool create = existing->status == 404;
    KubernetesRequest write =
        create ? secretRequest(key, "POST", QStringLiteral("create"), secretsPath(key))
               : secretRequest(key, "PUT", QStringLiteral("update"), secretPath(key));
    write.body = secret;
    const Result<KubernetesResponse> written = client.send(write);
    if (!written)
        return written.error();
    if (written->status == 409) {
        return Error{QStringLiteral("%1. Another client changed or created the Secret at the "
                                    "same time, so the next pass checks it again.")
                         .arg(client.responseError(write, *written).message)};
    }
    if (written->status != (create ? 201 : 200))
        return client.responseError(write, *written);

    qCInfo(lcKube).noquote() << QStringLiteral("Entry \"%1\": %2 Secret %3 for %4")
                                    .arg(key.name,
                                         create ? QStringLiteral("created")
                                                : QStringLiteral("replaced"),
                                         secretId(key),
                                         (QStringList{key.serverName} + key.subjectAlternativeNames)
                                             .join(QStringLiteral(", ")));
    if (create)
        return SecretAction::Created;
    const Status deleted = deletePods(client, key);
    if (!deleted)
        return Error{QStringLiteral("replaced the Secret, but %1").arg(deleted.errorMessage())};
    return SecretAction::Replaced;
}

Status CertificateRotation::deletePods(KubernetesRestClient &client, const CertificateKey &key)
{
    const QString podsPath = QStringLiteral("/api/v1/namespaces/%1/pods").arg(key.targetNamespace);
    for (const QString &selector : key.deletePodsSelectors) {
        KubernetesRequest list;
        list.method = "GET";
        list.path = podsPath;
        list.query.addQueryItem(QStringLiteral("labelSelector"), selector);
        list.verb = QStringLiteral("list");
        list.resource = QStringLiteral("pods");
        list.namespaceName = key.targetNamespace;
        const Result<KubernetesResponse> pods = client.send(list);
        if (!pods)
            return pods.error();
        if (pods->status != 200)
            return client.responseError(list, *pods);

        const QJsonArray items = pods->body.value(QStringLiteral("items")).toArray();
        QStringList deleted;
        for (const QJsonValue &item : items) {
            const QString name = item.toObject()
                                     .value(QStringLiteral("metadata"))
                                     .toObject()
                                     .value(QStringLiteral("name"))
                                     .toString();
            if (name.isEmpty())
                continue;
            KubernetesRequest remove;
            remove.method = "DELETE";
            remove.path = podsPath + QLatin1Char('/') + name;
            remove.verb = QStringLiteral("delete");
            remove.resource = QStringLiteral("pods");
            remove.namespaceName = key.targetNamespace;
            const Result<KubernetesResponse> response = client.send(remove);
            if (!response)
                return response.error();
            // 404: the pod went away between the list and the delete, which is the goal.
            if (response->status != 200 && response->status != 202 && response->status != 404)
                return client.responseError(remove, *response);
            deleted.append(name);
        }
        qCInfo(lcKube).noquote()
            << QStringLiteral("Entry \"%1\": deleted %2 pod(s) in namespace %3 matching %4%5")
                   .arg(key.name)
                   .arg(deleted.size())
                   .arg(key.targetNamespace,
                        selector,
                        deleted.isEmpty()
                            ? QString()
                            : QStringLiteral(": ") + deleted.join(QStringLiteral(", ")));
    }
    return Done{};
}

} // namespace lamplighter
