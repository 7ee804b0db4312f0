#pragma once

#include <QByteArray>
#include <QString>
#include <QUrl>
#include <optional>

namespace lamplighter {

// The cluster a request target names and the part of the target that follows the cluster's
// prefix: `/clusters/<name>/api/v1/pods?watch=1` routes to cluster `name` with
// `/api/v1/pods?watch=1`.
struct ClusterRoute {
    QString clusterName; // percent-decoded
    QByteArray pathAndQuery;
};

// The app a request target names and the part of the target after `/apps/<name>`:
// `/apps/headlamp/c/main?x=1` routes to app `headlamp` with `/c/main?x=1`, and `/apps/headlamp`
// with `/`.
struct AppRoute {
    QString appName; // percent-decoded
    QByteArray pathAndQuery;
};

// Returns true when the target is under /apps/, the routes that browsers use.
bool isAppTarget(const QByteArray &target);
// Returns the route of an origin-form target under /apps/<name>, or nothing when the name is
// missing.
std::optional<AppRoute> parseAppRoute(const QByteArray &target);
// Returns the path of an app's start page, `/apps/<name>/` with the name percent-encoded.
QByteArray appPathPrefix(const QString &appName);

// Returns the route of an origin-form target, or nothing when the target is not under
// /clusters/<name>.
std::optional<ClusterRoute> parseClusterRoute(const QByteArray &target);

// Returns the path prefix for a cluster, `/clusters/<name>` with the name percent-encoded.
QByteArray clusterPathPrefix(const QString &clusterName);

// Returns the path of a target without its query, cut to a length fit for a log line.
QString targetPathForLog(const QByteArray &target);

} // namespace lamplighter
