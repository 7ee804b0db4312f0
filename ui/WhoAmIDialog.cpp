#include "WhoAmIDialog.h"

#include "Logging.h"

#include <QApplication>
#include <QClipboard>
#include <QDialogButtonBox>
#include <QFile>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLocale>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QPushButton>
#include <QSslConfiguration>
#include <QVBoxLayout>
#include <algorithm>
#include <yaml-cpp/yaml.h>

namespace lamplighter {
namespace {

const char selfSubjectReviewPath[] = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

const char dialogStyleSheet[] = R"(
QGroupBox {
    background: #ffffff; border: 1px solid #d5dbe3; border-radius: 8px;
    margin-top: 1.6em; padding: 12px 10px 8px 10px;
}
QGroupBox::title {
    subcontrol-origin: margin; subcontrol-position: top left; left: 2px; padding: 0 2px;
    color: #4a5563; font-weight: 600;
}
QLabel#fieldName { color: #4a5563; }
)";

constexpr char successColor[] = "color: #05603a;";
constexpr char errorColor[] = "color: #b42318;";

// Returns the entry of a kubeconfig list ("clusters", "users", "contexts") whose name is `name`
// and whose value sits under `field`, or an undefined node.
YAML::Node findNamed(const YAML::Node &list, const std::string &name, const char *field)
{
    if (!list.IsSequence())
        return YAML::Node(YAML::NodeType::Undefined);
    for (const YAML::Node &entry : list) {
        if (entry.IsMap() && entry["name"] && entry["name"].as<std::string>() == name)
            return entry[field];
    }
    return YAML::Node(YAML::NodeType::Undefined);
}

QString scalarText(const YAML::Node &node)
{
    if (!node || !node.IsScalar())
        return QString();
    return QString::fromStdString(node.as<std::string>());
}

Error kubeconfigError(const QString &path, const QString &problem)
{
    return Error{QStringLiteral("Invalid kubeconfig %1: %2. Restart Lamplighter so that it "
                                "writes the file again.")
                     .arg(path, problem)};
}

Result<ProxyEndpoint>
readEndpointFromYaml(const QString &path, const YAML::Node &root, const QString &requestedContext)
{
    const QString contextName =
        requestedContext.isEmpty() ? scalarText(root["current-context"]) : requestedContext;
    if (contextName.isEmpty())
        return kubeconfigError(path, QStringLiteral("current-context is missing"));

    const YAML::Node context = findNamed(root["contexts"], contextName.toStdString(), "context");
    if (!context.IsMap())
        return kubeconfigError(path, QStringLiteral("context %1 not found").arg(contextName));
    const QString clusterName = scalarText(context["cluster"]);
    const QString userName = scalarText(context["user"]);

    const YAML::Node cluster = findNamed(root["clusters"], clusterName.toStdString(), "cluster");
    if (!cluster.IsMap())
        return kubeconfigError(path, QStringLiteral("cluster %1 not found").arg(clusterName));
    const YAML::Node user = findNamed(root["users"], userName.toStdString(), "user");
    if (!user.IsMap())
        return kubeconfigError(path, QStringLiteral("user %1 not found").arg(userName));

    ProxyEndpoint endpoint;
    endpoint.server = QUrl(scalarText(cluster["server"]), QUrl::StrictMode);
    if (!endpoint.server.isValid() || endpoint.server.scheme() != QStringLiteral("https"))
        return kubeconfigError(
            path,
            QStringLiteral("clusters[%1].cluster.server is not an https URL").arg(clusterName));

    const QByteArray caData = scalarText(cluster["certificate-authority-data"]).toLatin1();
    endpoint.caCertificates = QSslCertificate::fromData(QByteArray::fromBase64(caData), QSsl::Pem);
    if (endpoint.caCertificates.isEmpty())
        return kubeconfigError(
            path,
            QStringLiteral("clusters[%1].cluster.certificate-authority-data is missing or invalid")
                .arg(clusterName));

    endpoint.bearerToken = scalarText(user["token"]).toLatin1();
    if (endpoint.bearerToken.isEmpty())
        return kubeconfigError(path,
                               QStringLiteral("users[%1].user.token is missing").arg(userName));
    return endpoint;
}

// Returns advice to append to the cluster's own message, for the errors whose message does not
// say what to do. The local proxy's 401 messages do, so only the cluster's bare one gets advice.
QString nextStepFor(int status, const QString &message)
{
    if (status == 401 && message == QStringLiteral("Unauthorized"))
        return QObject::tr(". The cluster did not accept your ID token: sign in again, or ask the "
                           "cluster's administrator to check its OpenID Connect settings.");
    if (status == 403)
        return QObject::tr(". Ask the cluster's administrator for the right to create "
                           "selfsubjectreviews.");
    return QString();
}

QStringList stringList(const QJsonValue &value)
{
    QStringList strings;
    for (const QJsonValue &item : value.toArray())
        strings.append(item.toString());
    return strings;
}

// Returns how long the token stays valid, then the expiry in local time on a second line.
QString formatExpiry(const QDateTime &expiresAt)
{
    if (!expiresAt.isValid())
        return QObject::tr("unknown");
    const QString when = QLocale().toString(expiresAt.toLocalTime(), QLocale::LongFormat);
    const qint64 seconds = QDateTime::currentDateTimeUtc().secsTo(expiresAt);
    if (seconds <= 0)
        return QObject::tr("expired\n%1").arg(when);
    if (seconds < 120)
        return QObject::tr("in %1 s\n%2").arg(seconds).arg(when);
    return QObject::tr("in %1 min\n%2").arg(seconds / 60).arg(when);
}

QLabel *valueLabel()
{
    auto *label = new QLabel;
    label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    label->setWordWrap(true);
    label->setMinimumWidth(260);
    return label;
}

QLabel *fieldName(const QString &text)
{
    auto *label = new QLabel(text);
    label->setObjectName(QStringLiteral("fieldName"));
    return label;
}

QString orNone(const QString &text)
{
    return text.isEmpty() ? QObject::tr("(none)") : text;
}

QString formatExtra(const QMap<QString, QStringList> &extra)
{
    QStringList lines;
    for (auto it = extra.cbegin(); it != extra.cend(); ++it)
        lines.append(QStringLiteral("%1: %2").arg(it.key(), it.value().join(QStringLiteral(", "))));
    return lines.join(QLatin1Char('\n'));
}

} // namespace

