#include "ProxyRoute.h"

namespace lamplighter {

namespace {

constexpr qsizetype kMaxLoggedPathLength = 200;
const QByteArray kClustersPrefix = QByteArrayLiteral("/clusters/");
const QByteArray kAppsPrefix = QByteArrayLiteral("/apps/");

// Splits `afterPrefix` at the first '/' or '?' into a percent-decoded name and the rest, which
// always starts with '/'. Returns false when the name is empty.
bool splitNameAndPath(const QByteArray &afterPrefix, QString *name, QByteArray *pathAndQuery)
{
    qsizetype nameEnd = afterPrefix.size();
    for (qsizetype i = 0; i < afterPrefix.size(); ++i) {
        if (afterPrefix.at(i) == '/' || afterPrefix.at(i) == '?') {
            nameEnd = i;
            break;
        }
    }
    const QByteArray encodedName = afterPrefix.left(nameEnd);
    if (encodedName.isEmpty())
        return false;
    *name = QString::fromUtf8(QByteArray::fromPercentEncoding(encodedName));
    *pathAndQuery = afterPrefix.mid(nameEnd);
    if (!pathAndQuery->startsWith('/'))
        pathAndQuery->prepend('/');
    return true;
}

} // namespace

bool isAppTarget(const QByteArray &target)
{
    return target.startsWith(kAppsPrefix) || target == "/apps" || target.startsWith("/apps?");
}

std::optional<AppRoute> parseAppRoute(const QByteArray &target)
{
    if (!target.startsWith(kAppsPrefix))
        return std::nullopt;
    AppRoute route;
    if (!splitNameAndPath(target.mid(kAppsPrefix.size()), &route.appName, &route.pathAndQuery))
        return std::nullopt;
    return route;
}

QByteArray appPathPrefix(const QString &appName)
{
    return kAppsPrefix + QUrl::toPercentEncoding(appName) + '/';
}

std::optional<ClusterRoute> parseClusterRoute(const QByteArray &target)
{
    if (!target.startsWith(kClustersPrefix))
        return std::nullopt;

    ClusterRoute route;
    if (!splitNameAndPath(
            target.mid(kClustersPrefix.size()), &route.clusterName, &route.pathAndQuery))
        return std::nullopt;
    return route;
}

QByteArray clusterPathPrefix(const QString &clusterName)
{
    return kClustersPrefix + QUrl::toPercentEncoding(clusterName);
}

QByteArray upstreamTarget(const QUrl &server, const QByteArray &pathAndQuery)
{
    QByteArray serverPath = server.path(QUrl::FullyEncoded).toLatin1();
    while (serverPath.endsWith('/'))
        serverPath.chop(1);
    return serverPath + pathAndQuery;
}

QByteArray upstreamHostHeader(const QUrl &server)
{
    QByteArray host = server.host(QUrl::FullyEncoded).toLatin1();
    if (host.contains(':'))
        host = '[' + host + ']';
    if (server.port() != -1)
        host += ':' + QByteArray::number(server.port());
    return host;
}

QString targetPathForLog(const QByteArray &target)
{
    const qsizetype queryStart = target.indexOf('?');
    QByteArray path = queryStart < 0 ? target : target.left(queryStart);
    if (path.size() > kMaxLoggedPathLength) {
        path.truncate(kMaxLoggedPathLength);
        path += "...";
    }
    return QString::fromLatin1(path);
}

} // namespace lamplighter
