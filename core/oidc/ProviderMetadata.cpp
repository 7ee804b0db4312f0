#include "oidc/ProviderMetadata.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonParseError>

namespace lamplighter {

namespace {

Error documentError(const QUrl &documentUrl, const QString &problem)
{
    return Error{QStringLiteral("The discovery document at %1 is invalid: %2. Check the issuer "
                                "URL and the identity provider's configuration.")
                     .arg(documentUrl.toDisplayString(), problem)};
}

Result<QUrl>
readHttpsUrl(const QJsonObject &document, const QString &field, const QUrl &documentUrl)
{
    const QJsonValue value = document.value(field);
    if (value.isUndefined() || value.isNull())
        return documentError(documentUrl, QStringLiteral("\"%1\" is missing").arg(field));
    if (!value.isString())
        return documentError(documentUrl, QStringLiteral("\"%1\" is not a string").arg(field));

    const QUrl url(value.toString(), QUrl::StrictMode);
    if (!url.isValid() || url.scheme() != QLatin1String("https") || url.host().isEmpty()) {
        return documentError(
            documentUrl,
            QStringLiteral("\"%1\" is not an https URL: \"%2\"").arg(field, value.toString()));
    }
    return url;
}

Result<std::optional<QStringList>> readCodeChallengeMethods(const QJsonObject &document,
                                                            const QUrl &documentUrl)
{
    const QString field = QStringLiteral("code_challenge_methods_supported");
    const QJsonValue value = document.value(field);
    if (value.isUndefined() || value.isNull())
        return std::optional<QStringList>();
    if (!value.isArray())
        return documentError(documentUrl, QStringLiteral("\"%1\" is not a list").arg(field));

    QStringList methods;
    for (const QJsonValue &method : value.toArray())
        methods.append(method.toString());

    // A provider that lists its methods without S256 would accept only "plain" or none, and
    // "plain" sends the verifier itself through the browser.
    if (!methods.contains(QStringLiteral("S256"))) {
        return documentError(
            documentUrl,
            QStringLiteral("\"%1\" does not contain \"S256\" (it contains: %2); enable PKCE with "
                           "S256 for this client at the identity provider")
                .arg(field,
                     methods.isEmpty() ? QStringLiteral("nothing")
                                       : methods.join(QStringLiteral(", "))));
    }
    return std::optional<QStringList>(methods);
}

} // namespace

Status ProviderMetadata::validateIssuer(const QUrl &issuer)
{
    const QString issuerText = issuer.toDisplayString();
    if (!issuer.isValid() || issuer.host().isEmpty()) {
        return Error{QStringLiteral("The issuer \"%1\" is not a valid URL; check oidc.issuer in "
                                    "the configuration file.")
                         .arg(issuerText)};
    }
    if (issuer.scheme() != QLatin1String("https")) {
        return Error{QStringLiteral("The issuer %1 must be an https URL; check oidc.issuer in the "
                                    "configuration file.")
                         .arg(issuerText)};
    }
    if (issuer.hasQuery() || issuer.hasFragment()) {
        return Error{QStringLiteral("The issuer %1 must not have a query or fragment; check "
                                    "oidc.issuer in the configuration file.")
                         .arg(issuerText)};
    }
    return Done{};
}

QUrl ProviderMetadata::discoveryUrl(const QUrl &issuer)
{
    QUrl url = issuer;
    QString path = url.path();
    while (path.endsWith(QLatin1Char('/')))
        path.chop(1);
    url.setPath(path + QStringLiteral("/.well-known/openid-configuration"));
    return url;
}

Result<ProviderMetadata> ProviderMetadata::fromJson(const QByteArray &document,
                                                    const QString &expectedIssuer,
                                                    const QUrl &documentUrl)
{
    QJsonParseError parseError;
    const QJsonDocument json = QJsonDocument::fromJson(document, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        return documentError(documentUrl,
                             QStringLiteral("it is not JSON (%1 at offset %2)")
                                 .arg(parseError.errorString())
                                 .arg(parseError.offset));
    }
    if (!json.isObject())
        return documentError(documentUrl, QStringLiteral("it is not a JSON object"));
    const QJsonObject object = json.object();

    ProviderMetadata metadata;
    const QJsonValue issuer = object.value(QStringLiteral("issuer"));
    if (!issuer.isString())
        return documentError(documentUrl, QStringLiteral("\"issuer\" is missing"));
    metadata.issuer = issuer.toString();
    // OpenID Connect Discovery 1.0, section 4.3: a document whose issuer differs from the one
    // requested must not be used, or another provider could issue tokens in this issuer's name.
    if (metadata.issuer != expectedIssuer) {
        return documentError(documentUrl,
                             QStringLiteral("\"issuer\" is \"%1\" but the configured issuer is "
                                            "\"%2\"; they must be equal character for character")
                                 .arg(metadata.issuer, expectedIssuer));
    }

    Result<QUrl> authorizationEndpoint =
        readHttpsUrl(object, QStringLiteral("authorization_endpoint"), documentUrl);
    if (!authorizationEndpoint)
        return authorizationEndpoint.error();
    metadata.authorizationEndpoint = authorizationEndpoint.value();

    Result<QUrl> tokenEndpoint =
        readHttpsUrl(object, QStringLiteral("token_endpoint"), documentUrl);
    if (!tokenEndpoint)
        return tokenEndpoint.error();
    metadata.tokenEndpoint = tokenEndpoint.value();

    Result<QUrl> jwksUri = readHttpsUrl(object, QStringLiteral("jwks_uri"), documentUrl);
    if (!jwksUri)
        return jwksUri.error();
    metadata.jwksUri = jwksUri.value();

    Result<std::optional<QStringList>> methods = readCodeChallengeMethods(object, documentUrl);
    if (!methods)
        return methods.error();
    metadata.codeChallengeMethodsSupported = methods.value();

    const QJsonValue issParameter =
        object.value(QStringLiteral("authorization_response_iss_parameter_supported"));
    metadata.authorizationResponseIssParameterSupported = issParameter.toBool(false);
    return metadata;
}

} // namespace lamplighter
