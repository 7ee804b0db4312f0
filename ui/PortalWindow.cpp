#include "PortalWindow.h"

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QFontDatabase>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QIcon>
#include <QLabel>
#include <QLineEdit>
#include <QPainter>
#include <QPainterPath>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QStackedWidget>
#include <QToolButton>
#include <QVBoxLayout>

namespace lamplighter {
namespace {

constexpr int badgeColumns = 5;
constexpr int badgeIconSize = 56;
constexpr int badgeWidth = 150;
constexpr int badgeHeight = 120;
// Icons are drawn at twice their largest logical size so that they stay sharp at 200 % scale.
constexpr int drawnIconSize = 2 * badgeIconSize;

const char portalStyleSheet[] = R"(
#portal { background: #f3f5f8; }
#header { background: #1f2a37; }
#title { color: #ffffff; font-size: 17pt; font-weight: 600; }
#identity { color: #c9d3df; }
#section { color: #4a5563; font-weight: 600; font-size: 11pt; }
#hint { color: #4a5563; }
#empty { color: #6b7480; font-style: italic; }
QToolButton#badge {
    background: #ffffff; border: 1px solid #d5dbe3; border-radius: 10px;
    padding: 10px 6px 8px 6px; color: #1f2a37;
}
QToolButton#badge:hover { background: #eef5ff; border-color: #3b82f6; }
QToolButton#badge:pressed { background: #dcebff; }
QToolButton#badge:focus { border: 2px solid #3b82f6; }
#card { background: #ffffff; border: 1px solid #d5dbe3; border-radius: 10px; }
)";

QColor avatarColor(const QString &text)
{
    static const QColor palette[] = {QColor(0x25, 0x63, 0xeb),
                                     QColor(0x05, 0x96, 0x69),
                                     QColor(0xd9, 0x77, 0x06),
                                     QColor(0x7c, 0x3a, 0xed),
                                     QColor(0xdb, 0x27, 0x77),
                                     QColor(0x08, 0x91, 0xb2)};
    const size_t index = qHash(text) % (sizeof(palette) / sizeof(palette[0]));
    return palette[index];
}

QPixmap blankIconPixmap()
{
    QPixmap pixmap(drawnIconSize, drawnIconSize);
    pixmap.fill(Qt::transparent);
    return pixmap;
}

// The unit of the drawn badge icons, which are laid out on a 16 by 16 grid.
constexpr qreal iconGridUnit = drawnIconSize / 16.0;

// Fills the background of a drawn badge icon: a rounded square of the badge's colour.
void drawIconBackground(QPainter &painter, const QColor &color)
{
    const qreal u = iconGridUnit;
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(Qt::NoPen);
    painter.setBrush(color);
    painter.drawRoundedRect(QRectF(0.5 * u, 0.5 * u, 15 * u, 15 * u), 3 * u, 3 * u);
}

// Draws the first letter of the label on a coloured rounded square, for apps without an icon.
QIcon letterIcon(const QString &label)
{
    QPixmap pixmap = blankIconPixmap();
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setPen(Qt::NoPen);
    painter.setBrush(avatarColor(label));
    painter.drawRoundedRect(QRectF(4, 4, drawnIconSize - 8, drawnIconSize - 8), 22, 22);

    QFont font = QApplication::font();
    font.setPixelSize(drawnIconSize / 2);
    font.setBold(true);
    painter.setFont(font);
    painter.setPen(Qt::white);
    const QString letter = label.isEmpty() ? QStringLiteral("?") : label.left(1).toUpper();
    painter.drawText(pixmap.rect(), Qt::AlignCenter, letter);
    return QIcon(pixmap);
}

QIcon appIcon(const AppConfig &app)
{
    QPixmap pixmap;
    if (!app.icon.isEmpty() && pixmap.loadFromData(app.icon, "PNG"))
        return QIcon(pixmap);
    return letterIcon(app.label.isEmpty() ? app.name : app.label);
}

