// libFuzzer target: the local proxy's handling of a client's request heads. The input is the
// bytes a client sends. They go through HttpMessageParser as ProxyConnection reads them, then
// through admitRequest() (Host, Origin, session key, routes, upgrades, app sessions) and, for
// forwarded requests, the header rewriting of ProxyHeaders.
//
// Placeholders in the input stand for secrets generated at run time: @SESSION_KEY@, @COOKIE@ (an
// issued lamplighter-session cookie value) and @TICKET@ (a fresh launch ticket for the app
// "headlamp").

#include "FuzzSupport.h"
#include "proxy/HttpMessageParser.h"
#include "proxy/ProxyHeaders.h"
#include "proxy/ProxySettings.h"
#include "proxy/RequestAdmission.h"

#include <QDateTime>
#include <algorithm>
#include <cstdint>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

constexpr int kMaxMessagesPerInput = 4;

// Random secrets, so that the only way an input can contain one is through a placeholder.
QByteArray randomSecret()
{
    return BrowserSessions().createCookieValue().value_or(QByteArray());
}

struct Fixture {
    ProxySettings settings;
    QDateTime now = QDateTime::currentDateTimeUtc();

    Fixture()
    {
        settings.sessionKey = randomSecret();
        settings.idToken = "eyJ.fuzz-id-token." + randomSecret();
        settings.idTokenExpiresAt = now.addSecs(3600);
        settings.port = 8443;
        settings.clusters.push_back(
            UpstreamCluster{QStringLiteral("prod"),
                            QUrl(QStringLiteral("https://api.prod.example.test:6443/prefix")),
                            {}});
        settings.clusters.push_back(
            UpstreamCluster{QStringLiteral("dev"), QUrl(QStringLiteral("https://10.0.0.1")), {}});
        settings.apps.push_back(
            UpstreamApp{QStringLiteral("headlamp"),
                        UpstreamCluster{QStringLiteral("apps/headlamp"),
                                        QUrl(QStringLiteral("https://headlamp.example.test/base")),
                                        {}},
                        true,
                        AppTokenHeader::Authorization});
        settings.apps.push_back(
            UpstreamApp{QStringLiteral("dashboard"),
                        UpstreamCluster{QStringLiteral("apps/dashboard"),
                                        QUrl(QStringLiteral("https://dashboard.example.test")),
                                        {}},
                        true,
                        AppTokenHeader::XForwardedIdToken});
        settings.apps.push_back(
            UpstreamApp{QStringLiteral("plain"),
                        UpstreamCluster{QStringLiteral("apps/plain"),
                                        QUrl(QStringLiteral("https://plain.example.test:8443")),
                                        {}},
                        false,
                        AppTokenHeader::Authorization});
    }
};

Fixture &fixture()
{
    static Fixture instance;
    return instance;
}

HttpMessageParser::Limits parserLimits()
{
    const ProxyLimits limits;
    return HttpMessageParser::Limits{limits.maxHeadBytes, limits.maxHeaderCount};
}

bool sameHead(const HttpHead &a, const HttpHead &b)
{
    if (a.method != b.method || a.target != b.target || a.versionMinor != b.versionMinor ||
        a.framing != b.framing || a.keepAlive != b.keepAlive ||
        a.headers.size() != b.headers.size())
        return false;
    if (a.framing == HttpBodyFraming::ContentLength && a.contentLength != b.contentLength)
        return false;
    for (std::size_t i = 0; i < a.headers.size(); ++i) {
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value)
            return false;
    }
    return true;
}

// Parses `data` one byte per call, as a slow client would send it, until the parser stops at the
// end of the message or at an error.
void parseBytewise(HttpMessageParser &parser, QByteArrayView data, QByteArray *body)
{
    for (qsizetype i = 0; i < data.size(); ++i) {
        if (parser.parse(data.sliced(i, 1)) == 0)
            break;
        *body += parser.takeBody();
    }
}

bool isImpersonationHeader(const QByteArray &name)
{
    return name.toLower().replace('_', '-').startsWith("impersonate-");
}

