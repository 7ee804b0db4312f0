// lamplighter-headlamp-window: shows the in-cluster Headlamp that the local proxy serves, in a
// window of its own. It is a separate program so that Qt WebEngine is loaded only while the
// window is open, and never in the tray process. Linking WebEngine raised a bare Qt Widgets tray
// program's resident memory under Xvfb from 27 MB to 111 MB.

#include "HeadlampLauncher.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDesktopServices>
#include <QFile>
#include <QMessageBox>
#include <QScreen>
#include <QSslCertificate>
#include <QTextStream>
#include <QWebEngineCertificateError>
#include <QWebEnginePage>
#include <QWebEngineProfile>
#include <QWebEngineView>
#include <algorithm>

namespace {

using lamplighter::headlampWindowUrlVariable;

// A page that stays on the proxy's origin and trusts only the proxy's certificate. Links to other
// origins open in the system browser, so the injected token never follows them.
class ProxyPage : public QWebEnginePage {
public:
    ProxyPage(QWebEngineProfile *profile, QUrl home, QList<QSslCertificate> trusted)
        : QWebEnginePage(profile)
        , m_home(std::move(home))
        , m_trusted(std::move(trusted))
    {
        connect(this,
                &QWebEnginePage::certificateError,
                this,
                [this](QWebEngineCertificateError error) { handleCertificateError(error); });
    }

protected:
    bool acceptNavigationRequest(const QUrl &url, NavigationType type, bool isMainFrame) override
    {
        if (!isMainFrame ||
            url.adjusted(QUrl::RemovePath | QUrl::RemoveQuery | QUrl::RemoveFragment) == origin())
            return QWebEnginePage::acceptNavigationRequest(url, type, isMainFrame);
        QDesktopServices::openUrl(url);
        return false;
    }

    QWebEnginePage *createWindow(WebWindowType) override
    {
        // Pages that open new windows get this one, and acceptNavigationRequest then decides.
        return this;
    }

private:
    QUrl origin() const
    {
        return m_home.adjusted(QUrl::RemovePath | QUrl::RemoveQuery | QUrl::RemoveFragment |
                               QUrl::RemoveUserInfo);
    }

    void handleCertificateError(QWebEngineCertificateError &error)
    {
        const QList<QSslCertificate> chain = error.certificateChain();
        // The local proxy's certificate is its own CA, so the leaf must be that certificate.
        if (!chain.isEmpty() && m_trusted.contains(chain.first()) &&
            error.url().host() == m_home.host() && error.url().port() == m_home.port()) {
            error.acceptCertificate();
            return;
        }
        qWarning().noquote() << "Rejected the certificate of" << error.url().host() << ":"
                             << error.description();
        error.rejectCertificate();
    }

    QUrl m_home;
    QList<QSslCertificate> m_trusted;
};

QUrl launchUrlFrom(const QCommandLineParser &parser)
{
    // The launch URL from Lamplighter contains a one-time ticket, so it comes through the
    // environment, which other users cannot read, and is removed before WebEngine starts its
    // helper processes. A URL argument is for pages without secrets.
    QByteArray fromEnvironment = qgetenv(headlampWindowUrlVariable);
    qunsetenv(headlampWindowUrlVariable);
    if (!fromEnvironment.isEmpty())
        return QUrl::fromEncoded(fromEnvironment, QUrl::StrictMode);
    const QStringList positional = parser.positionalArguments();
    return positional.isEmpty() ? QUrl() : QUrl(positional.first(), QUrl::StrictMode);
}

int fail(const QString &message)
{
    QTextStream(stderr) << "lamplighter-headlamp-window: " << message << '\n';
    QMessageBox::critical(nullptr, QObject::tr("Headlamp"), message);
    return 1;
}

} // namespace

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("lamplighter-headlamp-window"));
    QApplication::setApplicationDisplayName(QStringLiteral("Headlamp"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Shows Headlamp through Lamplighter's local proxy. Lamplighter starts it with the launch "
        "URL in LAMPLIGHTER_HEADLAMP_URL."));
    parser.addHelpOption();
    QCommandLineOption caFile(QStringLiteral("ca-file"),
                              QStringLiteral("PEM file of the certificate to trust for the page "
                                             "(the local proxy's)."),
                              QStringLiteral("file"));
    parser.addOption(caFile);
    parser.addPositionalArgument(QStringLiteral("url"),
                                 QStringLiteral("The page to open, when the environment names "
                                                "none."));
    parser.process(app);

    const QUrl url = launchUrlFrom(parser);
    if (!url.isValid() ||
        (url.scheme() != QStringLiteral("https") && url.scheme() != QStringLiteral("http")))
        return fail(QObject::tr("Missing or invalid URL to open: set %1 or pass an http(s) URL.")
                        .arg(QString::fromLatin1(headlampWindowUrlVariable)));

    QList<QSslCertificate> trusted;
    if (parser.isSet(caFile)) {
        QFile file(parser.value(caFile));
        if (!file.open(QIODevice::ReadOnly))
            return fail(QObject::tr("Failed to read the certificate file %1: %2")
                            .arg(file.fileName(), file.errorString()));
        trusted = QSslCertificate::fromData(file.readAll(), QSsl::Pem);
        if (trusted.isEmpty())
            return fail(QObject::tr("No PEM certificate found in %1").arg(file.fileName()));
    }

    // A profile without a storage name is off the record: cookies, cache and local storage stay
    // in memory and end with the window, as the proxy's session cookie should.
    QWebEngineProfile profile;
    auto *page = new ProxyPage(&profile, url, trusted);
    QWebEngineView view;
    view.setPage(page);
    QObject::connect(page, &QWebEnginePage::titleChanged, &view, [&view](const QString &title) {
        view.setWindowTitle(title.isEmpty() ? QStringLiteral("Headlamp")
                                            : QStringLiteral("%1 – Headlamp").arg(title));
    });
    // The launch URL's query contains the one-time ticket, so logs show the URL without it.
    const QString shownUrl = url.adjusted(QUrl::RemoveQuery | QUrl::RemoveFragment).toString();
    QObject::connect(page, &QWebEnginePage::loadFinished, &view, [shownUrl](bool ok) {
        if (ok)
            qInfo().noquote() << "Loaded" << shownUrl;
        else
            qWarning().noquote() << "Failed to load" << shownUrl
                                 << "; check that Lamplighter is running and signed in";
    });
    view.setWindowTitle(QStringLiteral("Headlamp"));
    // Most of the screen, as a browser window would open, but no larger than Headlamp needs.
    const QSize available = view.screen()->availableSize();
    view.resize(std::min(1280, available.width() * 9 / 10),
                std::min(800, available.height() * 9 / 10));
    view.setUrl(url);
    view.show();
    const int status = app.exec();
    // The page must go before the profile it uses.
    delete page;
    return status;
}
