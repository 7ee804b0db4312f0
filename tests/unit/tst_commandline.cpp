#include "CommandLine.h"
#include "CredentialCommand.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
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
    void systemConfigWhenPersonalMissing();
    void helpPerCommand();
    void openTakesAppName();
    void credentialTakesClusterAndLogin();
    void credentialHelpShowsKubeconfigEntry();
    void logoutTakesAll();
    void execInfo_data();
    void execInfo();
    void invalidExecInfo_data();
    void invalidExecInfo();
    void execCredentialFormat_data();
    void execCredentialFormat();
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
    QTest::newRow("credential") << QStringList{QStringLiteral("credential"),
                                               QStringLiteral("--cluster"),
                                               QStringLiteral("prod")}
                                << Command::Credential;
    QTest::newRow("credential with options first") << QStringList{QStringLiteral("--login"),
                                                                  QStringLiteral("--cluster=prod"),
                                                                  QStringLiteral("credential")}
                                                   << Command::Credential;
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
    QTest::newRow("credential without cluster")
        << QStringList{QStringLiteral("credential")} << QStringLiteral("needs --cluster NAME");
    QTest::newRow("credential with empty cluster")
        << QStringList{QStringLiteral("credential"), QStringLiteral("--cluster=")}
        << QStringLiteral("needs --cluster NAME");
    QTest::newRow("cluster without value")
        << QStringList{QStringLiteral("credential"), QStringLiteral("--cluster")}
        << QStringLiteral("cluster");
    QTest::newRow("credential with argument") << QStringList{QStringLiteral("credential"),
                                                             QStringLiteral("prod"),
                                                             QStringLiteral("--cluster"),
                                                             QStringLiteral("prod")}
                                              << QStringLiteral("takes no arguments, got \"prod\"");
    QTest::newRow("cluster on status")
        << QStringList{QStringLiteral("status"),
                       QStringLiteral("--cluster"),
                       QStringLiteral("prod")}
        << QStringLiteral("apply only to the command \"credential\"");
    QTest::newRow("login option on tray")
        << QStringList{QStringLiteral("--login")}
        << QStringLiteral("apply only to the command \"credential\"");
    QTest::newRow("all on status") << QStringList{QStringLiteral("status"), QStringLiteral("--all")}
                                   << QStringLiteral("The option --all applies only to the command "
                                                     "\"logout\".");
    QTest::newRow("all on tray") << QStringList{QStringLiteral("--all")}
                                 << QStringLiteral("applies only to the command \"logout\"");
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
    QVERIFY(parseCommandLine({}).configPathGiven);
    qunsetenv("LAMPLIGHTER_CONFIG");
    QVERIFY(parseCommandLine({}).configPath.endsWith(QStringLiteral("lamplighter/config.yaml")));
    QVERIFY(!parseCommandLine({}).configPathGiven);
    QVERIFY(parseCommandLine({QStringLiteral("-c"), QStringLiteral("/from/option.yaml")})
                .configPathGiven);
}