// Returns true when kube-apiserver would read a bearer token from this Sec-WebSocket-Protocol
// value. Its websocket authenticator (k8s.io/apiserver, request/websocket/protocol.go) splits the
// value at commas and trims each entry with Go's strings.TrimSpace, which also removes Unicode
// spaces such as U+00A0; QString::trimmed() removes the same set.
bool hasBearerSubprotocol(const QByteArray &value)
{
    const QList<QByteArray> entries = value.split(',');
    return std::any_of(entries.begin(), entries.end(), [](const QByteArray &entry) {
        return QString::fromUtf8(entry).trimmed().startsWith(
            QLatin1String("base64url.bearer.authorization.k8s.io."), Qt::CaseInsensitive);
    });
}

// Returns the cookie names of a Cookie field as Go's net/http reads them (Headlamp's server is
// written in Go): the pairs between semicolons, trimmed, up to their first "=".
QList<QByteArray> cookieNames(const QByteArray &value)
{
    QList<QByteArray> names;
    for (const QByteArray &pair : value.split(';')) {
        const QByteArray trimmed = pair.trimmed();
        const qsizetype equals = trimmed.indexOf('=');
        names.append((equals < 0 ? trimmed : trimmed.left(equals)).trimmed());
    }
    return names;
}

bool containsSecret(const QString &text, const QByteArray &secret)
{
    return text.contains(QString::fromLatin1(secret));
}

void checkNoSecretInResponse(const RequestAdmission &admission, const QByteArray &idToken)
{
    requireProperty(!containsSecret(admission.logReason, idToken),
                    "the log reason of an admission never contains the ID token");
    if (admission.rejection) {
        requireProperty(!containsSecret(admission.rejection->message(), idToken),
                        "a rejection never contains the ID token");
    }
    if (admission.browserResponse) {
        const QByteArray response = admission.browserResponse->toHttpResponse(false);
        requireProperty(!response.contains(idToken),
                        "a response of the proxy's own never contains the ID token");
    }
}

// Checks the head that goes to a cluster or an app: only the proxy's own credential, no
// client-supplied impersonation, no bearer token subprotocol, and a head that parses again.
void checkUpstreamHead(const HttpHead &upstream, const QByteArray &idToken, bool toApp)
{
    const bool upstreamRequestsUpgrade =
        std::any_of(upstream.headers.begin(), upstream.headers.end(), [](const HttpHeader &header) {
            return header.name.compare("Connection", Qt::CaseInsensitive) == 0 &&
                   header.value.toLower().contains("upgrade");
        });
    for (const HttpHeader &header : upstream.headers) {
        requireProperty(!isImpersonationHeader(header.name),
                        "no Impersonate-* header reaches an upstream");
        requireProperty(!header.name.contains('_'),
                        "no header name with an underscore reaches an upstream");
        if (header.name.compare("Authorization", Qt::CaseInsensitive) == 0) {
            requireProperty(header.value == "Bearer " + idToken,
                            "the only Authorization sent upstream carries the ID token");
        }
        if (header.name.compare("X-Forwarded-Id-Token", Qt::CaseInsensitive) == 0) {
            requireProperty(toApp && header.value == idToken,
                            "X-Forwarded-Id-Token is the proxy's own, for an app");
        }
        if (header.name.compare("Sec-WebSocket-Protocol", Qt::CaseInsensitive) == 0 &&
            upstreamRequestsUpgrade) {
            requireProperty(!hasBearerSubprotocol(header.value),
                            "no bearer token subprotocol reaches an upstream in an upgrade request",
                            header.value);
        }
        if (toApp && header.name.compare("Cookie", Qt::CaseInsensitive) == 0) {
            for (const QByteArray &name : cookieNames(header.value)) {
                requireProperty(name.compare("lamplighter-session", Qt::CaseInsensitive) != 0,
                                "the session cookie never reaches an app",
                                header.value);
                requireProperty(!name.toLower().startsWith("headlamp-auth-"),
                                "Headlamp's token cookies never reach an app",
                                header.value);
            }
        }
    }
    requireProperty(upstream.count("Authorization") + upstream.count("X-Forwarded-Id-Token") <= 1,
                    "an upstream request carries at most one credential");
    requireProperty(upstream.count("Host") == 1, "an upstream request has exactly one Host");

    // The rewritten head must read back as the same head, or the upstream would see another
    // request than the one that was checked.
    const QByteArray serialized = upstream.serializeRequest();
    HttpMessageParser reparser(HttpMessageParser::Type::Request,
                               HttpMessageParser::Limits{1024 * 1024, 1000});
    reparser.parse(serialized);
    requireProperty(
        !reparser.error().has_value(), "a rewritten request head parses again", serialized);
    requireProperty(reparser.isHeadComplete(), "a rewritten request head is complete");
    requireProperty(reparser.head().target == upstream.target,
                    "a rewritten request keeps its target when parsed again");
    requireProperty(reparser.head().headers.size() == upstream.headers.size(),
                    "a rewritten request keeps its header count when parsed again");
    requireProperty(reparser.head().framing == upstream.framing,
                    "a rewritten request keeps its body framing when parsed again");
    if (upstream.framing == HttpBodyFraming::ContentLength) {
        requireProperty(reparser.head().contentLength == upstream.contentLength,
                        "a rewritten request keeps its Content-Length when parsed again");
    }
}

