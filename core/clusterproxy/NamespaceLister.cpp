#include "clusterproxy/NamespaceLister.h"

#include "Logging.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <algorithm>
#include <memory>

namespace lamplighter {

namespace {

constexpr int kRequestTimeoutMs = 10'000;
// Namespace lists and reviews are small, so a larger reply is not from an API server.
constexpr qint64 kMaxReplyBytes = 8 * 1024 * 1024;

QByteArray compact(const QJsonObject &object)
{
    return QJsonDocument(object).toJson(QJsonDocument::Compact);
}

} // namespace

NamespaceLister::NamespaceLister(const ClusterProxyConfig &config, QObject *parent)
    : QObject(parent)
    , m_config(config)
    , m_network(new QNetworkAccessManager(this))
    , m_apiServerTls(QSslConfiguration::defaultConfiguration())
    , m_serviceTls(QSslConfiguration::defaultConfiguration())
{
    m_apiServerTls.setCaCertificates(config.apiServerCaCertificates);
    m_apiServerTls.setPeerVerifyMode(QSslSocket::VerifyPeer);
    // The namespace service's CA, when configured, is trusted besides the system's.
    m_serviceTls.setCaCertificates(QSslConfiguration::systemCaCertificates() +
                                   config.namespaceServiceCaCertificates);
    m_network->setTransferTimeout(kRequestTimeoutMs);
}

QByteArray NamespaceLister::namespaceList(const QStringList &names)
{
    QJsonArray items;
    for (const QString &name : names)
        items.append(
            QJsonObject{{QStringLiteral("metadata"), QJsonObject{{QStringLiteral("name"), name}}}});
    return compact(QJsonObject{{QStringLiteral("kind"), QStringLiteral("NamespaceList")},
                               {QStringLiteral("apiVersion"), QStringLiteral("v1")},
                               {QStringLiteral("metadata"), QJsonObject{}},
                               {QStringLiteral("items"), items}});
}

QNetworkRequest NamespaceLister::apiRequest(const QByteArray &path) const
{
    QNetworkRequest request(apiServerUrl(m_config, QString::fromLatin1(path)));
    request.setSslConfiguration(m_apiServerTls);
    request.setRawHeader("Authorization", "Bearer " + m_serviceAccountToken);
    request.setRawHeader("Accept", "application/json");
    return request;
}

void NamespaceLister::onJsonReply(QNetworkReply *reply,
                                  const QString &what,
                                  std::function<void(const Result<QJsonDocument> &)> handle)
{
    connect(reply, &QNetworkReply::finished, this, [reply, what, handle] {
        reply->deleteLater();
        const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        if (reply->error() != QNetworkReply::NoError && status == 0) {
            handle(Error{QStringLiteral("%1 failed: %2").arg(what, reply->errorString())});
            return;
        }
        if (status / 100 != 2) {
            handle(Error{QStringLiteral("%1 failed with HTTP status %2").arg(what).arg(status)});
            return;
        }
        if (reply->bytesAvailable() > kMaxReplyBytes) {
            handle(Error{
                QStringLiteral("%1 returned more than %2 bytes").arg(what).arg(kMaxReplyBytes)});
            return;
        }
        QJsonParseError parseError;
        const QJsonDocument document = QJsonDocument::fromJson(reply->readAll(), &parseError);
        if (parseError.error != QJsonParseError::NoError || !document.isObject()) {
            handle(Error{QStringLiteral("%1 returned no JSON object").arg(what)});
            return;
        }
        handle(document);
    });
}

void NamespaceLister::list(const Impersonation &person, NamesDone done)
{
    switch (m_config.namespaceListing) {
    case NamespaceListing::None:
        QMetaObject::invokeMethod(
            this,
            [done] {
                done(Error{QStringLiteral("namespace listing is off (namespaces.mode none)")});
            },
            Qt::QueuedConnection);
        return;
    case NamespaceListing::Service:
        askService(person, std::move(done));
        return;
    case NamespaceListing::All:
        listAll(std::move(done));
        return;
    case NamespaceListing::Test:
        break;
    }
    const bool admin =
        std::any_of(person.groups.cbegin(), person.groups.cend(), [this](const QString &g) {
            return m_config.adminGroups.contains(g);
        });
    if (admin) {
        listAll(std::move(done));
        return;
    }
    // Replies arrive through connections to this object, so the callback never outlives it.
    listAll([this, person, done](const Result<QStringList> &names) {
        if (!names) {
            done(names);
            return;
        }
        keepAllowed(person, *names, done);
    });
}

void NamespaceLister::listAll(NamesDone done)
{
    QNetworkReply *reply = m_network->get(apiRequest("/api/v1/namespaces"));
    onJsonReply(reply,
                QStringLiteral("Listing namespaces with the cluster proxy's account"),
                [done](const Result<QJsonDocument> &document) {
                    if (!document) {
                        done(document.error());
                        return;
                    }
                    QStringList names;
                    const QJsonArray items =
                        document->object().value(QStringLiteral("items")).toArray();
                    for (const QJsonValue &item : items) {
                        const QString name = item.toObject()
                                                 .value(QStringLiteral("metadata"))
                                                 .toObject()
                                                 .value(QStringLiteral("name"))
                                                 .toString();
                        if (!name.isEmpty())
                            names.append(name);
                    }
                    names.sort();
                    done(names);
                });
}

// Reviews every namespace at once and calls done when the last review is back. A review that
// fails leaves its namespace out.
void NamespaceLister::keepAllowed(const Impersonation &person,
                                  const QStringList &names,
                                  NamesDone done)
{
    if (names.isEmpty()) {
        done(QStringList());
        return;
    }
    struct Pending {
        int remaining;
        QList<bool> allowed;
        NamesDone done;
    };
    auto pending = std::make_shared<Pending>(
        Pending{int(names.size()), QList<bool>(names.size(), false), done});
    for (int i = 0; i < names.size(); ++i) {
        Access access;
        access.verb = m_config.namespaceVerb;
        access.resource = m_config.namespaceResource;
        access.namespaceName = names.at(i);
        review(
            person, access, [pending, names, i, user = person.user](const Result<bool> &allowed) {
                if (allowed)
                    pending->allowed[i] = *allowed;
                else
                    qCWarning(lcProxy).noquote()
                        << QStringLiteral("Left namespace %1 out for user \"%2\": %3")
                               .arg(names.at(i), user, allowed.errorMessage());
                if (--pending->remaining > 0)
                    return;
                QStringList allowedNames;
                for (int j = 0; j < names.size(); ++j) {
                    if (pending->allowed.at(j))
                        allowedNames.append(names.at(j));
                }
                pending->done(allowedNames);
            });
    }
}

void NamespaceLister::mayListNamespaces(const Impersonation &person, AllowedDone done)
{
    Access access;
    access.verb = QStringLiteral("list");
    access.resource = QStringLiteral("namespaces");
    review(person, access, std::move(done));
}

void NamespaceLister::review(const Impersonation &person, const Access &access, AllowedDone done)
{
    QJsonObject attributes{{QStringLiteral("verb"), access.verb},
                           {QStringLiteral("resource"), access.resource}};
    const std::pair<const char *, const QString *> optional[] = {
        {"group", &access.group},
        {"subresource", &access.subresource},
        {"name", &access.name},
        {"namespace", &access.namespaceName}};
    for (const auto &[field, value] : optional) {
        if (!value->isEmpty())
            attributes.insert(QLatin1String(field), *value);
    }
    // The person's groups and extras go in the body. Through impersonation they would need one
    // Impersonate-Group field each, which QNetworkRequest cannot send.
    QJsonObject spec{{QStringLiteral("user"), person.user},
                     {QStringLiteral("groups"), QJsonArray::fromStringList(person.groups)},
                     {QStringLiteral("resourceAttributes"), attributes}};
    if (!person.uid.isEmpty())
        spec.insert(QStringLiteral("uid"), person.uid);
    if (!person.extras.isEmpty()) {
        QJsonObject extra;
        for (const auto &[key, values] : person.extras)
            extra.insert(key, QJsonArray::fromStringList(values));
        spec.insert(QStringLiteral("extra"), extra);
    }
    const QByteArray body = compact(
        QJsonObject{{QStringLiteral("apiVersion"), QStringLiteral("authorization.k8s.io/v1")},
                    {QStringLiteral("kind"), QStringLiteral("SubjectAccessReview")},
                    {QStringLiteral("spec"), spec}});
    QNetworkRequest request = apiRequest("/apis/authorization.k8s.io/v1/subjectaccessreviews");
    request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    QNetworkReply *reply = m_network->post(request, body);
    onJsonReply(reply,
                QStringLiteral("A SubjectAccessReview for user \"%1\"").arg(person.user),
                [done](const Result<QJsonDocument> &document) {
                    if (!document) {
                        done(document.error());
                        return;
                    }
                    done(document->object()
                             .value(QStringLiteral("status"))
                             .toObject()
                             .value(QStringLiteral("allowed"))
                             .toBool());
                });
}

void NamespaceLister::askService(const Impersonation &person, NamesDone done)
{
    QNetworkRequest request(m_config.namespaceServiceUrl);
    request.setSslConfiguration(m_serviceTls);
    request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    const QByteArray body =
        compact(QJsonObject{{QStringLiteral("user"), person.user},
                            {QStringLiteral("groups"), QJsonArray::fromStringList(person.groups)}});
    QNetworkReply *reply = m_network->post(request, body);
    onJsonReply(reply,
                QStringLiteral("The namespace service %1")
                    .arg(m_config.namespaceServiceUrl.toDisplayString()),
                [done, url = m_config.namespaceServiceUrl](const Result<QJsonDocument> &document) {
                    if (!document) {
                        done(document.error());
                        return;
                    }
                    const QJsonValue namespaces =
                        document->object().value(QStringLiteral("namespaces"));
                    if (!namespaces.isArray()) {
                        done(Error{QStringLiteral("The namespace service %1 returned no "
                                                  "\"namespaces\" list")
                                       .arg(url.toDisplayString())});
                        return;
                    }
                    QStringList names;
                    for (const QJsonValue &name : namespaces.toArray()) {
                        if (name.isString() && !name.toString().isEmpty())
                            names.append(name.toString());
                    }
                    names.sort();
                    names.removeDuplicates();
                    done(names);
                });
}

} // namespace lamplighter
