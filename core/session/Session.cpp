#include "session/Session.h"

#include "Logging.h"
#include "kube/Kubeconfig.h"
#include "oidc/Base64Url.h"
#include "oidc/LoginJob.h"
#include "oidc/OidcClient.h"
#include "oidc/RefreshJob.h"
#include "proxy/LocalProxy.h"
#include "proxy/SessionKey.h"
#include "store/EntryFormats.h"
#include "store/SecretStore.h"
#include "tls/LocalCertificate.h"
#include "util/Redact.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLockFile>
#include <QPointer>
#include <QSaveFile>
#include <QSslConfiguration>
#include <QStandardPaths>
#include <QTimer>
#include <algorithm>

namespace lamplighter {
namespace {

const QString proxyKeyEntry = QStringLiteral("proxy-tls-key");

// The shortest wait before a refresh, and the back-off limits after a failed one.
constexpr std::chrono::seconds minimumRefreshDelay{5};
constexpr std::chrono::seconds minimumRefreshLead{10};
constexpr std::chrono::seconds firstRetryDelay{5};
constexpr std::chrono::seconds maximumRetryDelay{60};

// How often a refresh tries again to take the lock that another process holds, and for how long.
constexpr std::chrono::milliseconds refreshLockRetryInterval{50};
constexpr std::chrono::seconds refreshLockTimeout{60};

// The key under which one provider's tokens are kept; a second provider gets its own entry.
QString tokensEntry(const ProviderConfig &provider)
{
    return QStringLiteral("tokens %1 %2")
        .arg(provider.issuer.toString(QUrl::FullyEncoded), provider.clientId);
}

QByteArray serializeTokens(const TokenSet &tokens)
{
    return encodeTokensEntry({
        {QStringLiteral("id_token"), QString::fromLatin1(tokens.idToken)},
        {QStringLiteral("refresh_token"), QString::fromLatin1(tokens.refreshToken)},
        {QStringLiteral("access_token"), QString::fromLatin1(tokens.accessToken)},
    });
}

QDateTime fromNumericDate(const QJsonValue &value)
{
    return value.isDouble() ? QDateTime::fromSecsSinceEpoch(qint64(value.toDouble()), Qt::UTC)
                            : QDateTime();
}

// Reads the claims of an ID token that was verified when it arrived and then kept in the
// keychain. A refresh compares them with the new ID token's (OpenID Connect Core 1.0, 12.2).
IdTokenClaims readStoredClaims(const QByteArray &idToken)
{
    const QList<QByteArray> parts = idToken.split('.');
    if (parts.size() != 3)
        return {};
    const std::optional<QByteArray> payload = decodeBase64Url(parts.at(1));
    if (!payload)
        return {};
    IdTokenClaims claims;
    claims.payload = *payload;
    const QJsonObject all = claims.all();
    claims.issuer = all.value(QStringLiteral("iss")).toString();
    claims.subject = all.value(QStringLiteral("sub")).toString();
    claims.expiresAt = fromNumericDate(all.value(QStringLiteral("exp")));
    claims.issuedAt = fromNumericDate(all.value(QStringLiteral("iat")));
    return claims;
}

TokenSet deserializeTokens(const QJsonObject &object)
{
    TokenSet tokens;
    tokens.idToken = object.value(QStringLiteral("id_token")).toString().toLatin1();
    tokens.refreshToken = object.value(QStringLiteral("refresh_token")).toString().toLatin1();
    tokens.accessToken = object.value(QStringLiteral("access_token")).toString().toLatin1();
    tokens.claims = readStoredClaims(tokens.idToken);
    return tokens;
}

// Tells whether an ID token must be refreshed before it is handed out: when less than a quarter
// of its lifetime or less than ten seconds is left. It never is while more than half is left, so
// that very short lifetimes do not make every request refresh.
bool needsRefreshBeforeUse(const IdTokenClaims &claims, const QDateTime &now)
{
    if (!claims.expiresAt.isValid())
        return true;
    const QDateTime issued = claims.issuedAt.isValid() ? claims.issuedAt : now;
    const qint64 lifetime = std::max<qint64>(issued.secsTo(claims.expiresAt), 0);
    const qint64 lead =
        std::min<qint64>(std::max<qint64>(minimumRefreshLead.count(), lifetime / 4), lifetime / 2);
    return now.secsTo(claims.expiresAt) <= lead;
}

// Returns the apps for the local proxy. An app configured without a CA is trusted through the
// system's CA store, as a cluster is.
std::vector<UpstreamApp> upstreamApps(const std::vector<AppConfig> &apps)
{
    std::vector<UpstreamApp> upstreams;
    for (const AppConfig &app : apps) {
        const QList<QSslCertificate> trusted = app.caCertificates.isEmpty()
                                                   ? QSslConfiguration::systemCaCertificates()
                                                   : app.caCertificates;
        UpstreamApp upstream;
        upstream.name = app.name;
        upstream.upstream =
            UpstreamCluster{QStringLiteral("apps/") + app.name, app.upstream, trusted};
        upstream.injectToken = app.injectToken;
        upstream.tokenHeader = app.tokenHeader;
        upstreams.push_back(upstream);
    }
    return upstreams;
}

} // namespace

struct Session::Private {
    Private(Session *session, Config configuration, Options settings)
        : q(session)
        , config(std::move(configuration))
        , options(std::move(settings))
        , store(options.keychainHelperProgram.isEmpty()
                    ? std::make_unique<InProcessKeychain>(options.keychainService)
                    : std::unique_ptr<KeychainAccess>(std::make_unique<HelperProcessKeychain>(
                          options.keychainService, options.keychainHelperProgram)))
        , oidc(config.provider)
    {
        if (options.kubeconfigPath.isEmpty())
            options.kubeconfigPath = defaultKubeconfigPath();
        if (options.refreshLockPath.isEmpty())
            options.refreshLockPath =
                QFileInfo(options.kubeconfigPath).absolutePath() + QStringLiteral("/refresh.lock");
        refreshLockTimer.setSingleShot(true);
        refreshLockTimer.setInterval(refreshLockRetryInterval);
        if (options.urlOpener)
            oidc.setUrlOpener(options.urlOpener);
        refreshTimer.setSingleShot(true);
        refreshTimer.setTimerType(Qt::VeryCoarseTimer);
    }

