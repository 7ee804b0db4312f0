#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <optional>

namespace lamplighter {

// The parts of an OpenID provider's discovery document that sign-in uses (OpenID Connect
// Discovery 1.0, section 3).
struct ProviderMetadata {
    QString issuer; // equal to the configured issuer, character for character
    QUrl authorizationEndpoint;
    QUrl tokenEndpoint;
    QUrl jwksUri;
    // code_challenge_methods_supported; nullopt when the document leaves it out.
    std::optional<QStringList> codeChallengeMethodsSupported;
    // authorization_response_iss_parameter_supported (RFC 9207): when true, every authorization
    // response must carry "iss".
    bool authorizationResponseIssParameterSupported = false;

    // Checks that issuer is a URL the sign-in may use: https, with a host, and without a query or
    // fragment, as OpenID Connect Discovery 1.0 defines the "issuer" value.
    static Status validateIssuer(const QUrl &issuer);

    // Returns <issuer>/.well-known/openid-configuration. A trailing "/" of the issuer's path is
    // dropped first, as OpenID Connect Discovery 1.0, section 4.1 requires.
    static QUrl discoveryUrl(const QUrl &issuer);

    // Parses and checks a discovery document fetched from documentUrl. Its "issuer" must equal
    // expectedIssuer exactly, and authorization_endpoint, token_endpoint and jwks_uri must be
    // https URLs. code_challenge_methods_supported, when present, must contain "S256". An error
    // names documentUrl and the field.
    static Result<ProviderMetadata>
    fromJson(const QByteArray &document, const QString &expectedIssuer, const QUrl &documentUrl);
};

} // namespace lamplighter
