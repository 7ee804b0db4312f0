#include "UpstreamPool.h"

#include "UpstreamCluster.h"
#include "UpstreamConnection.h"

#include <algorithm>

namespace lamplighter {

UpstreamPool::UpstreamPool(QObject *parent)
    : QObject(parent)
    , m_expiryTimer(this)
{
    m_expiryTimer.setSingleShot(true);
    connect(&m_expiryTimer, &QTimer::timeout, this, &UpstreamPool::closeExpired);
}

UpstreamPool::~UpstreamPool()
{
    clear();
}

UpstreamConnection *UpstreamPool::take(const UpstreamCluster &cluster, const ProxyLimits &limits)
{
    // The newest first: it is the least likely to be closed by its server at this moment.
    for (auto idle = m_idle.rbegin(); idle != m_idle.rend(); ++idle) {
        if (!mayShareConnection(idle->connection->cluster(), cluster) ||
            !idle->connection->appliesLimits(limits))
            continue;
        UpstreamConnection *connection = idle->connection;
        connection->disconnect(this);
        connection->setParent(nullptr);
        m_idle.erase(std::next(idle).base());
        m_idleCount = int(m_idle.size());
        return connection;
    }
    return nullptr;
}

void UpstreamPool::keep(UpstreamConnection *connection, std::chrono::milliseconds idleTimeout)
{
    Q_ASSERT(connection->isReusable());
    if (int(m_idle.size()) >= kMaxIdleConnections)
        close(m_idle.begin());
    connection->setParent(this);
    connect(connection, &UpstreamConnection::closedWhileIdle, this, [this, connection] {
        const auto idle =
            std::find_if(m_idle.begin(), m_idle.end(), [connection](const Idle &kept) {
                return kept.connection == connection;
            });
        if (idle != m_idle.end())
            close(idle);
    });
    const QDeadlineTimer expiry(idleTimeout);
    m_idle.push_back(Idle{connection, expiry});
    m_idleCount = int(m_idle.size());
    // Started again only for an earlier expiry, as a timer costs time whenever it is restarted.
    // When it fires for a connection that has left, closeExpired() sets it for the next one.
    if (!m_expiryTimer.isActive() || expiry < m_expiryTimerFiresAt) {
        m_expiryTimer.start(idleTimeout);
        m_expiryTimerFiresAt = expiry;
    }
}

void UpstreamPool::clear()
{
    while (!m_idle.empty())
        close(m_idle.begin());
    m_expiryTimer.stop();
}

void UpstreamPool::close(std::vector<Idle>::iterator idle)
{
    UpstreamConnection *connection = idle->connection;
    m_idle.erase(idle);
    m_idleCount = int(m_idle.size());
    connection->disconnect(this);
    connection->abort();
    // Deleted later, because a signal of the connection may be what led here.
    connection->deleteLater();
}

void UpstreamPool::closeExpired()
{
    for (auto idle = m_idle.begin(); idle != m_idle.end();) {
        if (idle->expiry.hasExpired()) {
            close(idle);
            idle = m_idle.begin(); // close() changed the vector
        } else {
            ++idle;
        }
    }
    scheduleExpiry();
}

void UpstreamPool::scheduleExpiry()
{
    if (m_idle.empty()) {
        m_expiryTimer.stop();
        return;
    }
    const auto earliest =
        std::min_element(m_idle.begin(), m_idle.end(), [](const Idle &a, const Idle &b) {
            return a.expiry < b.expiry;
        });
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(earliest->expiry.remainingTimeAsDuration());
    m_expiryTimer.start(left);
    m_expiryTimerFiresAt = earliest->expiry;
}

} // namespace lamplighter
