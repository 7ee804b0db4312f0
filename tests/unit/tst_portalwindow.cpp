#include "PortalWindow.h"

#include <QApplication>
#include <QBuffer>
#include <QClipboard>
#include <QComboBox>
#include <QImage>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTest>
#include <QToolButton>

using namespace lamplighter;

namespace {

AppConfig makeApp(const QString &name, const QStringList &authorizedGroups = {})
{
    AppConfig app;
    app.name = name;
    app.label = name.toUpper();
    app.authorizedGroups = authorizedGroups;
    return app;
}

QToolButton *badgeLabelled(const QWidget &window, const QString &label)
{
    const QList<QToolButton *> badges = window.findChildren<QToolButton *>();
    for (QToolButton *badge : badges) {
        if (badge->accessibleName() == label)
            return badge;
    }
    return nullptr;
}

} // namespace

class TestPortalWindow : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void appVisibility_data();
    void appVisibility();
    void visibleAppsKeepOrder();
    void snippetRunsCredentialPlugin();
    void windowShowsVisibleApps();
    void windowRefiltersOnIdentity();
    void appBadgeEmitsName();
    void headlampAppHasNoSecondBadge();
    void tokensBadgeHiddenWithoutKubeAuth();
    void tokensPageShowsKubeconfig();
    void tokensPageChoosesCluster();
    void iconFromPngBytes();
    void signInButtonOnlyWhenSignedOut();
};

void TestPortalWindow::appVisibility_data()
{
    QTest::addColumn<QStringList>("authorizedGroups");
    QTest::addColumn<QStringList>("groups");
    QTest::addColumn<bool>("visible");

    const QStringList admins{QStringLiteral("k8s-admins")};
    QTest::newRow("no az_groups, no groups") << QStringList() << QStringList() << true;
    QTest::newRow("no az_groups, some groups")
        << QStringList() << QStringList{QStringLiteral("dev")} << true;
    QTest::newRow("one group matches")
        << admins << QStringList{QStringLiteral("dev"), QStringLiteral("k8s-admins")} << true;
    QTest::newRow("second az_group matches")
        << QStringList{QStringLiteral("ops"), QStringLiteral("dev")}
        << QStringList{QStringLiteral("dev")} << true;
    QTest::newRow("no group matches") << admins << QStringList{QStringLiteral("dev")} << false;
    QTest::newRow("no groups claim") << admins << QStringList() << false;
    QTest::newRow("case differs") << admins << QStringList{QStringLiteral("K8s-Admins")} << false;
    QTest::newRow("prefix only") << admins << QStringList{QStringLiteral("k8s-admin")} << false;
    QTest::newRow("surrounding space")
        << admins << QStringList{QStringLiteral(" k8s-admins")} << false;
}

void TestPortalWindow::appVisibility()
{
    QFETCH(QStringList, authorizedGroups);
    QFETCH(QStringList, groups);
    QFETCH(bool, visible);

    QCOMPARE(isAppVisibleTo(makeApp(QStringLiteral("grafana"), authorizedGroups), groups), visible);
}

void TestPortalWindow::visibleAppsKeepOrder()
{
    const std::vector<AppConfig> apps{makeApp(QStringLiteral("zeta")),
                                      makeApp(QStringLiteral("alpha"), {QStringLiteral("ops")}),
                                      makeApp(QStringLiteral("beta"), {QStringLiteral("dev")}),
                                      makeApp(QStringLiteral("gamma"))};

    const std::vector<AppConfig> visible = visibleApps(apps, {QStringLiteral("dev")});

    QCOMPARE(visible.size(), size_t(3));
    QCOMPARE(visible[0].name, QStringLiteral("zeta"));
    QCOMPARE(visible[1].name, QStringLiteral("beta"));
    QCOMPARE(visible[2].name, QStringLiteral("gamma"));
}

