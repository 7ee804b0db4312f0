#include "KubernetesStatus.h"

#include "HttpHead.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <utility>

namespace lamplighter {

namespace {

// Encodes a string as a JSON string literal, quotes included.
QByteArray jsonString(const QString &text)
{
    const QByteArray array = QJsonDocument(QJsonArray{text}).toJson(QJsonDocument::Compact);
    return array.mid(1, array.size() - 2);
}

} // namespace

KubernetesStatus::KubernetesStatus(int code, QString message)
    : m_code(code)
    , m_message(std::move(message))
{}

// The StatusReason constants of k8s.io/apimachinery/pkg/apis/meta/v1/types.go.
QByteArray KubernetesStatus::reason() const
{
    switch (m_code) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 413:
        return "RequestEntityTooLarge";
    case 429:
        return "TooManyRequests";
    case 500:
        return "InternalError";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return {};
    }
}

QByteArray KubernetesStatus::toJson() const
{
    QByteArray json = R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)";
    json += R"("message":)" + jsonString(m_message) + ',';
    const QByteArray statusReason = reason();
    if (!statusReason.isEmpty())
        json += R"("reason":")" + statusReason + "\",";
    json += R"("code":)" + QByteArray::number(m_code) + "}\n";
    return json;
}

QByteArray KubernetesStatus::toHttpResponse(bool closeConnection) const
{
    const QByteArray body = toJson();
    QByteArray response =
        "HTTP/1.1 " + QByteArray::number(m_code) + ' ' + standardReasonPhrase(m_code) + "\r\n";
    response += "Content-Type: application/json\r\n";
    response += "Cache-Control: no-cache, private\r\n";
    response += "Content-Length: " + QByteArray::number(body.size()) + "\r\n";
    if (closeConnection)
        response += "Connection: close\r\n";
    response += "\r\n";
    response += body;
    return response;
}

} // namespace lamplighter