    void setState(State next, const QString &error = QString());
    void fail(const Status &status);

    void startProxy(std::function<void(Status)> done);
    void loadCertificate(std::function<void(Result<LocalCertificate>)> done);
    Status listenAndWriteKubeconfig(const LocalCertificate &certificate);
    void restoreTokens();
    void rewriteEntry(const QString &key, const QByteArray &encoded, const DecodedEntry &entry);
    std::optional<TokenSet> decodeStoredTokens(const QByteArray &stored);

    void acceptTokens(TokenSet tokens, std::function<void()> stored = {});
    void storeTokens(std::function<void()> stored = {});
    void reportMissingGroups();
    void scheduleRefresh();
    void scheduleRefreshAtExpiry();
    void refreshNow();
    void lockForRefresh();
    void adoptStoredTokensOrRefresh();
    void startRefreshJob();
    void handleRefreshJobFinished(RefreshJob *job, quint64 started);
    void finishRefreshWithStoredTokens();
    void failRefresh(const Error &error, bool needsLogin, bool transient);
    void endRefresh();
    IdTokenResult currentIdToken() const;
    void answerIdTokenRequests(const IdTokenResult &result);
    void handleRefreshFailure(const Error &error, bool needsLogin, bool transient);
    void retryRefreshLater();
    // Ends the session. With removeEntry false, the caller removes the keychain entry itself.
    void forgetTokens(bool removeEntry = true);
    void finishStart();

    Session *q;
    Config config;
    Options options;
    SecretStore store;
    OidcClient oidc;
    LocalProxy *proxy = nullptr;

    State state = State::Starting;
    QString error;
    TokenSet tokens;
    QTimer refreshTimer;
    std::chrono::seconds retryDelay = firstRetryDelay;
    QDateTime retryAt; // when the retry of a failed refresh starts, or invalid when none is pending
    QPointer<LoginJob> loginJob;
    QPointer<RefreshJob> refreshJob;
    bool missingGroupsReported = false; // once per session, not at every refresh
    bool startPending = false; // started() waits for the first refresh of a restored session

