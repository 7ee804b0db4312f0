#pragma once

#include <QByteArray>
#include <QHash>
#include <QJsonObject>
#include <QList>
#include <QObject>
#include <QSslCertificate>
#include <QSslServer>
#include <QString>
#include <QUrl>
#include <QUrlQuery>
#include <functional>

namespace lamplighter::test {

// An HTTPS server on 127.0.0.1 that plays an OpenID provider's endpoints in unit tests. Each path
// has a handler; a path without one gets 404. It reads one request per connection and closes the
// connection after the response. The real provider runs in the integration test.
class ProviderDouble : public QObject {
    Q_OBJECT
public:
    struct Request {
        QByteArray method;
        QString path;
        QByteArray contentType;
        QByteArray body;
        // The body parsed as application/x-www-form-urlencoded.
        QUrlQuery form() const;
    };
    struct Response {
        int status = 200;
        QByteArray body;
        QByteArray contentType = "application/json";
        QByteArray location;               // sent as a Location header when set
        bool closeWithoutResponse = false; // drops the connection instead of responding
    };
    using Handler = std::function<Response(const Request &)>;

    explicit ProviderDouble(QObject *parent = nullptr);

    // Creates a test PKI with tests/fixtures/make-test-pki.sh in pkiDirectory and listens with
    // its provider certificate. Returns an empty string or the reason it failed.
    QString start(const QString &pkiDirectory);

    // https://127.0.0.1:<port>
    QString issuer() const;
    QUrl url(const QString &path) const;
    QSslCertificate caCertificate() const { return m_caCertificate; }

    void setHandler(const QString &path, Handler handler);
    void setJson(const QString &path, const QJsonObject &object, int status = 200);
    // Serves a discovery document at /.well-known/openid-configuration whose endpoints point at
    // this server (/authorize, /token, /jwks), with every key of overrides replacing the default.
    // A key whose value is null is left out.
    void serveDiscovery(const QJsonObject &overrides = {});

    QList<Request> requests() const { return m_requests; }
    QList<Request> requestsTo(const QString &path) const;

private:
    void handleConnection();
    void readRequest(QSslSocket *socket);
    void respond(QSslSocket *socket, const Request &request);

    QSslServer m_server;
    QSslCertificate m_caCertificate;
    QHash<QString, Handler> m_handlers;
    QHash<QSslSocket *, QByteArray> m_buffers;
    QList<Request> m_requests;
};

} // namespace lamplighter::test
