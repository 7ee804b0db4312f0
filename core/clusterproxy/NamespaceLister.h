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
// `test` keeps those where a SubjectAccessReview for the person allows namespaces.verb on
// namespaces.resource, and members of namespaces.admin_groups skip the reviews. `service`
// requests them from namespaces.service_url. Requests to the API server trust only its configured
// CA.
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

    // The subject of an access review: a verb on a resource of an API group, optionally with a
    // subresource, a name and a namespace.
    struct Access {
        QString verb;
        QString group;
        QString resource;
        QString subresource;
        QString name;
        QString namespaceName;
    };
    // Calls done once, later, with whether the API server allows the person the access, from a
    // SubjectAccessReview for the person's user, groups, uid and extras.
    void review(const Impersonation &person, const Access &access, AllowedDone done);

    // Returns a v1 NamespaceList with only the names, as kubectl and Headlamp read it.
    static QByteArray namespaceList(const QStringList &names);

private:
    QNetworkRequest apiRequest(const QByteArray &path) const;
    void listAll(NamesDone done);
    void keepAllowed(const Impersonation &person, const QStringList &names, NamesDone done);
    void askService(const Impersonation &person, NamesDone done);
    // Calls handle with the reply's JSON document, or with why there is none.
    void onJsonReply(QNetworkReply *reply,
                     const QString &what,
                     std::function<void(const Result<QJsonDocument> &)> handle);

    ClusterProxyConfig m_config;
    QNetworkAccessManager *m_network;
    QSslConfiguration m_apiServerTls;
    QSslConfiguration m_serviceTls;
    QByteArray m_serviceAccountToken;
};

} // namespace lamplighter
