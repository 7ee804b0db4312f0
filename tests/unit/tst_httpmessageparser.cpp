#include "proxy/HttpMessageParser.h"

#include <QTest>

using namespace lamplighter;

class TestHttpMessageParser : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void pipelinedRequestsStopAtMessageEnd();
    void requestSplitAcrossReads();
    void repeatedFieldsShareBytes();
    void repeatedFieldPrefixCopied();
    void chunkedBodyUnframed();
    void responseFraming_data();
    void responseFraming();
    void responseUntilCloseEndsAtEndOfStream();
    void trailerFieldsDropped();
    void valueWhitespaceRemoved();
    void invalidHeadRejected_data();
    void invalidHeadRejected();
};

void TestHttpMessageParser::pipelinedRequestsStopAtMessageEnd()
{
    const QByteArray first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    const QByteArray second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});

    QCOMPARE(parser.parse(first + second), first.size());
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().target, QByteArray("/a"));
    QCOMPARE(parser.parse(second), 0);

    parser.startNextMessage();
    QCOMPARE(parser.parse(second), second.size());
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().target, QByteArray("/b"));
    QCOMPARE(parser.head().method, QByteArray("GET"));
}

void TestHttpMessageParser::requestSplitAcrossReads()
{
    const QByteArray request =
        "POST /x HTTP/1.1\r\nHost: h\r\nX-Long-Name: some value\r\nContent-Length: 4\r\n\r\nbody";
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});
    QByteArray body;
    for (qsizetype i = 0; i < request.size(); ++i) {
        QCOMPARE(parser.parse(request.mid(i, 1)), 1);
        body += parser.takeBody();
    }
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().value("x-long-name"), QByteArray("some value"));
    QCOMPARE(parser.head().framing, HttpBodyFraming::ContentLength);
    QCOMPARE(parser.head().contentLength, 4);
    QCOMPARE(body, QByteArray("body"));
}

void TestHttpMessageParser::repeatedFieldsShareBytes()
{
    const QByteArray request = "GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer key\r\n\r\n";
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});
    QCOMPARE(parser.parse(request), request.size());
    const HttpHead first = parser.head();

    parser.startNextMessage();
    QCOMPARE(parser.parse(request), request.size());
    const HttpHead &second = parser.head();
    QCOMPARE(second.headers.size(), size_t(2));
    QCOMPARE(second.headers[1].name, QByteArray("Authorization"));
    QCOMPARE(second.headers[1].value, QByteArray("Bearer key"));
    // Shared bytes, not an equal copy.
    QCOMPARE(static_cast<const void *>(second.headers[1].name.constData()),
             static_cast<const void *>(first.headers[1].name.constData()));
    QCOMPARE(static_cast<const void *>(second.headers[1].value.constData()),
             static_cast<const void *>(first.headers[1].value.constData()));
}

// The first read ends inside a field name that starts like the previous message's. The shared
// start must become a copy of its own when the rest of the name arrives.
void TestHttpMessageParser::repeatedFieldPrefixCopied()
{
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});
    const QByteArray first = "GET /a HTTP/1.1\r\nHost: h\r\nX-Name: v\r\n\r\n";
    QCOMPARE(parser.parse(first), first.size());
    const HttpHead firstHead = parser.head();

    parser.startNextMessage();
    const QByteArray start = "GET /b HTTP/1.1\r\nHost: h\r\nX-Name";
    const QByteArray rest = "d: w\r\n\r\n";
    QCOMPARE(parser.parse(start), start.size());
    QCOMPARE(parser.parse(rest), rest.size());
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().headers[1].name, QByteArray("X-Named"));
    QCOMPARE(parser.head().headers[1].value, QByteArray("w"));
    QCOMPARE(firstHead.headers[1].name, QByteArray("X-Name"));
    QCOMPARE(firstHead.headers[1].value, QByteArray("v"));
}

void TestHttpMessageParser::chunkedBodyUnframed()
{
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});
    parser.parse("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().framing, HttpBodyFraming::Chunked);
    QCOMPARE(parser.takeBody(), QByteArray("abcde"));
}

