#include "RequestAdmission.h"

#include "AppAdmission.h"
#include "ProxyHeaders.h"
#include "ProxyRoute.h"
#include "SessionKey.h"

#include <QStringList>
#include <charconv>
#include <iterator>

namespace lamplighter {

namespace {

const QString kKubeconfigHint =
    QStringLiteral("Use the kubeconfig that `lamplighter kubeconfig` prints.");

RequestAdmission reject(int code, const QString &message, const QString &logReason)
{
    RequestAdmission admission;
    admission.rejection = KubernetesStatus(code, message);
    admission.logReason = logReason;
    return admission;
}

// Returns true when `value` is `127.0.0.1:<port>` or `localhost:<port>`, optionally preceded by
// `scheme://`.
bool namesThisProxy(QByteArrayView value, QByteArrayView scheme, quint16 port)
{
    if (!startsWithIgnoringCase(value, scheme))
        return false;
    const QByteArrayView rest = value.sliced(scheme.size());
    const qsizetype colon = rest.lastIndexOf(':');
    char portText[8];
    const auto converted = std::to_chars(std::begin(portText), std::end(portText), port);
    if (colon < 0 || rest.sliced(colon + 1) != QByteArrayView(portText, converted.ptr - portText))
        return false;
    const QByteArrayView host = rest.first(colon);
    return host == "127.0.0.1" || equalsIgnoringCase(host, "localhost");
}

std::optional<RequestAdmission> checkHostAndOrigin(const HttpHead &request, quint16 port)
{
    // One pass that finds both, because every request comes here.
    const HttpHeader *host = nullptr;
    const HttpHeader *origin = nullptr;
    int hosts = 0;
    int origins = 0;
    for (const HttpHeader &header : request.headers) {
        if (fieldNameEquals(header.name, "Host")) {
            host = &header;
            ++hosts;
        } else if (fieldNameEquals(header.name, "Origin")) {
            origin = &header;
            ++origins;
        }
    }

    // Exactly one of each, so that no part of the chain can read a different one than was checked.
    if (hosts != 1 || origins > 1) {
        return reject(400,
                      QStringLiteral("The request must have exactly one Host header and at most "
                                     "one Origin header."),
                      QStringLiteral("missing or repeated Host or Origin"));
    }

    // A page that rebinds its DNS name to 127.0.0.1 still sends its own name as Host.
    if (!namesThisProxy(host->value, {}, port)) {
        return reject(403,
                      QStringLiteral("The Host header \"%1\" does not name the Lamplighter proxy. "
                                     "Connect to https://127.0.0.1:%2. %3")
                          .arg(QString::fromLatin1(host->value.left(100)))
                          .arg(port)
                          .arg(kKubeconfigHint),
                      QStringLiteral("foreign Host"));
    }

    if (origin && !namesThisProxy(origin->value, "https://", port)) {
        return reject(403,
                      QStringLiteral("The Lamplighter proxy does not accept requests from web "
                                     "pages of other origins."),
                      QStringLiteral("foreign Origin"));
    }
    return std::nullopt;
}

std::optional<RequestAdmission> checkSessionKeyOf(const HttpHead &request,
                                                  const ProxySettings &settings)
{
    switch (checkSessionKey(request, settings.sessionKey)) {
    case SessionKeyCheck::Accepted:
        return std::nullopt;
    case SessionKeyCheck::Missing:
        return reject(
            401,
            QStringLiteral("The request has no Lamplighter session key. %1").arg(kKubeconfigHint),
            QStringLiteral("session key missing"));
    case SessionKeyCheck::Invalid:
        break;
    }
    return reject(401,
                  QStringLiteral("The Lamplighter session key in the request is invalid. %1")
                      .arg(kKubeconfigHint),
                  QStringLiteral("session key invalid"));
}

RequestAdmission clusterNotFound(const QString &clusterName, const ProxySettings &settings)
{
    QStringList names;
    for (const UpstreamCluster &cluster : settings.clusters)
        names.append(cluster.name);
    const QString configured =
        names.isEmpty()
            ? QStringLiteral("No clusters are configured.")
            : QStringLiteral("Configured clusters: %1.").arg(names.join(QStringLiteral(", ")));
    return reject(404,
                  QStringLiteral("Cluster \"%1\" is not configured in Lamplighter. %2")
                      .arg(clusterName.left(100), configured),
                  QStringLiteral("unknown cluster"));
}

// A CORS preflight requests permission for a page of another origin to send a request. The proxy
// grants CORS to no one, so it rejects a preflight before any other check.
std::optional<RequestAdmission> checkPreflight(const HttpHead &request)
{
    if (request.method != "OPTIONS" || !request.contains("Access-Control-Request-Method"))
        return std::nullopt;
    return reject(403,
                  QStringLiteral("The Lamplighter proxy does not grant cross-origin access."),
                  QStringLiteral("CORS preflight"));
}

} // namespace

RequestAdmission rejectWithStatus(int code, const QString &message, const QString &logReason)
{
    return reject(code, message, logReason);
}

bool hasDotSegmentOrFragment(const QByteArray &pathAndQuery)
{
    const qsizetype queryStart = pathAndQuery.indexOf('?');
    const QByteArray path = queryStart < 0 ? pathAndQuery : pathAndQuery.left(queryStart);
    if (pathAndQuery.contains('#'))
        return true;
    if (path.contains('\\'))
        return true;
    if (!path.contains('%')) {
        // Nothing to decode, so only a literal "." or ".." segment can be a dot segment.
        if (!path.contains('.'))
            return false;
        for (const QByteArray &segment : path.split('/')) {
            const qsizetype parameters = segment.indexOf(';');
            const QByteArray beforeParameters = parameters < 0 ? segment : segment.left(parameters);
            if (beforeParameters == "." || beforeParameters == "..")
                return true;
        }
        return false;
    }
    for (const QByteArray &segment : path.split('/')) {
        // Servers that decode twice, or decode "/" and "\\" before resolving dot segments, or
        // read ";" as the start of path parameters, would see a dot segment in these too.
        const QByteArray once = QByteArray::fromPercentEncoding(segment);
        const QByteArray twice = QByteArray::fromPercentEncoding(once);
        if (once.contains('/') || once.contains('\\') || twice.contains('/') ||
            twice.contains('\\'))
            return true;
        for (const QByteArray &decoded : {once, twice}) {
            const QByteArray beforeParameters =
                decoded.left(decoded.indexOf(';') < 0 ? decoded.size() : decoded.indexOf(';'));
            if (beforeParameters == "." || beforeParameters == "..")
                return true;
        }
    }
    return false;
}

bool requestsUpgrade(const HttpHead &request)
{
    return request.contains("Upgrade") || request.hasToken("Connection", "upgrade") ||
           request.method == "CONNECT";
}

// Returns a rejection for an upgrade that the proxy cannot tunnel. kubectl upgrades to WebSocket
// (exec and attach since 1.30, port-forward since 1.31) and falls back to SPDY/3.1. A tunnel
// needs HTTP/1.1, and bytes of a request body would be mistaken for the new protocol's bytes.
std::optional<RequestAdmission> checkUpgrade(const HttpHead &request)
{
    const QByteArray protocol = request.value("Upgrade").toLower();
    const bool supported = protocol == "websocket" || protocol == "spdy/3.1";
    if (request.method == "CONNECT" || !isUpgradeRequest(request) || !supported) {
        RequestAdmission admission =
            reject(501,
                   QStringLiteral("The Lamplighter proxy forwards only upgrades to websocket and "
                                  "SPDY/3.1 that name \"upgrade\" in the Connection header."),
                   QStringLiteral("upgrade not supported"));
        admission.closeConnection = true;
        return admission;
    }

    const bool hasBody =
        request.framing == HttpBodyFraming::Chunked ||
        (request.framing == HttpBodyFraming::ContentLength && request.contentLength > 0);
    if (request.versionMinor < 1 || hasBody) {
        RequestAdmission admission =
            reject(400,
                   QStringLiteral("An upgrade request must use HTTP/1.1 and have no body."),
                   QStringLiteral("invalid upgrade request"));
        admission.closeConnection = true;
        return admission;
    }
    return std::nullopt;
}

std::optional<RequestAdmission> checkIdToken(const ProxySettings &settings, const QDateTime &now)
{
    if (settings.idToken.isEmpty() && !settings.unavailableReason.isEmpty())
        return reject(401, settings.unavailableReason, QStringLiteral("no valid ID token"));
    if (settings.idToken.isEmpty()) {
        return reject(401,
                      QStringLiteral("Not signed in to Lamplighter. Sign in from the tray icon or "
                                     "run `lamplighter login`, then retry."),
                      QStringLiteral("signed out"));
    }
    if (settings.idTokenExpiresAt.isValid() && now >= settings.idTokenExpiresAt) {
        RequestAdmission admission =
            reject(401,
                   QStringLiteral("Lamplighter's ID token expired at %1 and is being refreshed. "
                                  "Retry in a moment; `lamplighter status` shows the session.")
                       .arg(settings.idTokenExpiresAt.toString(Qt::ISODate)),
                   QStringLiteral("ID token expired"));
        admission.idTokenExpired = true;
        return admission;
    }
    return std::nullopt;
}

RequestAdmission
admitRequest(const HttpHead &request, const ProxySettings &settings, const QDateTime &now)
{
    if (std::optional<RequestAdmission> rejected = checkHostAndOrigin(request, settings.port))
        return *rejected;
    if (std::optional<RequestAdmission> rejected = checkPreflight(request))
        return *rejected;
    // Browsers reach apps with a cookie, never with the session key.
    if (isAppTarget(request.target))
        return admitAppRequest(request, settings, now);
    if (std::optional<RequestAdmission> rejected = checkSessionKeyOf(request, settings))
        return *rejected;

    const std::optional<ClusterRoute> route = parseClusterRoute(request.target);
    if (!route) {
        // kubectl 1.32 sends the path of `get --raw` as it is, without the server URL's path.
        return reject(404,
                      QStringLiteral("Path not found. The Lamplighter proxy serves only "
                                     "/clusters/<cluster name>/..., so start the paths of "
                                     "`kubectl get --raw` with /clusters/<cluster name>."),
                      QStringLiteral("path outside /clusters/"));
    }
    if (hasDotSegmentOrFragment(route->pathAndQuery)) {
        // A server URL with a path prefix must not be left through "..", so such paths are
        // rejected rather than resolved.
        return reject(400,
                      QStringLiteral("The path must not contain \".\" or \"..\" segments or a "
                                     "fragment."),
                      QStringLiteral("dot segment in path"));
    }
    const UpstreamCluster *cluster = settings.findCluster(route->clusterName);
    if (!cluster)
        return clusterNotFound(route->clusterName, settings);

    if (requestsUpgrade(request)) {
        if (std::optional<RequestAdmission> rejected = checkUpgrade(request))
            return *rejected;
    }

    if (std::optional<RequestAdmission> rejected = checkIdToken(settings, now))
        return *rejected;

    RequestAdmission admission;
    admission.cluster = cluster;
    admission.upstreamHead = upstreamRequestHead(
        request, cluster->server.target(route->pathAndQuery), cluster->server, settings.idToken);
    return admission;
}

} // namespace lamplighter