void TestPortalWindow::snippetRunsCredentialPlugin()
{
    const QString snippet =
        credentialPluginSnippet({QStringLiteral("prod"), QStringLiteral("staging")});

    const QString expected = QStringLiteral("users:\n"
                                            "- name: lamplighter-prod\n"
                                            "  user:\n"
                                            "    exec:\n"
                                            "      apiVersion: client.authentication.k8s.io/v1\n"
                                            "      command: lamplighter\n"
                                            "      args:\n"
                                            "      - credential\n"
                                            "      - --cluster\n"
                                            "      - prod\n"
                                            "      interactiveMode: Never\n"
                                            "- name: lamplighter-staging\n"
                                            "  user:\n"
                                            "    exec:\n"
                                            "      apiVersion: client.authentication.k8s.io/v1\n"
                                            "      command: lamplighter\n"
                                            "      args:\n"
                                            "      - credential\n"
                                            "      - --cluster\n"
                                            "      - staging\n"
                                            "      interactiveMode: Never\n");
    QCOMPARE(snippet, expected);
}

void TestPortalWindow::windowShowsVisibleApps()
{
    PortalWindow window;
    window.setApps({makeApp(QStringLiteral("grafana")),
                    makeApp(QStringLiteral("argocd"), {QStringLiteral("ops")}),
                    makeApp(QStringLiteral("kiali"), {QStringLiteral("dev")})});
    window.setIdentity(QStringLiteral("jane@example.com"), {QStringLiteral("dev")});

    QCOMPARE(window.appBadgeNames(),
             (QStringList{QStringLiteral("grafana"), QStringLiteral("kiali")}));
    QVERIFY(badgeLabelled(window, QStringLiteral("GRAFANA")));
    QVERIFY(!badgeLabelled(window, QStringLiteral("ARGOCD")));
    QVERIFY(badgeLabelled(window, QStringLiteral("Headlamp")));
    QVERIFY(badgeLabelled(window, QStringLiteral("Who am I")));
}

void TestPortalWindow::windowRefiltersOnIdentity()
{
    PortalWindow window;
    window.setApps({makeApp(QStringLiteral("argocd"), {QStringLiteral("ops")})});
    QCOMPARE(window.appBadgeNames(), QStringList());

    window.setIdentity(QStringLiteral("bob"), {QStringLiteral("ops")});
    QCOMPARE(window.appBadgeNames(), QStringList{QStringLiteral("argocd")});

    window.setIdentity(QStringLiteral("bob"), {});
    QCOMPARE(window.appBadgeNames(), QStringList());
}

void TestPortalWindow::appBadgeEmitsName()
{
    PortalWindow window;
    window.setApps({makeApp(QStringLiteral("grafana")), makeApp(QStringLiteral("kiali"))});
    QSignalSpy apps(&window, &PortalWindow::appRequested);
    QSignalSpy headlamp(&window, &PortalWindow::headlampRequested);
    QSignalSpy whoAmI(&window, &PortalWindow::whoAmIRequested);

    QToolButton *kiali = badgeLabelled(window, QStringLiteral("KIALI"));
    QVERIFY(kiali);
    QTest::mouseClick(kiali, Qt::LeftButton);
    QCOMPARE(apps.count(), 1);
    QCOMPARE(apps.first().first().toString(), QStringLiteral("kiali"));

    // A slot may replace the apps while the clicked badge is still emitting.
    connect(&window, &PortalWindow::appRequested, &window, [&window] {
        window.setApps({makeApp(QStringLiteral("grafana"))});
    });
    QTest::mouseClick(kiali, Qt::LeftButton);
    QCOMPARE(apps.count(), 2);
    QCOMPARE(window.appBadgeNames(), QStringList{QStringLiteral("grafana")});

    QTest::mouseClick(badgeLabelled(window, QStringLiteral("Headlamp")), Qt::LeftButton);
    QCOMPARE(headlamp.count(), 1);
    QTest::mouseClick(badgeLabelled(window, QStringLiteral("Who am I")), Qt::LeftButton);
    QCOMPARE(whoAmI.count(), 1);
    QCOMPARE(apps.count(), 2);
}

void TestPortalWindow::headlampAppHasNoSecondBadge()
{
    PortalWindow window;
    window.setApps({makeApp(QStringLiteral("headlamp")), makeApp(QStringLiteral("grafana"))});

    QCOMPARE(window.appBadgeNames(), QStringList{QStringLiteral("grafana")});
    QVERIFY(!badgeLabelled(window, QStringLiteral("HEADLAMP")));
}

