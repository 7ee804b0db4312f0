#include "CommandLine.h"

#include <QTest>

using namespace lamplighter;
using Command = Invocation::Command;

Q_DECLARE_METATYPE(Invocation::Command)

class TestCommandLine : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void commands_data();
    void commands();
    void invalid_data();
    void invalid();
    void configOptionWinsOverEnvironment();
    void helpPerCommand();
    void openTakesAppName();
};

void TestCommandLine::commands_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<Command>("command");

    QTest::newRow("no command starts the tray") << QStringList() << Command::Tray;
    QTest::newRow("login") << QStringList{QStringLiteral("login")} << Command::Login;
    QTest::newRow("logout") << QStringList{QStringLiteral("logout")} << Command::Logout;
    QTest::newRow("status") << QStringList{QStringLiteral("status")} << Command::Status;
    QTest::newRow("kubeconfig") << QStringList{QStringLiteral("kubeconfig")} << Command::Kubeconfig;
    QTest::newRow("open") << QStringList{QStringLiteral("open"), QStringLiteral("headlamp")}
                          << Command::Open;
    QTest::newRow("option before command") << QStringList{QStringLiteral("--config"),
                                                          QStringLiteral("/c.yaml"),
                                                          QStringLiteral("status")}
                                           << Command::Status;
}

void TestCommandLine::commands()
{
    QFETCH(QStringList, arguments);
    QFETCH(Command, command);
    const Invocation invocation = parseCommandLine(arguments);
    QVERIFY2(invocation.errorMessage.isEmpty(), qPrintable(invocation.errorMessage));
    QCOMPARE(invocation.command, command);
    QVERIFY(!invocation.helpRequested);
}

void TestCommandLine::invalid_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<QString>("expected");

    QTest::newRow("unknown command")
        << QStringList{QStringLiteral("signin")} << QStringLiteral("Unknown command \"signin\"");
    QTest::newRow("extra argument") << QStringList{QStringLiteral("status"), QStringLiteral("now")}
                                    << QStringLiteral("takes no arguments, got \"now\"");
    QTest::newRow("open without app")
        << QStringList{QStringLiteral("open")} << QStringLiteral("takes one argument");
    QTest::newRow("open with two apps")
        << QStringList{QStringLiteral("open"), QStringLiteral("a"), QStringLiteral("b")}
        << QStringLiteral("takes one argument");
    QTest::newRow("unknown option")
        << QStringList{QStringLiteral("--verbose")} << QStringLiteral("verbose");
    QTest::newRow("config without value")
        << QStringList{QStringLiteral("--config")} << QStringLiteral("config");
}

void TestCommandLine::invalid()
{
    QFETCH(QStringList, arguments);
    QFETCH(QString, expected);
    const Invocation invocation = parseCommandLine(arguments);
    QVERIFY2(invocation.errorMessage.contains(expected), qPrintable(invocation.errorMessage));
}

void TestCommandLine::configOptionWinsOverEnvironment()
{
    qputenv("LAMPLIGHTER_CONFIG", "/from/environment.yaml");
    QCOMPARE(parseCommandLine({}).configPath, QStringLiteral("/from/environment.yaml"));
    QCOMPARE(
        parseCommandLine({QStringLiteral("-c"), QStringLiteral("/from/option.yaml")}).configPath,
        QStringLiteral("/from/option.yaml"));
    qunsetenv("LAMPLIGHTER_CONFIG");
    QVERIFY(parseCommandLine({}).configPath.endsWith(QStringLiteral("lamplighter/config.yaml")));
}

void TestCommandLine::helpPerCommand()
{
    const Invocation general = parseCommandLine({QStringLiteral("--help")});
    QVERIFY(general.helpRequested);
    QVERIFY(general.helpText.contains(QStringLiteral("Usage: lamplighter [options] [command]")));
    QVERIFY(general.helpText.contains(QStringLiteral("kubeconfig")));

    const Invocation login = parseCommandLine({QStringLiteral("login"), QStringLiteral("--help")});
    QVERIFY(login.helpRequested);
    QVERIFY2(login.helpText.contains(QStringLiteral("Usage: lamplighter login")),
             qPrintable(login.helpText));
    QVERIFY(login.helpText.contains(QStringLiteral("Sign in through the browser")));
}

void TestCommandLine::openTakesAppName()
{
    const Invocation open = parseCommandLine({QStringLiteral("open"), QStringLiteral("headlamp")});
    QCOMPARE(open.appName, QStringLiteral("headlamp"));

    const Invocation help = parseCommandLine({QStringLiteral("open"), QStringLiteral("--help")});
    QVERIFY2(help.errorMessage.isEmpty(), qPrintable(help.errorMessage));
    QVERIFY(help.helpRequested);
    QVERIFY2(help.helpText.contains(QStringLiteral("Usage: lamplighter open APP")),
             qPrintable(help.helpText));
}

QTEST_GUILESS_MAIN(TestCommandLine)
#include "tst_commandline.moc"
