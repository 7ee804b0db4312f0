#include "config/Config.h"

#include "Logging.h"
#include "config/YamlReader.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>
#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <utility>
#include <yaml-cpp/yaml.h>

namespace lamplighter {
namespace {

bool isLowerCaseLetterOrDigit(QChar c)
{
    return (c >= u'a' && c <= u'z') || (c >= u'0' && c <= u'9');
}

// Returns whether `name` has 1 to maxLength characters, all lower-case ASCII letters, digits or
// characters of `inner`, and starts and ends with a letter or digit. A loop rather than a
// regular expression, so that reading the configuration does not compile one in the tray.
bool isLowerCaseName(const QString &name, const QString &inner, qsizetype maxLength)
{
    if (name.isEmpty() || name.size() > maxLength)
        return false;
    if (!isLowerCaseLetterOrDigit(name.front()) || !isLowerCaseLetterOrDigit(name.back()))
        return false;
    return std::all_of(name.begin(), name.end(), [&inner](QChar c) {
        return isLowerCaseLetterOrDigit(c) || inner.contains(c);
    });
}

// The meaning of a key that Lamplighter does not read.
enum class OtherKeys {
    Unknown,    // most likely a typo
    OpenUnison, // a setting of OpenUnison's own, in a block that OpenUnison defines
};

// Reads Lamplighter's configuration, reporting problems as YamlReader does. Keys that it does
// not read become warnings rather than errors, so that a block of an OpenUnison values file can
// be copied over unchanged.
class ConfigReader : public YamlReader {
public:
    using YamlReader::YamlReader;

    Result<ProviderConfig> provider(const YAML::Node &root);
    Result<ClusterConfig> cluster(const YAML::Node &node, int index);
    Result<std::vector<ClusterConfig>> clusters(const YAML::Node &root);
    Result<ProxyConfig> proxy(const YAML::Node &root);
    Result<LoginConfig> login(const YAML::Node &root);
    Result<PortalConfig> portal(const YAML::Node &root);
    Status switches(const YAML::Node &root, Config *config);
    Status openUnison(const YAML::Node &root, Config *config);

    // Checks that every key of `map` is a plain name, and adds a warning for each key that is
    // neither in `read` nor in `openUnison`. `prefix` is the map's dotted name, empty for the
    // top level. `others` sets how a key outside both sets is reported.
    Status checkKeys(const YAML::Node &map,
                     const QString &prefix,
                     const std::set<std::string> &read,
                     const std::set<std::string> &openUnison,
                     OtherKeys others);

    // Reads true or false, or returns `fallback` when the key is missing or null.
    Result<bool>
    boolean(const YAML::Node &parent, const char *key, const QString &field, bool fallback) const;

    QStringList takeWarnings() { return std::exchange(m_warnings, {}); }

private:
    Result<AppConfig> app(const YAML::Node &node, int index);
    Result<std::vector<AppConfig>> apps(const YAML::Node &block);
    Status readProxyTo(const YAML::Node &node, const QString &where, AppConfig *app) const;
    Status readAppExtras(const YAML::Node &node, const QString &where, AppConfig *app) const;

