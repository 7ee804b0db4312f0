#include "kube/Kubeconfig.h"

#include <QDir>
#include <QFileInfo>
#include <QSaveFile>
#include <yaml-cpp/yaml.h>

namespace lamplighter {
namespace {

const char userName[] = "lamplighter";

std::string toStd(const QString &text)
{
    return text.toStdString();
}

} // namespace

// Names, the certificate data and the token are written double-quoted. yaml-cpp 0.7 writes "123",
// "1e3", "true" or "on" unquoted, and kubectl's YAML 1.1 reader takes such a value for a number or
// a boolean and then rejects the whole file. Base64 text such as "7791" can look like a number too.
QByteArray Kubeconfig::toYaml() const
{
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "apiVersion" << YAML::Value << "v1";
    out << YAML::Key << "kind" << YAML::Value << "Config";

    out << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq;
    for (const KubeconfigContext &context : contexts) {
        out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted
            << toStd(context.name);
        out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "server" << YAML::Value
            << toStd(context.server.toString(QUrl::FullyEncoded));
        out << YAML::Key << "certificate-authority-data" << YAML::Value << YAML::DoubleQuoted
            << certificateAuthorityPem.toBase64().toStdString();
        out << YAML::EndMap << YAML::EndMap;
    }
    out << YAML::EndSeq;

    out << YAML::Key << "users" << YAML::Value << YAML::BeginSeq;
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << userName;
    out << YAML::Key << "user" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "token" << YAML::Value << YAML::DoubleQuoted << sessionKey.toStdString();
    out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;

    out << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq;
    for (const KubeconfigContext &context : contexts) {
        out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted
            << toStd(context.name);
        out << YAML::Key << "context" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "cluster" << YAML::Value << YAML::DoubleQuoted << toStd(context.name);
        out << YAML::Key << "user" << YAML::Value << userName;
        out << YAML::EndMap << YAML::EndMap;
    }
    out << YAML::EndSeq;

    if (!contexts.empty())
        out << YAML::Key << "current-context" << YAML::Value << YAML::DoubleQuoted
            << toStd(contexts.front().name);
    out << YAML::Key << "preferences" << YAML::Value << YAML::BeginMap << YAML::EndMap;
    out << YAML::EndMap;
    return QByteArray(out.c_str()) + '\n';
}

Status Kubeconfig::writeTo(const QString &path) const
{
    const QString folder = QFileInfo(path).absolutePath();
    if (!QDir().mkpath(folder))
        return Error{
            QStringLiteral("Failed to create the folder %1 for the kubeconfig").arg(folder)};
    QFile::setPermissions(folder,
                          QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);

    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return Error{
            QStringLiteral("Failed to write the kubeconfig %1: %2").arg(path, file.errorString())};
    // Restrict the temporary file before the session key goes into it.
    file.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner);
    file.write(toYaml());
    if (!file.commit())
        return Error{
            QStringLiteral("Failed to write the kubeconfig %1: %2").arg(path, file.errorString())};
    return Done{};
}

QString defaultKubeconfigPath()
{
    QString stateHome = qEnvironmentVariable("XDG_STATE_HOME");
    if (stateHome.isEmpty() || QDir::isRelativePath(stateHome))
        stateHome = QDir::homePath() + QStringLiteral("/.local/state");
    return stateHome + QStringLiteral("/lamplighter/kubeconfig");
}

} // namespace lamplighter
