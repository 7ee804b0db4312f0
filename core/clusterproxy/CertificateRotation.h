#pragma once

#include "clusterproxy/CertificateRotationConfig.h"
#include "util/Result.h"

#include <QDateTime>
#include <QList>
#include <QString>

namespace lamplighter {

class KubernetesRestClient;

// The outcome of one pass for one entry's Secret.
enum class SecretAction {
    Created,   // the Secret did not exist
    Unchanged, // ours, and its certificate expires in more than 30 days
    Replaced,  // ours and expiring, unreadable, or not ours with replace_if_exists
    LeftAlone, // not ours, and replace_if_exists is false
};

// Creates and renews the TLS Secrets of `keys` entries (`lamplighter-cluster-proxy certs`).
//
// A Secret that this class creates carries the label
// app.kubernetes.io/managed-by=lamplighter-cluster-proxy, by which a later pass distinguishes
// its own Secrets from others. It replaces its own Secret when the first certificate in tls.crt
// expires within 30 days or does not parse, and another Secret only with replace_if_exists. A
// replacement is a PUT with the resourceVersion that was read, so a concurrent change fails it
// instead of being lost. After a replacement it deletes the pods of the target namespace that match
// each selector of delete_pods_labels, so that their controllers start them with the new files.
// Logs name entries, Secrets and pods, and never contain key material or the token.
class CertificateRotation {
public:
    explicit CertificateRotation(CertificateRotationConfig config);

    // The label key and value that mark a Secret as created by this class.
    static const char kManagedByLabel[];
    static const char kManagedByValue[];

    // Checks every entry once, in order, and returns each entry's action or error. `now` is
    // the time against which expiry is checked and new certificates start.
    QList<Result<SecretAction>> runOnce(const QDateTime &now);

private:
    Result<SecretAction>
    rotate(KubernetesRestClient &client, const CertificateKey &key, const QDateTime &now);
    Status deletePods(KubernetesRestClient &client, const CertificateKey &key);

    CertificateRotationConfig m_config;
};

} // namespace lamplighter
