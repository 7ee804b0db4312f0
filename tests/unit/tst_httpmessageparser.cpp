#include "proxy/HttpMessageParser.h"
#include "proxy/KubernetesStatus.h"

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
    void chunkedBodySplitAcrossReads();
    void splitHeadFollowedByNextRequest();
    void longChunkLineRejected();
    void headLimitCoversEarlierReads_data();
    void headLimitCoversEarlierReads();
    void emptyLinesBeforeRequestSkipped();
    void responseFraming_data();
    void responseFraming();
    void responseUntilCloseEndsAtEndOfStream();
    void trailerFieldsDropped();
    void valueWhitespaceRemoved();
    void invalidHeadRejected_data();
    void proxyResponseStatusLine_data();
    void proxyResponseStatusLine();
    void invalidHeadRejected();
    void requestVersionStatus_data();
    void requestVersionStatus();
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

void TestHttpMessageParser::chunkedBodySplitAcrossReads()
{
    const QByteArray response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n";
    HttpMessageParser parser(HttpMessageParser::Type::Response, {});
    QByteArray body;
    for (qsizetype i = 0; i < response.size(); ++i) {
        QCOMPARE(parser.parse(response.mid(i, 1)), 1);
        body += parser.takeBody();
    }
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(body, QByteArray("abcde"));
}

// A head that arrives in two reads is held between them, and the second read's bytes after the
// first message stay with the caller.
void TestHttpMessageParser::splitHeadFollowedByNextRequest()
{
    const QByteArray first = "GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
    const QByteArray second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});

    QCOMPARE(parser.parse(first.first(20)), 20);
    QVERIFY(!parser.isHeadComplete());
    QCOMPARE(parser.parse(first.sliced(20) + second), first.size() - 20);
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().target, QByteArray("/a"));
    QCOMPARE(parser.head().value("Accept"), QByteArray("*/*"));

    parser.startNextMessage();
    QCOMPARE(parser.parse(second), second.size());
    QCOMPARE(parser.head().target, QByteArray("/b"));
}

