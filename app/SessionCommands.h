#pragma once

#include "session/ControlChannel.h"
#include "session/Session.h"

#include <QJsonObject>

namespace lamplighter {

// The session as the control socket sends it: state, user, groups, expiry, proxy, kubeconfig.
QJsonObject describeSession(const Session &session);

// Formats a description from describeSession() for a terminal, one "Field: value" per line.
QString formatSessionDescription(const QJsonObject &description);

// Serves the control socket's commands (status, login, logout) with session.
ControlServer::Handler makeControlHandler(Session *session);

// Runs the command on session and calls reply once it is done; login waits for the browser.
void runSessionCommand(Session *session, const QString &command, ControlServer::Reply reply);

} // namespace lamplighter
