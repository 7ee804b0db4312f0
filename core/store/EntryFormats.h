#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QString>
#include <QStringList>

namespace lamplighter {

// Format versions of the keychain entries that this build writes. Releases before format
// versions wrote the tokens as a JSON object without "version" and the proxy key as bare PEM,
// and both of those forms read as version 1.
constexpr int tokensEntryVersion = 2;
constexpr int proxyKeyEntryVersion = 2;
constexpr int entryIndexVersion = 1;

// A keychain entry read and brought up to the format that this build writes.
struct DecodedEntry {
    enum class Outcome {
        Current,  // stored in the current format
        Migrated, // stored in an older format; fields are converted, and the entry should be
                  // written back with the current encoder
        TooNew,   // written by a newer Lamplighter; fields are empty
        Invalid,  // not an entry of this kind; fields are empty
    };
    Outcome outcome = Outcome::Invalid;
    int storedVersion = 0; // as stored: 1 for the unversioned forms, 0 when unreadable
    QJsonObject fields;    // in the current format, without "version"
    QString message;       // for TooNew and Invalid: what is wrong, naming the key and version

    bool usable() const { return outcome == Outcome::Current || outcome == Outcome::Migrated; }
};

// Decodes the tokens entry stored under key: a JSON object with "id_token", "refresh_token" and
// "access_token".
DecodedEntry decodeTokensEntry(const QString &key, const QByteArray &stored);
// Encodes tokens (fields as decodeTokensEntry() returns them) with the current "version".
QByteArray encodeTokensEntry(QJsonObject tokens);

// Decodes the proxy key entry stored under key: the "private_key_pem" field contains the PEM.
DecodedEntry decodeProxyKeyEntry(const QString &key, const QByteArray &stored);
QByteArray encodeProxyKeyEntry(const QByteArray &privateKeyPem);
// Returns the PEM of a usable proxy key entry from decodeProxyKeyEntry().
QByteArray proxyKeyPem(const DecodedEntry &proxyKey);

// Decodes the entry index stored under key: "keys" lists the entry keys, sorted.
DecodedEntry decodeEntryIndex(const QString &key, const QByteArray &stored);
QByteArray encodeEntryIndex(QStringList keys);
// Returns the keys of a decoded entry index.
QStringList entryIndexKeys(const DecodedEntry &index);

} // namespace lamplighter
