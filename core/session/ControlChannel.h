#pragma once

#include "util/Result.h"

#include <QJsonObject>
#include <QObject>
#include <QString>
#include <functional>

class QLocalServer;
class QLocalSocket;

namespace lamplighter {

// The local socket through which `lamplighter login`, `logout` (also with --all), `status`,
// `open` and `credential` reach a running tray instance. It lives in a folder only the user can open, so
// only the user's own processes can send commands, and the reply to `credential` contains the ID
// token. Each connection carries one JSON request line and one JSON reply line.
class ControlServer : public QObject {
    Q_OBJECT
public:
    using Reply = std::function<void(const QJsonObject &reply)>;
    using Handler = std::function<void(const QJsonObject &request, Reply reply)>;

    ControlServer(Handler handler, QObject *parent = nullptr);
    ~ControlServer() override;

    // Listens on socketPath. Fails when another instance already listens there; a socket file
    // left behind by an instance that died is replaced.
    Status listen(const QString &socketPath);

private:
    void serve(QLocalSocket *socket);

    Handler m_handler;
    QLocalServer *m_server;
};

// Sends request to the running instance and waits up to timeoutMs for its reply. Fails when
// no instance listens on socketPath. When connected is given, it is set to whether an instance
// accepted the connection, so a caller can distinguish a missing instance from a failed reply.
Result<QJsonObject> sendControlRequest(const QString &socketPath,
                                       const QJsonObject &request,
                                       int timeoutMs,
                                       bool *connected = nullptr);

// $XDG_RUNTIME_DIR/lamplighter/control, or a folder of the user's own under /tmp.
QString defaultControlSocketPath();

} // namespace lamplighter
