#include "clusterproxy/KubernetesRestClient.h"

#include <QEventLoop>
#include <QJsonDocument>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>

namespace lamplighter {

namespace {

constexpr int kRequestTimeoutMs = 30'000;
// Secrets and pod lists of one label selector stay far below this. A larger reply is not read.
constexpr qint64 kMaxReplyBytes = 32 * 1024 * 1024;

} // namespace

KubernetesRestClient::KubernetesRestClient(QUrl apiServer,
                                           const QList<QSslCertificate> &caCertificates)
    : m_apiServer(std::move(apiServer))
    , m_tls(QSslConfiguration::defaultConfiguration())
    , m_network(new QNetworkAccessManager)
{
    m_tls.setCaCertificates(caCertificates);
    m_tls.setPeerVerifyMode(QSslSocket::VerifyPeer);
    m_network->setTransferTimeout(kRequestTimeoutMs);
}

KubernetesRestClient::~KubernetesRestClient()
{
    delete m_network;
}

QUrl KubernetesRestClient::url(const KubernetesRequest &request) const
{
    QUrl url = m_apiServer;
    QString prefix = url.path();
    while (prefix.endsWith(QLatin1Char('/')))
        prefix.chop(1);
    url.setPath(prefix + request.path);
    if (!request.query.isEmpty())
        url.setQuery(request.query);
    return url;
}

Result<KubernetesResponse> KubernetesRestClient::send(const KubernetesRequest &request)
{
    QNetworkRequest networkRequest(url(request));
    networkRequest.setSslConfiguration(m_tls);
    networkRequest.setRawHeader("Authorization", "Bearer " + m_token);
    networkRequest.setRawHeader("Accept", "application/json");
    QByteArray body;
    if (!request.body.isEmpty()) {
        body = QJsonDocument(request.body).toJson(QJsonDocument::Compact);
        networkRequest.setHeader(QNetworkRequest::ContentTypeHeader,
                                 QByteArrayLiteral("application/json"));
    }
    QNetworkReply *reply = body.isEmpty()
                               ? m_network->sendCustomRequest(networkRequest, request.method)
                               : m_network->sendCustomRequest(networkRequest, request.method, body);
    QEventLoop loop;
    QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
    if (!reply->isFinished())
        loop.exec();
    reply->deleteLater();

    const QString target = QStringLiteral("%1 %2").arg(QString::fromLatin1(request.method),
                                                       url(request).toDisplayString());
    KubernetesResponse response;
    response.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    if (response.status == 0)
        return Error{QStringLiteral("%1 failed: %2").arg(target, reply->errorString())};
    if (reply->bytesAvailable() > kMaxReplyBytes)
        return Error{
            QStringLiteral("%1 returned more than %2 bytes").arg(target).arg(kMaxReplyBytes)};
    response.body = QJsonDocument::fromJson(reply->readAll()).object();
    return response;
}

Error KubernetesRestClient::responseError(const KubernetesRequest &request,
                                          const KubernetesResponse &response) const
{
    QString message = response.body.value(QStringLiteral("message")).toString();
    if (message.isEmpty())
        message = QStringLiteral("no message");
    if (response.status == 403) {
        return Error{QStringLiteral("The API server denied %1 on %2 in namespace %3 (HTTP 403): "
                                    "%4. Grant the service account the verb %1 on %2 in a Role "
                                    "in that namespace.")
                         .arg(request.verb, request.resource, request.namespaceName, message)};
    }
    return Error{QStringLiteral("%1 %2 failed with HTTP status %3: %4")
                     .arg(QString::fromLatin1(request.method), url(request).toDisplayString())
                     .arg(response.status)
                     .arg(message)};
}

} // namespace lamplighter
