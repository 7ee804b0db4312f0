#include "ProxyRoute.h"

namespace lamplighter {

namespace {

constexpr qsizetype kMaxLoggedPathLength = 200;
const QByteArray kClustersPrefix = QByteArrayLiteral("/clusters/");

} // namespace

std::optional<ClusterRoute> parseClusterRoute(const QByteArray &target)
{
    if (!target.startsWith(kClustersPrefix))
        return std::nullopt;

    const QByteArray afterPrefix = target.mid(kClustersPrefix.size());
    qsizetype nameEnd = afterPrefix.size();
    for (qsizetype i = 0; i < afterPrefix.size(); ++i) {
        if (afterPrefix.at(i) == '/' || afterPrefix.at(i) == '?') {
            nameEnd = i;
            break;
        }
    }
    const QByteArray encodedName = afterPrefix.left(nameEnd);
    if (encodedName.isEmpty())
        return std::nullopt;

    ClusterRoute route;
    route.clusterName = QString::fromUtf8(QByteArray::fromPercentEncoding(encodedName));
    route.pathAndQuery = afterPrefix.mid(nameEnd);
    if (!route.pathAndQuery.startsWith('/'))
        route.pathAndQuery.prepend('/');
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