Result<ProxyEndpoint> readProxyEndpoint(const QString &kubeconfigPath, const QString &contextName)
{
    QFile file(kubeconfigPath);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("Failed to read the kubeconfig %1: %2. Is Lamplighter running "
                                    "and signed in?")
                         .arg(kubeconfigPath, file.errorString())};
    try {
        const YAML::Node root = YAML::Load(file.readAll().toStdString());
        if (!root.IsMap())
            return kubeconfigError(kubeconfigPath, QStringLiteral("it is not a YAML mapping"));
        return readEndpointFromYaml(kubeconfigPath, root, contextName);
    } catch (const YAML::Exception &error) {
        return kubeconfigError(kubeconfigPath, QString::fromStdString(error.what()));
    }
}

Result<ClusterUserInfo> parseSelfSubjectReview(const QByteArray &body)
{
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(body, &parseError);
    if (!document.isObject())
        return Error{QStringLiteral("The SelfSubjectReview response is not a JSON object: %1")
                         .arg(parseError.errorString())};
    const QJsonObject review = document.object();
    const QString kind = review.value(QStringLiteral("kind")).toString();
    if (kind != QStringLiteral("SelfSubjectReview"))
        return Error{
            QStringLiteral("Expected a SelfSubjectReview, but the response has kind \"%1\"")
                .arg(kind)};

    const QJsonObject userInfo = review.value(QStringLiteral("status"))
                                     .toObject()
                                     .value(QStringLiteral("userInfo"))
                                     .toObject();
    ClusterUserInfo info;
    info.userName = userInfo.value(QStringLiteral("username")).toString();
    if (info.userName.isEmpty())
        return Error{QStringLiteral("The SelfSubjectReview has no status.userInfo.username")};
    info.uid = userInfo.value(QStringLiteral("uid")).toString();
    info.groups = stringList(userInfo.value(QStringLiteral("groups")));
    const QJsonObject extra = userInfo.value(QStringLiteral("extra")).toObject();
    for (auto it = extra.constBegin(); it != extra.constEnd(); ++it)
        info.extra.insert(it.key(), stringList(it.value()));
    return info;
}

QString kubernetesStatusMessage(const QByteArray &body)
{
    const QJsonObject status = QJsonDocument::fromJson(body).object();
    if (status.value(QStringLiteral("kind")).toString() != QStringLiteral("Status"))
        return QString();
    return status.value(QStringLiteral("message")).toString();
}

SelfSubjectReviewJob::SelfSubjectReviewJob(ProxyEndpoint endpoint, QObject *parent)
    : QObject(parent)
    , m_endpoint(std::move(endpoint))
    , m_network(new QNetworkAccessManager(this))
    , m_result(Error{QStringLiteral("The SelfSubjectReview has not finished")})
{}

QUrl SelfSubjectReviewJob::requestUrl() const
{
    QUrl url = m_endpoint.server;
    QString path = url.path();
    if (path.endsWith(QLatin1Char('/')))
        path.chop(1);
    url.setPath(path + QLatin1String(selfSubjectReviewPath));
    return url;
}