// A headlamp: a lamp body on a strap, with a beam of light to the right.
QIcon headlampIcon()
{
    QPixmap pixmap = blankIconPixmap();
    QPainter painter(&pixmap);
    const qreal u = iconGridUnit;
    drawIconBackground(painter, QColor(0x25, 0x63, 0xeb));

    QPainterPath beam;
    beam.moveTo(8 * u, 6.5 * u);
    beam.lineTo(14.5 * u, 3.5 * u);
    beam.lineTo(14.5 * u, 12.5 * u);
    beam.lineTo(8 * u, 9.5 * u);
    beam.closeSubpath();
    painter.setBrush(QColor(0xfd, 0xe6, 0x8a));
    painter.drawPath(beam);

    painter.setPen(QPen(Qt::white, 1.2 * u, Qt::SolidLine, Qt::RoundCap));
    painter.setBrush(Qt::NoBrush);
    painter.drawArc(QRectF(2 * u, 3 * u, 10 * u, 10 * u), 100 * 16, 160 * 16);

    painter.setPen(Qt::NoPen);
    painter.setBrush(Qt::white);
    painter.drawEllipse(QRectF(4.5 * u, 5 * u, 6 * u, 6 * u));
    painter.setBrush(QColor(0xf5, 0xb0, 0x1a));
    painter.drawEllipse(QRectF(6 * u, 6.5 * u, 3 * u, 3 * u));
    return QIcon(pixmap);
}

// A key, for the Tokens badge.
QIcon tokensIcon()
{
    QPixmap pixmap = blankIconPixmap();
    QPainter painter(&pixmap);
    const qreal u = iconGridUnit;
    drawIconBackground(painter, QColor(0x05, 0x96, 0x69));

    painter.setPen(QPen(Qt::white, 1.4 * u, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin));
    painter.setBrush(Qt::NoBrush);
    painter.drawEllipse(QRectF(2.5 * u, 5 * u, 5.5 * u, 5.5 * u));
    painter.drawLine(QPointF(8 * u, 7.75 * u), QPointF(13.5 * u, 7.75 * u));
    painter.drawLine(QPointF(12 * u, 7.75 * u), QPointF(12 * u, 10.5 * u));
    painter.drawLine(QPointF(10 * u, 7.75 * u), QPointF(10 * u, 9.75 * u));
    return QIcon(pixmap);
}

// A head and shoulders, for the who-am-i badge.
QIcon whoAmIIcon()
{
    QPixmap pixmap = blankIconPixmap();
    QPainter painter(&pixmap);
    const qreal u = iconGridUnit;
    drawIconBackground(painter, QColor(0x7c, 0x3a, 0xed));

    painter.setBrush(Qt::white);
    painter.drawEllipse(QRectF(5.5 * u, 2.5 * u, 5 * u, 5 * u));
    QPainterPath shoulders;
    shoulders.moveTo(2.5 * u, 14 * u);
    shoulders.cubicTo(2.5 * u, 8 * u, 13.5 * u, 8 * u, 13.5 * u, 14 * u);
    shoulders.closeSubpath();
    painter.drawPath(shoulders);
    return QIcon(pixmap);
}

QLabel *sectionLabel(const QString &text)
{
    auto *label = new QLabel(text);
    label->setObjectName(QStringLiteral("section"));
    return label;
}

QFont monospaceFont()
{
    return QFontDatabase::systemFont(QFontDatabase::FixedFont);
}

} // namespace

bool isAppVisibleTo(const AppConfig &app, const QStringList &groups)
{
    if (app.authorizedGroups.isEmpty())
        return true;
    for (const QString &group : groups) {
        if (app.authorizedGroups.contains(group, Qt::CaseSensitive))
            return true;
    }
    return false;
}

std::vector<AppConfig> visibleApps(const std::vector<AppConfig> &apps, const QStringList &groups)
{
    std::vector<AppConfig> visible;
    for (const AppConfig &app : apps) {
        if (isAppVisibleTo(app, groups))
            visible.push_back(app);
    }
    return visible;
}

QString credentialPluginSnippet(const QStringList &clusterNames)
{
    // client.authentication.k8s.io/v1 requires interactiveMode. Never suits `lamplighter
    // credential` without --login, which reads no standard input and opens no browser.
    QString snippet = QStringLiteral("users:\n");
    for (const QString &cluster : clusterNames) {
        snippet += QStringLiteral("- name: lamplighter-%1\n"
                                  "  user:\n"
                                  "    exec:\n"
                                  "      apiVersion: client.authentication.k8s.io/v1\n"
                                  "      command: lamplighter\n"
                                  "      args:\n"
                                  "      - credential\n"
                                  "      - --cluster\n"
                                  "      - %1\n"
                                  "      interactiveMode: Never\n")
                       .arg(cluster);
    }
    return snippet;
}