void TestCommandLine::systemConfigWhenPersonalMissing()
{
    const QTemporaryDir personal;
    const QTemporaryDir system;
    QVERIFY(personal.isValid() && system.isValid());
    qputenv("XDG_CONFIG_HOME", personal.path().toUtf8());
    qputenv("XDG_CONFIG_DIRS", system.path().toUtf8());
    const QString personalFile = personal.filePath(QStringLiteral("lamplighter/config.yaml"));
    const QString systemFile = system.filePath(QStringLiteral("lamplighter/config.yaml"));

    // Neither exists: the error should name the person's own file.
    QCOMPARE(parseCommandLine({}).configPath, personalFile);

    const auto create = [](const QString &path) {
        QVERIFY(QDir().mkpath(QFileInfo(path).path()));
        QFile file(path);
        QVERIFY(file.open(QIODevice::WriteOnly));
    };
    create(systemFile);
    QCOMPARE(parseCommandLine({}).configPath, systemFile);

    create(personalFile);
    QCOMPARE(parseCommandLine({}).configPath, personalFile);

    qunsetenv("XDG_CONFIG_HOME");
    qunsetenv("XDG_CONFIG_DIRS");
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

void TestCommandLine::credentialTakesClusterAndLogin()
{
    const Invocation plain = parseCommandLine(
        {QStringLiteral("credential"), QStringLiteral("--cluster"), QStringLiteral("prod")});
    QVERIFY2(plain.errorMessage.isEmpty(), qPrintable(plain.errorMessage));
    QCOMPARE(plain.clusterName, QStringLiteral("prod"));
    QVERIFY(!plain.loginAllowed);

    const Invocation withLogin = parseCommandLine({QStringLiteral("credential"),
                                                   QStringLiteral("--cluster"),
                                                   QStringLiteral("staging"),
                                                   QStringLiteral("--login")});
    QVERIFY2(withLogin.errorMessage.isEmpty(), qPrintable(withLogin.errorMessage));
    QCOMPARE(withLogin.clusterName, QStringLiteral("staging"));
    QVERIFY(withLogin.loginAllowed);
}

void TestCommandLine::logoutTakesAll()
{
    const Invocation plain = parseCommandLine({QStringLiteral("logout")});
    QVERIFY2(plain.errorMessage.isEmpty(), qPrintable(plain.errorMessage));
    QCOMPARE(plain.command, Invocation::Command::Logout);
    QVERIFY(!plain.removeAllEntries);

    const Invocation all = parseCommandLine({QStringLiteral("logout"), QStringLiteral("--all")});
    QVERIFY2(all.errorMessage.isEmpty(), qPrintable(all.errorMessage));
    QCOMPARE(all.command, Invocation::Command::Logout);
    QVERIFY(all.removeAllEntries);

    const Invocation help = parseCommandLine({QStringLiteral("logout"), QStringLiteral("--help")});
    QVERIFY(help.helpRequested);
    QVERIFY2(help.helpText.contains(QStringLiteral("--all")), qPrintable(help.helpText));
    QVERIFY2(help.helpText.contains(QStringLiteral("providers that are no longer in the")),
             qPrintable(help.helpText));

    // The general help names --all in the command's summary, not among the options.
    const Invocation general = parseCommandLine({QStringLiteral("--help")});
    QVERIFY2(!general.helpText.contains(QStringLiteral("  --all ")), qPrintable(general.helpText));
}

void TestCommandLine::credentialHelpShowsKubeconfigEntry()
{
    const Invocation help =
        parseCommandLine({QStringLiteral("credential"), QStringLiteral("--help")});
    QVERIFY2(help.errorMessage.isEmpty(), qPrintable(help.errorMessage));
    QVERIFY(help.helpRequested);
    QVERIFY2(help.helpText.contains(QStringLiteral("Usage: lamplighter credential --cluster NAME")),
             qPrintable(help.helpText));
    QVERIFY(help.helpText.contains(QStringLiteral("--login")));
    QVERIFY(
        help.helpText.contains(QStringLiteral("apiVersion: client.authentication.k8s.io/v1\n")));
    QVERIFY(help.helpText.contains(QStringLiteral("command: lamplighter\n")));
    QVERIFY(help.helpText.contains(QStringLiteral("args: [credential, --cluster, prod]")));
    QVERIFY(help.helpText.contains(QStringLiteral("interactiveMode: Never")));
    QVERIFY(help.helpText.contains(QStringLiteral("IfAvailable")));

    // The general help names the command but keeps its options to itself.
    const Invocation general = parseCommandLine({QStringLiteral("--help")});
    QVERIFY(general.helpText.contains(QStringLiteral("credential")));
    QVERIFY2(!general.helpText.contains(QStringLiteral("--cluster")), qPrintable(general.helpText));
}

void TestCommandLine::execInfo_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<QString>("apiVersion");
    QTest::addColumn<bool>("interactive");

    QTest::newRow("unset") << QByteArray() << QStringLiteral("client.authentication.k8s.io/v1")
                           << true;
    QTest::newRow("v1 interactive")
        << QByteArray(R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",)"
                      R"("spec":{"interactive":true}})")
        << QStringLiteral("client.authentication.k8s.io/v1") << true;
    QTest::newRow("v1 not interactive")
        << QByteArray(R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",)"
                      R"("spec":{"interactive":false}})")
        << QStringLiteral("client.authentication.k8s.io/v1") << false;
    QTest::newRow("v1beta1 with cluster")
        << QByteArray(R"({"kind":"ExecCredential",)"
                      R"("apiVersion":"client.authentication.k8s.io/v1beta1",)"
                      R"("spec":{"cluster":{"server":"https://127.0.0.1:6443"},)"
                      R"("interactive":false}})")
        << QStringLiteral("client.authentication.k8s.io/v1beta1") << false;
    QTest::newRow("no spec") << QByteArray(R"({"apiVersion":"client.authentication.k8s.io/v1"})")
                             << QStringLiteral("client.authentication.k8s.io/v1") << false;
    QTest::newRow("spec without interactive")
        << QByteArray(R"({"apiVersion":"client.authentication.k8s.io/v1","spec":{}})")
        << QStringLiteral("client.authentication.k8s.io/v1") << false;
}