// A chunk size line that never ends must not make the parser hold bytes without bound.
void TestHttpMessageParser::longChunkLineRejected()
{
    HttpMessageParser parser(HttpMessageParser::Type::Request, {1024, 100});
    parser.parse("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    QVERIFY(parser.isHeadComplete());
    const QByteArray extension(100, 'x');
    for (int i = 0; i < 20 && !parser.error(); ++i)
        parser.parse(extension);
    QVERIFY(parser.error().has_value());
    QCOMPARE(parser.error()->statusCode, 400);
    QCOMPARE(parser.error()->reason,
             QStringLiteral("request has a chunk line or trailer section longer than 1024 bytes"));
}

void TestHttpMessageParser::headLimitCoversEarlierReads_data()
{
    QTest::addColumn<qsizetype>("firstRead");

    QTest::newRow("one read") << qsizetype(-1);
    QTest::newRow("fields cut after 900 bytes") << qsizetype(900);
    QTest::newRow("cut inside the start line") << qsizetype(10);
    QTest::newRow("cut just inside the limit") << qsizetype(1000);
}

// Beast keeps the fields of the first read, so the limit must count them when the rest comes.
void TestHttpMessageParser::headLimitCoversEarlierReads()
{
    QFETCH(qsizetype, firstRead);

    const QByteArray head =
        "GET /a HTTP/1.1\r\nHost: h\r\n" +
        QByteArray("X-Field: 0123456789012345678901234567890123456789\r\n").repeated(28) + "\r\n";
    QVERIFY(head.size() > 1024);
    HttpMessageParser parser(HttpMessageParser::Type::Request, {1024, 100});
    if (firstRead < 0) {
        parser.parse(head);
    } else {
        QCOMPARE(parser.parse(head.first(firstRead)), firstRead);
        parser.parse(head.sliced(firstRead));
    }
    QVERIFY(!parser.isHeadComplete());
    QVERIFY(parser.error().has_value());
    QCOMPARE(parser.error()->statusCode, 431);
}

void TestHttpMessageParser::emptyLinesBeforeRequestSkipped()
{
    const QByteArray first = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx";
    const QByteArray second = "\r\n\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    HttpMessageParser parser(HttpMessageParser::Type::Request, {});
    QCOMPARE(parser.parse(first + second), first.size());
    QCOMPARE(parser.takeBody(), QByteArray("x"));

    parser.startNextMessage();
    QCOMPARE(parser.parse(second.first(1)), 1);
    QCOMPARE(parser.parse(second.sliced(1)), second.size() - 1);
    QVERIFY(!parser.error().has_value());
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().target, QByteArray("/b"));
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

    const QString badRequestValue = QStringLiteral("invalid HTTP request: bad value");
    QTest::newRow("control character first in a request value")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-Note:\x1dvalue\r\n\r\n")
        << badRequestValue;
    QTest::newRow("control character first in a response value")
        << false << QByteArray("HTTP/1.1 200 OK\r\nX-Note: \x7fvalue\r\nContent-Length: 0\r\n\r\n")
        << QStringLiteral("invalid HTTP response: bad value");
    QTest::newRow("vertical tab first in a value")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-Note:\x0b value\r\n\r\n")
        << badRequestValue;
    QTest::newRow("null byte in a value")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-Note: a\0b\r\n\r\n", 40)
        << badRequestValue;
    QTest::newRow("carriage return alone in a value")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-Note: a\rb\r\n\r\n")
        << QStringLiteral("invalid HTTP request: bad line ending");
    QTest::newRow("line feed alone in a value")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-Note: a\nX-Other: b\r\n\r\n")
        << badRequestValue;
    // Another server may read "Name : value" as the field "Name".
    QTest::newRow("space before the colon")
        << true << QByteArray("GET / HTTP/1.1\r\nHost : a\r\n\r\n")
        << QStringLiteral("invalid HTTP request: bad field");
    QTest::newRow("name with a character outside tokens")
        << true << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX@Note: b\r\n\r\n")
        << QStringLiteral("invalid HTTP request: bad field");
    QTest::newRow("status code 0")
        << false << QByteArray("HTTP/1.1 0 OK\r\nContent-Length: 0\r\n\r\n")
        << QStringLiteral("invalid HTTP response: bad status");
    QTest::newRow("status code 099")
        << false << QByteArray("HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n")
        << QStringLiteral("response has an invalid status code");
    QTest::newRow("status code 600")
        << false << QByteArray("HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n")
        << QStringLiteral("response has an invalid status code");
    // The target goes on in the request line to the cluster, so nothing in it may end that line.
    QTest::newRow("control character in the target")
        << true << QByteArray("GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n")
        << QStringLiteral("invalid HTTP request: bad target");
    QTest::newRow("delete character in the target")
        << true << QByteArray("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n")
        << QStringLiteral("invalid HTTP request: bad target");
    QTest::newRow("carriage return in the target")
        << true << QByteArray("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n")
        << QStringLiteral("invalid HTTP request: bad target");
    QTest::newRow("Content-Length list")
        << true << QByteArray("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx")
        << QStringLiteral("request has an invalid Content-Length");
    QTest::newRow("Content-Length of 2^63")
        << true
        << QByteArray("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n")
        << QStringLiteral("request has an invalid Content-Length");
    QTest::newRow("response Content-Length of 2^64 - 1")
        << false << QByteArray("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n")
        << QStringLiteral("response has an invalid Content-Length");
    QTest::newRow("two equal Content-Length fields")
        << true
        << QByteArray(
               "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
        << QStringLiteral("request has more than one Content-Length");
    QTest::newRow("too many fields") << true
                                     << QByteArray("GET / HTTP/1.1\r\nHost: a\r\n" +
                                                   QByteArray("X-A: b\r\n").repeated(100) + "\r\n")
                                     << QStringLiteral("request has more than 100 header fields");
    QTest::newRow("head over the limit")
        << true
        << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-A: " + QByteArray(70 * 1024, 'b') +
                      "\r\n\r\n")
        << QStringLiteral("request head is larger than 65536 bytes");
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

void TestHttpMessageParser::proxyResponseStatusLine_data()
{
    QTest::addColumn<int>("code");
    QTest::addColumn<QByteArray>("reasonPhrase");

    QTest::newRow("404") << 404 << QByteArray("Not Found");
    QTest::newRow("431") << 431 << QByteArray("Request Header Fields Too Large");
    QTest::newRow("502") << 502 << QByteArray("Bad Gateway");
    // RFC 9112, section 4, lets the reason phrase be empty, and Beast has none for 299.
    QTest::newRow("299") << 299 << QByteArray();
}

// The proxy's own responses carry the standard reason phrase, and parse again.
void TestHttpMessageParser::proxyResponseStatusLine()
{
    QFETCH(int, code);
    QFETCH(QByteArray, reasonPhrase);

    const QByteArray response =
        KubernetesStatus(code, QStringLiteral("Rejected.")).toHttpResponse(true);
    HttpMessageParser parser(HttpMessageParser::Type::Response, {});
    parser.parse(response);
    QVERIFY(!parser.error().has_value());
    QVERIFY(parser.isMessageComplete());
    QCOMPARE(parser.head().statusCode, code);
    QCOMPARE(parser.head().reasonPhrase, reasonPhrase);
}

void TestHttpMessageParser::requestVersionStatus_data()
{
    QTest::addColumn<QByteArray>("message");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("reason");

    const QString otherMajor = QStringLiteral("request uses HTTP/%1, and only HTTP/1.1 and "
                                              "HTTP/1.0 are supported");
    QTest::newRow("HTTP/2.0") << QByteArray("GET / HTTP/2.0\r\nHost: a\r\n\r\n") << 505
                              << otherMajor.arg(2);
    QTest::newRow("prior-knowledge HTTP/2 preface")
        << QByteArray("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") << 505 << otherMajor.arg(2);
    QTest::newRow("HTTP/3.0") << QByteArray("GET / HTTP/3.0\r\nHost: a\r\n\r\n") << 505
                              << otherMajor.arg(3);
    QTest::newRow("HTTP/0.9") << QByteArray("GET / HTTP/0.9\r\nHost: a\r\n\r\n") << 505
                              << otherMajor.arg(0);
    QTest::newRow("HTTP/1.2") << QByteArray("GET / HTTP/1.2\r\nHost: a\r\n\r\n") << 400
                              << QStringLiteral("invalid HTTP request: bad version");
    QTest::newRow("two-digit major") << QByteArray("GET / HTTP/11.1\r\nHost: a\r\n\r\n") << 400
                                     << QStringLiteral("invalid HTTP request: bad version");
}

// A request in another major version gets 505 (HTTP Version Not Supported) rather than 400.
void TestHttpMessageParser::requestVersionStatus()
{
    QFETCH(QByteArray, message);
    QFETCH(int, code);
    QFETCH(QString, reason);

    HttpMessageParser whole(HttpMessageParser::Type::Request, {});
    whole.parse(message);
    QVERIFY(whole.error().has_value());
    QCOMPARE(whole.error()->statusCode, code);
    QCOMPARE(whole.error()->reason, reason);

    // Beast checks the version as soon as the first read contains it, and later reads come after
    // bytes kept from earlier ones, so the status must not depend on where a read ends.
    for (qsizetype split = 1; split < message.size(); ++split) {
        HttpMessageParser twoReads(HttpMessageParser::Type::Request, {});
        twoReads.parse(QByteArrayView(message).first(split));
        if (!twoReads.error())
            twoReads.parse(QByteArrayView(message).sliced(split));
        QVERIFY2(twoReads.error().has_value(), qPrintable(QString::number(split)));
        QCOMPARE(twoReads.error()->statusCode, code);
        QCOMPARE(twoReads.error()->reason, reason);
    }
}

QTEST_GUILESS_MAIN(TestHttpMessageParser)
#include "tst_httpmessageparser.moc"
