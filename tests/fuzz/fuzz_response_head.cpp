// libFuzzer target: the local proxy's handling of response heads from a cluster or an app. The
// input is the bytes an upstream server sends. The first byte describes the request that the
// response belongs to (HEAD or not, upgrade or not, HTTP/1.0 or 1.1) and sets the size of each
// read. The rest goes through HttpMessageParser as UpstreamConnection reads it, then through the
// rewriting of clientResponseHead(), clientUpgradeResponseHead() or clientInterimResponseHead()
// for the client.

#include "FuzzSupport.h"
#include "proxy/HttpMessageParser.h"
#include "proxy/ProxyHeaders.h"
#include "proxy/ProxyLimits.h"

#include <algorithm>
#include <cstdint>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

// At most this many interim (1xx) responses are read before the final one.
constexpr int kMaxInterimResponses = 8;

HttpMessageParser::Limits parserLimits()
{
    const ProxyLimits limits;
    return HttpMessageParser::Limits{limits.maxHeadBytes, limits.maxHeaderCount};
}

// Checks what every head to a client lacks, whatever its status: CORS grants and the proxy's
// session cookie.
void checkWithheldFields(const HttpHead &client)
{
    for (const HttpHeader &header : client.headers) {
        requireProperty(!header.name.toLower().startsWith("access-control-"),
                        "no Access-Control-* header from an upstream reaches a client");
        if (header.name.compare("Set-Cookie", Qt::CaseInsensitive) == 0) {
            const QByteArray name = header.value.left(header.value.indexOf('=')).trimmed();
            requireProperty(name.compare("lamplighter-session", Qt::CaseInsensitive) != 0,
                            "an upstream cannot set the proxy's session cookie");
        }
    }
}

void checkClientHead(const HttpHead &client, const HttpHead &response, HttpBodyFraming framing)
{
    checkWithheldFields(client);
    requireProperty(client.count("Transfer-Encoding") <= 1,
                    "a client response has at most one Transfer-Encoding");
    requireProperty(client.count("Content-Length") <= 1,
                    "a client response has at most one Content-Length");
    requireProperty(!(client.contains("Transfer-Encoding") && client.contains("Content-Length")),
                    "a client response never has both Transfer-Encoding and Content-Length");

    const QByteArray serialized = client.serializeResponse();
    HttpMessageParser reparser(HttpMessageParser::Type::Response,
                               HttpMessageParser::Limits{1024 * 1024, 1000});
    reparser.parse(serialized);
    requireProperty(!reparser.error().has_value(), "a rewritten response head parses again");
    requireProperty(reparser.isHeadComplete(), "a rewritten response head is complete");
    requireProperty(reparser.head().statusCode == response.statusCode,
                    "a rewritten response keeps its status code");
    if (framing == HttpBodyFraming::Chunked || framing == HttpBodyFraming::ContentLength) {
        requireProperty(reparser.head().framing == framing,
                        "a rewritten response is framed as the proxy sends its body");
    }
}

// Returns true when `value` contains a control character other than tab, which RFC 9110,
// section 5.5 excludes from field values. A folded line (obs-fold) would bring CR and LF in.
bool containsControlCharacter(const QByteArray &value)
{
    return std::any_of(value.begin(), value.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return (byte < 0x20 && byte != '\t') || byte == 0x7f;
    });
}

void checkParsedFieldValues(const HttpHead &head)
{
    for (const HttpHeader &header : head.headers) {
        requireProperty(!containsControlCharacter(header.value),
                        "the parser rejects control characters in field values",
                        header.name + ": " + header.value);
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    ensureApplication();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const bool headRequest = data[0] & 1;
    const bool upgradeRequest = data[0] & 2;
    const bool clientSpeaksHttp11 = !(data[0] & 4);
    const qsizetype readSize = 1 + (data[0] >> 3); // 1 to 32 bytes per read
    const QByteArrayView input(reinterpret_cast<const char *>(data) + 1,
                               static_cast<qsizetype>(size) - 1);

    HttpMessageParser parser(HttpMessageParser::Type::Response, parserLimits());
    parser.startNextMessage(headRequest);
    qsizetype offset = 0;
    int interimResponses = 0;
    while (offset < input.size()) {
        const qsizetype consumed =
            parser.parse(input.sliced(offset, std::min(readSize, input.size() - offset)));
        requireProperty(consumed >= 0, "the parser never consumes a negative count");
        offset += consumed;
        (void)parser.takeBody();
        if (parser.error())
            return 0;
        if (parser.isHeadComplete() && parser.head().statusCode / 100 == 1 &&
            parser.head().statusCode != 101) {
            if (++interimResponses > kMaxInterimResponses)
                return 0;
            checkWithheldFields(clientInterimResponseHead(parser.head()));
            parser.startNextMessage(headRequest);
            continue;
        }
        if (parser.isMessageComplete() || (consumed == 0 && parser.isHeadComplete()))
            break;
        if (consumed == 0)
            return 0;
    }
    if (!parser.isMessageComplete())
        parser.parseEndOfStream();
    if (!parser.isHeadComplete() || parser.error())
        return 0;

    const HttpHead &response = parser.head();
    checkParsedFieldValues(response);
    if (response.statusCode == 101) {
        // UpstreamConnection fails a 101 response to a request that did not ask to upgrade, or
        // without an Upgrade field, before it rewrites the head.
        if (!upgradeRequest || !response.contains("Upgrade"))
            return 0;
        const HttpHead client = clientUpgradeResponseHead(response);
        requireProperty(client.value("Upgrade") == response.value("Upgrade"),
                        "an upgrade response keeps its Upgrade field");
        requireProperty(client.tokens("Connection") == QList<QByteArray>{"upgrade"},
                        "an upgrade response names only Upgrade in Connection");
        checkWithheldFields(client);
        return 0;
    }

    // The framing towards the client follows ProxyConnection: a length or none as the server
    // sent it, otherwise chunks, or the end of the connection for an HTTP/1.0 client.
    HttpBodyFraming clientFraming = response.framing;
    if (clientFraming == HttpBodyFraming::Chunked || clientFraming == HttpBodyFraming::UntilClose)
        clientFraming = clientSpeaksHttp11 ? HttpBodyFraming::Chunked : HttpBodyFraming::UntilClose;
    const bool closeConnection =
        clientFraming == HttpBodyFraming::UntilClose || !response.keepAlive;
    const HttpHead client = clientResponseHead(response, clientFraming, closeConnection);
    checkClientHead(client, response, clientFraming);
    requireProperty(serializedClientResponseHead(response, clientFraming, closeConnection) ==
                        client.serializeResponse(),
                    "the head the proxy sends is the serialized client head");
    // Checked last, so that the checks above also run on heads with other status codes.
    requireProperty(response.statusCode >= 100 && response.statusCode <= 999,
                    "a parsed status code has three digits");
    return 0;
}
