// libFuzzer target: the kubeconfig that Lamplighter writes, Kubeconfig::toYaml(). The input
// gives the contexts' names, one per line (at most 8), and after an empty line the bytes of the
// proxy's certificate. The YAML must read back with every value unchanged and every name as a
// string.

#include "FuzzSupport.h"
#include "KubeconfigCheck.h"

#include <QUrl>
#include <cstdint>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

constexpr int kMaxContexts = 8;

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    ensureApplication();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const QByteArray input(reinterpret_cast<const char *>(data), qsizetype(size));
    const qsizetype split = input.indexOf("\n\n");
    const QByteArray names = split < 0 ? input : input.left(split);

    Kubeconfig kubeconfig;
    for (const QByteArray &line : names.split('\n')) {
        if (int(kubeconfig.contexts.size()) == kMaxContexts)
            break;
        const QString name = QString::fromUtf8(line);
        // The proxy's URL names the cluster as a path segment.
        const QUrl server(QStringLiteral("https://127.0.0.1:8443/clusters/") +
                          QString::fromLatin1(QUrl::toPercentEncoding(name)));
        kubeconfig.contexts.push_back({name, server});
    }
    kubeconfig.certificateAuthorityPem = split < 0 ? QByteArray() : input.mid(split + 2);
    // Session keys are 32 random bytes in base64url, as LocalProxy creates them.
    kubeconfig.sessionKey = "q3RZk0bX9wT1mC8vN2pL6sH4yJ7eG5aD0fU3iO9kW1r";
    checkKubeconfigRoundTrip(kubeconfig);
    return 0;
}
