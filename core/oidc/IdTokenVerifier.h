#pragma once

#include "oidc/TokenSet.h"
#include "util/Result.h"

#include <QByteArray>
#include <QDateTime>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <chrono>
#include <functional>
#include <memory>

class QNetworkAccessManager;
class QSslConfiguration;

namespace lamplighter {

class JsonWebKeySet;

// The claims an ID token must carry besides a valid signature (OpenID Connect Core 1.0, 3.1.3.7).
struct IdTokenExpectations {
    QString issuer;                  // "iss" must equal it exactly
    QString clientId;                // must be in "aud"; "azp", when present, must equal it
    QByteArray nonce;                // "nonce" must equal it; empty skips the check (refresh)
    std::chrono::seconds leeway{60}; // clock skew allowed on "exp", "nbf" and "iat"
    // Accepted "aud" values, one of which must be present; empty accepts clientId only. An
    // "azp", when present, must be one of them.
    QStringList audiences;
    // The "alg" values accepted, a subset of the verifier's own allow-list; empty accepts all.
    QStringList algorithms;
};

// The clock used for expiry checks; tests replace it.
using Clock = std::function<QDateTime()>;
QDateTime systemClock();

// Verifies ID tokens against the issuer's JSON Web Key Set, which it fetches from jwks_uri and
// keeps. A token signed with a key id the set does not contain triggers one refetch of the set,
// at most once per refetch interval, so that key rotation at the provider is followed.
// Only asymmetric algorithms from an allow-list (RS256/384/512, PS256/384/512, ES256/384/512)
// are accepted; "none" and HMAC algorithms are always rejected.
class IdTokenVerifier : public QObject {
    Q_OBJECT
public:
    IdTokenVerifier(QNetworkAccessManager *network, QUrl jwksUri, QObject *parent = nullptr);
    ~IdTokenVerifier() override;

    // Replaces the clock used for claim times and the refetch interval. An empty clock restores
    // systemClock.
    void setClock(Clock clock);
    // Sets how long after a fetch an unknown key id may trigger the next one (default 60 s).
    void setMinimumRefetchInterval(std::chrono::seconds interval);
    // Sets the TLS configuration of JWKS requests, for example to trust an extra CA. Without it,
    // requests use the network access manager's defaults.
    // NOTE: QNetworkAccessManager (Qt 6.4) reuses a cached connection to the same host with the
    // TLS configuration it was opened with, so every request to the issuer's host on that
    // manager needs the same configuration.
    void setSslConfiguration(const QSslConfiguration &configuration);

    // Verifies token asynchronously and calls done exactly once, on this object's thread and never
    // from within verify(). If the verifier is destroyed first, done is not called.
    void verify(const QByteArray &token,
                const IdTokenExpectations &expectations,
                std::function<void(Result<IdTokenClaims>)> done);

    // Fetches the key set now, unless a fetch is under way, so that the first tokens need not
    // wait for it. keysFetched() reports the outcome.
    void prefetchKeys();
    // Returns true once a key set has been fetched.
    bool hasKeys() const;

    // Verifies token against keys synchronously, with no network access.
    static Result<IdTokenClaims> verifyWithKeys(const QByteArray &token,
                                                const JsonWebKeySet &keys,
                                                const IdTokenExpectations &expectations,
                                                const QDateTime &now);

Q_SIGNALS:
    // Emitted after each fetch of the key set; `error` is empty when it succeeded.
    void keysFetched(const QString &error);

private:
    struct Private;
    std::unique_ptr<Private> d;
};

} // namespace lamplighter
