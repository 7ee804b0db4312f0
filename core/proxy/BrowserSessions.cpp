#include "BrowserSessions.h"

#include "SessionKey.h"

#include <algorithm>
#include <openssl/rand.h>

namespace lamplighter {

namespace {

constexpr int kSecretBytes = 32;

std::optional<QByteArray> randomSecret()
{
    QByteArray bytes(kSecretBytes, Qt::Uninitialized);
    if (RAND_bytes(reinterpret_cast<unsigned char *>(bytes.data()), kSecretBytes) != 1)
        return std::nullopt;
    return bytes.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
}

} // namespace

std::optional<QByteArray> BrowserSessions::createTicket(const QString &appName,
                                                        Clock::time_point now,
                                                        std::chrono::milliseconds lifetime)
{
    std::optional<QByteArray> value = randomSecret();
    if (!value)
        return std::nullopt;
    const QMutexLocker locker(&m_mutex);
    dropExpiredTickets(now);
    if (m_tickets.size() >= kMaxOpenTickets)
        m_tickets.erase(m_tickets.begin());
    m_tickets.push_back(Ticket{*value, appName, now + lifetime});
    return value;
}

bool BrowserSessions::redeemTicket(QByteArrayView ticket,
                                   const QString &appName,
                                   Clock::time_point now)
{
    const QMutexLocker locker(&m_mutex);
    dropExpiredTickets(now);
    // Every open ticket is compared, so that the time taken does not reveal which one matched.
    std::optional<std::size_t> match;
    for (std::size_t i = 0; i < m_tickets.size(); ++i) {
        if (constantTimeEquals(m_tickets[i].value, ticket))
            match = i;
    }
    if (!match)
        return false;
    const bool sameApp = m_tickets[*match].appName == appName;
    m_tickets.erase(m_tickets.begin() + std::ptrdiff_t(*match));
    return sameApp;
}

std::optional<QByteArray> BrowserSessions::createCookieValue()
{
    std::optional<QByteArray> value = randomSecret();
    if (!value)
        return std::nullopt;
    const QMutexLocker locker(&m_mutex);
    if (m_cookieValues.size() >= kMaxCookies)
        m_cookieValues.erase(m_cookieValues.begin());
    m_cookieValues.push_back(*value);
    return value;
}

bool BrowserSessions::isIssuedCookieValue(QByteArrayView value) const
{
    const QMutexLocker locker(&m_mutex);
    bool issued = false;
    for (const QByteArray &candidate : m_cookieValues)
        issued |= constantTimeEquals(candidate, value);
    return issued;
}

void BrowserSessions::clear()
{
    const QMutexLocker locker(&m_mutex);
    m_tickets.clear();
    m_cookieValues.clear();
}

void BrowserSessions::dropExpiredTickets(Clock::time_point now)
{
    m_tickets.erase(std::remove_if(m_tickets.begin(),
                                   m_tickets.end(),
                                   [now](const Ticket &ticket) { return ticket.expiresAt <= now; }),
                    m_tickets.end());
}

} // namespace lamplighter
