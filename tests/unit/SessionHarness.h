#pragma once

#include "ProviderDouble.h"
#include "TestJwt.h"
#include "session/Session.h"

#include <QList>
#include <QObject>
#include <QTemporaryDir>
#include <QUrl>
#include <memory>
#include <optional>

namespace lamplighter::test {

// A Session against ProviderDouble, for tests that need a session in each of its states. The
// session keeps its tokens in memory and runs no proxy. Sign-in completes through the loopback
// redirect as a browser would, and the token endpoint's behaviour can be switched between calls.
class SessionHarness : public QObject {
    Q_OBJECT
public:
    enum class TokenEndpoint {
        Issue,          // returns new tokens
        DropConnection, // closes the connection: the provider cannot be reached
        RejectClient,   // HTTP 400 invalid_client: a failure that a retry does not mend
        RejectGrant,    // HTTP 400 invalid_grant: the provider ended the session
        // returns new tokens, but no ID token for a refresh (OpenID Connect Core 1.0, 12.2)
        IssueWithoutIdToken,
    };

    explicit SessionHarness(QObject *parent = nullptr);
    ~SessionHarness() override;

    // Starts the provider double; returns an empty string or the reason it failed.
    QString start();
    // Creates a started, signed-out session. Returns nullptr when it did not start.
    Session *createSession();

    // Starts a sign-in on the session and stops once the browser would open.
    bool beginSignIn(Session *session);
    // Completes the sign-in that beginSignIn() started, as the browser would after login.
    bool completeSignIn(Session *session);
    bool signIn(Session *session) { return beginSignIn(session) && completeSignIn(session); }

    void setTokenEndpoint(TokenEndpoint behaviour) { m_tokenEndpoint = behaviour; }
    // The lifetime of the ID tokens that the token endpoint issues from now on.
    void setIdTokenLifetime(qint64 seconds) { m_idTokenLifetime = seconds; }
    // What the ID tokens issued from now on carry in place of the "groups" claim.
    enum class Groups {
        Claim,   // the "groups" claim
        Overage, // "_claim_names" and "_claim_sources", as Entra ID sends for many groups
        LeftOut, // nothing, as Okta and Keycloak do unless a scope requests groups
    };
    void setGroups(Groups groups) { m_groups = groups; }

    // The folder of the session's kubeconfig path, where its refresh lock is too.
    QString stateFolder() const { return m_directory.filePath(QStringLiteral("state")); }

    static QString userName() { return QStringLiteral("jane@example.test"); }

private:
    ProviderDouble::Response respondToTokenRequest(const ProviderDouble::Request &request);
    QByteArray signIdToken(const QString &nonce) const;

    QTemporaryDir m_directory;
    std::optional<TestKey> m_key;
    ProviderDouble *m_provider = nullptr;
    std::unique_ptr<Session> m_session;
    QList<QUrl> m_openedUrls;
    TokenEndpoint m_tokenEndpoint = TokenEndpoint::Issue;
    qint64 m_idTokenLifetime = 3600;
    Groups m_groups = Groups::Claim;
    int m_refreshTokenNumber = 0;
};

} // namespace lamplighter::test