    QStringList m_warnings;
};

// The largest width or height of an app's icon, in pixels.
constexpr quint32 maximumIconSide = 1024;

QString joinPath(const QString &prefix, const QString &key)
{
    return prefix.isEmpty() ? key : prefix + QLatin1Char('.') + key;
}

Status ConfigReader::checkKeys(const YAML::Node &map,
                               const QString &prefix,
                               const std::set<std::string> &read,
                               const std::set<std::string> &openUnison,
                               OtherKeys others)
{
    const QString where =
        prefix.isEmpty() ? QStringLiteral("the file") : QStringLiteral("\"%1\"").arg(prefix);
    std::set<std::string> seen;
    for (const auto &entry : map) {
        if (!entry.first.IsScalar())
            return errorAt(entry.first.Mark(),
                           QStringLiteral("a key in %1 is not a plain name").arg(where));
        const std::string key = entry.first.Scalar();
        // YAML forbids a key twice in one mapping. yaml-cpp keeps both and a lookup finds only
        // the first, so a second pasted "openunison" block would be lost without an error.
        if (!seen.insert(key).second)
            return errorAt(entry.first.Mark(),
                           QStringLiteral("\"%1\" appears a second time in %2. Merge the two "
                                          "into one.")
                               .arg(joinPath(prefix, QString::fromStdString(key)), where));
        if (read.count(key) != 0)
            continue;
        const QString field = joinPath(prefix, QString::fromStdString(key));
        if (openUnison.count(key) != 0 || others == OtherKeys::OpenUnison)
            m_warnings.append(
                errorAt(entry.first.Mark(),
                        QStringLiteral("\"%1\" is an OpenUnison setting that Lamplighter ignores")
                            .arg(field))
                    .message);
        else
            m_warnings.append(
                errorAt(entry.first.Mark(),
                        QStringLiteral("unknown field \"%1\" is ignored. Check its spelling, or "
                                       "remove it.")
                            .arg(field))
                    .message);
    }
    return Done{};
}

// Accepts the spellings of the YAML 1.2 core schema: true, True, TRUE, false, False and FALSE.
Result<bool> ConfigReader::boolean(const YAML::Node &parent,
                                   const char *key,
                                   const QString &field,
                                   bool fallback) const
{
    const YAML::Node node = parent[key];
    if (!node || node.IsNull())
        return fallback;
    if (!node.IsScalar())
        return errorAt(
            node.Mark(),
            QStringLiteral("\"%1\" must be true or false, got a %2")
                .arg(field, node.IsMap() ? QStringLiteral("mapping") : QStringLiteral("list")));
    const QString text = QString::fromStdString(node.Scalar());
    if (text == QLatin1String("true") || text == QLatin1String("True") ||
        text == QLatin1String("TRUE"))
        return true;
    if (text == QLatin1String("false") || text == QLatin1String("False") ||
        text == QLatin1String("FALSE"))
        return false;
    return errorAt(node.Mark(),
                   QStringLiteral("\"%1\" must be true or false, got \"%2\"").arg(field, text));
}

Result<QStringList> readScopes(const ConfigReader &reader, const YAML::Node &node)
{
    QStringList scopes;
    if (!node || node.IsNull()) {
        scopes = {QStringLiteral("openid"),
                  QStringLiteral("email"),
                  QStringLiteral("profile"),
                  QStringLiteral("groups"),
                  QStringLiteral("offline_access")};
    } else if (node.IsScalar()) {
        // OpenUnison writes scopes as one space-separated string.
        scopes = QString::fromStdString(node.Scalar()).split(QLatin1Char(' '), Qt::SkipEmptyParts);
    } else if (node.IsSequence()) {
        for (const YAML::Node &item : node) {
            Result<QString> scope = reader.string(item, QStringLiteral("oidc.scopes[]"));
            if (!scope)
                return scope.error();
            scopes.append(scope.value());
        }
    } else {
        return reader.errorAt(node.Mark(),
                              QStringLiteral("\"oidc.scopes\" must be a string or a list"));
    }
    if (!scopes.contains(QStringLiteral("openid")))
        scopes.prepend(QStringLiteral("openid"));
    return scopes;
}

Result<ProviderConfig> ConfigReader::provider(const YAML::Node &root)
{
    const YAML::Node oidc = root["oidc"];
    if (!oidc)
        return errorAt(root.Mark(),
                       QStringLiteral("missing block \"oidc\" (the identity provider)"));
    if (!oidc.IsMap())
        return errorAt(oidc.Mark(), QStringLiteral("\"oidc\" must be a mapping"));
    // Lamplighter is a public client with PKCE and reads the endpoints from discovery, so the
    // client secret and endpoints of OpenUnison's block go unused.
    const Status keys = checkKeys(
        oidc,
        QStringLiteral("oidc"),
        {"issuer", "client_id", "scopes", "claims", "ca_file", "clock_skew_seconds"},
        {"auth_url", "token_url", "userinfo_url", "user_in_idtoken", "domain", "client_secret"},
        OtherKeys::Unknown);
    if (!keys)
        return keys.error();

    ProviderConfig provider;
    Result<QUrl> issuer = httpsUrl(oidc, "issuer", QStringLiteral("oidc.issuer"));
    if (!issuer)
        return issuer.error();
    provider.issuer = issuer.value();

    Result<QString> clientId = requiredString(oidc, "client_id", QStringLiteral("oidc.client_id"));
    if (!clientId)
        return clientId.error();
    provider.clientId = clientId.value();

    Result<QStringList> scopes = readScopes(*this, oidc["scopes"]);
    if (!scopes)
        return scopes.error();
    provider.scopes = scopes.value();

    provider.userNameClaim = QStringLiteral("sub");
    provider.groupsClaim = QStringLiteral("groups");
    if (const YAML::Node claims = oidc["claims"]; claims && !claims.IsNull()) {
        if (!claims.IsMap())
            return errorAt(claims.Mark(), QStringLiteral("\"oidc.claims\" must be a mapping"));
        const Status claimKeys = checkKeys(claims,
                                           QStringLiteral("oidc.claims"),
                                           {"sub", "groups"},
                                           {"email", "given_name", "family_name", "display_name"},
                                           OtherKeys::Unknown);
        if (!claimKeys)
            return claimKeys.error();
        Result<QString> sub = optionalString(
            claims, "sub", QStringLiteral("oidc.claims.sub"), provider.userNameClaim);
        if (!sub)
            return sub.error();
        Result<QString> groups = optionalString(
            claims, "groups", QStringLiteral("oidc.claims.groups"), provider.groupsClaim);
        if (!groups)
            return groups.error();
        provider.userNameClaim = sub.value();
        provider.groupsClaim = groups.value();
    }

    if (const YAML::Node caFile = oidc["ca_file"]; caFile && !caFile.IsNull()) {
        auto certificates =
            certificatesFromFile(caFile, QStringLiteral("oidc.ca_file"), &provider.caFile);
        if (!certificates)
            return certificates.error();
        provider.caCertificates = certificates.value();
    }

    if (const YAML::Node skew = oidc["clock_skew_seconds"]; skew && !skew.IsNull()) {
        bool valid = skew.IsScalar();
        const int seconds = valid ? QString::fromStdString(skew.Scalar()).toInt(&valid) : 0;
        if (!valid || seconds < 0 || seconds > 900)
            return errorAt(skew.Mark(),
                           QStringLiteral("\"oidc.clock_skew_seconds\" must be a whole number "
                                          "from 0 to 900"));
        provider.clockSkew = std::chrono::seconds(seconds);
    }
    return provider;
}

Result<ClusterConfig> ConfigReader::cluster(const YAML::Node &node, int index)
{
    const QString where = QStringLiteral("clusters[%1]").arg(index);
    if (!node.IsMap())
        return errorAt(node.Mark(), QStringLiteral("%1 must be a mapping").arg(where));
    const Status keys =
        checkKeys(node,
                  where,
                  {"name", "server", "certificate_authority", "certificate_authority_data", "mode"},
                  {},
                  OtherKeys::Unknown);
    if (!keys)
        return keys.error();

    ClusterConfig cluster;
    Result<QString> name = requiredString(node, "name", where + QStringLiteral(".name"));
    if (!name)
        return name.error();
    // The name becomes a kubeconfig context name and a path segment of the proxy's URL.
    if (!isLowerCaseName(name.value(), QStringLiteral("-."), std::numeric_limits<qsizetype>::max()))
        return errorAt(node["name"].Mark(),
                       QStringLiteral("%1.name \"%2\" must be lower-case letters, digits, '-' "
                                      "and '.', starting and ending with a letter or digit")
                           .arg(where, name.value()));
    cluster.name = name.value();

    Result<QUrl> server = httpsUrl(node, "server", where + QStringLiteral(".server"));
    if (!server)
        return server.error();
    cluster.server = server.value();

    const YAML::Node caFile = node["certificate_authority"];
    const YAML::Node caData = node["certificate_authority_data"];
    if (caFile && caData)
        return errorAt(caData.Mark(),
                       QStringLiteral("%1 may set only one of "
                                      "certificate_authority and "
                                      "certificate_authority_data")
                           .arg(where));
    if (caFile) {
        auto certificates = certificatesFromFile(
            caFile, where + QStringLiteral(".certificate_authority"), &cluster.caFile);
        if (!certificates)
            return certificates.error();
        cluster.caCertificates = certificates.value();
    } else if (caData) {
        auto certificates =
            certificatesFromData(caData, where + QStringLiteral(".certificate_authority_data"));
        if (!certificates)
            return certificates.error();
        cluster.caCertificates = certificates.value();
    }

    Result<QString> mode =
        optionalString(node, "mode", where + QStringLiteral(".mode"), QStringLiteral("oidc"));
    if (!mode)
        return mode.error();
    if (mode.value() == QLatin1String("oidc"))
        cluster.mode = ClusterMode::Oidc;
    else if (mode.value() == QLatin1String("impersonation"))
        cluster.mode = ClusterMode::Impersonation;
    else
        return errorAt(node["mode"].Mark(),
                       QStringLiteral("%1.mode must be \"oidc\" or \"impersonation\", got \"%2\"")
                           .arg(where, mode.value()));
    return cluster;
}

Result<std::vector<ClusterConfig>> ConfigReader::clusters(const YAML::Node &root)
{
    const YAML::Node list = root["clusters"];
    if (!list)
        return errorAt(root.Mark(), QStringLiteral("missing list \"clusters\""));
    if (!list.IsSequence() || list.size() == 0)
        return errorAt(list.Mark(),
                       QStringLiteral("\"clusters\" must be a list of at least "
                                      "one cluster"));
    std::vector<ClusterConfig> clusters;
    for (std::size_t i = 0; i < list.size(); ++i) {
        Result<ClusterConfig> cluster = this->cluster(list[i], int(i));
        if (!cluster)
            return cluster.error();
        for (const ClusterConfig &earlier : clusters) {
            if (earlier.name == cluster->name)
                return errorAt(
                    list[i]["name"].Mark(),
                    QStringLiteral("cluster name \"%1\" is used twice").arg(cluster->name));
        }
        clusters.push_back(std::move(cluster).value());
    }
    return clusters;
}

Result<ProxyConfig> ConfigReader::proxy(const YAML::Node &root)
{
    ProxyConfig proxy;
    const YAML::Node block = root["proxy"];
    if (!block || block.IsNull())
        return proxy;
    if (!block.IsMap())
        return errorAt(block.Mark(), QStringLiteral("\"proxy\" must be a mapping"));
    const Status keys = checkKeys(block, QStringLiteral("proxy"), {"port"}, {}, OtherKeys::Unknown);
    if (!keys)
        return keys.error();
    if (const YAML::Node port = block["port"]) {
        bool valid = port.IsScalar();
        const uint value = valid ? QString::fromStdString(port.Scalar()).toUInt(&valid) : 0;
        if (!valid || value > 65535)
            return errorAt(port.Mark(),
                           QStringLiteral("\"proxy.port\" must be a port number "
                                          "from 0 to 65535 (0 picks a free one)"));
        proxy.port = quint16(value);
    }
    return proxy;
}

Result<LoginConfig> ConfigReader::login(const YAML::Node &root)
{
    LoginConfig login;
    const YAML::Node block = root["login"];
    if (!block || block.IsNull())
        return login;
    if (!block.IsMap())
        return errorAt(block.Mark(), QStringLiteral("\"login\" must be a mapping"));
    const Status keys = checkKeys(block,
                                  QStringLiteral("login"),
                                  {"browser", "timeout_seconds", "redirect_host"},
                                  {},
                                  OtherKeys::Unknown);
    if (!keys)
        return keys.error();
    if (const YAML::Node browser = block["browser"]; browser && !browser.IsNull()) {
        if (!browser.IsSequence() || browser.size() == 0)
            return errorAt(browser.Mark(),
                           QStringLiteral("\"login.browser\" must be a list: "
                                          "the command and its arguments"));
        for (const YAML::Node &item : browser) {
            Result<QString> argument = string(item, QStringLiteral("login.browser[]"));
            if (!argument)
                return argument.error();
            login.browserCommand.append(argument.value());
        }
    }
    if (const YAML::Node timeout = block["timeout_seconds"]) {
        bool valid = timeout.IsScalar();
        const int seconds = valid ? QString::fromStdString(timeout.Scalar()).toInt(&valid) : 0;
        if (!valid || seconds < 10 || seconds > 3600)
            return errorAt(timeout.Mark(),
                           QStringLiteral("\"login.timeout_seconds\" must be a "
                                          "whole number from 10 to 3600"));
        login.timeout = std::chrono::seconds(seconds);
    }
    if (const YAML::Node host = block["redirect_host"]) {
        const QString value = host.IsScalar() ? QString::fromStdString(host.Scalar()) : QString();
        if (value != QLatin1String("127.0.0.1") && value != QLatin1String("localhost"))
            return errorAt(host.Mark(),
                           QStringLiteral("\"login.redirect_host\" must be 127.0.0.1 or "
                                          "localhost"));
        login.redirectToLocalhost = value == QLatin1String("localhost");
    }
    return login;
}

Result<PortalConfig> ConfigReader::portal(const YAML::Node &root)
{
    PortalConfig portal;
    const YAML::Node block = root["portal"];
    if (!block || block.IsNull())
        return portal;
    if (!block.IsMap())
        return errorAt(block.Mark(), QStringLiteral("\"portal\" must be a mapping"));
    const Status keys =
        checkKeys(block, QStringLiteral("portal"), {"headlamp"}, {}, OtherKeys::Unknown);
    if (!keys)
        return keys.error();
    if (const YAML::Node headlamp = block["headlamp"]; headlamp && !headlamp.IsNull()) {
        const QString value =
            headlamp.IsScalar() ? QString::fromStdString(headlamp.Scalar()) : QString();
        if (value != QLatin1String("window") && value != QLatin1String("browser"))
            return errorAt(headlamp.Mark(),
                           QStringLiteral("\"portal.headlamp\" must be window or browser, got "
                                          "\"%1\"")
                               .arg(value));
        portal.headlampInBrowser = value == QLatin1String("browser");
    }
    return portal;
}

// Reads proxyTo, which must be an https URL ending with the placeholder "${fullURI}", and stores
// the URL without the placeholder as the app's upstream.
Status ConfigReader::readProxyTo(const YAML::Node &node, const QString &where, AppConfig *app) const
{
    static const QString placeholder = QStringLiteral("${fullURI}");
    const QString field = where + QStringLiteral(".proxyTo");
    Result<QString> proxyTo = requiredString(node, "proxyTo", field);
    if (!proxyTo)
        return proxyTo.error();
    const YAML::Mark mark = node["proxyTo"].Mark();
    if (proxyTo->count(placeholder) != 1 || !proxyTo->endsWith(placeholder))
        return errorAt(mark,
                       QStringLiteral("\"%1\" must end with \"${fullURI}\" and contain it once, "
                                      "for example https://headlamp.example.com${fullURI}")
                           .arg(field));
    const QString base = proxyTo->chopped(placeholder.size());
    const QUrl upstream(base, QUrl::StrictMode);
    if (!upstream.isValid() || upstream.host().isEmpty() ||
        upstream.scheme() != QLatin1String("https"))
        return errorAt(
            mark,
            QStringLiteral("\"%1\" must be an https URL, got \"%2\"").arg(field, proxyTo.value()));
    if (upstream.hasQuery() || upstream.hasFragment() || !upstream.userInfo().isEmpty())
        return errorAt(mark,
                       QStringLiteral("\"%1\" must not have a query, fragment or user name before "
                                      "\"${fullURI}\"")
                           .arg(field));
    app->proxyTo = proxyTo.value();
    app->upstream = upstream;
    return Done{};
}

// Reads the optional keys of an app that do not change where requests go.
Status
ConfigReader::readAppExtras(const YAML::Node &node, const QString &where, AppConfig *app) const
{
    Result<QString> label =
        optionalString(node, "label", where + QStringLiteral(".label"), app->name);
    if (!label)
        return label.error();
    app->label = label.value();

    if (const YAML::Node org = node["org"]; org && !org.IsNull()) {
        Result<QString> text = string(org, where + QStringLiteral(".org"));
        if (!text)
            return text.error();
        app->org = text.value();
    }

    if (const YAML::Node badge = node["badgeUrl"]; badge && !badge.IsNull()) {
        Result<QString> text = string(badge, where + QStringLiteral(".badgeUrl"));
        if (!text)
            return text.error();
        app->badgeUrl = QUrl(text.value(), QUrl::StrictMode);
        const QString scheme = app->badgeUrl.scheme();
        if (!app->badgeUrl.isValid() || app->badgeUrl.host().isEmpty() ||
            (scheme != QLatin1String("https") && scheme != QLatin1String("http")))
            return errorAt(badge.Mark(),
                           QStringLiteral("\"%1.badgeUrl\" must be an http or https URL, got "
                                          "\"%2\"")
                               .arg(where, text.value()));
    }

    if (const YAML::Node groups = node["az_groups"]; groups && !groups.IsNull()) {
        if (!groups.IsSequence())
            return errorAt(
                groups.Mark(),
                QStringLiteral("\"%1.az_groups\" must be a list of group names").arg(where));
        for (const YAML::Node &item : groups) {
            Result<QString> group = string(item, where + QStringLiteral(".az_groups[]"));
            if (!group)
                return group.error();
            app->authorizedGroups.append(group.value());
        }
    }

    if (const YAML::Node icon = node["icon"]; icon && !icon.IsNull()) {
        Result<QString> text = string(icon, where + QStringLiteral(".icon"));
        if (!text)
            return text.error();
        const auto decoded = QByteArray::fromBase64Encoding(
            text->toLatin1(), QByteArray::AbortOnBase64DecodingErrors);
        // A PNG starts with its signature and then the IHDR chunk, whose data begins with the
        // width and the height as 4-byte big-endian numbers.
        const QByteArray &png = *decoded;
        if (!decoded || !png.startsWith("\x89PNG\r\n\x1a\n") || png.size() < 24 ||
            png.mid(12, 4) != "IHDR")
            return errorAt(
                icon.Mark(),
                QStringLiteral("\"%1.icon\" must be a base64-encoded PNG image").arg(where));
        const auto bigEndian = [&png](int offset) {
            return quint32(quint8(png[offset])) << 24 | quint32(quint8(png[offset + 1])) << 16 |
                   quint32(quint8(png[offset + 2])) << 8 | quint32(quint8(png[offset + 3]));
        };
        const quint32 width = bigEndian(16);
        const quint32 height = bigEndian(20);
        // A badge shows the icon at a few dozen pixels. A huge one would only be refused when
        // the portal decodes it, with a log line that names neither the app nor the file.
        if (width > maximumIconSide || height > maximumIconSide)
            return errorAt(icon.Mark(),
                           QStringLiteral("\"%1.icon\" is a PNG of %2x%3 pixels; icons must be at "
                                          "most %4x%4")
                               .arg(where)
                               .arg(width)
                               .arg(height)
                               .arg(maximumIconSide));
        app->icon = png;
    }

    Result<QString> header = optionalString(node,
                                            "tokenHeader",
                                            where + QStringLiteral(".tokenHeader"),
                                            QStringLiteral("Authorization"));
    if (!header)
        return header.error();
    if (header->compare(QLatin1String("Authorization"), Qt::CaseInsensitive) == 0)
        app->tokenHeader = AppTokenHeader::Authorization;
    else if (header->compare(QLatin1String("X-Forwarded-Id-Token"), Qt::CaseInsensitive) == 0)
        app->tokenHeader = AppTokenHeader::XForwardedIdToken;
    else
        return errorAt(node["tokenHeader"].Mark(),
                       QStringLiteral("%1.tokenHeader must be \"Authorization\" or "
                                      "\"X-Forwarded-Id-Token\", got \"%2\"")
                           .arg(where, header.value()));

    if (const YAML::Node caFile = node["ca_file"]; caFile && !caFile.IsNull()) {
        auto certificates =
            certificatesFromFile(caFile, where + QStringLiteral(".ca_file"), &app->caFile);
        if (!certificates)
            return certificates.error();
        app->caCertificates = certificates.value();
    }
    return Done{};
}

Result<AppConfig> ConfigReader::app(const YAML::Node &node, int index)
{
    const QString where = QStringLiteral("openunison.apps[%1]").arg(index);
    if (!node.IsMap())
        return errorAt(node.Mark(), QStringLiteral("%1 must be a mapping").arg(where));
    const Status keys = checkKeys(node,
                                  where,
                                  {"name",
                                   "label",
                                   "org",
                                   "badgeUrl",
                                   "injectToken",
                                   "proxyTo",
                                   "az_groups",
                                   "icon",
                                   "tokenHeader",
                                   "ca_file"},
                                  {},
                                  OtherKeys::Unknown);
    if (!keys)
        return keys.error();

    AppConfig app;
    Result<QString> name = requiredString(node, "name", where + QStringLiteral(".name"));
    if (!name)
        return name.error();
    // The name becomes a path segment of the proxy's URL, /apps/<name>/.
    if (!isLowerCaseName(name.value(), QStringLiteral("-"), 63))
        return errorAt(node["name"].Mark(),
                       QStringLiteral("%1.name \"%2\" must be a DNS label: at most 63 lower-case "
                                      "letters, digits and '-', starting and ending with a letter "
                                      "or digit")
                           .arg(where, name.value()));
    app.name = name.value();

    Result<bool> injectToken =
        boolean(node, "injectToken", where + QStringLiteral(".injectToken"), false);
    if (!injectToken)
        return injectToken.error();
    app.injectToken = injectToken.value();

    if (const Status proxyTo = readProxyTo(node, where, &app); !proxyTo)
        return proxyTo.error();
    if (const Status extras = readAppExtras(node, where, &app); !extras)
        return extras.error();
    return app;
}

// Reads the "apps" list of the "openunison" block.
Result<std::vector<AppConfig>> ConfigReader::apps(const YAML::Node &block)
{
    std::vector<AppConfig> apps;
    const YAML::Node list = block["apps"];
    if (!list || list.IsNull())
        return apps;
    if (!list.IsSequence())
        return errorAt(list.Mark(), QStringLiteral("\"openunison.apps\" must be a list"));
    for (std::size_t i = 0; i < list.size(); ++i) {
        Result<AppConfig> app = this->app(list[i], int(i));
        if (!app)
            return app.error();
        for (const AppConfig &earlier : apps) {
            if (earlier.name == app->name)
                return errorAt(list[i]["name"].Mark(),
                               QStringLiteral("app name \"%1\" is used twice").arg(app->name));
        }
        apps.push_back(std::move(app).value());
    }
    return apps;
}

// Reads the "openunison" block: the apps and kubeAuth.enabled. Every other key in it is one of
// OpenUnison's own settings.
Status ConfigReader::openUnison(const YAML::Node &root, Config *config)
{
    const YAML::Node block = root["openunison"];
    if (!block || block.IsNull())
        return Done{};
    if (!block.IsMap())
        return errorAt(block.Mark(), QStringLiteral("\"openunison\" must be a mapping"));
    const Status keys = checkKeys(
        block, QStringLiteral("openunison"), {"apps", "kubeAuth"}, {}, OtherKeys::OpenUnison);
    if (!keys)
        return keys;

    if (const YAML::Node kubeAuth = block["kubeAuth"]; kubeAuth && !kubeAuth.IsNull()) {
        if (!kubeAuth.IsMap())
            return errorAt(kubeAuth.Mark(),
                           QStringLiteral("\"openunison.kubeAuth\" must be a mapping"));
        const Status kubeAuthKeys = checkKeys(kubeAuth,
                                              QStringLiteral("openunison.kubeAuth"),
                                              {"enabled"},
                                              {},
                                              OtherKeys::OpenUnison);
        if (!kubeAuthKeys)
            return kubeAuthKeys;
        Result<bool> enabled =
            boolean(kubeAuth, "enabled", QStringLiteral("openunison.kubeAuth.enabled"), true);
        if (!enabled)
            return enabled.error();
        config->kubeAuthEnabled = enabled.value();
    }

    Result<std::vector<AppConfig>> apps = this->apps(block);
    if (!apps)
        return apps.error();
    config->apps = std::move(apps).value();
    return Done{};
}

// Reads the top-level switches of an OpenUnison values file: enable_impersonation and the
// "headlamp" block. Every key of "headlamp" other than "enabled" is one of OpenUnison's own.
Status ConfigReader::switches(const YAML::Node &root, Config *config)
{
    Result<bool> impersonation =
        boolean(root, "enable_impersonation", QStringLiteral("enable_impersonation"), false);
    if (!impersonation)
        return impersonation.error();
    config->enableImpersonation = impersonation.value();

    const YAML::Node headlamp = root["headlamp"];
    if (!headlamp || headlamp.IsNull())
        return Done{};
    if (!headlamp.IsMap())
        return errorAt(headlamp.Mark(), QStringLiteral("\"headlamp\" must be a mapping"));
    const Status keys =
        checkKeys(headlamp, QStringLiteral("headlamp"), {"enabled"}, {}, OtherKeys::OpenUnison);
    if (!keys)
        return keys;
    Result<bool> enabled = boolean(headlamp, "enabled", QStringLiteral("headlamp.enabled"), true);
    if (!enabled)
        return enabled.error();
    config->headlampEnabled = enabled.value();
    return Done{};
}

// Reads the blocks of a parsed file into a Config, collecting the warnings in it.
Result<Config> readConfig(ConfigReader &reader, const YAML::Node &root)
{
    const Status blocks = reader.checkKeys(root,
                                           QString(),
                                           {"format_version",
                                            "oidc",
                                            "clusters",
                                            "proxy",
                                            "login",
                                            "portal",
                                            "enable_impersonation",
                                            "openunison",
                                            "headlamp"},
                                           {"impersonation",
                                            "network",
                                            "cert_template",
                                            "myvd_config",
                                            "k8s_cluster_name",
                                            "dashboard",
                                            "certs",
                                            "trusted_certs",
                                            "monitoring",
                                            "active_directory",
                                            "github",
                                            "saml",
                                            "network_policies",
                                            "services",
                                            "crd",
                                            "image",
                                            "k8s_url"},
                                           OtherKeys::Unknown);
    if (!blocks)
        return blocks.error();

    Config config;
    config.path = reader.path();
    Result<ProviderConfig> provider = reader.provider(root);
    if (!provider)
        return provider.error();
    config.provider = std::move(provider).value();

    Result<std::vector<ClusterConfig>> clusters = reader.clusters(root);
    if (!clusters)
        return clusters.error();
    config.clusters = std::move(clusters).value();

    Result<ProxyConfig> proxy = reader.proxy(root);
    if (!proxy)
        return proxy.error();
    config.proxy = proxy.value();

    Result<LoginConfig> login = reader.login(root);
    if (!login)
        return login.error();
    config.login = login.value();

    Result<PortalConfig> portal = reader.portal(root);
    if (!portal)
        return portal.error();
    config.portal = portal.value();

    if (const Status switches = reader.switches(root, &config); !switches)
        return switches.error();
    if (const Status openUnison = reader.openUnison(root, &config); !openUnison)
        return openUnison.error();
    config.warnings = reader.takeWarnings();
    return config;
}

// Reads "format_version": 1 when the key is missing or null, and otherwise a whole number from 1
// to currentConfigFormatVersion.
Result<int> readFormatVersion(const YamlReader &reader, const YAML::Node &root)
{
    const YAML::Node node = root["format_version"];
    if (!node || node.IsNull())
        return 1;
    if (!node.IsScalar())
        return reader.errorAt(
            node.Mark(),
            QStringLiteral("\"format_version\" must be a whole number from 1 to %1, got a %2")
                .arg(currentConfigFormatVersion)
                .arg(node.IsMap() ? QStringLiteral("mapping") : QStringLiteral("list")));
    const QString text = QString::fromStdString(node.Scalar());
    bool valid = false;
    const int version = text.toInt(&valid);
    if (!valid || version < 1)
        return reader.errorAt(
            node.Mark(),
            QStringLiteral("\"format_version\" must be a whole number from 1 to %1, got \"%2\"")
                .arg(currentConfigFormatVersion)
                .arg(text));
    if (version > currentConfigFormatVersion)
        return reader.errorAt(node.Mark(),
                              QStringLiteral("\"format_version\" is %1, but this Lamplighter "
                                             "reads format versions up to %2: the file was "
                                             "written by a newer Lamplighter. Install a "
                                             "Lamplighter that reads version %1, or use a file "
                                             "of format version %2.")
                                  .arg(version)
                                  .arg(currentConfigFormatVersion));
    return version;
}

// Turns a parsed file of one format version into the next version. It changes only the parsed
// tree in memory, because rewriting the file would lose the person's comments and layout.
using ConfigMigration = Status (*)(const YamlReader &reader, YAML::Node &root);

// configMigrations[i] turns format version i + 1 into version i + 2. Version 1 is still the
// current format, so the list is empty: a format change appends its step here and raises
// currentConfigFormatVersion.
constexpr std::array<ConfigMigration, currentConfigFormatVersion - 1> configMigrations{};

Status migrateConfig(const YamlReader &reader, YAML::Node &root, int version)
{
    for (int from = version; from < currentConfigFormatVersion; ++from) {
        const Status migrated = configMigrations.at(std::size_t(from - 1))(reader, root);
        if (!migrated)
            return migrated;
        qCDebug(lcConfig) << "Read" << reader.path() << "as format version" << from + 1
                          << "instead of" << from;
    }
    return Done{};
}

} // namespace

Result<Config> loadConfig(const QString &path)
{
    ConfigReader reader(path);
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("%1: cannot read the configuration file: %2")
                         .arg(path, file.errorString())};
    const QByteArray text = file.readAll();