PortalWindow::PortalWindow(QWidget *parent)
    : QWidget(parent)
{
    setObjectName(QStringLiteral("portal"));
    setWindowTitle(tr("Lamplighter"));
    setAttribute(Qt::WA_StyledBackground);
    setStyleSheet(QString::fromLatin1(portalStyleSheet));

    auto *header = new QWidget;
    header->setObjectName(QStringLiteral("header"));
    header->setAttribute(Qt::WA_StyledBackground);
    auto *headerLayout = new QHBoxLayout(header);
    headerLayout->setContentsMargins(24, 14, 24, 14);
    auto *title = new QLabel(tr("Lamplighter"));
    title->setObjectName(QStringLiteral("title"));
    m_identityLabel = new QLabel;
    m_identityLabel->setObjectName(QStringLiteral("identity"));
    m_identityLabel->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
    m_identityLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_signInButton = new QPushButton(tr("Sign in"));
    m_signInButton->setObjectName(QStringLiteral("signIn"));
    connect(m_signInButton, &QPushButton::clicked, this, &PortalWindow::signInRequested);
    headerLayout->addWidget(title);
    headerLayout->addStretch();
    headerLayout->addWidget(m_identityLabel);
    headerLayout->addWidget(m_signInButton);

    m_pages = new QStackedWidget;
    m_pages->addWidget(createBadgesPage());
    m_pages->addWidget(createTokensPage());

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addWidget(header);
    layout->addWidget(m_pages, 1);

    updateIdentityText();
    updateTokensPage();
    rebuildBadges();
    resize(920, 600);
}

QWidget *PortalWindow::createBadgesPage()
{
    auto *content = new QWidget;
    content->setObjectName(QStringLiteral("portal"));
    content->setAttribute(Qt::WA_StyledBackground);

    m_badgeGrid = new QGridLayout;
    m_badgeGrid->setHorizontalSpacing(16);
    m_badgeGrid->setVerticalSpacing(16);
    m_badgeGrid->setAlignment(Qt::AlignLeft | Qt::AlignTop);

    m_headlampBadge =
        createBadge(tr("Headlamp"), headlampIcon(), tr("Open Headlamp with your clusters"));
    connect(m_headlampBadge, &QToolButton::clicked, this, &PortalWindow::headlampRequested);

    m_emptyLabel = new QLabel(tr("No other apps are configured for your groups."));
    m_emptyLabel->setObjectName(QStringLiteral("empty"));

    m_whoAmIBadge = createBadge(
        tr("Who am I"), whoAmIIcon(), tr("Show the user and groups that the cluster sees"));
    connect(m_whoAmIBadge, &QToolButton::clicked, this, &PortalWindow::whoAmIRequested);
    m_tokensBadge = createBadge(tr("Tokens"), tokensIcon(), tr("Set up kubectl with your sign-in"));
    connect(m_tokensBadge, &QToolButton::clicked, this, &PortalWindow::showTokensPage);

    auto *accessRow = new QHBoxLayout;
    accessRow->setSpacing(16);
    accessRow->addWidget(m_whoAmIBadge);
    accessRow->addWidget(m_tokensBadge);
    accessRow->addStretch();

    auto *layout = new QVBoxLayout(content);
    layout->setContentsMargins(28, 22, 28, 22);
    layout->setSpacing(12);
    layout->addWidget(sectionLabel(tr("Apps")));
    layout->addLayout(m_badgeGrid);
    layout->addWidget(m_emptyLabel);
    layout->addSpacing(14);
    layout->addWidget(sectionLabel(tr("Kubernetes access")));
    layout->addLayout(accessRow);
    layout->addStretch();
    auto *footer = new QLabel(tr("Apps open in your browser through Lamplighter's local proxy, "
                                 "signed in as you. Sign out from the tray icon."));
    footer->setObjectName(QStringLiteral("hint"));
    footer->setWordWrap(true);
    layout->addWidget(footer);

    auto *scroll = new QScrollArea;
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setWidget(content);
    return scroll;
}

