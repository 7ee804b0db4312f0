// libFuzzer target: the ExecCredential handling of `lamplighter credential`. The input is the
// value of KUBERNETES_EXEC_INFO that kubectl passes, read by parseExecInfo(). For each accepted
// request, formatExecCredential() must produce an ExecCredential that reads back with the
// requested apiVersion, the token and the expiry. parseExecInfo() is compiled into this target
// from app/CredentialCommand.cpp, because no library contains it.

#include "CredentialCommand.h"
#include "FuzzSupport.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QTimeZone>
#include <cstdint>

using namespace lamplighter;
using namespace lamplighter::fuzz;

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    ensureApplication();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray input(reinterpret_cast<const char *>(data), qsizetype(size));
    const Result<ExecInfo> info = parseExecInfo(input);
    if (!info) {
        requireProperty(info.errorMessage().contains(QLatin1String("KUBERNETES_EXEC_INFO")),
                        "an error names KUBERNETES_EXEC_INFO");
        return 0;
    }
    requireProperty(info->apiVersion == QLatin1String("client.authentication.k8s.io/v1") ||
                        info->apiVersion == QLatin1String("client.authentication.k8s.io/v1beta1"),
                    "an accepted request names a served apiVersion");

    const QByteArray token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl";
    const QDateTime expiresAt(QDate(2026, 12, 1), QTime(12, 30, 5), QTimeZone::utc());
    const QByteArray credential = formatExecCredential(info->apiVersion, token, expiresAt);
    requireProperty(credential.endsWith('\n') && credential.count('\n') == 1,
                    "the ExecCredential is one line");
    const QJsonObject object = QJsonDocument::fromJson(credential).object();
    requireProperty(object.value(QStringLiteral("apiVersion")).toString() == info->apiVersion,
                    "the ExecCredential has the requested apiVersion");
    requireProperty(object.value(QStringLiteral("kind")).toString() ==
                        QLatin1String("ExecCredential"),
                    "the output is an ExecCredential");
    const QJsonObject status = object.value(QStringLiteral("status")).toObject();
    requireProperty(status.value(QStringLiteral("token")).toString().toLatin1() == token,
                    "the ExecCredential carries the token");
    requireProperty(status.value(QStringLiteral("expirationTimestamp")).toString() ==
                        QLatin1String("2026-12-01T12:30:05Z"),
                    "the ExecCredential carries the expiry in RFC 3339");
    return 0;
}
