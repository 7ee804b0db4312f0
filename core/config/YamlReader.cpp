#include "config/YamlReader.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

namespace lamplighter {

Error YamlReader::errorAt(const YAML::Mark &mark, const QString &message) const
{
    if (mark.is_null())
        return Error{QStringLiteral("%1: %2").arg(m_path, message)};
    return Error{QStringLiteral("%1:%2:%3: %4")
                     .arg(m_path)
                     .arg(mark.line + 1)
                     .arg(mark.column + 1)
                     .arg(message)};
}

Result<QString>
YamlReader::requiredString(const YAML::Node &parent, const char *key, const QString &field) const
{
    const YAML::Node node = parent[key];
    if (!node)
        return errorAt(parent.Mark(), QStringLiteral("missing field \"%1\"").arg(field));
    return string(node, field);
}

Result<QString> YamlReader::optionalString(const YAML::Node &parent,
                                           const char *key,
                                           const QString &field,
                                           const QString &fallback) const
{
    const YAML::Node node = parent[key];
    if (!node || node.IsNull())
        return fallback;
    return string(node, field);
}

Result<QString> YamlReader::string(const YAML::Node &node, const QString &field) const
{
    if (!node.IsScalar())
        return errorAt(node.Mark(), QStringLiteral("\"%1\" must be a string").arg(field));
    const QString value = QString::fromStdString(node.Scalar()).trimmed();
    if (value.isEmpty())
        return errorAt(node.Mark(), QStringLiteral("\"%1\" must not be empty").arg(field));
    return value;
}

Result<QUrl>
YamlReader::httpsUrl(const YAML::Node &parent, const char *key, const QString &field) const
{
    Result<QString> text = requiredString(parent, key, field);
    if (!text)
        return text.error();
    const QUrl url(text.value(), QUrl::StrictMode);
    const YAML::Mark mark = parent[key].Mark();
    if (!url.isValid() || url.host().isEmpty())
        return errorAt(mark,
                       QStringLiteral("\"%1\" must be a URL, got \"%2\"").arg(field, text.value()));
    if (url.scheme() != QLatin1String("https"))
        return errorAt(
            mark,
            QStringLiteral("\"%1\" must be an https URL, got \"%2\"").arg(field, text.value()));
    if (url.hasQuery() || url.hasFragment())
        return errorAt(mark, QStringLiteral("\"%1\" must not have a query or fragment").arg(field));
    return url;
}

Result<QList<QSslCertificate>> YamlReader::certificatesFromFile(const YAML::Node &node,
                                                                const QString &field,
                                                                QString *resolvedPath) const
{
    Result<QString> file = string(node, field);
    if (!file)
        return file.error();
    const QString path = QFileInfo(QFileInfo(m_path).dir(), file.value()).absoluteFilePath();
    *resolvedPath = path;
    QFile input(path);
    if (!input.open(QIODevice::ReadOnly))
        return errorAt(
            node.Mark(),
            QStringLiteral("cannot read \"%1\" file %2: %3").arg(field, path, input.errorString()));
    const QList<QSslCertificate> certificates =
        QSslCertificate::fromData(input.readAll(), QSsl::Pem);
    if (certificates.isEmpty())
        return errorAt(node.Mark(),
                       QStringLiteral("\"%1\" file %2 holds no PEM certificate").arg(field, path));
    return certificates;
}

Result<QList<QSslCertificate>> YamlReader::certificatesFromData(const YAML::Node &node,
                                                                const QString &field) const
{
    Result<QString> text = string(node, field);
    if (!text)
        return text.error();
    const auto decoded = QByteArray::fromBase64Encoding(text.value().toLatin1(),
                                                        QByteArray::AbortOnBase64DecodingErrors);
    if (!decoded)
        return errorAt(node.Mark(), QStringLiteral("\"%1\" must be base64").arg(field));
    const QList<QSslCertificate> certificates = QSslCertificate::fromData(*decoded, QSsl::Pem);
    if (certificates.isEmpty())
        return errorAt(node.Mark(), QStringLiteral("\"%1\" holds no PEM certificate").arg(field));
    return certificates;
}

Status YamlReader::rejectUnknownKeys(const YAML::Node &map,
                                     const std::set<std::string> &known,
                                     const QString &where) const
{
    for (const auto &entry : map) {
        if (!entry.first.IsScalar())
            return errorAt(entry.first.Mark(),
                           QStringLiteral("a key in %1 is not a plain name").arg(where));
        const std::string key = entry.first.Scalar();
        if (known.count(key) == 0)
            return errorAt(entry.first.Mark(),
                           QStringLiteral("unknown field \"%1\" in %2")
                               .arg(QString::fromStdString(key), where));
    }
    return Done{};
}

Result<QStringList>
YamlReader::stringList(const YAML::Node &parent, const char *key, const QString &field) const
{
    const YAML::Node node = parent[key];
    if (!node || node.IsNull())
        return QStringList();
    if (!node.IsSequence())
        return errorAt(node.Mark(), QStringLiteral("\"%1\" must be a list").arg(field));
    QStringList values;
    for (std::size_t i = 0; i < node.size(); ++i) {
        const Result<QString> value = string(node[i], QStringLiteral("%1[%2]").arg(field).arg(i));
        if (!value)
            return value.error();
        values.append(*value);
    }
    return values;
}

Result<bool>
YamlReader::optionalBool(const YAML::Node &parent, const char *key, const QString &field) const
{
    const YAML::Node node = parent[key];
    if (!node || node.IsNull())
        return false;
    const QString text = node.IsScalar() ? QString::fromStdString(node.Scalar()) : QString();
    if (text == QLatin1String("true"))
        return true;
    if (text == QLatin1String("false"))
        return false;
    return errorAt(node.Mark(), QStringLiteral("\"%1\" must be true or false").arg(field));
}

} // namespace lamplighter
