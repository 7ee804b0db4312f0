#include "oidc/OAuthProtocol.h"

#include <QUrl>
#include <algorithm>

namespace lamplighter {

namespace {

constexpr qsizetype maxOAuthTextLength = 300;

QString toPrintableAscii(const QString &text)
{
    QString printable;
    printable.reserve(std::min(text.size(), maxOAuthTextLength));
    for (const QChar c : text) {
        if (printable.size() == maxOAuthTextLength)
            break;
        const char16_t unicode = c.unicode();
        printable.append(unicode >= 0x20 && unicode <= 0x7e ? c : QLatin1Char('?'));
    }
    return printable;
}

} // namespace

QByteArray encodeFormParameters(const FormParameters &parameters)
{
    QByteArray encoded;
    for (const auto &[name, value] : parameters) {
        if (!encoded.isEmpty())
            encoded.append('&');
        encoded.append(QUrl::toPercentEncoding(name));
        encoded.append('=');
        encoded.append(QUrl::toPercentEncoding(value));
    }
    return encoded;
}

QString describeOAuthError(const QString &error, const QString &description)
{
    const QString code = toPrintableAscii(error);
    if (description.isEmpty())
        return code;
    return QStringLiteral("%1 (%2)").arg(code, toPrintableAscii(description));
}

bool isTransientNetworkError(QNetworkReply::NetworkError error)
{
    switch (error) {
    case QNetworkReply::ConnectionRefusedError:
    case QNetworkReply::RemoteHostClosedError:
    case QNetworkReply::HostNotFoundError:
    case QNetworkReply::TimeoutError:
    case QNetworkReply::OperationCanceledError: // the transfer timeout ends a request this way
    case QNetworkReply::TemporaryNetworkFailureError:
    case QNetworkReply::NetworkSessionFailedError:
    case QNetworkReply::UnknownNetworkError:
    case QNetworkReply::ProxyConnectionRefusedError:
    case QNetworkReply::ProxyConnectionClosedError:
    case QNetworkReply::ProxyNotFoundError:
    case QNetworkReply::ProxyTimeoutError:
        return true;
    default:
        return false;
    }
}

} // namespace lamplighter