void TestPortalWindow::tokensBadgeHiddenWithoutKubeAuth()
{
    PortalWindow window;
    QVERIFY(window.isTokensBadgeVisible());
    QVERIFY(badgeLabelled(window, QStringLiteral("Tokens")));

    window.showTokensPage();
    window.setKubeAuthEnabled(false);
    QVERIFY(!window.isTokensBadgeVisible());
    QVERIFY(badgeLabelled(window, QStringLiteral("Tokens"))->isHidden());
    QVERIFY(!window.findChild<QLineEdit *>()->isVisibleTo(&window));

    window.setKubeAuthEnabled(true);
    QVERIFY(window.isTokensBadgeVisible());
}

void TestPortalWindow::tokensPageShowsKubeconfig()
{
    PortalWindow window;
    const QString path = QStringLiteral("/home/jane/.local/state/lamplighter/kubeconfig");
    window.setKubeconfigPath(path);
    window.setClusterNames({QStringLiteral("prod")});
    window.show();

    QTest::mouseClick(badgeLabelled(window, QStringLiteral("Tokens")), Qt::LeftButton);
    auto *pathEdit = window.findChild<QLineEdit *>();
    QVERIFY(pathEdit);
    QVERIFY(pathEdit->isVisible());
    QCOMPARE(pathEdit->text(), path);
    QCOMPARE(window.credentialPluginText(), credentialPluginSnippet({QStringLiteral("prod")}));

    QPushButton *copy = nullptr;
    for (QPushButton *button : window.findChildren<QPushButton *>()) {
        if (button->toolTip() == QStringLiteral("Copy the kubeconfig path"))
            copy = button;
    }
    QVERIFY(copy);
    QApplication::clipboard()->clear();
    QTest::mouseClick(copy, Qt::LeftButton);
    QCOMPARE(QApplication::clipboard()->text(), path);
}

void TestPortalWindow::tokensPageChoosesCluster()
{
    PortalWindow window;
    window.setClusterNames({QStringLiteral("prod"), QStringLiteral("staging")});
    QCOMPARE(window.credentialPluginText(), credentialPluginSnippet({QStringLiteral("prod")}));

    auto *clusters = window.findChild<QComboBox *>();
    QVERIFY(clusters);
    QCOMPARE(clusters->count(), 2);
    clusters->setCurrentIndex(1);
    QCOMPARE(window.credentialPluginText(), credentialPluginSnippet({QStringLiteral("staging")}));
}

void TestPortalWindow::iconFromPngBytes()
{
    QImage red(8, 8, QImage::Format_ARGB32);
    red.fill(Qt::red);
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    QVERIFY(red.save(&buffer, "PNG"));

    AppConfig app = makeApp(QStringLiteral("grafana"));
    app.icon = png;
    PortalWindow window;
    window.setApps({app});

    QToolButton *badge = badgeLabelled(window, QStringLiteral("GRAFANA"));
    QVERIFY(badge);
    const QImage badgePicture = badge->icon().pixmap(QSize(16, 16)).toImage();
    QVERIFY(!badgePicture.isNull());
    QCOMPARE(badgePicture.pixelColor(badgePicture.rect().center()), QColor(Qt::red));
}

void TestPortalWindow::signInButtonOnlyWhenSignedOut()
{
    PortalWindow window;
    window.show();
    auto *signIn = window.findChild<QPushButton *>(QStringLiteral("signIn"));
    QVERIFY(signIn);
    QSignalSpy requested(&window, &PortalWindow::signInRequested);

    window.setIdentity(QString(), {});
    QVERIFY(signIn->isVisible());
    signIn->click();
    QCOMPARE(requested.count(), 1);

    window.setIdentity(QStringLiteral("jane@example.test"), {QStringLiteral("developers")});
    QVERIFY(!signIn->isVisible());
}

QTEST_MAIN(TestPortalWindow)
#include "tst_portalwindow.moc"
