#include "SessionCommands.h"

#include "Logging.h"

#include <QJsonArray>
#include <QLocale>
#include <memory>

namespace lamplighter {
namespace {

QJsonObject failure(const QString &message)
{
    return {{QStringLiteral("ok"), false}, {QStringLiteral("message"), message}};
}

// Waits for the sign-in started on session to end, then replies with the outcome.
void replyWhenSignInEnds(Session *session, ControlServer::Reply reply)
{
    auto connection = std::make_shared<QMetaObject::Connection>();
    *connection = QObject::connect(
        session,
        &Session::stateChanged,
        session,
        [session, reply, connection](Session::State state) {
            if (state == Session::State::SigningIn || state == Session::State::Starting)
                return;
            QObject::disconnect(*connection);
            QJsonObject answer = describeSession(*session);
            if (state != Session::State::SignedIn) {
                answer.insert(QStringLiteral("ok"), false);
                answer.insert(QStringLiteral("message"),
                              session->errorMessage().isEmpty()
                                  ? QStringLiteral("Sign-in did not finish.")
                                  : session->errorMessage());
            }
            reply(answer);
        });
}

// Returns whether the session has a person's tokens that the proxy serves with: signed in, also
// while a refresh runs or the provider cannot be reached.
bool hasIdentity(const Session &session)
{
    const Session::State state = session.state();
    return state == Session::State::SignedIn || state == Session::State::Refreshing ||
           state == Session::State::Offline;
}

} // namespace

QJsonObject describeSession(const Session &session)
{
    QJsonObject description{
        {QStringLiteral("ok"), true},
        {QStringLiteral("state"), Session::stateName(session.state())},
        {QStringLiteral("kubeconfig"), session.kubeconfigPath()},
        {QStringLiteral("inMemoryOnly"), session.tokensInMemoryOnly()},
    };
    if (session.proxyPort() != 0)
        description.insert(QStringLiteral("proxy"),
                           QStringLiteral("https://127.0.0.1:%1").arg(session.proxyPort()));
    if (hasIdentity(session)) {
        description.insert(QStringLiteral("user"), session.userName());
        description.insert(QStringLiteral("groups"), QJsonArray::fromStringList(session.groups()));
        description.insert(QStringLiteral("expiresAt"), session.expiresAt().toString(Qt::ISODate));
    }
    if (!session.errorMessage().isEmpty())
        description.insert(QStringLiteral("error"), session.errorMessage());
    return description;
}

QString formatSessionDescription(const QJsonObject &description)
{
    QStringList lines;
    auto add = [&lines](const QString &field, const QString &value) {
        if (!value.isEmpty())
            lines.append(QStringLiteral("%1 %2").arg(field.leftJustified(12), value));
    };
    add(QStringLiteral("State:"), description.value(QStringLiteral("state")).toString());
    add(QStringLiteral("User:"), description.value(QStringLiteral("user")).toString());
    QStringList groups;
    for (const QJsonValue &group : description.value(QStringLiteral("groups")).toArray())
        groups.append(group.toString());
    add(QStringLiteral("Groups:"), groups.join(QStringLiteral(", ")));
    const QDateTime expires = QDateTime::fromString(
        description.value(QStringLiteral("expiresAt")).toString(), Qt::ISODate);
    if (expires.isValid()) {
        const qint64 seconds = QDateTime::currentDateTimeUtc().secsTo(expires);
        add(QStringLiteral("Expires:"),
            QStringLiteral("%1 (%2)").arg(
                expires.toUTC().toString(QStringLiteral("yyyy-MM-dd HH:mm:ss 'UTC'")),
                seconds >= 0 ? QStringLiteral("in %1 s").arg(seconds)
                             : QStringLiteral("%1 s ago, refreshed on next use").arg(-seconds)));
    }
    add(QStringLiteral("Proxy:"), description.value(QStringLiteral("proxy")).toString());
    add(QStringLiteral("Kubeconfig:"), description.value(QStringLiteral("kubeconfig")).toString());
    if (description.value(QStringLiteral("inMemoryOnly")).toBool())
        add(QStringLiteral("Keychain:"),
            QStringLiteral("none answered; tokens are kept in memory only"));
    add(QStringLiteral("Error:"), description.value(QStringLiteral("error")).toString());
    if (description.contains(QStringLiteral("removedEntries"))) {
        const int removed = description.value(QStringLiteral("removedEntries")).toInt();
        add(QStringLiteral("Removed:"),
            QStringLiteral("%1 keychain %2")
                .arg(removed)
                .arg(removed == 1 ? QStringLiteral("entry") : QStringLiteral("entries")));
    }
    return lines.join(QLatin1Char('\n')) + QLatin1Char('\n');
}

QJsonObject openApp(Session *session, const QString &appName)
{
    if (appName.isEmpty())
        return failure(QStringLiteral("The command \"open\" needs the name of an app in \"app\"."));
    const Result<QUrl> url = session->createLaunchUrl(appName);
    if (!url)
        return failure(url.errorMessage());
    return {{QStringLiteral("ok"), true},
            {QStringLiteral("url"), url->toString(QUrl::FullyEncoded)}};
}

void replyWithFreshIdToken(Session *session, ControlServer::Reply reply)
{
    session->requestFreshIdToken([reply](const Session::IdTokenResult &result) {
        if (result.idToken.isEmpty()) {
            QJsonObject answer = failure(result.errorMessage);
            answer.insert(QStringLiteral("needsLogin"), result.needsLogin);
            reply(answer);
            return;
        }
        qCDebug(lcSession) << "Sending the ID token to `lamplighter credential`; it expires at"
                           << result.expiresAt.toString(Qt::ISODate);
        reply({{QStringLiteral("ok"), true},
               {QStringLiteral("idToken"), QString::fromLatin1(result.idToken)},
               {QStringLiteral("expiresAt"), result.expiresAt.toUTC().toString(Qt::ISODate)}});
    });
}

void runSessionCommand(Session *session, const QString &command, ControlServer::Reply reply)
{
    if (command == QLatin1String("status")) {
        reply(describeSession(*session));
    } else if (command == QLatin1String("login")) {
        // Whether a stored session makes sign-in unnecessary is known once the session started.
        if (session->state() == Session::State::Starting) {
            auto connection = std::make_shared<QMetaObject::Connection>();
            *connection = QObject::connect(
                session, &Session::started, session, [session, command, reply, connection] {
                    QObject::disconnect(*connection);
                    runSessionCommand(session, command, reply);
                });
            return;
        }
        if (hasIdentity(*session)) {
            reply(describeSession(*session));
            return;
        }
        replyWhenSignInEnds(session, reply);
        if (session->state() != Session::State::SigningIn)
            session->signIn();
    } else if (command == QLatin1String("logout")) {
        session->signOut();
        reply(describeSession(*session));
    } else if (command == logoutAllCommand) {
        session->signOutAndRemoveAllEntries([session, reply](Result<int> removed) {
            if (!removed) {
                reply(failure(removed.errorMessage()));
                return;
            }
            QJsonObject answer = describeSession(*session);
            answer.insert(QStringLiteral("removedEntries"), removed.value());
            reply(answer);
        });
    } else {
        reply(failure(QStringLiteral("Unknown command \"%1\"; expected status, login, logout, "
                                     "logout-all, open or credential.")
                          .arg(command)));
    }
}

ControlServer::Handler makeControlHandler(Session *session)
{
    return [session](const QJsonObject &request, ControlServer::Reply reply) {
        const QString command = request.value(QStringLiteral("command")).toString();
        if (command == QLatin1String("open")) {
            reply(openApp(session, request.value(QStringLiteral("app")).toString()));
            return;
        }
        if (command == QLatin1String("credential")) {
            replyWithFreshIdToken(session, reply);
            return;
        }
        runSessionCommand(session, command, reply);
    };
}

} // namespace lamplighter
