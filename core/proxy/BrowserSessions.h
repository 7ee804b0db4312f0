#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QMutex>
#include <QString>
#include <chrono>
#include <optional>
#include <vector>

namespace lamplighter {

// The launch tickets and session cookies through which browsers reach the proxy's apps. A
// ticket is a one-time secret for one app that the browser trades for a cookie; the cookie then
// authenticates every request to every app until the proxy stops. Secrets are 32 random bytes
// from OpenSSL, base64url-encoded, and are compared in constant time. The owner creates tickets
// on its thread while connections on the proxy's worker threads redeem them, so every function
// is safe to call from any thread.
class BrowserSessions {
public:
    using Clock = std::chrono::steady_clock;

    // Creates a ticket for `appName` that expires after `lifetime`. Returns nothing when the
    // random generator fails. Past the maximum number of open tickets the oldest is dropped.
    std::optional<QByteArray>
    createTicket(const QString &appName, Clock::time_point now, std::chrono::milliseconds lifetime);
    // Consumes the ticket if it was issued for `appName` and has not expired. Returns false for
    // an unknown, used, expired or mismatched ticket.
    bool redeemTicket(QByteArrayView ticket, const QString &appName, Clock::time_point now);

    // Creates and records a session cookie value. Returns nothing when the random generator
    // fails. Past the maximum number of cookies the oldest is forgotten.
    std::optional<QByteArray> createCookieValue();
    bool isIssuedCookieValue(QByteArrayView value) const;

    // Forgets every ticket and cookie, for example on sign-out.
    void clear();

    static constexpr std::size_t kMaxOpenTickets = 64;
    static constexpr std::size_t kMaxCookies = 256;

private:
    struct Ticket {
        QByteArray value;
        QString appName;
        Clock::time_point expiresAt;
    };

    void dropExpiredTickets(Clock::time_point now);

    mutable QMutex m_mutex;
    std::vector<Ticket> m_tickets;
    std::vector<QByteArray> m_cookieValues;
};

} // namespace lamplighter
