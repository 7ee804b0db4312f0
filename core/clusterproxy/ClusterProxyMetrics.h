#pragma once

#include <QByteArray>
#include <QMap>
#include <array>

namespace lamplighter {

// The cluster proxy's counters, rendered in the Prometheus text exposition format (version
// 0.0.4) for GET /metrics. The proxy runs on one thread, so plain counters suffice.
class ClusterProxyMetrics {
public:
    // Counts a response by status code. A forwarded one also adds the time from reading the
    // request head to the API server's response head to the upstream latency histogram.
    void recordResponse(int code, bool forwarded, qint64 elapsedMs);
    void recordCacheHit() { ++m_cacheHits; }
    void recordCacheMiss() { ++m_cacheMisses; }

    quint64 cacheHits() const { return m_cacheHits; }
    quint64 cacheMisses() const { return m_cacheMisses; }

    QByteArray render() const;

private:
    // Upper bounds of the latency buckets in seconds, as Prometheus client libraries default to.
    static constexpr std::array<double, 11> kBucketBounds = {
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

    QMap<int, quint64> m_responsesByCode;
    std::array<quint64, kBucketBounds.size()> m_bucketCounts{};
    quint64 m_latencyCount = 0;
    double m_latencySumSeconds = 0;
    quint64 m_cacheHits = 0;
    quint64 m_cacheMisses = 0;
};

} // namespace lamplighter
