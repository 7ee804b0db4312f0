#pragma once

#include "util/Result.h"

#include <QList>
#include <QSslCertificate>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <set>
#include <string>
#include <yaml-cpp/yaml.h>

namespace lamplighter {

// Reports a problem at a YAML node's position as "FILE:LINE:COLUMN: MESSAGE". yaml-cpp counts
// lines and columns from zero; editors count from one.
class YamlReader {
public:
    explicit YamlReader(QString path)
        : m_path(std::move(path))
    {}

    // Returns `message` prefixed with the file and the node's position.
    Error errorAt(const YAML::Mark &mark, const QString &message) const;

    // Reads a non-empty string; `field` is the dotted name that messages use.
    Result<QString>
    requiredString(const YAML::Node &parent, const char *key, const QString &field) const;
    // Reads a non-empty string, or returns `fallback` when the key is missing or null.
    Result<QString> optionalString(const YAML::Node &parent,
                                   const char *key,
                                   const QString &field,
                                   const QString &fallback) const;
    Result<QString> string(const YAML::Node &node, const QString &field) const;
    // Reads a list of non-empty strings. A missing or null key reads as an empty list.
    Result<QStringList>
    stringList(const YAML::Node &parent, const char *key, const QString &field) const;
    // Reads an https URL with a host and without a query or fragment.
    Result<QUrl> httpsUrl(const YAML::Node &parent, const char *key, const QString &field) const;

    // Reads PEM certificates from a file named by the configuration; a relative path is
    // relative to the configuration file's folder.
    Result<QList<QSslCertificate>>
    certificatesFromFile(const YAML::Node &node, const QString &field, QString *resolvedPath) const;

    // Reads base64-encoded PEM certificates, as kubeconfig's certificate-authority-data holds.
    Result<QList<QSslCertificate>> certificatesFromData(const YAML::Node &node,
                                                        const QString &field) const;
    // Fails on the first key of `map` that is not in `known`; `where` names the map.
    Status rejectUnknownKeys(const YAML::Node &map,
                             const std::set<std::string> &known,
                             const QString &where) const;
    // Reads true or false; a missing or null key reads as false.
    Result<bool>
    optionalBool(const YAML::Node &parent, const char *key, const QString &field) const;

    // Returns the configuration file's path.
    const QString &path() const { return m_path; }

private:
    QString m_path;
};

} // namespace lamplighter
