#pragma once

#include "config/Config.h"
#include "oidc/BrowserLauncher.h"
#include "oidc/TokenSet.h"
#include "util/Result.h"

#include <QDateTime>
#include <QObject>
#include <QString>
#include <QStringList>
#include <memory>

namespace lamplighter {

// The signed-in person and everything that serves them: it runs sign-in and refresh, keeps the
// tokens in the keychain, and, when asked to, runs the local proxy and writes the kubeconfig
// that points at it. The tray and the command line drive it, and no other object keeps tokens.
class Session : public QObject {
    Q_OBJECT
public:
    enum class State {
        Starting, // reading the keychain
        SignedOut,
        SigningIn,
        SignedIn,
        Failed, // the last sign-in or refresh failed, for the reason in errorMessage()
    };
    Q_ENUM(State)

    struct Options {
        bool serveProxy = true; // false for one-shot command-line use
        // Refreshes a restored session at start. One-shot commands leave it off: two processes
        // refreshing with the same refresh token make the provider revoke the whole grant.
        bool refreshOnStart = true;
        QString kubeconfigPath; // empty: defaultKubeconfigPath()
        QString keychainService = QStringLiteral("lamplighter");
        UrlOpener urlOpener; // opens the system browser when login.browser is not set
    };

    Session(Config config, Options options, QObject *parent = nullptr);
    ~Session() override;

    // Starts the proxy (if asked to) and restores the tokens from the keychain, refreshing them
    // when Options::refreshOnStart is set. Emits started() with the outcome.
    void start();

    void signIn();
    void cancelSignIn();
    void signOut();

    State state() const;
    QString userName() const;    // from the configured user name claim
    QStringList groups() const;  // from the configured groups claim
    QDateTime expiresAt() const; // of the current ID token, UTC
    QString errorMessage() const;
    bool tokensInMemoryOnly() const;
    QString kubeconfigPath() const;
    quint16 proxyPort() const;
    // Creates a one-time launch URL that opens an app of the configuration in a browser. The URL
    // contains a secret ticket, so it must not be logged or shown.
    Result<QUrl> createLaunchUrl(const QString &appName);

    static QString stateName(State state);

Q_SIGNALS:
    void started(const lamplighter::Status &status);
    void stateChanged(lamplighter::Session::State state);
    void tokensRefreshed();
    // A message for the person that is not an error of sign-in, such as a missing keychain.
    void notice(const QString &message);

private:
    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace lamplighter
