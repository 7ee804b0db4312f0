#include "kube/Kubeconfig.h"

#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTest>

using namespace lamplighter;

class TestKubeconfig : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void writtenFileIsPrivate();
    void kubectlReadsContexts();
    void kubectlReadsNamesLikeNumbers();
    void certificateDataLikeNumberQuoted();
    void defaultPathFollowsXdgStateHome();

private:
    Kubeconfig sample() const;
};

Kubeconfig TestKubeconfig::sample() const
{
    Kubeconfig kubeconfig;
    kubeconfig.contexts = {
        {QStringLiteral("prod"), QUrl(QStringLiteral("https://127.0.0.1:40123/clusters/prod"))},
        {QStringLiteral("dev"), QUrl(QStringLiteral("https://127.0.0.1:40123/clusters/dev"))}};
    kubeconfig.certificateAuthorityPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END "
                                         "CERTIFICATE-----\n";
    kubeconfig.sessionKey = "c2Vzc2lvbi1rZXktZm9yLXRlc3Rz";
    return kubeconfig;
}

void TestKubeconfig::writtenFileIsPrivate()
{
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("state/lamplighter/kubeconfig"));
    const Status written = sample().writeTo(path);
    QVERIFY2(written.ok(), qPrintable(written.errorMessage()));
    // Qt reports the owner's bits twice (Owner and User); mask to owner, group and others.
    const int ownerGroupOther = 0x7077;
    QCOMPARE(int(QFile::permissions(path)) & ownerGroupOther,
             int(QFileDevice::ReadOwner | QFileDevice::WriteOwner));
    QCOMPARE(int(QFile::permissions(QFileInfo(path).absolutePath())) & ownerGroupOther,
             int(QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner));
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll(), sample().toYaml());
}

void TestKubeconfig::kubectlReadsContexts()
{
    const QString kubectl = QStandardPaths::findExecutable(QStringLiteral("kubectl"));
    if (kubectl.isEmpty())
        QSKIP("kubectl is not installed");
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("kubeconfig"));
    QVERIFY(sample().writeTo(path).ok());

    QProcess process;
    process.start(kubectl,
                  {QStringLiteral("--kubeconfig"),
                   path,
                   QStringLiteral("config"),
                   QStringLiteral("view"),
                   QStringLiteral("--raw"),
                   QStringLiteral("-o"),
                   QStringLiteral("jsonpath={.current-context} {.contexts[*].name} "
                                  "{.clusters[1].cluster.server} {.users[0].user.token}")});
    // kubectl config view sorts clusters and contexts by name.
    QVERIFY(process.waitForFinished(30000));
    QCOMPARE(process.exitCode(), 0);
    QCOMPARE(process.readAllStandardOutput(),
             QByteArray("prod dev prod https://127.0.0.1:40123/clusters/prod "
                        "c2Vzc2lvbi1rZXktZm9yLXRlc3Rz"));
}

// Cluster names such as "123", "1e3" or "on" pass the configuration's check. Written unquoted,
// kubectl's YAML 1.1 reader took them for numbers or booleans and rejected the whole file.
// Base64 of these three bytes is "7791", which a YAML reader takes for an integer unless quoted.
void TestKubeconfig::certificateDataLikeNumberQuoted()
{
    Kubeconfig kubeconfig = sample();
    kubeconfig.certificateAuthorityPem = QByteArray("\xef\xbf\x75");
    QCOMPARE(kubeconfig.certificateAuthorityPem.toBase64(), QByteArray("7791"));

    const QByteArray yaml = kubeconfig.toYaml();
    QVERIFY2(yaml.contains("certificate-authority-data: \"7791\""), yaml.constData());
}

void TestKubeconfig::kubectlReadsNamesLikeNumbers()
{
    const QString kubectl = QStandardPaths::findExecutable(QStringLiteral("kubectl"));
    if (kubectl.isEmpty())
        QSKIP("kubectl is not installed");
    const QStringList names = {QStringLiteral("123"),
                               QStringLiteral("1e3"),
                               QStringLiteral("017"),
                               QStringLiteral("0x1f"),
                               QStringLiteral("1.10"),
                               QStringLiteral("true"),
                               QStringLiteral("on"),
                               QStringLiteral("null")};
    Kubeconfig kubeconfig = sample();
    kubeconfig.contexts.clear();
    for (const QString &name : names) {
        kubeconfig.contexts.push_back(
            {name, QUrl(QStringLiteral("https://127.0.0.1:40123/clusters/") + name)});
    }
    kubeconfig.sessionKey = "12345";
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("kubeconfig"));
    QVERIFY(kubeconfig.writeTo(path).ok());

    QProcess process;
    process.start(kubectl,
                  {QStringLiteral("--kubeconfig"),
                   path,
                   QStringLiteral("config"),
                   QStringLiteral("view"),
                   QStringLiteral("--raw"),
                   QStringLiteral("-o"),
                   QStringLiteral("jsonpath={.current-context}|{.contexts[*].name}|"
                                  "{.clusters[*].name}|{.users[0].user.token}")});
    QVERIFY(process.waitForFinished(30000));
    QVERIFY2(process.exitCode() == 0, process.readAllStandardError().constData());
    const QList<QByteArray> fields = process.readAllStandardOutput().split('|');
    QCOMPARE(fields.size(), 4);
    QCOMPARE(fields[0], QByteArray("123"));
    // kubectl config view sorts clusters and contexts by name.
    QStringList sorted = names;
    sorted.sort();
    QCOMPARE(QString::fromUtf8(fields[1]), sorted.join(QLatin1Char(' ')));
    QCOMPARE(QString::fromUtf8(fields[2]), sorted.join(QLatin1Char(' ')));
    QCOMPARE(fields[3], QByteArray("12345"));
}

void TestKubeconfig::defaultPathFollowsXdgStateHome()
{
    qputenv("XDG_STATE_HOME", "/tmp/lamplighter-state");
    QCOMPARE(defaultKubeconfigPath(),
             QStringLiteral("/tmp/lamplighter-state/lamplighter/kubeconfig"));
    qunsetenv("XDG_STATE_HOME");
    QVERIFY(
        defaultKubeconfigPath().endsWith(QStringLiteral("/.local/state/lamplighter/kubeconfig")));
}

QTEST_GUILESS_MAIN(TestKubeconfig)
#include "tst_kubeconfig.moc"
