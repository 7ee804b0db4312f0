#pragma once

#include "oidc/ProviderMetadata.h"
#include "util/Result.h"

#include <QObject>
#include <QPointer>
#include <QUrl>

class QNetworkAccessManager;
class QNetworkReply;

namespace lamplighter {

// Fetches and checks the issuer's discovery document (OpenID Connect Discovery 1.0). One object
// per fetch: start() it, wait for finished(), then read metadata() or error().
class Discovery : public QObject {
    Q_OBJECT
public:
    Discovery(QNetworkAccessManager *network, QUrl issuer, QObject *parent = nullptr);
    ~Discovery() override;

    // Starts the request. finished() is always emitted later, from the event loop.
    void start();
    // Stops the request. finished() is not emitted after this.
    void abort();

    bool isFinished() const { return m_finished; }
    bool failed() const { return !m_result.ok(); }
    Error error() const { return m_result.ok() ? Error{} : m_result.error(); }
    // Tells whether the failure may pass on a later try: a network error, HTTP 5xx or 429.
    bool isTransient() const { return m_transient; }
    // Valid only when the fetch succeeded.
    ProviderMetadata metadata() const
    {
        return m_result.ok() ? m_result.value() : ProviderMetadata{};
    }

    // Maximum size of a discovery document; real ones are a few KiB.
    static constexpr qint64 maxDocumentBytes = 1024 * 1024;

Q_SIGNALS:
    void finished();

private:
    void handleReply();
    void finish(Result<ProviderMetadata> result);

    QNetworkAccessManager *m_network;
    QUrl m_issuer;
    QUrl m_documentUrl;
    QPointer<QNetworkReply> m_reply;
    Result<ProviderMetadata> m_result{Error{QStringLiteral("The discovery has not finished.")}};
    bool m_transient = false;
    bool m_tooLarge = false;
    bool m_finished = false;
};

} // namespace lamplighter
