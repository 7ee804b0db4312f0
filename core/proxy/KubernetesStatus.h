#pragma once

#include <QByteArray>
#include <QString>

namespace lamplighter {

// A Kubernetes metav1.Status failure, the body kube-apiserver sends with every error. The local
// proxy responds in this shape so that kubectl and client-go print the message.
class KubernetesStatus {
public:
    KubernetesStatus(int code, QString message);

    int code() const { return m_code; }
    const QString &message() const { return m_message; }
    // Returns the StatusReason that apimachinery uses for this code, or an empty array for codes
    // that have none (the field is then left out, as apimachinery does).
    QByteArray reason() const;

    // Returns the JSON body: keys in kube-apiserver's order, no details, and a final newline.
    QByteArray toJson() const;
    // Returns a whole HTTP/1.1 response with this body. `closeConnection` adds
    // "Connection: close".
    QByteArray toHttpResponse(bool closeConnection) const;

private:
    int m_code;
    QString m_message;
};

} // namespace lamplighter
