// The peer of tests/bench/run desktop: a minimal Qt Widgets tray program, with an icon, a
// tooltip and a menu of three actions, and nothing else. It runs until it is stopped.

#include <QApplication>
#include <QMenu>
#include <QPainter>
#include <QPixmap>
#include <QSystemTrayIcon>

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    app.setQuitOnLastWindowClosed(false);

    QPixmap picture(32, 32);
    picture.fill(Qt::transparent);
    QPainter painter(&picture);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setBrush(QColor(0xf5, 0xa6, 0x23));
    painter.setPen(Qt::NoPen);
    painter.drawEllipse(4, 4, 24, 24);
    painter.end();

    QMenu menu;
    menu.addAction(QStringLiteral("Status"))->setEnabled(false);
    menu.addAction(QStringLiteral("Sign in"));
    menu.addSeparator();
    QObject::connect(
        menu.addAction(QStringLiteral("Quit")), &QAction::triggered, &app, &QApplication::quit);

    const QIcon icon(picture);
    QSystemTrayIcon tray(icon);
    tray.setToolTip(QStringLiteral("A minimal Qt tray program"));
    tray.setContextMenu(&menu);
    tray.show();
    return app.exec();
}