void TestHttpMessageParser::responseFraming_data()
{
    QTest::addColumn<QByteArray>("response");
    QTest::addColumn<bool>("headRequest");
    QTest::addColumn<HttpBodyFraming>("framing");
    QTest::addColumn<bool>("complete");

    QTest::newRow("Content-Length") << QByteArray("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                    << false << HttpBodyFraming::ContentLength << true;
    QTest::newRow("chunked") << QByteArray("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                             << false << HttpBodyFraming::Chunked << false;
    QTest::newRow("HEAD with Content-Length")
        << QByteArray("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n") << true
        << HttpBodyFraming::None << true;
    QTest::newRow("204") << QByteArray("HTTP/1.1 204 No Content\r\n\r\n") << false
                         << HttpBodyFraming::None << true;
    QTest::newRow("304 with Content-Length")
        << QByteArray("HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\n") << false
        << HttpBodyFraming::None << true;
    QTest::newRow("no length") << QByteArray("HTTP/1.1 200 OK\r\n\r\nabc") << false
                               << HttpBodyFraming::UntilClose << false;
}

void TestHttpMessageParser::responseFraming()
{
    QFETCH(QByteArray, response);
    QFETCH(bool, headRequest);
    QFETCH(HttpBodyFraming, framing);
    QFETCH(bool, complete);

    HttpMessageParser parser(HttpMessageParser::Type::Response, {});
    parser.startNextMessage(headRequest);
    parser.parse(response);
    QVERIFY(!parser.error());
    QVERIFY(parser.isHeadComplete());
    QCOMPARE(parser.head().framing, framing);
    QCOMPARE(parser.isMessageComplete(), complete);
}

void TestHttpMessageParser::responseUntilCloseEndsAtEndOfStream()
{
    HttpMessageParser parser(HttpMessageParser::Type::Response, {});
    parser.parse("HTTP/1.1 200 OK\r\n\r\nabc");
    QVERIFY(!parser.isMessageComplete());
    parser.parseEndOfStream();
    QVERIFY(parser.isMessageComplete());
    QVERIFY(!parser.head().keepAlive);
    QCOMPARE(parser.takeBody(), QByteArray("abc"));
}

void TestHttpMessageParser::trailerFieldsDropped()
{
    HttpMessageParser parser(HttpMessageParser::Type::Response, {});
    parser.parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "1\r\na\r\n0\r\nX-Trailer: 1\r\n\r\n");
    QVERIFY(parser.isMessageComplete());
    QVERIFY(!parser.head().contains("X-Trailer"));
    QCOMPARE(parser.head().headers.size(), size_t(1));
}

void TestHttpMessageParser::valueWhitespaceRemoved()
{
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});
    parser.parse("GET / HTTP/1.1\r\nHost: a\r\nX-Note: \t two  words \t \r\nX-Empty: \t\r\n\r\n");
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().value("X-Note"), QByteArray("two  words"));
    QVERIFY(parser.head().contains("X-Empty"));
    QCOMPARE(parser.head().value("X-Empty"), QByteArray());
}

void TestHttpMessageParser::invalidHeadRejected_data()
{
    QTest::addColumn<bool>("request");
    QTest::addColumn<QByteArray>("message");
    QTest::addColumn<QString>("reason");

    // http_parser 2.9 checks a value's bytes only from the second one on.
    QTest::newRow("control character first in a request value")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-Note:\x1dvalue\r\n\r\n")
        << QStringLiteral("request has a control character in a header value");
    QTest::newRow("control character first in a response value")
        << false << QByteArray("HTTP/1.1 200 OK\r\nX-Note: \x7fvalue\r\nContent-Length: 0\r\n\r\n")
        << QStringLiteral("response has a control character in a header value");
    // Only spaces and tabs around a value are removed, so a vertical tab there stays and is
    // refused.
    QTest::newRow("vertical tab first in a value")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-Note:\x0b value\r\n\r\n")
        << QStringLiteral("request has a control character in a header value");
    QTest::newRow("status code 0")
        << false << QByteArray("HTTP/1.1 0 OK\r\nContent-Length: 0\r\n\r\n")
        << QStringLiteral("response has an invalid status code");
}

void TestHttpMessageParser::invalidHeadRejected()
{
    QFETCH(bool, request);
    QFETCH(QByteArray, message);
    QFETCH(QString, reason);

    HttpMessageParser parser(
        request ? HttpMessageParser::Type::Request : HttpMessageParser::Type::Response, {});
    parser.parse(message);
    QVERIFY(parser.error().has_value());
    QCOMPARE(parser.error()->reason, reason);
}

QTEST_GUILESS_MAIN(TestHttpMessageParser)
#include "tst_httpmessageparser.moc"