void admitAndCheck(const HttpHead &request)
{
    Fixture &setup = fixture();
    const RequestAdmission admission = admitRequest(request, setup.settings, setup.now);
    const int outcomes = int(admission.rejection.has_value()) +
                         int(admission.browserResponse.has_value()) +
                         int(admission.cluster != nullptr);
    requireProperty(outcomes == 1, "an admission either rejects, responds or forwards");
    checkNoSecretInResponse(admission, setup.settings.idToken.token());
    if (admission.rejection) {
        (void)admission.rejection->toHttpResponse(admission.closeConnection);
        return;
    }
    if (admission.cluster) {
        const bool toApp = admission.cluster->name.startsWith(QLatin1String("apps/"));
        checkUpstreamHead(admission.upstreamHead, setup.settings.idToken.token(), toApp);
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
    fixture();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Fixture &setup = fixture();
    QList<QPair<QByteArray, QByteArray>> placeholders{{"@SESSION_KEY@", setup.settings.sessionKey}};
    const QByteArray raw =
        QByteArray::fromRawData(reinterpret_cast<const char *>(data), static_cast<qsizetype>(size));
    if (raw.contains("@COOKIE@"))
        placeholders.append(
            {"@COOKIE@", setup.settings.browserSessions->createCookieValue().value()});
    if (raw.contains("@TICKET@")) {
        const std::optional<QByteArray> ticket = setup.settings.browserSessions->createTicket(
            QStringLiteral("headlamp"), BrowserSessions::Clock::now(), std::chrono::minutes(1));
        placeholders.append({"@TICKET@", ticket.value()});
    }
    const QByteArray input =
        substitutePlaceholders(QByteArray(raw.data(), raw.size()), placeholders);

    HttpMessageParser parser(HttpMessageParser::Type::Request, parserLimits());
    QByteArrayView rest(input);
    for (int message = 0; message < kMaxMessagesPerInput && !rest.isEmpty(); ++message) {
        const qsizetype consumed = parser.parse(rest);
        requireProperty(consumed >= 0 && consumed <= rest.size(),
                        "the parser consumes at most the bytes it was given");
        QByteArray body = parser.takeBody();

        // The same bytes in one-byte reads must give the same head, error and body.
        HttpMessageParser slowParser(HttpMessageParser::Type::Request, parserLimits());
        QByteArray slowBody;
        parseBytewise(slowParser, rest, &slowBody);
        // Beast may reject a head that has not ended yet at once, or only once it has ended, as
        // the bytes arrive. So the two may differ only while the one without an error still
        // waits for the end of the head.
        if (parser.error().has_value() != slowParser.error().has_value()) {
            const HttpMessageParser &waiting = parser.error() ? slowParser : parser;
            requireProperty(!waiting.isHeadComplete(),
                            "read boundaries do not change whether a request is valid");
            break;
        }
        if (parser.error())
            break;
        requireProperty(parser.isHeadComplete() == slowParser.isHeadComplete(),
                        "read boundaries do not change where a head ends");
        if (!parser.isHeadComplete())
            break;
        requireProperty(sameHead(parser.head(), slowParser.head()),
                        "read boundaries do not change the parsed head");
        requireProperty(body == slowBody, "read boundaries do not change the body");

        checkParsedFieldValues(parser.head());
        admitAndCheck(parser.head());
        if (!parser.isMessageComplete())
            break;
        rest = rest.sliced(consumed);
        parser.startNextMessage();
    }
    return 0;
}
