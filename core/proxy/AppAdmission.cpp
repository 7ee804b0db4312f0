#include "AppAdmission.h"

#include "ProxyHeaders.h"
#include "ProxyRoute.h"

#include <QStringList>
#include <QUrlQuery>

namespace lamplighter {

namespace {

RequestAdmission respond(int code, const QString &message, const QString &logReason)
{
    RequestAdmission admission;
    admission.browserResponse = BrowserResponse{code, {}, message, {}, {}};
    admission.logReason = logReason;
    return admission;
}

// Turns a rejection with a Kubernetes Status into the same rejection in plain text.
RequestAdmission asPlainText(RequestAdmission admission)
{
    if (admission.rejection) {
        admission.browserResponse = BrowserResponse{
            admission.rejection->code(), {}, admission.rejection->message(), {}, {}};
        admission.rejection.reset();
    }
    return admission;
}

QString openHint(const QString &appName)
{
    return QStringLiteral("Open the app again from the Lamplighter tray icon or with "
                          "`lamplighter open %1`.")
        .arg(appName);
}

RequestAdmission appNotFound(const QString &appName, const ProxySettings &settings)
{
    QStringList names;
    for (const UpstreamApp &app : settings.apps)
        names.append(app.name);
    const QString configured =
        names.isEmpty()
            ? QStringLiteral("No apps are configured.")
            : QStringLiteral("Configured apps: %1.").arg(names.join(QStringLiteral(", ")));
    return respond(404,
                   QStringLiteral("App \"%1\" is not configured in Lamplighter. %2")
                       .arg(appName.left(100), configured),
                   QStringLiteral("unknown app"));
}

// Returns the values of every lamplighter-session cookie in the request. Another Lamplighter
// proxy on the same host may have set one too, because cookies do not depend on the port.
QList<QByteArray> sessionCookieValues(const HttpHead &request)
{
    QList<QByteArray> values;
    for (const QByteArray &field : request.values("Cookie")) {
        for (const QByteArray &pair : field.split(';')) {
            const QByteArray trimmed = pair.trimmed();
            const qsizetype equals = trimmed.indexOf('=');
            if (equals > 0 && trimmed.left(equals).trimmed() == kBrowserSessionCookieName)
                values.append(trimmed.mid(equals + 1).trimmed());
        }
    }
    return values;
}

std::optional<QByteArray> ticketOf(const QByteArray &pathAndQuery)
{
    const qsizetype queryStart = pathAndQuery.indexOf('?');
    if (queryStart < 0)
        return std::nullopt;
    const QUrlQuery query(QString::fromLatin1(pathAndQuery.mid(queryStart + 1)));
    if (!query.hasQueryItem(QStringLiteral("ticket")))
        return std::nullopt;
    return query.queryItemValue(QStringLiteral("ticket"), QUrl::FullyDecoded).toLatin1();
}

// Trades a launch ticket for a session cookie and redirects to the app's start page, so that
// the ticket leaves the address bar and the browser's history entry.
RequestAdmission redeemTicket(const HttpHead &request,
                              const AppRoute &route,
                              const QByteArray &ticket,
                              const ProxySettings &settings)
{
    const QByteArray path = route.pathAndQuery.left(route.pathAndQuery.indexOf('?'));
    if (request.method != "GET" || path != "/")
        return respond(400,
                       QStringLiteral("A launch ticket is accepted only in a GET request for the "
                                      "app's start page, /apps/%1/.")
                           .arg(route.appName),
                       QStringLiteral("ticket on another request"));

    BrowserSessions &sessions = *settings.browserSessions;
    if (!sessions.redeemTicket(ticket, route.appName, BrowserSessions::Clock::now()))
        return respond(401,
                       QStringLiteral("This Lamplighter launch link is invalid, already used or "
                                      "expired. %1")
                           .arg(openHint(route.appName)),
                       QStringLiteral("launch ticket invalid or expired"));

    const std::optional<QByteArray> cookie = sessions.createCookieValue();
    if (!cookie)
        return respond(500,
                       QStringLiteral("Lamplighter could not generate a session cookie. %1")
                           .arg(openHint(route.appName)),
                       QStringLiteral("random generator failed"));

    // Path=/ because one cookie serves every app, and SameSite=Strict so that no other site
    // can make the browser send it.
    BrowserResponse redirect{303, {}, {}, {}, {}};
    redirect.headers.push_back(HttpHeader{"Location", appPathPrefix(route.appName)});
    redirect.headers.push_back(HttpHeader{"Set-Cookie",
                                          QByteArray(kBrowserSessionCookieName) + '=' + *cookie +
                                              "; Secure; HttpOnly; SameSite=Strict; Path=/"});
    RequestAdmission admission;
    admission.browserResponse = redirect;
    admission.logReason =
        QStringLiteral("launch ticket redeemed for app \"%1\"").arg(route.appName);
    return admission;
}

std::optional<RequestAdmission>
checkSessionCookie(const HttpHead &request, const QString &appName, const ProxySettings &settings)
{
    const QList<QByteArray> values = sessionCookieValues(request);
    if (values.isEmpty())
        return respond(
            401,
            QStringLiteral("This browser has no Lamplighter session. %1").arg(openHint(appName)),
            QStringLiteral("session cookie missing"));
    bool issued = false;
    for (const QByteArray &value : values)
        issued |= settings.browserSessions->isIssuedCookieValue(value);
    if (!issued)
        return respond(401,
                       QStringLiteral("This browser's Lamplighter session has ended. %1")
                           .arg(openHint(appName)),
                       QStringLiteral("session cookie invalid"));
    return std::nullopt;
}

RequestAdmission forwardToApp(const HttpHead &request,
                              const AppRoute &route,
                              const UpstreamApp &app,
                              const ProxySettings &settings,
                              const QDateTime &now)
{
    if (app.injectToken) {
        if (std::optional<RequestAdmission> rejected = checkIdToken(settings, now))
            return asPlainText(*rejected);
    }

    RequestAdmission admission;
    admission.cluster = &app.upstream;
    admission.upstreamHead =
        appUpstreamRequestHead(request,
                               app.upstream.server.target(route.pathAndQuery),
                               app.upstream.server,
                               app.injectToken ? settings.idToken : BearerToken(),
                               app.tokenHeader == AppTokenHeader::XForwardedIdToken);
    return admission;
}

} // namespace

RequestAdmission
admitAppRequest(const HttpHead &request, const ProxySettings &settings, const QDateTime &now)
{
    const std::optional<AppRoute> route = parseAppRoute(request.target);
    if (!route)
        return respond(404,
                       QStringLiteral("Path not found. Apps are served at /apps/<app name>/."),
                       QStringLiteral("path names no app"));
    if (hasDotSegmentOrFragment(route->pathAndQuery))
        return respond(400,
                       QStringLiteral("The path must not contain \".\" or \"..\" segments or a "
                                      "fragment."),
                       QStringLiteral("dot segment in path"));
    const UpstreamApp *app = settings.findApp(route->appName);
    if (!app)
        return appNotFound(route->appName, settings);

    // Browsers count other ports of 127.0.0.1 as the same site, so they send the SameSite=Strict
    // cookie with requests that pages there start. Sec-Fetch-Site distinguishes those requests.
    const QByteArray fetchSite = request.value("Sec-Fetch-Site").toLower();
    if (!fetchSite.isEmpty() && fetchSite != "same-origin" && fetchSite != "none")
        return respond(403,
                       QStringLiteral("Apps accept only requests from their own pages or from "
                                      "a link opened with `lamplighter open`."),
                       QStringLiteral("request from another site"));

    if (const std::optional<QByteArray> ticket = ticketOf(route->pathAndQuery))
        return redeemTicket(request, *route, *ticket, settings);
    if (std::optional<RequestAdmission> rejected =
            checkSessionCookie(request, route->appName, settings))
        return *rejected;

    if (requestsUpgrade(request)) {
        if (std::optional<RequestAdmission> rejected = checkUpgrade(request))
            return asPlainText(*rejected);
    }
    return forwardToApp(request, *route, *app, settings, now);
}

} // namespace lamplighter
