#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QSslCertificate>
#include <QSslConfiguration>
#include <QString>
#include <QUrl>
#include <QUrlQuery>

class QNetworkAccessManager;

namespace lamplighter {

// A request to the Kubernetes API, with the RBAC verb and resource that the API server checks,
// so that errors can name them.
struct KubernetesRequest {
    QByteArray method; // GET, POST, PUT or DELETE
    QString path;      // below the API server URL, for example /api/v1/namespaces/a/secrets
    QUrlQuery query;
    QJsonObject body; // sent as JSON unless empty
    QString verb;     // get, list, create, update or delete
    QString resource; // secrets or pods
    QString namespaceName;
};

struct KubernetesResponse {
    int status = 0;
    QJsonObject body; // empty when the response had no JSON object
};

// Sends requests to the Kubernetes API server with a bearer token, trusting only the given CAs.
// send() waits for the response in a local event loop, so it suits a command that does one
// thing at a time and must not be called where other events may not be handled meanwhile.
class KubernetesRestClient {
public:
    KubernetesRestClient(QUrl apiServer, const QList<QSslCertificate> &caCertificates);
    ~KubernetesRestClient();
    KubernetesRestClient(const KubernetesRestClient &) = delete;
    KubernetesRestClient &operator=(const KubernetesRestClient &) = delete;

    void setToken(const QByteArray &token) { m_token = token; }

    // Returns the response of any HTTP status, or an error naming the URL when the request
    // failed, no data moved for 30 s, or the response is larger than 32 MiB.
    Result<KubernetesResponse> send(const KubernetesRequest &request);

    // Returns an error for a response that the caller did not expect. A 403 names the verb,
    // resource and namespace that RBAC denied, and other statuses name the URL. Both include
    // the message of the API server's Status object.
    Error responseError(const KubernetesRequest &request, const KubernetesResponse &response) const;

    QUrl url(const KubernetesRequest &request) const;

private:
    QUrl m_apiServer;
    QSslConfiguration m_tls;
    QByteArray m_token;
    QNetworkAccessManager *m_network;
};

} // namespace lamplighter
