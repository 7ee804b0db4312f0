#include "clusterproxy/ClusterProxyMetrics.h"

namespace lamplighter {

void ClusterProxyMetrics::recordResponse(int code, bool forwarded, qint64 elapsedMs)
{
    ++m_responsesByCode[code];
    if (!forwarded)
        return;
    const double seconds = static_cast<double>(elapsedMs) / 1000.0;
    for (std::size_t i = 0; i < kBucketBounds.size(); ++i) {
        if (seconds <= kBucketBounds[i])
            ++m_bucketCounts[i];
    }
    ++m_latencyCount;
    m_latencySumSeconds += seconds;
}

QByteArray ClusterProxyMetrics::render() const
{
    QByteArray text;
    text += "# HELP lamplighter_cluster_proxy_responses_total Responses sent to clients, by "
            "status code.\n"
            "# TYPE lamplighter_cluster_proxy_responses_total counter\n";
    for (auto entry = m_responsesByCode.cbegin(); entry != m_responsesByCode.cend(); ++entry) {
        text += "lamplighter_cluster_proxy_responses_total{code=\"" +
                QByteArray::number(entry.key()) + "\"} " + QByteArray::number(entry.value()) + '\n';
    }

    text += "# HELP lamplighter_cluster_proxy_token_cache_lookups_total Lookups of bearer tokens "
            "in the cache of verified ID tokens, by result.\n"
            "# TYPE lamplighter_cluster_proxy_token_cache_lookups_total counter\n";
    text += "lamplighter_cluster_proxy_token_cache_lookups_total{result=\"hit\"} " +
            QByteArray::number(m_cacheHits) + '\n';
    text += "lamplighter_cluster_proxy_token_cache_lookups_total{result=\"miss\"} " +
            QByteArray::number(m_cacheMisses) + '\n';

    text += "# HELP lamplighter_cluster_proxy_upstream_latency_seconds Time from a request's "
            "head to the API server's response head.\n"
            "# TYPE lamplighter_cluster_proxy_upstream_latency_seconds histogram\n";
    for (std::size_t i = 0; i < kBucketBounds.size(); ++i) {
        text += "lamplighter_cluster_proxy_upstream_latency_seconds_bucket{le=\"" +
                QByteArray::number(kBucketBounds[i], 'g', 6) + "\"} " +
                QByteArray::number(m_bucketCounts[i]) + '\n';
    }
    text += "lamplighter_cluster_proxy_upstream_latency_seconds_bucket{le=\"+Inf\"} " +
            QByteArray::number(m_latencyCount) + '\n';
    text += "lamplighter_cluster_proxy_upstream_latency_seconds_sum " +
            QByteArray::number(m_latencySumSeconds, 'g', 9) + '\n';
    text += "lamplighter_cluster_proxy_upstream_latency_seconds_count " +
            QByteArray::number(m_latencyCount) + '\n';
    return text;
}

} // namespace lamplighter
