#pragma once

#include <QByteArray>

namespace lamplighter {

// A token that the proxy adds to forwarded requests, with the Authorization field value that
// carries it made once, when the settings are made, rather than for each request.
class BearerToken {
public:
    BearerToken() = default;
    // Implicit, so that a token can be given wherever one is expected.
    BearerToken(const QByteArray &token)
        : m_token(token)
        , m_authorization(token.isEmpty() ? QByteArray() : "Bearer " + token)
    {}

    bool isEmpty() const { return m_token.isEmpty(); }
    const QByteArray &token() const { return m_token; }
    // "Bearer <token>", or empty when the token is.
    const QByteArray &authorization() const { return m_authorization; }

private:
    QByteArray m_token;
    QByteArray m_authorization;
};

} // namespace lamplighter
