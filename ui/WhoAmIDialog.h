#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QDateTime>
#include <QDialog>
#include <QList>
#include <QMap>
#include <QObject>
#include <QSslCertificate>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <optional>

class QLabel;
class QNetworkAccessManager;
class QNetworkReply;
class QPushButton;

namespace lamplighter {

// The URL, CA certificate and bearer token with which a Kubernetes client reaches one cluster
// through the local proxy, as Lamplighter's kubeconfig states them.
struct ProxyEndpoint {
    QUrl server;                           // https://127.0.0.1:<port>/clusters/<name>
    QList<QSslCertificate> caCertificates; // the proxy's certificate
    QByteArray bearerToken;                // the session key
};

// Reads the endpoint of the context `contextName` (the current context when empty) from a
// kubeconfig that Lamplighter wrote. An error names the file and the missing or invalid field.
Result<ProxyEndpoint> readProxyEndpoint(const QString &kubeconfigPath,
                                        const QString &contextName = QString());

// The user that a cluster authenticated: status.userInfo of a SelfSubjectReview.
struct ClusterUserInfo {
    QString userName;
    QString uid;
    QStringList groups;
    QMap<QString, QStringList> extra;
};

// Parses the body of a SelfSubjectReview response (authentication.k8s.io/v1).
Result<ClusterUserInfo> parseSelfSubjectReview(const QByteArray &body);

// Returns the `message` of a Kubernetes Status body, or an empty string when the body is not one.
QString kubernetesStatusMessage(const QByteArray &body);

// Sends one SelfSubjectReview (POST /apis/authentication.k8s.io/v1/selfsubjectreviews) to a
// cluster through the local proxy and emits finished() once with the user info or an error.
// An error response from the cluster is reported with the Status object's own message.
class SelfSubjectReviewJob : public QObject {
    Q_OBJECT
public:
    explicit SelfSubjectReviewJob(ProxyEndpoint endpoint, QObject *parent = nullptr);

    void start();
    // Valid once finished() has been emitted.
    const Result<ClusterUserInfo> &result() const { return m_result; }
    QUrl requestUrl() const;

Q_SIGNALS:
    void finished();

private:
    void handleReply(QNetworkReply *reply);
    void finish(Result<ClusterUserInfo> result);

    ProxyEndpoint m_endpoint;
    QNetworkAccessManager *m_network;
    Result<ClusterUserInfo> m_result;
};

// The ID token's issuer, subject and expiry, shown beside the cluster's user info.
struct TokenSummary {
    QString issuer;
    QString subject;
    QDateTime expiresAt; // UTC
};

// The who-am-i dialog: the user name, uid, groups and extras that a cluster reports for the
// person through a SelfSubjectReview, beside the ID token's issuer, subject and expiry. A Copy
// button copies both as text.
class WhoAmIDialog : public QDialog {
    Q_OBJECT
public:
    WhoAmIDialog(QString clusterName,
                 ProxyEndpoint endpoint,
                 TokenSummary token,
                 QWidget *parent = nullptr);

    // Sends a new SelfSubjectReview. The dialog sends one when it is first shown.
    void refresh();

    // The text that Copy puts on the clipboard.
    QString reportText() const;
    // The error shown, or an empty string when the last review succeeded or is still running.
    QString errorText() const;
    std::optional<ClusterUserInfo> userInfo() const { return m_userInfo; }
    bool isBusy() const { return m_job != nullptr; }

Q_SIGNALS:
    // Emitted when a review has finished, with or without an error.
    void reviewFinished();

protected:
    void showEvent(QShowEvent *event) override;

private:
    void showUserInfo();
    void showError(const QString &message);

    QString m_clusterName;
    ProxyEndpoint m_endpoint;
    TokenSummary m_token;
    std::optional<ClusterUserInfo> m_userInfo;
    QString m_error;
    SelfSubjectReviewJob *m_job = nullptr;
    bool m_shownOnce = false;

    QLabel *m_userNameLabel;
    QLabel *m_uidLabel;
    QLabel *m_groupsLabel;
    QLabel *m_extraLabel;
    QLabel *m_statusLabel;
    QPushButton *m_refreshButton;
    QPushButton *m_copyButton;
};

} // namespace lamplighter