QWidget *PortalWindow::createTokensPage()
{
    auto *page = new QWidget;
    page->setObjectName(QStringLiteral("portal"));
    page->setAttribute(Qt::WA_StyledBackground);

    auto *back = new QPushButton(tr("← All apps"));
    back->setFlat(true);
    back->setCursor(Qt::PointingHandCursor);
    connect(back, &QPushButton::clicked, this, &PortalWindow::showBadgesPage);
    auto *backRow = new QHBoxLayout;
    backRow->addWidget(back);
    backRow->addStretch();

    auto *card = new QWidget;
    card->setObjectName(QStringLiteral("card"));
    card->setAttribute(Qt::WA_StyledBackground);
    auto *cardLayout = new QVBoxLayout(card);
    cardLayout->setContentsMargins(20, 18, 20, 18);
    cardLayout->setSpacing(8);

    cardLayout->addWidget(sectionLabel(tr("Kubeconfig")));
    auto *kubeconfigHint = new QLabel(tr("Lamplighter writes a kubeconfig with one context per "
                                         "cluster, all through its local proxy."));
    kubeconfigHint->setObjectName(QStringLiteral("hint"));
    kubeconfigHint->setWordWrap(true);
    cardLayout->addWidget(kubeconfigHint);

    m_kubeconfigEdit = new QLineEdit;
    m_kubeconfigEdit->setReadOnly(true);
    m_kubeconfigEdit->setFont(monospaceFont());
    auto *copyPath = new QPushButton(tr("Copy"));
    copyPath->setToolTip(tr("Copy the kubeconfig path"));
    connect(copyPath, &QPushButton::clicked, this, [this] {
        QApplication::clipboard()->setText(m_kubeconfigEdit->text());
    });
    auto *pathRow = new QHBoxLayout;
    pathRow->addWidget(m_kubeconfigEdit, 1);
    pathRow->addWidget(copyPath);
    cardLayout->addLayout(pathRow);

    m_kubectlExample = new QLabel;
    m_kubectlExample->setObjectName(QStringLiteral("hint"));
    m_kubectlExample->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_kubectlExample->setWordWrap(true);
    cardLayout->addWidget(m_kubectlExample);

    cardLayout->addSpacing(12);
    cardLayout->addWidget(sectionLabel(tr("Credential plugin")));
    auto *pluginHint = new QLabel(tr("To use a kubeconfig of your own, add this user to it and "
                                     "make it the user of that cluster's context. kubectl then "
                                     "gets your ID token from Lamplighter, which must be signed "
                                     "in."));
    pluginHint->setObjectName(QStringLiteral("hint"));
    pluginHint->setWordWrap(true);
    cardLayout->addWidget(pluginHint);

    m_clusterCombo = new QComboBox;
    m_clusterCombo->setAccessibleName(tr("Cluster"));
    m_clusterCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    connect(m_clusterCombo, &QComboBox::currentIndexChanged, this, &PortalWindow::updateSnippet);
    auto *clusterRow = new QHBoxLayout;
    clusterRow->addWidget(new QLabel(tr("Cluster:")));
    clusterRow->addWidget(m_clusterCombo);
    clusterRow->addStretch();
    cardLayout->addLayout(clusterRow);

    m_snippetEdit = new QPlainTextEdit;
    m_snippetEdit->setReadOnly(true);
    m_snippetEdit->setFont(monospaceFont());
    m_snippetEdit->setMinimumHeight(QFontMetrics(monospaceFont()).lineSpacing() * 12);
    auto *copySnippet = new QPushButton(tr("Copy"));
    copySnippet->setToolTip(tr("Copy the credential plugin set-up"));
    connect(copySnippet, &QPushButton::clicked, this, [this] {
        QApplication::clipboard()->setText(m_snippetEdit->toPlainText());
    });
    auto *snippetRow = new QHBoxLayout;
    snippetRow->addWidget(m_snippetEdit, 1);
    snippetRow->addWidget(copySnippet, 0, Qt::AlignTop);
    cardLayout->addLayout(snippetRow, 1);

    auto *layout = new QVBoxLayout(page);
    layout->setContentsMargins(20, 12, 28, 22);
    layout->setSpacing(10);
    layout->addLayout(backRow);
    layout->addWidget(card, 1);
    return page;
}

QToolButton *
PortalWindow::createBadge(const QString &label, const QIcon &icon, const QString &toolTip)
{
    auto *badge = new QToolButton;
    badge->setObjectName(QStringLiteral("badge"));
    badge->setToolButtonStyle(Qt::ToolButtonTextUnderIcon);
    badge->setIcon(icon);
    badge->setIconSize(QSize(badgeIconSize, badgeIconSize));
    badge->setFixedSize(badgeWidth, badgeHeight);
    badge->setCursor(Qt::PointingHandCursor);
    badge->setAccessibleName(label);
    badge->setToolTip(toolTip);
    // A badge has room for one line, so a longer label is elided and shown whole in the tool tip.
    const int textWidth = badgeWidth - 20;
    badge->setText(badge->fontMetrics().elidedText(label, Qt::ElideRight, textWidth));
    return badge;
}

