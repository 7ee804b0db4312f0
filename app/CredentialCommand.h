#pragma once

#include "CommandLine.h"
#include "util/Result.h"

#include <QByteArray>
#include <QDateTime>
#include <QString>

namespace lamplighter {

// The request that kubectl passes to an exec credential plugin in KUBERNETES_EXEC_INFO: the
// ExecCredential version it reads, and whether the plugin may interact with the person.
struct ExecInfo {
    QString apiVersion = QStringLiteral("client.authentication.k8s.io/v1");
    bool interactive = true;
};

// Parses the value of KUBERNETES_EXEC_INFO. An empty value, as when the command runs outside
// kubectl, gives the defaults. Fails on invalid JSON, another kind than ExecCredential, or an
// apiVersion other than client.authentication.k8s.io/v1 and v1beta1.
Result<ExecInfo> parseExecInfo(const QByteArray &json);

// Formats the ExecCredential that kubectl reads from standard output, with the ID token as
// status.token and its expiry as status.expirationTimestamp (RFC 3339, UTC).
QByteArray formatExecCredential(const QString &apiVersion,
                                const QByteArray &idToken,
                                const QDateTime &expiresAt);

// Runs `lamplighter credential` and returns the exit code: 0 printed, 1 failed, 2 invalid usage,
// configuration or KUBERNETES_EXEC_INFO.
int runCredential(const Invocation &invocation, int argc, char *argv[]);

} // namespace lamplighter