    // A refresh runs from refreshNow() until the new tokens are stored: it takes the lock, reads
    // the keychain again, and refreshes only when no other process has done so meanwhile.
    bool refreshing = false;
    std::unique_ptr<QLockFile> refreshLock;
    QTimer refreshLockTimer;
    QDeadlineTimer refreshLockDeadline;
    // Increases at sign-out, so that callbacks of a refresh started before it do nothing.
    quint64 generation = 0;
    int pendingTokenWrites = 0;
    // Set when the tokens entry was written by a newer Lamplighter: why the tokens of this
    // process stay in memory, so that the newer entry is neither replaced nor removed.
    QString newerTokensEntry;
    std::vector<IdTokenCallback> idTokenRequests; // waiting for a refresh or a keychain write
};

void Session::Private::finishStart()
{
    if (!startPending)
        return;
    startPending = false;
    Q_EMIT q->started(Done{});
}

void Session::Private::setState(State next, const QString &message)
{
    error = message;
    if (next == state && message.isEmpty())
        return;
    if (message.isEmpty())
        qCInfo(lcSession).noquote() << "State:" << stateName(next);
    else
        qCInfo(lcSession).noquote() << "State:" << stateName(next) << "-" << message;
    state = next;
    Q_EMIT q->stateChanged(state);
}

void Session::Private::fail(const Status &status)
{
    Q_EMIT q->started(status);
}

void Session::Private::loadCertificate(std::function<void(Result<LocalCertificate>)> done)
{
    store.read(proxyKeyEntry, [this, done](Result<std::optional<QByteArray>> key) {
        DecodedEntry entry;
        if (key.ok() && key->has_value()) {
            entry = decodeProxyKeyEntry(proxyKeyEntry, **key);
            if (!entry.usable())
                qCWarning(lcTls).noquote() << entry.message;
        }
        // NOTE: with a key entry of a newer Lamplighter, the new key stays in memory so that the
        // entry is kept, but the certificate file is replaced and the newer version must renew
        // it when it starts again.
        const bool keepStoredEntry = entry.outcome == DecodedEntry::Outcome::TooNew;
        QFile file(proxyCertificatePath());
        if (entry.usable() && file.open(QIODevice::ReadOnly)) {
            Result<LocalCertificate> stored =
                LocalCertificate::fromPem(file.readAll(), proxyKeyPem(entry));
            if (stored && !stored->needsRenewal(QDateTime::currentDateTimeUtc())) {
                if (entry.outcome == DecodedEntry::Outcome::Migrated)
                    rewriteEntry(proxyKeyEntry, encodeProxyKeyEntry(proxyKeyPem(entry)), entry);
                done(std::move(stored));
                return;
            }
            qCInfo(lcTls) << "Replacing the proxy's certificate:"
                          << (stored ? QStringLiteral("it expires soon") : stored.errorMessage());
        }

        Result<LocalCertificate> generated =
            LocalCertificate::generate(QDateTime::currentDateTimeUtc());
        if (!generated) {
            done(std::move(generated));
            return;
        }
        QDir().mkpath(QFileInfo(proxyCertificatePath()).absolutePath());
        QSaveFile output(proxyCertificatePath());
        if (!output.open(QIODevice::WriteOnly) || output.write(generated->certificatePem()) < 0 ||
            !output.commit()) {
            done(Error{QStringLiteral("Failed to write the proxy's certificate to %1: %2")
                           .arg(proxyCertificatePath(), output.errorString())});
            return;
        }
        const LocalCertificate certificate = generated.value();
        if (keepStoredEntry) {
            done(certificate);
            return;
        }
        const QByteArray encoded = encodeProxyKeyEntry(certificate.privateKeyPem());
        store.write(proxyKeyEntry, encoded, [done, certificate](Status stored) {
            if (!stored) {
                done(stored.error());
                return;
            }
            qCInfo(lcTls) << "Generated a new certificate for the local proxy";
            done(certificate);
        });
    });
}

Status Session::Private::listenAndWriteKubeconfig(const LocalCertificate &certificate)
{
    Result<QByteArray> sessionKey = generateSessionKey();
    if (!sessionKey)
        return sessionKey.error();

    proxy = new LocalProxy(q);
    // A request that finds the ID token expired, after a suspend for example, refreshes at once
    // instead of waiting for the timer.
    QObject::connect(proxy, &LocalProxy::idTokenExpired, q, [this] {
        if (!tokens.refreshToken.isEmpty())
            refreshNow();
    });
    proxy->setServerCertificate(certificate);
    proxy->setSessionKey(sessionKey.value());
    std::vector<UpstreamCluster> upstreams;
    for (const ClusterConfig &cluster : config.clusters) {
        // A cluster configured without a CA is trusted through the system's CA store.
        const QList<QSslCertificate> trusted = cluster.caCertificates.isEmpty()
                                                   ? QSslConfiguration::systemCaCertificates()
                                                   : cluster.caCertificates;
        upstreams.push_back({cluster.name, cluster.server, trusted});
    }
    proxy->setClusters(std::move(upstreams));
    proxy->setApps(upstreamApps(config.apps));
    const Status listening = proxy->listen(config.proxy.port);
    if (!listening)
        return listening;

    Kubeconfig kubeconfig;
    for (const ClusterConfig &cluster : config.clusters)
        kubeconfig.contexts.push_back({cluster.name, proxy->clusterUrl(cluster.name)});
    kubeconfig.certificateAuthorityPem = certificate.certificatePem();
    kubeconfig.sessionKey = sessionKey.value();
    const Status written = kubeconfig.writeTo(options.kubeconfigPath);
    if (written)
        qCInfo(lcProxy).noquote() << "Serving" << config.clusters.size()
                                  << (config.clusters.size() == 1 ? "cluster on" : "clusters on")
                                  << QStringLiteral("https://127.0.0.1:%1").arg(proxy->port())
                                  << "- kubeconfig:" << options.kubeconfigPath;
    return written;
}

void Session::Private::startProxy(std::function<void(Status)> done)
{
    loadCertificate([this, done](Result<LocalCertificate> certificate) {
        if (!certificate) {
            done(certificate.error());
            return;
        }
        done(listenAndWriteKubeconfig(certificate.value()));
    });
}

void Session::Private::restoreTokens()
{
    store.read(tokensEntry(config.provider), [this](Result<std::optional<QByteArray>> stored) {
        if (!stored) {
            setState(State::SignedOut, stored.errorMessage());
            Q_EMIT q->started(Done{});
            return;
        }
        const TokenSet restored =
            stored->has_value() ? decodeStoredTokens(**stored).value_or(TokenSet{}) : TokenSet{};
        if (restored.refreshToken.isEmpty() && !newerTokensEntry.isEmpty()) {
            setState(State::SignedOut,
                     QStringLiteral("%1 Sign in again: until Lamplighter is upgraded, it keeps "
                                    "your tokens in memory only.")
                         .arg(newerTokensEntry));
            Q_EMIT q->notice(error);
            Q_EMIT q->started(Done{});
            return;
        }
        if (restored.refreshToken.isEmpty()) {
            qCInfo(lcSession) << "No stored session; waiting for sign-in";
            setState(State::SignedOut);
            Q_EMIT q->started(Done{});
            return;
        }
        tokens = restored;
        if (!options.refreshOnStart) {
            setState(State::SignedIn);
            Q_EMIT q->started(Done{});
            return;
        }
        // The stored ID token may have expired while Lamplighter was not running, so a restored
        // session starts with a refresh, which also proves that the provider still accepts it.
        qCInfo(lcSession) << "Restoring the stored session with a refresh";
        startPending = true;
        refreshNow();
    });
}

// Decodes the stored tokens entry, writing it back in the current format when it has an older
// one. Returns nothing for an entry of a newer Lamplighter, which newerTokensEntry then names,
// and for one that is not valid, which the next sign-in replaces.
std::optional<TokenSet> Session::Private::decodeStoredTokens(const QByteArray &stored)
{
    const QString key = tokensEntry(config.provider);
    const DecodedEntry entry = decodeTokensEntry(key, stored);
    switch (entry.outcome) {
    case DecodedEntry::Outcome::Current:
        return deserializeTokens(entry.fields);
    case DecodedEntry::Outcome::Migrated:
        rewriteEntry(key, encodeTokensEntry(entry.fields), entry);
        return deserializeTokens(entry.fields);
    case DecodedEntry::Outcome::TooNew:
        if (newerTokensEntry.isEmpty())
            qCWarning(lcSession).noquote() << entry.message;
        newerTokensEntry = entry.message;
        return std::nullopt;
    case DecodedEntry::Outcome::Invalid:
        qCWarning(lcSession).noquote() << entry.message << "The next sign-in replaces it.";
        return std::nullopt;
    }
    return std::nullopt;
}

void Session::Private::rewriteEntry(const QString &key,
                                    const QByteArray &encoded,
                                    const DecodedEntry &entry)
{
    store.write(key, encoded, [this, key, version = entry.storedVersion](Status written) {
        if (!written) {
            Q_EMIT q->notice(written.errorMessage());
            return;
        }
        qCInfo(lcStore).noquote() << QStringLiteral("Rewrote the keychain entry \"%1\" from "
                                                    "format version %2 in the current format")
                                         .arg(key)
                                         .arg(version);
    });
}

void Session::Private::acceptTokens(TokenSet fresh, std::function<void()> stored)
{
    tokens = std::move(fresh);
    retryDelay = firstRetryDelay;
    reportMissingGroups();
    if (proxy)
        proxy->setIdToken(tokens.idToken, tokens.claims.expiresAt);
    storeTokens(std::move(stored));
    scheduleRefresh();
}

void Session::Private::reportMissingGroups()
{
    const QString claim = config.provider.groupsClaim;
    const QJsonObject all = tokens.claims.all();
    if (missingGroupsReported || all.contains(claim))
        return;

    QString message;
    if (all.value(QStringLiteral("_claim_names")).toObject().contains(claim)) {
        // OpenID Connect Core 1.0, section 5.6.2: an issuer may name a claim in "_claim_names"
        // and hold it elsewhere, as Entra ID does with the groups of a user in too many groups.
        message = QStringLiteral("The ID token names its \"%1\" claim in \"_claim_names\" "
                                 "instead of carrying it (a groups overage), so Lamplighter sees "
                                 "no groups: apps limited by az_groups stay hidden. Ask the "
                                 "provider's administrator to send fewer groups, for example "
                                 "only those assigned to the application.")
                      .arg(claim);
    } else if (!config.provider.scopes.contains(QStringLiteral("groups"))) {
        message = QStringLiteral("The ID token has no \"%1\" claim, and oidc.scopes does not "
                                 "ask for groups. Providers such as Okta and Keycloak send groups "
                                 "only when a scope asks for them: add groups to oidc.scopes (or "
                                 "the scope that the provider names for them). Until then, apps "
                                 "limited by az_groups stay hidden.")
                      .arg(claim);
    } else {
        return; // the person is in no group
    }
    missingGroupsReported = true;
    qCWarning(lcSession).noquote() << message;
    Q_EMIT q->notice(message);
}

void Session::Private::storeTokens(std::function<void()> stored)
{
    if (!newerTokensEntry.isEmpty()) {
        qCDebug(lcSession) << "Keeping the tokens in memory only, because a newer Lamplighter "
                              "wrote the keychain entry";
        if (stored)
            stored();
        if (pendingTokenWrites == 0 && !refreshing)
            answerIdTokenRequests(currentIdToken());
        return;
    }
    ++pendingTokenWrites;
    store.write(
        tokensEntry(config.provider), serializeTokens(tokens), [this, stored](Status written) {
            --pendingTokenWrites;
            if (!written)
                Q_EMIT q->notice(written.errorMessage());
            if (stored)
                stored();
            if (pendingTokenWrites == 0 && !refreshing)
                answerIdTokenRequests(currentIdToken());
        });
}

void Session::Private::scheduleRefresh()
{
    using namespace std::chrono;
    if (tokens.refreshToken.isEmpty()) {
        qCInfo(lcSession) << "The provider issued no refresh token; sign-in is needed when the "
                             "ID token expires";
        return;
    }
    const QDateTime now = QDateTime::currentDateTimeUtc();
    const seconds remaining{now.secsTo(tokens.claims.expiresAt)};
    const QDateTime issued = tokens.claims.issuedAt.isValid() ? tokens.claims.issuedAt : now;
    const seconds lifetime{std::max<qint64>(issued.secsTo(tokens.claims.expiresAt), 0)};
    // Refresh when a quarter of the lifetime is left, and never later than ten seconds before
    // expiry, so that requests in flight never carry an expired token.
    const seconds lead = std::max(minimumRefreshLead, lifetime / 4);
    const seconds delay = std::max(minimumRefreshDelay, remaining - lead);
    qCDebug(lcSession) << "Next refresh in" << delay.count() << "s";
    retryAt = QDateTime();
    refreshTimer.start(duration_cast<milliseconds>(delay));
}

// Refreshing again before the kept ID token expires would most likely bring no new one either,
// so the next try waits until it has expired.
void Session::Private::scheduleRefreshAtExpiry()
{
    using namespace std::chrono;
    const seconds remaining{QDateTime::currentDateTimeUtc().secsTo(tokens.claims.expiresAt)};
    const seconds delay = std::max(minimumRefreshDelay, remaining);
    qCDebug(lcSession) << "The provider sent no new ID token; next refresh in" << delay.count()
                       << "s, when the current one has expired";
    refreshTimer.start(duration_cast<milliseconds>(delay));
}

void Session::Private::refreshNow()
{
    if (refreshing)
        return;
    refreshing = true;
    // A restored session refreshes while still Starting, and a refresh during sign-in stays
    // behind the sign-in, so only a signed-in session shows that it is refreshing.
    if (state == State::SignedIn || state == State::Offline || state == State::Failed)
        setState(State::Refreshing);
    refreshLockDeadline = QDeadlineTimer(refreshLockTimeout);
    lockForRefresh();
}

// Takes the refresh lock, trying again every refreshLockRetryInterval while another process
// holds it. A provider that rotates refresh tokens may revoke the whole grant when a rotated-out
// one comes back (oidc-provider 8 does), so two processes must never refresh with the same one.
void Session::Private::lockForRefresh()
{
    if (!refreshLock) {
        QDir().mkpath(QFileInfo(options.refreshLockPath).absolutePath());
        refreshLock = std::make_unique<QLockFile>(options.refreshLockPath);
        // A refresh may wait long on a slow provider; only a lock whose process has ended is stale.
        refreshLock->setStaleLockTime(0);
    }
    if (refreshLock->tryLock(0)) {
        adoptStoredTokensOrRefresh();
        return;
    }
    if (refreshLock->error() != QLockFile::LockFailedError) {
        failRefresh(Error{QStringLiteral("Failed to create the lock file %1. Check that its folder "
                                         "is writable.")
                              .arg(options.refreshLockPath)},
                    false,
                    false);
        return;
    }
    if (refreshLockDeadline.hasExpired()) {
        qint64 holder = 0;
        QString host;
        QString application;
        refreshLock->getLockInfo(&holder, &host, &application);
        failRefresh(Error{QStringLiteral("Timed out after %1 s waiting for the lock file %2, which "
                                         "process %3 holds while it refreshes the tokens.")
                              .arg(refreshLockTimeout.count())
                              .arg(options.refreshLockPath)
                              .arg(holder)},
                    false,
                    false); // not offline: the provider was never asked
        return;
    }
    refreshLockTimer.start();
}

// Reads the keychain under the lock: another process may have refreshed since this one read
// it, and then its tokens are the current ones and the refresh token held here is spent.
void Session::Private::adoptStoredTokensOrRefresh()
{
    const quint64 started = generation;
    store.read(
        tokensEntry(config.provider), [this, started](Result<std::optional<QByteArray>> stored) {
            if (started != generation)
                return;
            const std::optional<TokenSet> decoded =
                stored.ok() && stored->has_value() ? decodeStoredTokens(**stored) : std::nullopt;
            if (decoded) {
                TokenSet newer = *decoded;
                const bool replaced = !newer.refreshToken.isEmpty() &&
                                      (newer.refreshToken != tokens.refreshToken ||
                                       newer.claims.expiresAt > tokens.claims.expiresAt);
                if (replaced) {
                    const bool newIdToken = newer.idToken != tokens.idToken;
                    tokens = std::move(newer);
                    if (newIdToken &&
                        !needsRefreshBeforeUse(tokens.claims, QDateTime::currentDateTimeUtc())) {
                        finishRefreshWithStoredTokens();
                        return;
                    }
                }
            }
            startRefreshJob();
        });
}

void Session::Private::finishRefreshWithStoredTokens()
{
    qCInfo(lcSession) << "Another Lamplighter process refreshed the tokens; the ID token is "
                         "valid until"
                      << tokens.claims.expiresAt.toString(Qt::ISODate);
    retryDelay = firstRetryDelay;
    if (proxy)
        proxy->setIdToken(tokens.idToken, tokens.claims.expiresAt);
    scheduleRefresh();
    endRefresh();
    if (state != State::SigningIn)
        setState(State::SignedIn);
    Q_EMIT q->tokensRefreshed();
    finishStart();
    if (pendingTokenWrites == 0)
        answerIdTokenRequests(currentIdToken());
}

void Session::Private::startRefreshJob()
{
    const quint64 started = generation;
    refreshJob = oidc.refresh(tokens);
    QObject::connect(
        refreshJob, &RefreshJob::finished, q, [this, started, job = refreshJob.data()] {
            job->deleteLater();
            handleRefreshJobFinished(job, started);
        });
    refreshJob->start();
}

void Session::Private::handleRefreshJobFinished(RefreshJob *job, quint64 started)
{
    if (job->failed()) {
        const Error failure = job->error();
        const bool transient = job->isTransient();
        const QByteArray rotated = job->rotatedRefreshToken();
        if (!rotated.isEmpty() && !job->needsLogin()) {
            // The provider has rotated the refresh token; the old one would now end the
            // session. The ID token stays as it was until a refresh verifies a new one.
            tokens.refreshToken = rotated;
            storeTokens([this, started, failure, transient] {
                if (started == generation)
                    failRefresh(failure, false, transient);
            });
            return;
        }
        failRefresh(failure, job->needsLogin(), transient);
        return;
    }

    // A provider may refresh without a new ID token. Once the current one has expired, only a
    // new sign-in gets another.
    const bool idTokenKept = job->tokens().idToken == tokens.idToken;
    const QDateTime now = QDateTime::currentDateTimeUtc();
    if (idTokenKept && tokens.claims.expiresAt <= now) {
        failRefresh(Error{QStringLiteral("The identity provider refreshed the tokens without a new "
                                         "ID token, and the current one expired at %1.")
                              .arg(tokens.claims.expiresAt.toString(Qt::ISODate))},
                    true,
                    false);
        return;
    }

    // The lock is held until the keychain has the new tokens, so the next process that takes
    // it reads them.
    acceptTokens(job->tokens(), [this, started] {
        if (started != generation)
            return;
        endRefresh();
        answerIdTokenRequests(currentIdToken());
    });
    qCInfo(lcSession) << "Refreshed the tokens; the ID token is valid until"
                      << tokens.claims.expiresAt.toString(Qt::ISODate);
    if (idTokenKept)
        scheduleRefreshAtExpiry();
    if (state != State::SigningIn)
        setState(State::SignedIn);
    Q_EMIT q->tokensRefreshed();
    finishStart();
}

void Session::Private::failRefresh(const Error &failure, bool needsLogin, bool transient)
{
    endRefresh();
    handleRefreshFailure(failure, needsLogin, transient);
    IdTokenResult result;
    if (needsLogin) {
        result.needsLogin = true;
        result.errorMessage =
            QStringLiteral("Your session has ended; sign in again. (%1)").arg(failure.message);
    } else if (tokens.claims.expiresAt.isValid() &&
               tokens.claims.expiresAt > QDateTime::currentDateTimeUtc()) {
        // The current ID token has not expired yet, so it still serves until it does.
        result = currentIdToken();
    } else {
        result.errorMessage =
            QStringLiteral("Refreshing the ID token failed: %1").arg(failure.message);
    }
    answerIdTokenRequests(result);
}

void Session::Private::endRefresh()
{
    refreshLockTimer.stop();
    if (refreshLock && refreshLock->isLocked())
        refreshLock->unlock();
    refreshing = false;
}

Session::IdTokenResult Session::Private::currentIdToken() const
{
    IdTokenResult result;
    if (tokens.isEmpty()) {
        result.needsLogin = true;
        result.errorMessage = QStringLiteral("Not signed in.");
        return result;
    }
    result.idToken = tokens.idToken;
    result.expiresAt = tokens.claims.expiresAt;
    return result;
}

void Session::Private::answerIdTokenRequests(const IdTokenResult &result)
{
    std::vector<IdTokenCallback> waiting;
    waiting.swap(idTokenRequests);
    for (const IdTokenCallback &done : waiting)
        done(result);
}

void Session::Private::handleRefreshFailure(const Error &failure, bool needsLogin, bool transient)
{
    const bool signingIn = state == State::SigningIn;
    if (needsLogin) {
        qCInfo(lcSession).noquote() << "The provider ended the session:" << failure.message;
        forgetTokens();
        // A sign-in in progress replaces the tokens anyway, so it keeps its state.
        if (!signingIn)
            setState(
                State::SignedOut,
                QStringLiteral("Your session has ended; sign in again. (%1)").arg(failure.message));
        finishStart();
        return;
    }

    // A provider that is briefly away is expected now and then: retry with back-off, and warn
    // in the log rather than in a dialog.
    qCWarning(lcSession).noquote() << "Refreshing the tokens failed; retrying in"
                                   << retryDelay.count() << "s:" << failure.message;
    retryRefreshLater();
    const bool expired = !tokens.claims.expiresAt.isValid() ||
                         tokens.claims.expiresAt <= QDateTime::currentDateTimeUtc();
    const QString message =
        transient
            ? QStringLiteral("The identity provider cannot be reached: %1").arg(failure.message)
            : QStringLiteral("Refreshing the session failed: %1").arg(failure.message);
    if (expired && proxy)
        proxy->setUnavailable(
            QStringLiteral("Lamplighter's ID token has expired. %1 Lamplighter retries; see "
                           "`lamplighter status`.")
                .arg(message));
    if (!signingIn)
        setState(transient ? State::Offline : State::Failed, message);
    finishStart();
}

void Session::Private::retryRefreshLater()
{
    using namespace std::chrono;
    retryAt = QDateTime::currentDateTimeUtc().addSecs(retryDelay.count());
    refreshTimer.start(duration_cast<milliseconds>(retryDelay));
    retryDelay = std::min(retryDelay * 2, maximumRetryDelay);
}

void Session::Private::forgetTokens(bool removeEntry)
{
    ++generation;
    endRefresh();
    refreshTimer.stop();
    retryAt = QDateTime();
    retryDelay = firstRetryDelay;
    if (refreshJob) {
        // A refresh that ends after sign-out must not bring the tokens back.
        refreshJob->disconnect(q);
        refreshJob->deleteLater();
    }
    tokens = TokenSet{};
    if (proxy)
        proxy->setIdToken(QByteArray());
    if (!removeEntry || !newerTokensEntry.isEmpty())
        return;
    store.remove(tokensEntry(config.provider), [this](Status removed) {
        if (!removed)
            Q_EMIT q->notice(removed.errorMessage());
    });
}

Session::Session(Config config, Options options, QObject *parent)
    : QObject(parent)
    , d(std::make_unique<Private>(this, std::move(config), std::move(options)))
{
    connect(&d->store, &SecretStore::keychainUnavailable, this, &Session::notice);
    connect(&d->store, &SecretStore::keychainAvailable, this, &Session::notice);
    connect(&d->refreshTimer, &QTimer::timeout, this, [this] { d->refreshNow(); });
    connect(&d->refreshLockTimer, &QTimer::timeout, this, [this] { d->lockForRefresh(); });
}

Session::~Session() = default;

void Session::start()
{
    if (!d->options.serveProxy) {
        d->restoreTokens();
        return;
    }
    d->startProxy([this](Status status) {
        if (!status) {
            d->setState(State::Failed, status.errorMessage());
            d->fail(status);
            return;
        }
        d->restoreTokens();
    });
}

void Session::signIn()
{
    if (d->loginJob)
        return;
    d->refreshTimer.stop();
    d->retryAt = QDateTime();
    d->setState(State::SigningIn);
    d->loginJob = d->oidc.login(d->config.login);
    connect(d->loginJob, &LoginJob::finished, this, [this, job = d->loginJob.data()] {
        job->deleteLater();
        if (job->failed()) {
            const bool signedInBefore = !d->tokens.isEmpty();
            d->setState(signedInBefore ? State::SignedIn : State::Failed, job->error().message);
            if (signedInBefore)
                d->scheduleRefresh();
            return;
        }
        // The state changes once the keychain has the tokens, so that `lamplighter login`
        // returns only when another process, such as `lamplighter credential`, can read them.
        d->acceptTokens(job->tokens(), [this, started = d->generation] {
            if (started != d->generation)
                return; // signed out while the tokens were being stored
            qCInfo(lcSession).noquote() << "Signed in as" << userName() << "until"
                                        << d->tokens.claims.expiresAt.toString(Qt::ISODate);
            d->setState(State::SignedIn);
        });
    });
    d->loginJob->start();
}

void Session::refresh()
{
    if (d->tokens.refreshToken.isEmpty() || d->loginJob)
        return;
    d->refreshNow();
}

void Session::requestFreshIdToken(IdTokenCallback done)
{
    // The keychain has not been read yet, or a restored session is refreshing.
    if (d->state == State::Starting) {
        auto connection = std::make_shared<QMetaObject::Connection>();
        *connection = connect(this, &Session::started, this, [this, done, connection] {
            disconnect(*connection);
            requestFreshIdToken(done);
        });
        return;
    }
    if (d->tokens.isEmpty()) {
        done(d->currentIdToken());
        return;
    }
    if (needsRefreshBeforeUse(d->tokens.claims, QDateTime::currentDateTimeUtc())) {
        if (d->tokens.refreshToken.isEmpty()) {
            IdTokenResult result;
            result.needsLogin = true;
            result.errorMessage = QStringLiteral("The ID token expires soon and the provider "
                                                 "issued no refresh token; sign in again.");
            done(result);
            return;
        }
        d->idTokenRequests.push_back(std::move(done));
        d->refreshNow();
        return;
    }
    // A refresh or sign-in that has not finished writing to the keychain could still lose its
    // tokens if this process ended now.
    if (d->refreshing || d->pendingTokenWrites > 0) {
        d->idTokenRequests.push_back(std::move(done));
        return;
    }
    done(d->currentIdToken());
}

void Session::cancelSignIn()
{
    if (d->loginJob)
        d->loginJob->cancel();
}

Result<QUrl> Session::createLaunchUrl(const QString &appName)
{
    if (!d->proxy || d->proxy->port() == 0)
        return Error{QStringLiteral("The local proxy is not running, so apps cannot be opened. "
                                    "Start Lamplighter with the proxy enabled.")};
    Result<QByteArray> ticket = d->proxy->createLaunchTicket(appName);
    if (!ticket)
        return ticket.error();
    return d->proxy->launchUrl(appName, ticket.value());
}

void Session::signOut()
{
    cancelSignIn();
    if (d->proxy)
        d->proxy->endBrowserSessions();
    d->forgetTokens();
    qCInfo(lcSession) << "Signed out";
    d->setState(State::SignedOut);
    d->answerIdTokenRequests(d->currentIdToken());
}

void Session::signOutAndRemoveAllEntries(std::function<void(Result<int>)> done)
{
    cancelSignIn();
    if (d->proxy)
        d->proxy->endBrowserSessions();
    d->forgetTokens(false);
    d->newerTokensEntry.clear();
    qCInfo(lcSession) << "Signed out";
    d->setState(State::SignedOut);
    d->answerIdTokenRequests(d->currentIdToken());
    // The proxy key and this provider's tokens are named as well, because releases before the
    // entry index wrote them without listing them.
    const QStringList knownKeys{proxyKeyEntry, tokensEntry(d->config.provider)};
    d->store.removeAll(knownKeys, [done](Result<int> removed) {
        if (removed)
            qCInfo(lcStore) << "Removed" << removed.value() << "keychain entries";
        else
            qCWarning(lcStore).noquote() << removed.errorMessage();
        done(removed);
    });
}

Session::State Session::state() const
{
    return d->state;
}

QString Session::userName() const
{
    const QJsonValue value = d->tokens.claims.all().value(d->config.provider.userNameClaim);
    return value.isString() ? value.toString() : d->tokens.claims.subject;
}

QString Session::subject() const
{
    return d->tokens.claims.subject;
}

QString Session::proxyCertificatePath()
{
    return QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation) +
           QStringLiteral("/lamplighter/proxy-certificate.pem");
}

