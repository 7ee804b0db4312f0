#pragma once

#include "clusterproxy/ClusterProxyConfig.h"
#include "clusterproxy/VerifiedTokenCache.h"
#include "util/Result.h"

#include <QByteArray>
#include <QJsonDocument>
#include <QObject>
#include <QSslConfiguration>
#include <QStringList>
#include <functional>

class QNetworkAccessManager;
class QNetworkReply;
class QNetworkRequest;

namespace lamplighter {

// Finds the namespaces a person may see when the API server does not let them list namespaces.
// The mode comes from namespaces.mode. `all` lists them with the cluster proxy's own account.
// `test` keeps those where a SelfSubjectAccessReview made as the person allows namespaces.verb
// on namespaces.resource, and members of namespaces.admin_groups skip the reviews. `service`
// asks namespaces.service_url. Requests to the API server trust only its configured CA.
class NamespaceLister : public QObject {
    Q_OBJECT
public:
    using NamesDone = std::function<void(const Result<QStringList> &)>;
    using AllowedDone = std::function<void(const Result<bool> &)>;

    explicit NamespaceLister(const ClusterProxyConfig &config, QObject *parent = nullptr);

    void setServiceAccountToken(const QByteArray &token) { m_serviceAccountToken = token; }

    // Calls done once, later, with the sorted names or the reason they could not be found.
    void list(const Impersonation &person, NamesDone done);
    // Calls done once, later, with whether the person may list namespaces themselves.
    void mayListNamespaces(const Impersonation &person, AllowedDone done);

    // Returns a v1 NamespaceList with only the names, as kubectl and Headlamp read it.
    static QByteArray namespaceList(const QStringList &names);

private:
    QNetworkRequest apiRequest(const QByteArray &path, const Impersonation *person) const;
    void listAll(NamesDone done);
    void keepAllowed(const Impersonation &person, const QStringList &names, NamesDone done);
    void askService(const Impersonation &person, NamesDone done);
    void review(const Impersonation &person,
                const QString &namespaceName,
                const QString &verb,
                const QString &resource,
                AllowedDone done);
    // Calls handle with the reply's JSON document, or with why there is none.
    void onJsonReply(QNetworkReply *reply,
                     const QString &what,
                     std::function<void(const Result<QJsonDocument> &)> handle);

    ClusterProxyConfig m_config;
    QNetworkAccessManager *m_network;
    QSslConfiguration m_apiServerTls;
    QByteArray m_serviceAccountToken;
};

} // namespace lamplighter
