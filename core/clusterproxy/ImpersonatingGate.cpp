#include "clusterproxy/ImpersonatingGate.h"

#include "Logging.h"
#include "clusterproxy/NamespaceLister.h"
#include "oidc/ClaimSet.h"
#include "oidc/IdTokenVerifier.h"
#include "proxy/ProxyHeaders.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QPointer>
#include <QUrlQuery>

namespace lamplighter {

namespace {

const QByteArray kAuthenticatedGroup = "system:authenticated";
// GET on this path returns the SelfSubjectReview of the person, made through impersonation.
const char kWhoAmIPath[] = "/lamplighter/whoami";
// GET on this path returns {"namespaces": [...]}, the namespaces the person may see.
const char kNamespacesPath[] = "/lamplighter/namespaces";

// A plain-text response of the cluster proxy's own, such as a health check's.
RequestAdmission plainAnswer(int code, const QString &message, const QString &logReason)
{
    RequestAdmission admission;
    admission.browserResponse = BrowserResponse{code, {}, message, {}, {}};
    admission.logReason = logReason;
    return admission;
}

// A JSON response of the cluster proxy's own.
RequestAdmission jsonAnswer(const QByteArray &json, const QString &logReason)
{
    RequestAdmission admission;
    admission.browserResponse = BrowserResponse{200, {}, QString(), json, "application/json"};
    admission.logReason = logReason;
    return admission;
}

// Logs why the namespaces could not be found and rejects the request with the reason.
RequestAdmission namespaceListingFailed(const QString &reason)
{
    qCWarning(lcProxy).noquote() << QStringLiteral("Namespace listing failed: %1").arg(reason);
    return rejectWithStatus(502, reason, QStringLiteral("namespace listing failed"));
}

QByteArray pathOf(const QByteArray &target)
{
    const qsizetype queryStart = target.indexOf('?');
    return queryStart < 0 ? target : target.left(queryStart);
}

// A control character in a value would end its header field and could start another one.
bool hasControlCharacter(const QString &text)
{
    return std::any_of(text.cbegin(), text.cend(), [](QChar c) {
        return c.unicode() < 0x20 || c.unicode() == 0x7f;
    });
}

QByteArray bearerToken(const HttpHead &request)
{
    const QByteArray value = request.value("Authorization").trimmed();
    if (value.size() < 7 || value.left(7).toLower() != "bearer ")
        return QByteArray();
    return value.mid(7).trimmed();
}

} // namespace

Result<Impersonation> impersonationFromClaims(const ClaimSet &claims,
                                              const ClusterProxyConfig &config)
{
    const QByteArray userNameClaim = config.userNameClaim.toUtf8();
    const std::optional<QString> user = claims.string(userNameClaim);
    if (!user || user->isEmpty())
        return Error{QStringLiteral("The ID token has no user name claim \"%1\" with a string "
                                    "value.")
                         .arg(config.userNameClaim)};
    Impersonation person;
    person.user = config.userNamePrefix + *user;
    person.uid = claims.string("sub").value_or(QString());

    QStringList tokenGroups;
    const QByteArray groupsClaim = config.groupsClaim.toUtf8();
    const ClaimSet::Type groupsType = claims.type(groupsClaim);
    if (groupsType == ClaimSet::Type::String) {
        tokenGroups.append(*claims.string(groupsClaim));
    } else if (groupsType == ClaimSet::Type::Array) {
        ClaimSet::Strings groups = *claims.strings(groupsClaim);
        if (groups.nonStrings > 0)
            return Error{QStringLiteral("The ID token's groups claim \"%1\" contains a value "
                                        "that is not a string.")
                             .arg(config.groupsClaim)};
        tokenGroups = std::move(groups.values);
    } else if (groupsType != ClaimSet::Type::Absent && groupsType != ClaimSet::Type::Null) {
        return Error{QStringLiteral("The ID token's groups claim \"%1\" is not a list of "
                                    "strings.")
                         .arg(config.groupsClaim)};
    } else if (claims.objectContains("_claim_names", groupsClaim)) {
        // OpenID Connect Core 1.0, section 5.6.2: the claim is held elsewhere, as Entra ID does for
        // a user in more groups than fit in a token. Carrying on without them would hide the
        // person's group permissions rather than explain their absence.
        return Error{
            QStringLiteral("The ID token names its groups claim \"%1\" in \"_claim_names\" "
                           "instead of carrying it, because the issuer left the groups out "
                           "(a groups overage). The cluster proxy does not fetch them from "
                           "\"_claim_sources\". Make the issuer send fewer groups, for "
                           "example only those assigned to the application.")
                .arg(config.groupsClaim)};
    }

    // A group such as system:masters from the issuer would grant the API server's own roles, so
    // only the proxy adds system: groups.
    int dropped = 0;
    for (const QString &group : tokenGroups) {
        const QString name = config.groupsPrefix + group;
        if (name.startsWith(QLatin1String("system:")))
            ++dropped;
        else
            person.groups.append(name);
    }
    if (dropped > 0) {
        qCWarning(lcProxy).noquote()
            << QStringLiteral("Dropped %1 groups starting with \"system:\" from the ID token of "
                              "user \"%2\". Set claims.groups_prefix to keep the issuer's groups "
                              "apart.")
                   .arg(dropped)
                   .arg(person.user);
    }
    person.groups.append(QString::fromLatin1(kAuthenticatedGroup));
    if (hasControlCharacter(person.user) || hasControlCharacter(person.uid) ||
        std::any_of(person.groups.cbegin(), person.groups.cend(), hasControlCharacter))
        return Error{QStringLiteral("The ID token's user name, subject or groups contain a "
                                    "control character.")};

    for (const auto &[key, claim] : config.extraClaims) {
        // A string claim gives one value; an array gives its strings and skips other entries.
        const QByteArray name = claim.toUtf8();
        QStringList values;
        if (std::optional<QString> single = claims.string(name))
            values.append(std::move(*single));
        else if (std::optional<ClaimSet::Strings> entries = claims.strings(name))
            values = std::move(entries->values);
        values.removeIf(hasControlCharacter);
        if (!values.isEmpty())
            person.extras.append({key, values});
    }

    person.headers.push_back(HttpHeader{"Impersonate-User", person.user.toUtf8()});
    for (const QString &group : person.groups)
        person.headers.push_back(HttpHeader{"Impersonate-Group", group.toUtf8()});
    if (!person.uid.isEmpty())
        person.headers.push_back(HttpHeader{"Impersonate-Uid", person.uid.toUtf8()});
    for (const auto &[key, values] : person.extras) {
        // A header name cannot hold '/', so the key is percent-encoded, as kube-apiserver reads
        // it back.
        const QByteArray name =
            "Impersonate-Extra-" + QUrl::toPercentEncoding(key, QByteArray(".-"));
        for (const QString &value : values)
            person.headers.push_back(HttpHeader{name, value.toUtf8()});
    }
    return person;
}

ImpersonatingGate::ImpersonatingGate(const ClusterProxyConfig &config,
                                     IdTokenVerifier *verifier,
                                     QObject *parent)
    : QObject(parent)
    , m_config(config)
    , m_verifier(verifier)
    , m_apiServer{QStringLiteral("api-server"), config.apiServer, config.apiServerCaCertificates}
{
    // A server URL with a path (an API server behind a path-routing proxy) prefixes the target.
    m_targetPrefix = config.apiServer.path(QUrl::FullyEncoded).toUtf8();
    while (m_targetPrefix.endsWith('/'))
        m_targetPrefix.chop(1);
}

void ImpersonatingGate::setServiceAccountToken(const QByteArray &token)
{
    m_serviceAccountToken = token;
    m_serviceAccountAuthorization = "Bearer " + token;
}

void ImpersonatingGate::setVerifier(IdTokenVerifier *verifier)
{
    m_verifier = verifier;
    if (!verifier)
        m_keysLoaded = false;
}

void ImpersonatingGate::admit(const HttpHead &request, Decide decide)
{
    const QByteArray path = pathOf(request.target);
    if (request.method == "GET" && path == "/healthz") {
        decide(plainAnswer(200, QStringLiteral("ok"), QStringLiteral("health check")));
        return;
    }
    if (request.method == "GET" && path == "/readyz") {
        QString problem;
        if (!m_keysLoaded)
            problem = QStringLiteral("the issuer's keys are not loaded");
        else if (m_serviceAccountToken.isEmpty())
            problem = QStringLiteral("the service account token is not read");
        else
            problem = m_apiServerProblem;
        decide(problem.isEmpty() ? plainAnswer(200, QStringLiteral("ok"), QStringLiteral("ready"))
                                 : plainAnswer(503, problem, QStringLiteral("not ready")));
        return;
    }
    if (request.method == "GET" && path == "/metrics") {
        decide(plainAnswer(200, QString::fromUtf8(m_metrics.render()), QStringLiteral("metrics")));
        return;
    }
    if ((path == kWhoAmIPath || path == kNamespacesPath) &&
        (request.method != "GET" || request.framing != HttpBodyFraming::None)) {
        decide(rejectWithStatus(
            405,
            QStringLiteral("%1 takes only GET without a body.").arg(QString::fromLatin1(path)),
            QStringLiteral("own endpoint with another method")));
        return;
    }
    if (!request.target.startsWith('/') || hasDotSegmentOrFragment(request.target)) {
        decide(rejectWithStatus(400,
                                QStringLiteral("The request path must be absolute, without dot "
                                               "segments or a fragment."),
                                QStringLiteral("invalid path")));
        return;
    }
    if (requestsUpgrade(request)) {
        if (std::optional<RequestAdmission> rejection = checkUpgrade(request)) {
            decide(*rejection);
            return;
        }
    }

    const QByteArray token = bearerToken(request);
    if (token.isEmpty()) {
        decide(rejectWithStatus(401,
                                QStringLiteral("Unauthorized: send an ID token of %1 as the "
                                               "bearer token.")
                                    .arg(m_config.issuer.toString()),
                                QStringLiteral("no bearer token")));
        return;
    }

    if (const Impersonation *person = m_verified.find(token, QDateTime::currentDateTimeUtc())) {
        m_metrics.recordCacheHit();
        admitPerson(request, *person, std::move(decide));
        return;
    }
    m_metrics.recordCacheMiss();
    if (!m_verifier) {
        decide(rejectWithStatus(503,
                                QStringLiteral("The cluster proxy has not reached the issuer %1 "
                                               "yet. Try again shortly.")
                                    .arg(m_config.issuer.toString()),
                                QStringLiteral("issuer not discovered")));
        return;
    }

    IdTokenExpectations expectations;
    expectations.issuer = m_config.issuer.toString();
    expectations.clientId = m_config.clientId;
    expectations.audiences = m_config.audiences;
    expectations.algorithms = m_config.allowedAlgorithms;
    expectations.leeway = m_config.leeway;
    QPointer<ImpersonatingGate> self(this);
    m_verifier->verify(
        token, expectations, [self, request, token, decide](const Result<IdTokenClaims> &claims) {
            if (!self)
                return;
            if (!claims) {
                decide(
                    rejectWithStatus(401,
                                     QStringLiteral("Unauthorized: %1").arg(claims.errorMessage()),
                                     QStringLiteral("invalid ID token")));
                return;
            }
            // The verifier accepted this payload, so only a bug would make this parse fail.
            const Result<ClaimSet> parsed = ClaimSet::parse(claims->payload);
            const Result<Impersonation> person =
                parsed ? self->checkVerifiedClaims(*parsed) : Result<Impersonation>(parsed.error());
            if (!person) {
                const bool outsider = person.errorMessage().startsWith(QStringLiteral("Forbidden"));
                decide(rejectWithStatus(outsider ? 403 : 401,
                                        person.errorMessage(),
                                        outsider ? QStringLiteral("not in an allowed group")
                                                 : QStringLiteral("unusable claims")));
                return;
            }
            self->m_verified.insert(
                token, *person, claims->expiresAt, QDateTime::currentDateTimeUtc());
            self->admitPerson(request, *person, decide);
        });
}

// Decides on the request of a verified person: the namespace listing of the cluster proxy's
// own, a namespace list for someone the API server would refuse, or forwarding.
namespace {

// Reads the identity that a client's own Impersonate-* fields request. Returns nothing when
// there are none, and an error for fields that kube-apiserver would reject.
Result<std::optional<Impersonation>> requestedImpersonation(const HttpHead &request)
{
    Impersonation requested;
    bool hasFields = false;
    for (const HttpHeader &header : request.headers) {
        const QByteArray name = header.name.toLower();
        if (!name.startsWith("impersonate-"))
            continue;
        hasFields = true;
        const QString value = QString::fromUtf8(header.value.trimmed());
        if (name == "impersonate-user") {
            if (!requested.user.isEmpty())
                return Error{QStringLiteral("Impersonate-User is given more than once.")};
            requested.user = value;
        } else if (name == "impersonate-group") {
            requested.groups.append(value);
        } else if (name == "impersonate-uid") {
            requested.uid = value;
        } else if (name.startsWith("impersonate-extra-")) {
            const QString key = QUrl::fromPercentEncoding(name.mid(18));
            requested.extras.append({key, {value}});
        } else {
            return Error{QStringLiteral("The header %1 is not an impersonation header the API "
                                        "server knows.")
                             .arg(QString::fromLatin1(header.name))};
        }
        requested.headers.push_back(header);
    }
    if (!hasFields)
        return std::optional<Impersonation>();
    if (requested.user.isEmpty())
        return Error{QStringLiteral("Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* "
                                    "need Impersonate-User.")};
    return std::optional<Impersonation>(requested);
}

} // namespace

// Checks with access reviews made as the person that they may impersonate every part of
// `requested`, and forwards the request as `requested` if so.
void ImpersonatingGate::admitRequestedImpersonation(const HttpHead &request,
                                                    const Impersonation &person,
                                                    const Impersonation &requested,
                                                    Decide decide)
{
    std::vector<NamespaceLister::Access> checks;
    const auto impersonate = [](const char *group,
                                const char *resource,
                                const QString &name,
                                const QString &subresource = QString()) {
        NamespaceLister::Access access;
        access.verb = QStringLiteral("impersonate");
        access.group = QLatin1String(group);
        access.resource = QLatin1String(resource);
        access.name = name;
        access.subresource = subresource;
        return access;
    };
    checks.push_back(impersonate("", "users", requested.user));
    for (const QString &group : requested.groups)
        checks.push_back(impersonate("", "groups", group));
    if (!requested.uid.isEmpty())
        checks.push_back(impersonate("authentication.k8s.io", "uids", requested.uid));
    for (const auto &[key, values] : requested.extras) {
        for (const QString &value : values)
            checks.push_back(impersonate("authentication.k8s.io", "userextras", value, key));
    }

    struct Pending {
        std::size_t remaining;
        QString denied; // the first refusal, for the message
        Decide decide;
    };
    auto pending = std::make_shared<Pending>(Pending{checks.size(), QString(), decide});
    QPointer<ImpersonatingGate> self(this);
    for (const NamespaceLister::Access &access : checks) {
        const QString target = QStringLiteral("%1 \"%2\"").arg(access.resource, access.name);
        m_lister->review(
            person,
            access,
            [self, pending, target, request, person, requested](const Result<bool> &allowed) {
                if (pending->denied.isEmpty() && !(allowed && *allowed))
                    pending->denied = allowed ? target : allowed.errorMessage();
                if (--pending->remaining > 0 || !self)
                    return;
                if (!pending->denied.isEmpty()) {
                    pending->decide(
                        rejectWithStatus(403,
                                         QStringLiteral("User \"%1\" may not impersonate %2.")
                                             .arg(person.user, pending->denied),
                                         QStringLiteral("impersonation not allowed")));
                    return;
                }
                qCInfo(lcProxy).noquote() << QStringLiteral("User \"%1\" acts as \"%2\"")
                                                 .arg(person.user, requested.user);
                pending->decide(self->forward(request, requested));
            });
    }
}

void ImpersonatingGate::admitPerson(const HttpHead &request,
                                    const Impersonation &person,
                                    Decide decide)
{
    if (m_config.allowClientImpersonation && m_lister) {
        const Result<std::optional<Impersonation>> requested = requestedImpersonation(request);
        if (!requested) {
            decide(rejectWithStatus(
                400, requested.errorMessage(), QStringLiteral("invalid impersonation request")));
            return;
        }
        if (requested->has_value()) {
            admitRequestedImpersonation(request, person, **requested, std::move(decide));
            return;
        }
    }
    const QByteArray path = pathOf(request.target);
    const bool listing = m_lister && m_config.namespaceListing != NamespaceListing::None;
    if (path == kNamespacesPath) {
        if (!listing) {
            decide(rejectWithStatus(404,
                                    QStringLiteral("Namespace listing is off in this cluster "
                                                   "proxy (namespaces.mode is none)."),
                                    QStringLiteral("namespace listing off")));
            return;
        }
        m_lister->list(person, [decide](const Result<QStringList> &names) {
            if (!names) {
                decide(namespaceListingFailed(names.errorMessage()));
                return;
            }
            decide(jsonAnswer(QJsonDocument(QJsonObject{{QStringLiteral("namespaces"),
                                                         QJsonArray::fromStringList(*names)}})
                                  .toJson(QJsonDocument::Compact),
                              QStringLiteral("namespace listing")));
        });
        return;
    }

    const bool listsNamespaces =
        request.method == "GET" && path == "/api/v1/namespaces" &&
        !QUrlQuery(QString::fromLatin1(request.target.mid(path.size() + 1)))
             .hasQueryItem(QStringLiteral("watch"));
    if (!listing || !listsNamespaces) {
        decide(forward(request, person));
        return;
    }
    // The API server's own list when it lets the person list namespaces. Otherwise the list
    // that the configured mode finds, so that Headlamp and kubectl still show a namespace picker.
    QPointer<ImpersonatingGate> self(this);
    m_lister->mayListNamespaces(
        person, [self, request, person, decide](const Result<bool> &allowed) {
            if (!self)
                return;
            if (allowed && *allowed) {
                decide(self->forward(request, person));
                return;
            }
            self->m_lister->list(person, [decide](const Result<QStringList> &names) {
                if (!names) {
                    decide(namespaceListingFailed(names.errorMessage()));
                    return;
                }
                decide(jsonAnswer(NamespaceLister::namespaceList(*names),
                                  QStringLiteral("namespace list of the cluster proxy")));
            });
        });
}

// Checks the required claims and the group gate, and maps the claims to the person.
Result<Impersonation> ImpersonatingGate::checkVerifiedClaims(const ClaimSet &claims) const
{
    for (auto required = m_config.requiredClaims.cbegin();
         required != m_config.requiredClaims.cend();
         ++required) {
        if (claims.string(required.key().toUtf8()) != required.value())
            return Error{QStringLiteral("Unauthorized: the ID token's claim \"%1\" does not have "
                                        "the required value.")
                             .arg(required.key())};
    }
    Result<Impersonation> person = impersonationFromClaims(claims, m_config);
    if (!person)
        return Error{QStringLiteral("Unauthorized: %1").arg(person.errorMessage())};
    if (!m_config.allowedGroups.isEmpty()) {
        const bool allowed =
            std::any_of(person->groups.cbegin(), person->groups.cend(), [this](const QString &g) {
                return m_config.allowedGroups.contains(g);
            });
        if (!allowed)
            return Error{QStringLiteral("Forbidden: user \"%1\" is in none of the groups this "
                                        "cluster proxy admits.")
                             .arg(person->user)};
    }
    return person;
}

RequestAdmission ImpersonatingGate::forward(const HttpHead &request,
                                            const Impersonation &person) const
{
    if (m_serviceAccountToken.isEmpty())
        return rejectWithStatus(503,
                                QStringLiteral("The cluster proxy has not read its service "
                                               "account token yet."),
                                QStringLiteral("no service account token"));
    std::vector<HttpHeader> credentials;
    credentials.reserve(person.headers.size() + 1);
    credentials.push_back(HttpHeader{"Authorization", m_serviceAccountAuthorization});
    credentials.insert(credentials.end(), person.headers.cbegin(), person.headers.cend());

    RequestAdmission admission;
    admission.cluster = &m_apiServer;
    if (pathOf(request.target) != kWhoAmIPath) {
        admission.upstreamHead = upstreamRequestHead(
            request, m_targetPrefix + request.target, m_apiServer.server, credentials);
        return admission;
    }

    // The API server returns the person's identity as it applies after impersonation.
    const QByteArray review =
        R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})";
    HttpHead forwarded = request;
    forwarded.method = "POST";
    forwarded.target = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    forwarded.framing = HttpBodyFraming::ContentLength;
    forwarded.contentLength = review.size();
    forwarded.removeAll("Content-Type");
    forwarded.append("Content-Type", "application/json");
    admission.upstreamBody = review;
    admission.upstreamHead = upstreamRequestHead(
        forwarded, m_targetPrefix + forwarded.target, m_apiServer.server, credentials);
    return admission;
}

} // namespace lamplighter