void SelfSubjectReviewJob::start()
{
    QNetworkRequest request(requestUrl());
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    // Only the proxy's own certificate is trusted, never the system's CAs.
    tls.setCaCertificates(m_endpoint.caCertificates);
    request.setSslConfiguration(tls);
    request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArray("application/json"));
    request.setRawHeader("Accept", "application/json");
    request.setRawHeader("Authorization", "Bearer " + m_endpoint.bearerToken);
    request.setAttribute(QNetworkRequest::RedirectPolicyAttribute,
                         QNetworkRequest::ManualRedirectPolicy);
    request.setTransferTimeout(30'000);

    const QByteArray body =
        R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})";
    QNetworkReply *reply = m_network->post(request, body);
    connect(reply, &QNetworkReply::finished, this, [this, reply] { handleReply(reply); });
}

void SelfSubjectReviewJob::handleReply(QNetworkReply *reply)
{
    reply->deleteLater();
    const QByteArray body = reply->readAll();
    const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    const QString url = requestUrl().toString();

    if (status == 0) {
        qCWarning(lcKube).noquote()
            << "SelfSubjectReview to" << url << "failed:" << reply->errorString();
        finish(Error{tr("Failed to reach the local proxy at %1: %2. Is Lamplighter running?")
                         .arg(url, reply->errorString())});
        return;
    }
    if (status != 201 && status != 200) {
        const QString message = kubernetesStatusMessage(body);
        qCWarning(lcKube).noquote()
            << "SelfSubjectReview to" << url << "failed with HTTP" << status << message;
        if (message.isEmpty())
            finish(Error{tr("The SelfSubjectReview failed with HTTP %1 and no Status message, "
                            "from %2.")
                             .arg(status)
                             .arg(url)});
        else
            finish(Error{tr("The SelfSubjectReview failed with HTTP %1: %2%3")
                             .arg(status)
                             .arg(message, nextStepFor(status, message))});
        return;
    }

    Result<ClusterUserInfo> info = parseSelfSubjectReview(body);
    if (!info)
        qCWarning(lcKube).noquote()
            << "Invalid SelfSubjectReview from" << url << ":" << info.errorMessage();
    finish(std::move(info));
}

void SelfSubjectReviewJob::finish(Result<ClusterUserInfo> result)
{
    m_result = std::move(result);
    Q_EMIT finished();
}

WhoAmIDialog::WhoAmIDialog(QString clusterName,
                           ProxyEndpoint endpoint,
                           TokenSummary token,
                           QWidget *parent)
    : QDialog(parent)
    , m_clusterName(std::move(clusterName))
    , m_endpoint(std::move(endpoint))
    , m_token(std::move(token))
    , m_userNameLabel(valueLabel())
    , m_uidLabel(valueLabel())
    , m_groupsLabel(valueLabel())
    , m_extraLabel(valueLabel())
    , m_statusLabel(new QLabel)
    , m_refreshButton(new QPushButton(tr("Refresh")))
    , m_copyButton(new QPushButton(tr("Copy")))
{
    setWindowTitle(tr("Who am I on %1").arg(m_clusterName));
    setStyleSheet(QString::fromLatin1(dialogStyleSheet));

    auto *clusterBox = new QGroupBox(tr("The cluster %1 sees you as").arg(m_clusterName));
    auto *clusterForm = new QFormLayout(clusterBox);
    clusterForm->setLabelAlignment(Qt::AlignLeft | Qt::AlignTop);
    clusterForm->setHorizontalSpacing(16);
    clusterForm->setVerticalSpacing(8);
    clusterForm->addRow(fieldName(tr("User name")), m_userNameLabel);
    clusterForm->addRow(fieldName(tr("UID")), m_uidLabel);
    clusterForm->addRow(fieldName(tr("Groups")), m_groupsLabel);
    clusterForm->addRow(fieldName(tr("Extras")), m_extraLabel);

    auto *tokenBox = new QGroupBox(tr("Your ID token"));
    auto *tokenForm = new QFormLayout(tokenBox);
    tokenForm->setLabelAlignment(Qt::AlignLeft | Qt::AlignTop);
    tokenForm->setHorizontalSpacing(16);
    tokenForm->setVerticalSpacing(8);
    QLabel *issuer = valueLabel();
    issuer->setText(orNone(m_token.issuer));
    QLabel *subject = valueLabel();
    subject->setText(orNone(m_token.subject));
    QLabel *expiry = valueLabel();
    expiry->setText(formatExpiry(m_token.expiresAt));
    tokenForm->addRow(fieldName(tr("Issuer")), issuer);
    tokenForm->addRow(fieldName(tr("Subject")), subject);
    tokenForm->addRow(fieldName(tr("Expires")), expiry);

    auto *boxes = new QHBoxLayout;
    boxes->setSpacing(14);
    boxes->addWidget(clusterBox, 3);
    boxes->addWidget(tokenBox, 2);

    m_statusLabel->setWordWrap(true);
    m_statusLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Close);
    buttons->addButton(m_refreshButton, QDialogButtonBox::ActionRole);
    buttons->addButton(m_copyButton, QDialogButtonBox::ActionRole);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(m_refreshButton, &QPushButton::clicked, this, &WhoAmIDialog::refresh);
    connect(m_copyButton, &QPushButton::clicked, this, [this] {
        QApplication::clipboard()->setText(reportText());
    });

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(18, 18, 18, 14);
    layout->setSpacing(12);
    layout->addLayout(boxes);
    layout->addWidget(m_statusLabel);
    layout->addWidget(buttons);

    showUserInfo();
    resize(std::max(780, sizeHint().width()), sizeHint().height());
}

