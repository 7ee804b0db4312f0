#include "session/ControlChannel.h"

#include <QDir>
#include <QFile>
#include <QLocalSocket>
#include <QTemporaryDir>
#include <QTest>
#include <future>
#include <unistd.h>

using namespace lamplighter;

class TestControlChannel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void requestReachesHandler();
    void secondInstanceRejected();
    void staleSocketReplaced();
    void malformedRequestAnswered();
    void noInstanceGivesError();
    void foreignFolderRejected();

private:
    // Runs the blocking client on another thread while this thread's event loop serves it.
    Result<QJsonObject> request(const QString &path, const QJsonObject &body);
};

Result<QJsonObject> TestControlChannel::request(const QString &path, const QJsonObject &body)
{
    auto pending = std::async(std::launch::async,
                              [path, body] { return sendControlRequest(path, body, 5000); });
    while (pending.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready)
        QTest::qWait(10);
    return pending.get();
}

void TestControlChannel::requestReachesHandler()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("run/control"));
    QJsonObject received;
    ControlServer server([&received](const QJsonObject &request, ControlServer::Reply reply) {
        received = request;
        reply(
            {{QStringLiteral("ok"), true}, {QStringLiteral("state"), QStringLiteral("signed-in")}});
    });
    QVERIFY(server.listen(path).ok());

    const auto reply = request(path, {{QStringLiteral("command"), QStringLiteral("status")}});
    QVERIFY2(reply.ok(), qPrintable(reply.errorMessage()));
    QCOMPARE(received.value(QStringLiteral("command")).toString(), QStringLiteral("status"));
    QCOMPARE(reply->value(QStringLiteral("state")).toString(), QStringLiteral("signed-in"));

    const int ownerGroupOther = 0x7077;
    QCOMPARE(int(QFile::permissions(dir.filePath(QStringLiteral("run")))) & ownerGroupOther,
             int(QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));
}

void TestControlChannel::secondInstanceRejected()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("control"));
    ControlServer first([](const QJsonObject &, ControlServer::Reply reply) { reply({}); });
    QVERIFY(first.listen(path).ok());

    // The probe connection of the second instance must be served, so run it asynchronously.
    ControlServer second([](const QJsonObject &, ControlServer::Reply reply) { reply({}); });
    auto pending = std::async(std::launch::async, [&second, path] { return second.listen(path); });
    while (pending.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready)
        QTest::qWait(10);
    const Status status = pending.get();
    QVERIFY(!status.ok());
    QVERIFY2(status.errorMessage().contains(QStringLiteral("already running")),
             qPrintable(status.errorMessage()));
}

void TestControlChannel::staleSocketReplaced()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("control"));
    QFile stale(path);
    QVERIFY(stale.open(QIODevice::WriteOnly));
    stale.close();

    ControlServer server([](const QJsonObject &, ControlServer::Reply reply) {
        reply({{QStringLiteral("ok"), true}});
    });
    const Status status = server.listen(path);
    QVERIFY2(status.ok(), qPrintable(status.errorMessage()));
    QVERIFY(request(path, {{QStringLiteral("command"), QStringLiteral("status")}}).ok());
}

void TestControlChannel::malformedRequestAnswered()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("control"));
    bool handled = false;
    ControlServer server([&handled](const QJsonObject &, ControlServer::Reply reply) {
        handled = true;
        reply({});
    });
    QVERIFY(server.listen(path).ok());

    QLocalSocket socket;
    socket.connectToServer(path);
    QVERIFY(socket.waitForConnected(2000));
    socket.write("not json\n");
    QTRY_VERIFY(socket.canReadLine());
    const QByteArray line = socket.readLine();
    QVERIFY2(line.contains("\"ok\":false"), line.constData());
    QVERIFY2(line.contains("not a JSON object"), line.constData());
    QVERIFY(!handled);
}

void TestControlChannel::noInstanceGivesError()
{
    QTemporaryDir dir;
    const auto reply = sendControlRequest(dir.filePath(QStringLiteral("control")), {}, 1000);
    QVERIFY(!reply.ok());
    QVERIFY(reply.errorMessage().contains(QStringLiteral("No running Lamplighter")));
}

void TestControlChannel::foreignFolderRejected()
{
    if (getuid() != 0)
        QSKIP("giving a folder to another user needs root");
    QTemporaryDir dir;
    const QString folder = dir.filePath(QStringLiteral("run"));
    QVERIFY(QDir().mkpath(folder));
    const uid_t nobody = 65534;
    QCOMPARE(chown(QFile::encodeName(folder).constData(), nobody, nobody), 0);

    ControlServer server([](const QJsonObject &, ControlServer::Reply reply) { reply({}); });
    const Status status = server.listen(folder + QStringLiteral("/control"));
    QVERIFY(!status.ok());
    QVERIFY2(status.errorMessage().contains(QStringLiteral("belongs to another user")),
             qPrintable(status.errorMessage()));
}

QTEST_GUILESS_MAIN(TestControlChannel)
#include "tst_controlchannel.moc"