void PortalWindow::setApps(std::vector<AppConfig> apps)
{
    m_apps = std::move(apps);
    rebuildBadges();
}

void PortalWindow::setIdentity(const QString &userName, const QStringList &groups)
{
    m_userName = userName;
    m_groups = groups;
    updateIdentityText();
    rebuildBadges();
}

void PortalWindow::setKubeconfigPath(const QString &path)
{
    m_kubeconfigPath = path;
    updateTokensPage();
}

void PortalWindow::setClusterNames(const QStringList &names)
{
    m_clusterNames = names;
    updateTokensPage();
}

void PortalWindow::setKubeAuthEnabled(bool enabled)
{
    m_kubeAuthEnabled = enabled;
    m_tokensBadge->setVisible(enabled);
    if (!enabled)
        showBadgesPage();
}

QStringList PortalWindow::appBadgeNames() const
{
    QStringList names;
    for (const QToolButton *badge : m_appBadges)
        names.append(badge->property("appName").toString());
    return names;
}

bool PortalWindow::isTokensBadgeVisible() const
{
    return m_kubeAuthEnabled && !m_tokensBadge->isHidden();
}

void PortalWindow::showTokensPage()
{
    if (m_kubeAuthEnabled)
        m_pages->setCurrentIndex(1);
}

void PortalWindow::showBadgesPage()
{
    m_pages->setCurrentIndex(0);
}

QString PortalWindow::credentialPluginText() const
{
    return m_snippetEdit->toPlainText();
}

void PortalWindow::rebuildBadges()
{
    // deleteLater, because a slot of appRequested may change the apps while the clicked badge
    // is still emitting its signal.
    for (QToolButton *badge : std::as_const(m_appBadges)) {
        m_badgeGrid->removeWidget(badge);
        badge->hide();
        badge->deleteLater();
    }
    m_appBadges.clear();
    m_badgeGrid->removeWidget(m_headlampBadge);

    QList<QToolButton *> badges{m_headlampBadge};
    for (const AppConfig &app : visibleApps(m_apps, m_groups)) {
        if (app.name == QStringLiteral("headlamp"))
            continue;
        const QString label = app.label.isEmpty() ? app.name : app.label;
        QToolButton *badge = createBadge(label, appIcon(app), tr("Open %1").arg(label));
        badge->setProperty("appName", app.name);
        const QString name = app.name;
        connect(badge, &QToolButton::clicked, this, [this, name] { Q_EMIT appRequested(name); });
        m_appBadges.append(badge);
        badges.append(badge);
    }

    for (int index = 0; index < badges.size(); ++index)
        m_badgeGrid->addWidget(badges[index], index / badgeColumns, index % badgeColumns);
    m_emptyLabel->setVisible(m_appBadges.isEmpty());
}

void PortalWindow::updateIdentityText()
{
    m_signInButton->setVisible(m_userName.isEmpty());
    m_emptyLabel->setText(m_userName.isEmpty()
                              ? tr("Sign in to see the apps for your groups.")
                              : tr("No other apps are configured for your groups."));
    if (m_userName.isEmpty()) {
        m_identityLabel->setText(tr("Not signed in"));
        return;
    }
    const QString groups =
        m_groups.isEmpty() ? tr("no groups") : m_groups.join(QStringLiteral(", "));
    m_identityLabel->setText(tr("Signed in as <b style=\"color:#ffffff\">%1</b><br>Groups: %2")
                                 .arg(m_userName.toHtmlEscaped(), groups.toHtmlEscaped()));
}

void PortalWindow::updateTokensPage()
{
    m_kubeconfigEdit->setText(m_kubeconfigPath);
    m_kubeconfigEdit->setCursorPosition(0);
    m_kubectlExample->setText(tr("Try it: <code>kubectl --kubeconfig %1 get namespaces</code>")
                                  .arg(m_kubeconfigPath.isEmpty()
                                           ? QStringLiteral("PATH")
                                           : m_kubeconfigPath.toHtmlEscaped()));

    const QSignalBlocker blocker(m_clusterCombo);
    m_clusterCombo->clear();
    m_clusterCombo->addItems(m_clusterNames.isEmpty() ? QStringList{QStringLiteral("CLUSTER")}
                                                      : m_clusterNames);
    updateSnippet();
}

void PortalWindow::updateSnippet()
{
    m_snippetEdit->setPlainText(credentialPluginSnippet({m_clusterCombo->currentText()}));
}

} // namespace lamplighter
