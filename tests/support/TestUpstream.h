#pragma once

#include "proxy/HttpHead.h"
#include "proxy/UpstreamCluster.h"
#include "tls/LocalCertificate.h"

#include <QList>
#include <QObject>
#include <QSslServer>
#include <QUrl>

class TestUpstreamConnection;

// A request as the test API server received it.
struct RecordedRequest {
    int connectionId = 0;
    lamplighter::HttpHead head;
    QByteArray body;       // the bytes received so far, without chunk framing
    bool complete = false; // the whole body has arrived
};

// A small HTTPS API server for proxy tests, on 127.0.0.1 with a certificate of its own. It
// records every request and responds according to the path (the query is ignored):
//   /api        the APIVersions object kubectl expects, with Content-Length
//   /echo       200 with the request body as the response body, after the whole body arrived
//   /stream     a chunked watch stream: one event at once, one more on each
//               releaseStreamEvent(), and the end on finishStream()
//   /large      a chunked body of largeBodyBytes() bytes, written only as fast as the socket
//               drains, so the test can see how much the reader has taken
//   /close      200 with "Connection: close", then the server closes the connection
//   /close-unanswered  the server closes the connection without a response
//   /close-unanswered-on-reuse  the same on a connection that carried a request before. A
//               server does this when it closes an idle connection while a request is on its
//               way. The first request on a connection gets the small JSON object.
//   /extra-response  a 200 response of exactly 64 KiB, the proxy's read size, followed in the
//               same write by a second response that no request asked for
//   .../early-hints  103 Early Hints, then 200, both with Access-Control-Allow-Origin, and the
//               103 with a Set-Cookie of the proxy's session cookie
//   other paths 200 with a small JSON object naming the path
class TestUpstream : public QObject {
    Q_OBJECT
public:
    explicit TestUpstream(QObject *parent = nullptr);
    ~TestUpstream() override;

    bool listen();
    quint16 port() const { return m_server.serverPort(); }
    QUrl url() const;
    const lamplighter::LocalCertificate &certificate() const { return m_certificate; }
    // Returns a cluster that points at this server and trusts its certificate.
    lamplighter::UpstreamCluster cluster(const QString &name) const;

    const QList<RecordedRequest> &requests() const { return m_requests; }
    int connectionCount() const { return m_connectionCount; }
    // The connections that neither side has closed yet.
    int openConnectionCount() const;
    // Closes every connection, as a server does with connections that stayed idle too long.
    void closeConnections();

    void releaseStreamEvent();
    void finishStream();
    int streamEventsSent() const { return m_streamEventsSent; }

    void setLargeBodyBytes(qint64 bytes) { m_largeBodyBytes = bytes; }
    qint64 largeBodyBytes() const { return m_largeBodyBytes; }
    qint64 largeBodyBytesWritten() const { return m_largeBodyBytesWritten; }

    // Returns the byte at `offset` of the /large body, a pattern the reader can check.
    static char largeBodyByte(qint64 offset);
    static QByteArray streamEvent(int index);

Q_SIGNALS:
    void requestHeadReceived();

private:
    friend class TestUpstreamConnection;

    void acceptConnections();

    lamplighter::LocalCertificate m_certificate;
    QSslServer m_server;
    QList<RecordedRequest> m_requests;
    QList<TestUpstreamConnection *> m_streamConnections;
    int m_connectionCount = 0;
    int m_streamEventsSent = 0;
    qint64 m_largeBodyBytes = 8 * 1024 * 1024;
    qint64 m_largeBodyBytesWritten = 0;
};
