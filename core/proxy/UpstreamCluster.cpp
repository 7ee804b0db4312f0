#include "UpstreamCluster.h"

#include <algorithm>
#include <charconv>
#include <iterator>

namespace lamplighter {

namespace {

QByteArray hostHeaderFor(const QUrl &url)
{
    // QUrl keeps an internationalized host name in Unicode, but the field needs its ASCII form.
    QString host = url.host(QUrl::PrettyDecoded);
    if (std::any_of(host.cbegin(), host.cend(), [](QChar c) { return c.unicode() > 0x7f; }))
        host = url.host(QUrl::FullyEncoded);
    const bool ipv6 = host.contains(u':');
    char port[8];
    const auto portEnd =
        url.port() == -1 ? port : std::to_chars(std::begin(port), std::end(port), url.port()).ptr;
    QByteArray value;
    value.reserve(host.size() + 3 + (portEnd - port));
    if (ipv6)
        value.append('[');
    value.append(host.toLatin1());
    if (ipv6)
        value.append(']');
    if (portEnd != port)
        value.append(':').append(port, portEnd - port);
    return value;
}

QByteArray pathPrefixFor(const QUrl &url)
{
    QByteArray path = url.path(QUrl::FullyEncoded).toLatin1();
    while (path.endsWith('/'))
        path.chop(1);
    return path;
}

} // namespace

UpstreamServer::UpstreamServer(const QUrl &url)
    : m_url(url)
    , m_hostHeader(hostHeaderFor(url))
    , m_pathPrefix(pathPrefixFor(url))
{}

QByteArray UpstreamServer::target(const QByteArray &pathAndQuery) const
{
    // Most servers have no path, and then the target shares the bytes of `pathAndQuery`.
    return m_pathPrefix.isEmpty() ? pathAndQuery : m_pathPrefix + pathAndQuery;
}

} // namespace lamplighter
