#pragma once

#include "clusterproxy/ClusterProxyConfig.h"
#include "clusterproxy/ClusterProxyMetrics.h"
#include "clusterproxy/VerifiedTokenCache.h"
#include "proxy/RequestGate.h"
#include "proxy/UpstreamCluster.h"

#include <QByteArray>
#include <QDateTime>
#include <QHash>
#include <QJsonObject>
#include <QObject>
#include <QStringList>

namespace lamplighter {

class ClaimSet;
class IdTokenVerifier;
class NamespaceLister;

// Maps verified claims to the person, with the configured claim names and prefixes. Fails when
// the user name claim is missing or not a string, or the groups claim is not a list of strings.
Result<Impersonation> impersonationFromClaims(const ClaimSet &claims,
                                              const ClusterProxyConfig &config);

// Admits requests to the cluster proxy: each must carry an ID token of the configured issuer as
// its bearer token. The token is verified (signature, issuer, audience, times, algorithm,
// required claims) and the request goes to the API server with the proxy's service account
// token and Impersonate-* fields for the person. Verified tokens are remembered by their SHA-256
// until they expire, so a busy client costs one signature check per token. It also responds to
// /healthz, /readyz and /metrics itself.
class ImpersonatingGate : public QObject, public RequestGate {
    Q_OBJECT
public:
    ImpersonatingGate(const ClusterProxyConfig &config,
                      IdTokenVerifier *verifier,
                      QObject *parent = nullptr);

    void admit(const HttpHead &request, Decide decide) override;

    // Sets the verifier of ID tokens, once the issuer's discovery has found its keys. Without
    // one, requests get 503.
    void setVerifier(IdTokenVerifier *verifier);
    // Sets what finds the namespaces of people who may not list them; without one, namespace
    // listing is off.
    void setNamespaceLister(NamespaceLister *lister) { m_lister = lister; }
    // Sets the service account token sent to the API server, read from its projected file.
    void setServiceAccountToken(const QByteArray &token);
    // Marks the issuer's keys as loaded, which /readyz reports.
    void setKeysLoaded(bool loaded) { m_keysLoaded = loaded; }
    // Sets the reason the API server cannot be used, reported by /readyz, or an empty string
    // once it responds.
    void setApiServerProblem(const QString &problem) { m_apiServerProblem = problem; }
    const UpstreamCluster &apiServer() const { return m_apiServer; }

    // The counters that GET /metrics renders; the owner adds the responses to them.
    ClusterProxyMetrics &metrics() { return m_metrics; }
    // Counts of verification cache lookups.
    quint64 cacheHits() const { return m_metrics.cacheHits(); }
    quint64 cacheMisses() const { return m_metrics.cacheMisses(); }

private:
    void admitPerson(const HttpHead &request, const Impersonation &person, Decide decide);
    void admitRequestedImpersonation(const HttpHead &request,
                                     const Impersonation &person,
                                     const Impersonation &requested,
                                     Decide decide);
    RequestAdmission forward(const HttpHead &request, const Impersonation &person) const;
    Result<Impersonation> checkVerifiedClaims(const ClaimSet &claims) const;

    ClusterProxyConfig m_config;
    IdTokenVerifier *m_verifier;
    NamespaceLister *m_lister = nullptr;
    UpstreamCluster m_apiServer;
    QByteArray m_serviceAccountToken;
    QByteArray m_serviceAccountAuthorization; // "Bearer <token>"
    QByteArray m_targetPrefix;
    bool m_keysLoaded = false;
    QString m_apiServerProblem = QStringLiteral("the API server has not been reached yet");
    VerifiedTokenCache m_verified;
    ClusterProxyMetrics m_metrics;
};

} // namespace lamplighter
