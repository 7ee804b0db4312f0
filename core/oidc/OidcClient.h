#pragma once

#include "config/Config.h"
#include "oidc/BrowserLauncher.h"
#include "oidc/ProviderMetadata.h"
#include "oidc/TokenSet.h"
#include "util/Result.h"

#include <QObject>
#include <QPointer>
#include <QStringList>
#include <functional>
#include <optional>
#include <vector>

class QNetworkAccessManager;

namespace lamplighter {

class Discovery;
class IdTokenVerifier;
class LoginJob;
class RefreshJob;

// The OpenID Connect client for one provider. It owns the network access manager for the
// provider (which trusts the system CAs plus oidc.ca_file), fetches the discovery document once
// and keeps it, and creates the jobs that sign in and refresh.
class OidcClient : public QObject {
    Q_OBJECT
public:
    explicit OidcClient(ProviderConfig config, QObject *parent = nullptr);
    ~OidcClient() override;

    // Sets how the desktop's browser is opened when login.browser is empty. The application sets
    // one that calls QDesktopServices::openUrl; tests set one that records the URL.
    void setUrlOpener(UrlOpener opener);
    UrlOpener urlOpener() const { return m_urlOpener; }

    // Creates a job that signs the person in through the browser. The job is a child of this
    // client; the caller starts it and may delete it after finished().
    LoginJob *login(const LoginConfig &config);
    // Creates a job that exchanges current's refresh token for new tokens. The job is a child of
    // this client; the caller starts it and may delete it after finished().
    RefreshJob *refresh(const TokenSet &current);

    const ProviderConfig &config() const { return m_config; }
    // The configured scopes with "openid" first, each once.
    QStringList scopes() const;
    QNetworkAccessManager *network() const { return m_network; }

    // Calls done with the provider's metadata. The first call fetches the discovery document;
    // later calls reuse it, or join the fetch in progress. A failed fetch is not kept, so the next
    // call tries again. done is always called from the event loop, never from within this
    // function, and not at all when receiver is destroyed first.
    void fetchMetadata(QObject *receiver,
                       std::function<void(const Result<ProviderMetadata> &)> done);
    // The discovered metadata; nullopt until a fetch has succeeded.
    std::optional<ProviderMetadata> metadata() const { return m_metadata; }
    // Whether the last failed fetch of the metadata may pass on its own (the provider was
    // unreachable, or returned 5xx or 429), as Discovery::isTransient() reports.
    bool lastMetadataFailureTransient() const { return m_lastMetadataFailureTransient; }
    // The verifier for the provider's ID tokens; null until a fetch of the metadata has succeeded.
    IdTokenVerifier *idTokenVerifier() const { return m_verifier; }

private:
    struct MetadataRequest {
        QPointer<QObject> receiver;
        std::function<void(const Result<ProviderMetadata> &)> done;
    };

    void handleDiscovery();

    ProviderConfig m_config;
    QNetworkAccessManager *m_network;
    UrlOpener m_urlOpener;
    std::optional<ProviderMetadata> m_metadata;
    IdTokenVerifier *m_verifier = nullptr;
    Discovery *m_discovery = nullptr;
    bool m_lastMetadataFailureTransient = false;
    std::vector<MetadataRequest> m_metadataRequests;
};

} // namespace lamplighter
