#include "ProxyRoute.h"

namespace lamplighter {

namespace {

constexpr qsizetype kMaxLoggedPathLength = 200;
const QByteArray kClustersPrefix = QByteArrayLiteral("/clusters/");
const QByteArray kAppsPrefix = QByteArrayLiteral("/apps/");

// Splits `afterPrefix` at the first '/' or '?' into a percent-decoded name and the rest, which
// always starts with '/'. Returns false when the name is empty.
bool splitNameAndPath(QByteArrayView afterPrefix, QString *name, QByteArray *pathAndQuery)
{
    qsizetype nameEnd = afterPrefix.size();
    for (qsizetype i = 0; i < afterPrefix.size(); ++i) {
        if (afterPrefix.at(i) == '/' || afterPrefix.at(i) == '?') {
            nameEnd = i;
            break;
        }
    }
    const QByteArrayView encodedName = afterPrefix.first(nameEnd);
    if (encodedName.isEmpty())
        return false;
    // Most names have nothing to decode, and every request comes here.
    *name = encodedName.contains('%')
                ? QString::fromUtf8(QByteArray::fromPercentEncoding(encodedName.toByteArray()))
                : QString::fromUtf8(encodedName);
    const QByteArrayView rest = afterPrefix.sliced(nameEnd);
    *pathAndQuery = rest.startsWith('/') ? rest.toByteArray() : '/' + rest.toByteArray();
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
    if (!splitNameAndPath(
            QByteArrayView(target).sliced(kAppsPrefix.size()), &route.appName, &route.pathAndQuery))
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
    if (!splitNameAndPath(QByteArrayView(target).sliced(kClustersPrefix.size()),
                          &route.clusterName,
                          &route.pathAndQuery))
        return std::nullopt;
    return route;
}

QByteArray clusterPathPrefix(const QString &clusterName)
{
    return kClustersPrefix + QUrl::toPercentEncoding(clusterName);
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