void WhoAmIDialog::showEvent(QShowEvent *event)
{
    QDialog::showEvent(event);
    if (!m_shownOnce) {
        m_shownOnce = true;
        refresh();
    }
}

void WhoAmIDialog::refresh()
{
    if (m_job)
        return;
    m_error.clear();
    m_statusLabel->setStyleSheet(QString());
    m_statusLabel->setText(tr("Asking the cluster %1…").arg(m_clusterName));
    m_refreshButton->setEnabled(false);

    m_job = new SelfSubjectReviewJob(m_endpoint, this);
    connect(m_job, &SelfSubjectReviewJob::finished, this, [this] {
        const Result<ClusterUserInfo> result = m_job->result();
        m_job->deleteLater();
        m_job = nullptr;
        m_refreshButton->setEnabled(true);
        if (result) {
            m_userInfo = result.value();
            m_statusLabel->setStyleSheet(QString::fromLatin1(successColor));
            m_statusLabel->setText(tr("✓ Answered by the cluster at %1.")
                                       .arg(QLocale().toString(QTime::currentTime())));
            showUserInfo();
        } else {
            showError(result.errorMessage());
        }
        // More groups or extras than before need more room.
        if (sizeHint().height() > height())
            resize(width(), sizeHint().height());
        Q_EMIT reviewFinished();
    });
    m_job->start();
}

void WhoAmIDialog::showUserInfo()
{
    if (!m_userInfo) {
        for (QLabel *label : {m_userNameLabel, m_uidLabel, m_groupsLabel, m_extraLabel})
            label->setText(QStringLiteral("–"));
        return;
    }
    m_userNameLabel->setText(m_userInfo->userName);
    m_uidLabel->setText(orNone(m_userInfo->uid));
    m_groupsLabel->setText(orNone(m_userInfo->groups.join(QLatin1Char('\n'))));
    m_extraLabel->setText(orNone(formatExtra(m_userInfo->extra)));
}

void WhoAmIDialog::showError(const QString &message)
{
    m_error = message;
    m_userInfo.reset();
    showUserInfo();
    m_statusLabel->setStyleSheet(QString::fromLatin1(errorColor));
    m_statusLabel->setText(message);
}

QString WhoAmIDialog::errorText() const
{
    return m_error;
}

QString WhoAmIDialog::reportText() const
{
    QStringList lines;
    lines.append(QStringLiteral("Cluster: %1").arg(m_clusterName));
    if (m_userInfo) {
        lines.append(QStringLiteral("User name: %1").arg(m_userInfo->userName));
        lines.append(QStringLiteral("UID: %1").arg(m_userInfo->uid));
        lines.append(
            QStringLiteral("Groups: %1").arg(m_userInfo->groups.join(QStringLiteral(", "))));
        for (auto it = m_userInfo->extra.cbegin(); it != m_userInfo->extra.cend(); ++it)
            lines.append(QStringLiteral("Extra %1: %2")
                             .arg(it.key(), it.value().join(QStringLiteral(", "))));
    } else if (!m_error.isEmpty()) {
        lines.append(QStringLiteral("Error: %1").arg(m_error));
    }
    lines.append(QStringLiteral("Token issuer: %1").arg(m_token.issuer));
    lines.append(QStringLiteral("Token subject: %1").arg(m_token.subject));
    lines.append(
        QStringLiteral("Token expires: %1").arg(m_token.expiresAt.toUTC().toString(Qt::ISODate)));
    return lines.join(QLatin1Char('\n')) + QLatin1Char('\n');
}

} // namespace lamplighter
