#include "oidc/OidcClient.h"

#include "oidc/Discovery.h"
#include "oidc/IdTokenVerifier.h"
#include "oidc/LoginJob.h"
#include "oidc/ProviderNetworkAccessManager.h"
#include "oidc/RefreshJob.h"

#include <utility>

namespace lamplighter {

OidcClient::OidcClient(ProviderConfig config, QObject *parent)
    : QObject(parent)
    , m_config(std::move(config))
    , m_network(new ProviderNetworkAccessManager(m_config.caCertificates, this))
{}

OidcClient::~OidcClient() = default;

void OidcClient::setUrlOpener(UrlOpener opener)
{
    m_urlOpener = std::move(opener);
}

LoginJob *OidcClient::login(const LoginConfig &config)
{
    return new LoginJob(this, config);
}

RefreshJob *OidcClient::refresh(const TokenSet &current)
{
    return new RefreshJob(this, current);
}

QStringList OidcClient::scopes() const
{
    QStringList scopes{QStringLiteral("openid")};
    for (const QString &scope : m_config.scopes) {
        if (!scope.isEmpty() && !scopes.contains(scope))
            scopes.append(scope);
    }
    return scopes;
}

void OidcClient::fetchMetadata(QObject *receiver,
                               std::function<void(const Result<ProviderMetadata> &)> done)
{
    if (m_metadata) {
        QMetaObject::invokeMethod(
            receiver,
            [done = std::move(done), metadata = *m_metadata] { done(metadata); },
            Qt::QueuedConnection);
        return;
    }

    m_metadataRequests.push_back(MetadataRequest{receiver, std::move(done)});
    if (m_discovery)
        return;
    m_discovery = new Discovery(m_network, m_config.issuer, this);
    connect(m_discovery, &Discovery::finished, this, &OidcClient::handleDiscovery);
    m_discovery->start();
}

void OidcClient::handleDiscovery()
{
    Discovery *discovery = std::exchange(m_discovery, nullptr);
    discovery->deleteLater();

    Result<ProviderMetadata> result = discovery->failed()
                                          ? Result<ProviderMetadata>(discovery->error())
                                          : Result<ProviderMetadata>(discovery->metadata());
    m_lastMetadataFailureTransient = discovery->failed() && discovery->isTransient();
    if (result.ok()) {
        m_metadata = result.value();
        m_verifier = new IdTokenVerifier(m_network, m_metadata->jwksUri, this);
        // Every ID token this client verifies comes from the token endpoint over TLS. A key id that
        // the set lacks therefore means the provider has rotated its keys, so the set is fetched
        // again at once rather than failing the sign-in or refresh.
        m_verifier->setMinimumRefetchInterval(std::chrono::seconds(0));
    }

    // A callback may ask for the metadata again or delete its receiver, so it runs on a copy.
    const std::vector<MetadataRequest> requests = std::exchange(m_metadataRequests, {});
    for (const MetadataRequest &request : requests) {
        if (request.receiver)
            request.done(result);
    }
}

} // namespace lamplighter
