#include "Redact.h"

#include <QUrl>
#include <QUrlQuery>
#include <array>

namespace lamplighter {

QString describeSecret(const QByteArray &secret)
{
    if (secret.isEmpty())
        return QStringLiteral("[no secret]");
    return QStringLiteral("[secret, %1 bytes]").arg(secret.size());
}

QString redactHeaderValue(const QByteArray &name, const QByteArray &value)
{
    static const std::array<QByteArray, 5> credentialHeaders = {
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-forwarded-id-token"};
    const QByteArray lowerName = name.toLower();
    for (const QByteArray &header : credentialHeaders) {
        if (lowerName != header)
            continue;
        const qsizetype space = value.indexOf(' ');
        if (lowerName.endsWith("authorization") && space > 0)
            return QString::fromLatin1(value.left(space)) + QLatin1Char(' ') +
                   describeSecret(value.mid(space + 1));
        return describeSecret(value);
    }
    return QString::fromLatin1(value);
}

QString redactUrl(const QString &url)
{
    static const std::array<QString, 9> secretItems = {QStringLiteral("code"),
                                                       QStringLiteral("state"),
                                                       QStringLiteral("nonce"),
                                                       QStringLiteral("ticket"),
                                                       QStringLiteral("token"),
                                                       QStringLiteral("id_token"),
                                                       QStringLiteral("refresh_token"),
                                                       QStringLiteral("access_token"),
                                                       QStringLiteral("code_verifier")};
    QUrl parsed(url);
    if (!parsed.hasQuery())
        return url;
    QUrlQuery query(parsed);
    for (const QString &item : secretItems) {
        if (query.hasQueryItem(item)) {
            const QByteArray value = query.queryItemValue(item, QUrl::FullyEncoded).toLatin1();
            query.removeAllQueryItems(item);
            query.addQueryItem(item, describeSecret(value));
        }
    }
    parsed.setQuery(query);
    return parsed.toString();
}

} // namespace lamplighter
