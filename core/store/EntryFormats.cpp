#include "store/EntryFormats.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <cmath>
#include <optional>
#include <vector>

namespace lamplighter {
namespace {

const QString versionField = QStringLiteral("version");
const QString privateKeyField = QStringLiteral("private_key_pem");
const QString keysField = QStringLiteral("keys");

// Turns the fields of one format version into those of the next version.
using EntryMigration = QJsonObject (*)(QJsonObject fields);

// One kind of keychain entry and the steps that bring its older formats up to date.
struct EntryKind {
    QString name; // for messages, such as "tokens"
    int currentVersion;
    // Reads the unversioned form that releases before format versions wrote, or returns nothing
    // when stored is not in that form. Null for a kind that never had one.
    std::optional<QJsonObject> (*readUnversioned)(const QByteArray &stored);
    // migrations[i] turns version i + 1 into version i + 2, so there are currentVersion - 1.
    std::vector<EntryMigration> migrations;
};

QJsonObject keepFields(QJsonObject fields)
{
    return fields;
}

std::optional<QJsonObject> readUnversionedTokens(const QByteArray &stored)
{
    const QJsonDocument document = QJsonDocument::fromJson(stored);
    if (!document.isObject())
        return std::nullopt;
    return document.object();
}

std::optional<QJsonObject> readUnversionedProxyKey(const QByteArray &stored)
{
    if (!stored.trimmed().startsWith("-----BEGIN "))
        return std::nullopt;
    return QJsonObject{{privateKeyField, QString::fromLatin1(stored)}};
}

// Version 2 of the tokens and of the proxy key only adds "version" (and, for the proxy key, the
// JSON object around the PEM), which reading the unversioned form already did.
const EntryKind tokensKind{
    QStringLiteral("tokens"), tokensEntryVersion, readUnversionedTokens, {keepFields}};
const EntryKind proxyKeyKind{
    QStringLiteral("proxy key"), proxyKeyEntryVersion, readUnversionedProxyKey, {keepFields}};
const EntryKind entryIndexKind{QStringLiteral("entry index"), entryIndexVersion, nullptr, {}};

DecodedEntry invalidEntry(const EntryKind &kind, const QString &key, const QString &problem)
{
    DecodedEntry entry;
    entry.outcome = DecodedEntry::Outcome::Invalid;
    entry.message = QStringLiteral("The keychain entry \"%1\" is not a valid %2 entry: %3.")
                        .arg(key, kind.name, problem);
    return entry;
}

DecodedEntry decode(const EntryKind &kind, const QString &key, const QByteArray &stored)
{
    Q_ASSERT(int(kind.migrations.size()) == kind.currentVersion - 1);
    const QJsonDocument document = QJsonDocument::fromJson(stored);
    const bool versioned = document.isObject() && document.object().contains(versionField);
    QJsonObject fields;
    int version = 1;
    if (versioned) {
        fields = document.object();
        const QJsonValue value = fields.take(versionField);
        const double number = value.toDouble(-1);
        if (!value.isDouble() || number < 1 || std::floor(number) != number)
            return invalidEntry(
                kind, key, QStringLiteral("\"version\" is not a whole number of 1 or more"));
        if (number > kind.currentVersion) {
            DecodedEntry entry;
            entry.outcome = DecodedEntry::Outcome::TooNew;
            entry.storedVersion = number > 1e9 ? int(1e9) : int(number);
            entry.message = QStringLiteral("The keychain entry \"%1\" has format version %2, but "
                                           "this Lamplighter reads %3 entries up to version %4: "
                                           "it was written by a newer Lamplighter. The entry "
                                           "stays in the keychain for that version.")
                                .arg(key)
                                .arg(entry.storedVersion)
                                .arg(kind.name)
                                .arg(kind.currentVersion);
            return entry;
        }
        version = int(number);
    } else {
        const std::optional<QJsonObject> unversioned =
            kind.readUnversioned ? kind.readUnversioned(stored) : std::nullopt;
        if (!unversioned)
            return invalidEntry(kind, key, QStringLiteral("it has no \"version\" field"));
        fields = *unversioned;
    }

    DecodedEntry entry;
    entry.storedVersion = version;
    for (int from = version; from < kind.currentVersion; ++from)
        fields = kind.migrations.at(std::size_t(from - 1))(std::move(fields));
    entry.fields = std::move(fields);
    entry.outcome = version == kind.currentVersion ? DecodedEntry::Outcome::Current
                                                   : DecodedEntry::Outcome::Migrated;
    return entry;
}

QByteArray encode(QJsonObject fields, int version)
{
    fields.insert(versionField, version);
    return QJsonDocument(fields).toJson(QJsonDocument::Compact);
}

} // namespace

DecodedEntry decodeTokensEntry(const QString &key, const QByteArray &stored)
{
    return decode(tokensKind, key, stored);
}

QByteArray encodeTokensEntry(QJsonObject tokens)
{
    return encode(std::move(tokens), tokensEntryVersion);
}

DecodedEntry decodeProxyKeyEntry(const QString &key, const QByteArray &stored)
{
    DecodedEntry entry = decode(proxyKeyKind, key, stored);
    if (entry.usable() && !entry.fields.value(privateKeyField).isString())
        return invalidEntry(proxyKeyKind, key, QStringLiteral("\"private_key_pem\" is missing"));
    return entry;
}

QByteArray encodeProxyKeyEntry(const QByteArray &privateKeyPem)
{
    return encode({{privateKeyField, QString::fromLatin1(privateKeyPem)}}, proxyKeyEntryVersion);
}

QByteArray proxyKeyPem(const DecodedEntry &proxyKey)
{
    return proxyKey.fields.value(privateKeyField).toString().toLatin1();
}

DecodedEntry decodeEntryIndex(const QString &key, const QByteArray &stored)
{
    DecodedEntry entry = decode(entryIndexKind, key, stored);
    if (!entry.usable())
        return entry;
    const QJsonValue keys = entry.fields.value(keysField);
    if (!keys.isArray())
        return invalidEntry(entryIndexKind, key, QStringLiteral("\"keys\" is not a list"));
    for (const QJsonValue &listed : keys.toArray()) {
        if (!listed.isString() || listed.toString().isEmpty())
            return invalidEntry(
                entryIndexKind, key, QStringLiteral("\"keys\" contains a value that is not a key"));
    }
    return entry;
}

QByteArray encodeEntryIndex(QStringList keys)
{
    keys.sort();
    keys.removeDuplicates();
    return encode({{keysField, QJsonArray::fromStringList(keys)}}, entryIndexVersion);
}

QStringList entryIndexKeys(const DecodedEntry &index)
{
    QStringList keys;
    for (const QJsonValue &listed : index.fields.value(keysField).toArray())
        keys.append(listed.toString());
    return keys;
}

} // namespace lamplighter