    YAML::Node root;
    try {
        root = YAML::Load(text.toStdString());
    } catch (const YAML::Exception &exception) {
        return reader.errorAt(
            exception.mark,
            QStringLiteral("invalid YAML: %1").arg(QString::fromStdString(exception.msg)));
    }
    if (!root.IsMap())
        return reader.errorAt(root.Mark(),
                              QStringLiteral("the file must be a YAML mapping with "
                                             "the blocks \"oidc\" and \"clusters\""));

    const Result<int> version = readFormatVersion(reader, root);
    if (!version)
        return version.error();
    if (const Status migrated = migrateConfig(reader, root, version.value()); !migrated)
        return migrated.error();

    Result<Config> config = readConfig(reader, root);
    if (!config)
        return config.error();
    Config read = std::move(config).value();
    read.formatVersion = version.value();
    qCDebug(lcConfig) << "Read" << path << "with" << read.clusters.size() << "clusters,"
                      << read.apps.size() << "apps and" << read.warnings.size() << "warnings";
    return read;
}

QString personalConfigPath()
{
    return QStandardPaths::writableLocation(QStandardPaths::GenericConfigLocation) +
           QStringLiteral("/lamplighter/config.yaml");
}

QString defaultConfigPath()
{
    // locate() searches $XDG_CONFIG_HOME first and then each folder of $XDG_CONFIG_DIRS.
    const QString found = QStandardPaths::locate(QStandardPaths::GenericConfigLocation,
                                                 QStringLiteral("lamplighter/config.yaml"));
    return found.isEmpty() ? personalConfigPath() : found;
}

