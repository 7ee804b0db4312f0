#pragma once

#include "session/ControlChannel.h"
#include "session/Session.h"

#include <QJsonObject>

namespace lamplighter {

// The session as the control socket sends it: state, user, groups, expiry, proxy, kubeconfig.
QJsonObject describeSession(const Session &session);

// Formats a description from describeSession() for a terminal, one "Field: value" per line.
QString formatSessionDescription(const QJsonObject &description);

// Creates a launch URL for an app: {"ok":true,"url":...} or {"ok":false,"message":...}. The URL
// contains a one-time ticket, so the reply must not be logged or printed.
QJsonObject openApp(Session *session, const QString &appName);

// Calls reply with an ID token that stays valid for a while, refreshed first when needed:
// {"ok":true,"idToken":...,"expiresAt":...} or {"ok":false,"message":...,"needsLogin":...}.
// The reply contains the ID token, so it must not be logged or shown.
void replyWithFreshIdToken(Session *session, ControlServer::Reply reply);

// The control command of `lamplighter logout --all`. It is a command of its own rather than an
// option of "logout", so that an older running instance rejects it instead of signing out only.
inline const QString logoutAllCommand = QStringLiteral("logout-all");

// Serves the control socket's commands (status, login, logout, logout-all, open, credential)
// with session.
ControlServer::Handler makeControlHandler(Session *session);

// Runs the command on session and calls reply once it is done; login waits for the browser.
// The reply to logout-all adds "removedEntries", the number of keychain entries removed.
void runSessionCommand(Session *session, const QString &command, ControlServer::Reply reply);

} // namespace lamplighter