QStringList Session::groups() const
{
    const QJsonValue value = d->tokens.claims.all().value(d->config.provider.groupsClaim);
    if (value.isString())
        return {value.toString()};
    QStringList groups;
    for (const QJsonValue &group : value.toArray())
        groups.append(group.toString());
    return groups;
}

QDateTime Session::expiresAt() const
{
    return d->tokens.claims.expiresAt;
}

QString Session::errorMessage() const
{
    return d->error;
}

QDateTime Session::nextRetryAt() const
{
    return d->retryAt;
}

bool Session::tokensInMemoryOnly() const
{
    return d->store.isInMemoryOnly();
}

QString Session::tokensNotStoredReason() const
{
    if (d->store.isInMemoryOnly())
        return QStringLiteral("no keychain responded");
    return d->newerTokensEntry;
}

QString Session::kubeconfigPath() const
{
    return d->options.serveProxy ? d->options.kubeconfigPath : QString();
}

quint16 Session::proxyPort() const
{
    return d->proxy ? d->proxy->port() : 0;
}

QString Session::stateName(State state)
{
    switch (state) {
    case State::Starting:
        return QStringLiteral("starting");
    case State::SignedOut:
        return QStringLiteral("signed out");
    case State::SigningIn:
        return QStringLiteral("signing in");
    case State::SignedIn:
        return QStringLiteral("signed in");
    case State::Refreshing:
        return QStringLiteral("refreshing");
    case State::Offline:
        return QStringLiteral("offline");
    case State::Failed:
        return QStringLiteral("failed");
    }
    return QString();
}

} // namespace lamplighter