QStringList blocksNeedingRestart(const Config &running, const Config &reloaded)
{
    const ProviderConfig &before = running.provider;
    const ProviderConfig &after = reloaded.provider;
    const bool providerChanged =
        before.issuer != after.issuer || before.clientId != after.clientId ||
        before.scopes != after.scopes || before.userNameClaim != after.userNameClaim ||
        before.groupsClaim != after.groupsClaim || before.caFile != after.caFile ||
        before.caCertificates != after.caCertificates;

    const auto sameCluster = [](const ClusterConfig &first, const ClusterConfig &second) {
        return first.name == second.name && first.server == second.server &&
               first.caFile == second.caFile && first.caCertificates == second.caCertificates &&
               first.mode == second.mode;
    };
    const bool clustersChanged = running.clusters.size() != reloaded.clusters.size() ||
                                 !std::equal(running.clusters.cbegin(),
                                             running.clusters.cend(),
                                             reloaded.clusters.cbegin(),
                                             sameCluster);

    QStringList blocks;
    if (providerChanged)
        blocks.append(QStringLiteral("oidc"));
    if (clustersChanged)
        blocks.append(QStringLiteral("clusters"));
    if (running.proxy.port != reloaded.proxy.port)
        blocks.append(QStringLiteral("proxy"));
    if (running.login.browserCommand != reloaded.login.browserCommand ||
        running.login.timeout != reloaded.login.timeout)
        blocks.append(QStringLiteral("login"));
    return blocks;
}

} // namespace lamplighter
