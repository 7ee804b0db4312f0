#include "session/ControlChannel.h"

#include "Logging.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>
#include <QLocalServer>
#include <QLocalSocket>
#include <QPointer>
#include <unistd.h>

namespace lamplighter {
namespace {

// A request line is a few dozen bytes, so a longer one comes from another program.
constexpr qint64 maximumRequestSize = 4096;

QByteArray toLine(const QJsonObject &object)
{
    return QJsonDocument(object).toJson(QJsonDocument::Compact) + '\n';
}

// Creates folder, or accepts an existing one, only when it belongs to this user and no one else
// can open it. Under a shared /tmp another user could otherwise create the folder first and
// reply to this user's commands.
Status preparePrivateFolder(const QString &folder)
{
    if (!QDir().mkpath(folder))
        return Error{QStringLiteral("Failed to create the folder %1").arg(folder)};
    const QFileInfo info(folder);
    if (info.ownerId() != getuid())
        return Error{QStringLiteral("The folder %1 belongs to another user, so Lamplighter will "
                                    "not listen there. Remove it or set XDG_RUNTIME_DIR.")
                         .arg(folder)};
    const auto ownerOnly = QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner;
    if (!QFile::setPermissions(folder, ownerOnly))
        return Error{QStringLiteral("Failed to make the folder %1 private").arg(folder)};
    return Done{};
}

} // namespace

ControlServer::ControlServer(Handler handler, QObject *parent)
    : QObject(parent)
    , m_handler(std::move(handler))
    , m_server(new QLocalServer(this))
{
    m_server->setSocketOptions(QLocalServer::UserAccessOption);
    connect(m_server, &QLocalServer::newConnection, this, [this] {
        while (QLocalSocket *socket = m_server->nextPendingConnection())
            serve(socket);
    });
}

ControlServer::~ControlServer() = default;

Status ControlServer::listen(const QString &socketPath)
{
    const Status folderReady = preparePrivateFolder(QFileInfo(socketPath).absolutePath());
    if (!folderReady)
        return folderReady;

    if (QFileInfo::exists(socketPath)) {
        QLocalSocket probe;
        probe.connectToServer(socketPath);
        if (probe.waitForConnected(1000))
            return Error{QStringLiteral("Lamplighter is already running (it listens on %1)")
                             .arg(socketPath)};
        QLocalServer::removeServer(socketPath);
    }
    if (!m_server->listen(socketPath))
        return Error{
            QStringLiteral("Failed to listen on %1: %2").arg(socketPath, m_server->errorString())};
    qCDebug(lcSession) << "Listening for commands on" << socketPath;
    return Done{};
}

void ControlServer::serve(QLocalSocket *socket)
{
    connect(socket, &QLocalSocket::disconnected, socket, &QObject::deleteLater);
    connect(socket, &QLocalSocket::readyRead, this, [this, socket] {
        if (!socket->canReadLine()) {
            if (socket->bytesAvailable() > maximumRequestSize)
                socket->abort();
            return;
        }
        const QByteArray line = socket->readLine(maximumRequestSize);
        QJsonParseError parseError;
        const QJsonDocument document = QJsonDocument::fromJson(line, &parseError);
        QPointer<QLocalSocket> guarded(socket);
        auto reply = [guarded](const QJsonObject &answer) {
            if (!guarded)
                return;
            guarded->write(toLine(answer));
            guarded->disconnectFromServer();
        };
        if (!document.isObject()) {
            reply({{QStringLiteral("ok"), false},
                   {QStringLiteral("message"),
                    QStringLiteral("The request is not a JSON object: %1")
                        .arg(parseError.errorString())}});
            return;
        }
        m_handler(document.object(), reply);
    });
}

Result<QJsonObject> sendControlRequest(const QString &socketPath,
                                       const QJsonObject &request,
                                       int timeoutMs,
                                       bool *connected)
{
    if (connected)
        *connected = false;
    QLocalSocket socket;
    socket.connectToServer(socketPath);
    if (!socket.waitForConnected(2000))
        return Error{QStringLiteral("No running Lamplighter listens on %1").arg(socketPath)};
    if (connected)
        *connected = true;
    socket.write(toLine(request));
    if (!socket.waitForBytesWritten(2000))
        return Error{QStringLiteral("Failed to send the request to %1").arg(socketPath)};

    QByteArray answer;
    while (!answer.contains('\n')) {
        if (!socket.waitForReadyRead(timeoutMs))
            return Error{QStringLiteral("The running Lamplighter did not reply within %1 s")
                             .arg(timeoutMs / 1000)};
        answer += socket.readAll();
    }
    const QJsonDocument document = QJsonDocument::fromJson(answer.left(answer.indexOf('\n')));
    if (!document.isObject())
        return Error{QStringLiteral("The running Lamplighter sent a reply that is not JSON")};
    return document.object();
}

QString defaultControlSocketPath()
{
    const QString runtime = qEnvironmentVariable("XDG_RUNTIME_DIR");
    if (!runtime.isEmpty() && QDir(runtime).exists())
        return runtime + QStringLiteral("/lamplighter/control");
    return QDir::tempPath() + QStringLiteral("/lamplighter-%1/control").arg(getuid());
}

} // namespace lamplighter
