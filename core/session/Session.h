#pragma once

#include "config/Config.h"
#include "oidc/BrowserLauncher.h"
#include "oidc/TokenSet.h"
#include "util/Result.h"

#include <QDateTime>
#include <QObject>
#include <QString>
#include <QStringList>
#include <functional>
#include <memory>

namespace lamplighter {

// The signed-in person and everything that serves them: it runs sign-in and refresh, keeps the
// tokens in the keychain, and, when asked to, runs the local proxy and writes the kubeconfig
// that points at it. The tray and the command line drive it, and no other object keeps tokens.
class Session : public QObject {
    Q_OBJECT
public:
    enum class State {
        Starting, // reading the keychain, and refreshing a restored session
        SignedOut,
        SigningIn,
        SignedIn,
        Refreshing, // signed in, and a refresh of the tokens is in flight
        // Signed in, but the last refresh failed because the provider cannot be reached. The
        // proxy serves the current ID token until it expires, and the refresh is retried with
        // back-off at nextRetryAt().
        Offline,
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
        // The lamplighter-keychain program that runs the keychain operations, for a process
        // that should not load the keychain libraries itself. Empty: they run in this process.
        QString keychainHelperProgram;
        UrlOpener urlOpener; // opens the system browser when login.browser is not set
        // The lock file that lets one process at a time refresh, so that processes sharing the
        // keychain never present the same refresh token twice. Empty: refresh.lock beside the
        // kubeconfig.
        QString refreshLockPath;
    };

    // The outcome of requestFreshIdToken(): an ID token, or why there is none.
    struct IdTokenResult {
        QByteArray idToken; // empty when the request failed
        QDateTime expiresAt;
        QString errorMessage;
        bool needsLogin = false; // no refresh can help, so the person must sign in
    };
    using IdTokenCallback = std::function<void(const IdTokenResult &result)>;

    Session(Config config, Options options, QObject *parent = nullptr);
    ~Session() override;

    // Starts the proxy (if asked to) and restores the tokens from the keychain, refreshing them
    // when Options::refreshOnStart is set. Emits started() with the outcome.
    void start();

    void signIn();
    void cancelSignIn();
    void signOut();
    // Signs out and removes every keychain entry that Lamplighter wrote, including those of
    // providers no longer in the configuration, and then the entry index. Calls done with the
    // number of entries removed.
    void signOutAndRemoveAllEntries(std::function<void(Result<int>)> done);
    // Refreshes the tokens now instead of at the next scheduled time, for example to retry at
    // once when offline. Does nothing without a refresh token, during sign-in, or while a refresh
    // is in flight.
    void refresh();
    // Calls done with the ID token once it is stored, refreshing it first when it has expired
    // or will soon. Requests that arrive during a refresh share it. Never opens a browser.
    void requestFreshIdToken(IdTokenCallback done);

    State state() const;
    QString userName() const;    // from the configured user name claim
    QString subject() const;     // the ID token's "sub"
    QStringList groups() const;  // from the configured groups claim
    QDateTime expiresAt() const; // of the current ID token, UTC
    QString errorMessage() const;
    // Returns when the retry of a failed refresh starts, in UTC, or an invalid time when no retry
    // is scheduled.
    QDateTime nextRetryAt() const;
    bool tokensInMemoryOnly() const;
    // Returns why new tokens are kept in memory instead of the keychain (no keychain responded, or
    // a newer Lamplighter wrote the entry), or an empty string when they are stored.
    QString tokensNotStoredReason() const;
    QString kubeconfigPath() const;
    quint16 proxyPort() const;
    // Creates a one-time launch URL that opens an app of the configuration in a browser. The URL
    // contains a secret ticket, so it must not be logged or shown.
    Result<QUrl> createLaunchUrl(const QString &appName);

    static QString stateName(State state);
    // The PEM file with the local proxy's certificate, which clients of the proxy trust.
    static QString proxyCertificatePath();

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