void TestCommandLine::execInfo()
{
    QFETCH(QByteArray, json);
    QFETCH(QString, apiVersion);
    QFETCH(bool, interactive);
    const Result<ExecInfo> info = parseExecInfo(json);
    QVERIFY2(info.ok(), qPrintable(info.errorMessage()));
    QCOMPARE(info->apiVersion, apiVersion);
    QCOMPARE(info->interactive, interactive);
}

void TestCommandLine::invalidExecInfo_data()
{
    QTest::addColumn<QByteArray>("json");
    QTest::addColumn<QString>("expected");

    QTest::newRow("not JSON") << QByteArray("{\"apiVersion\":")
                              << QStringLiteral("not a JSON object");
    QTest::newRow("array") << QByteArray("[]") << QStringLiteral("not a JSON object");
    QTest::newRow("other kind")
        << QByteArray(R"({"kind":"Pod","apiVersion":"client.authentication.k8s.io/v1"})")
        << QStringLiteral("kind is \"Pod\", expected ExecCredential");
    QTest::newRow("no apiVersion")
        << QByteArray(R"({"kind":"ExecCredential"})") << QStringLiteral("apiVersion is missing");
    QTest::newRow("v1alpha1")
        << QByteArray(R"({"kind":"ExecCredential",)"
                      R"("apiVersion":"client.authentication.k8s.io/v1alpha1"})")
        << QStringLiteral("requests apiVersion \"client.authentication.k8s.io/v1alpha1\", which "
                          "lamplighter credential does not serve");
    QTest::newRow("interactive as text")
        << QByteArray(R"({"apiVersion":"client.authentication.k8s.io/v1",)"
                      R"("spec":{"interactive":"false"}})")
        << QStringLiteral("spec.interactive is not true or false");
}

void TestCommandLine::invalidExecInfo()
{
    QFETCH(QByteArray, json);
    QFETCH(QString, expected);
    const Result<ExecInfo> info = parseExecInfo(json);
    QVERIFY(!info.ok());
    QVERIFY2(info.errorMessage().contains(expected), qPrintable(info.errorMessage()));
    QVERIFY2(info.errorMessage().contains(QStringLiteral("KUBERNETES_EXEC_INFO")),
             qPrintable(info.errorMessage()));
}

void TestCommandLine::execCredentialFormat_data()
{
    QTest::addColumn<QString>("apiVersion");
    QTest::newRow("v1") << QStringLiteral("client.authentication.k8s.io/v1");
    QTest::newRow("v1beta1") << QStringLiteral("client.authentication.k8s.io/v1beta1");
}

void TestCommandLine::execCredentialFormat()
{
    QFETCH(QString, apiVersion);
    // 21:30:05 at UTC+2 is 19:30:05 UTC.
    const QDateTime expiresAt(QDate(2026, 12, 4), QTime(21, 30, 5), Qt::OffsetFromUTC, 2 * 3600);
    const QByteArray output =
        formatExecCredential(apiVersion, "header.payload.signature", expiresAt);
    QVERIFY(output.endsWith('\n'));

    QJsonParseError error;
    const QJsonObject credential = QJsonDocument::fromJson(output, &error).object();
    QCOMPARE(error.error, QJsonParseError::NoError);
    QCOMPARE(credential.value(QStringLiteral("apiVersion")).toString(), apiVersion);
    QCOMPARE(credential.value(QStringLiteral("kind")).toString(), QStringLiteral("ExecCredential"));
    const QJsonObject status = credential.value(QStringLiteral("status")).toObject();
    QCOMPARE(status.value(QStringLiteral("token")).toString(),
             QStringLiteral("header.payload.signature"));
    QCOMPARE(status.value(QStringLiteral("expirationTimestamp")).toString(),
             QStringLiteral("2026-12-04T19:30:05Z"));
}

QTEST_GUILESS_MAIN(TestCommandLine)
#include "tst_commandline.moc"
