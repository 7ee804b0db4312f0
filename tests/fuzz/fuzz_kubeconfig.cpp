// libFuzzer target: the kubeconfig that Lamplighter writes, Kubeconfig::toYaml(). The input
// gives the contexts' names, one per line (at most 8), and after an empty line the bytes of the
// proxy's certificate. The YAML must read back with every value unchanged and every name as a
// string.

#include "FuzzSupport.h"
#include "KubeconfigCheck.h"

#include <QUrl>
#include <algorithm>
#include <cstdint>

using namespace lamplighter;
using namespace lamplighter::fuzz;

namespace {

constexpr int kMaxContexts = 8;

bool hasNonCharacter(const QString &text)
{
    const QList<uint> codePoints = text.toUcs4();
    return std::any_of(codePoints.begin(), codePoints.end(), [](uint codePoint) {
        return QChar::isNonCharacter(char32_t(codePoint));
    });
}

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
        // yaml-cpp 0.7's emitter writes Unicode noncharacters as U+FFFD (seen for U+FDD0, U+FFFE,
        // U+FFFF and U+1FFFF), so such a name cannot read back unchanged. The configuration
        // accepts only lower-case ASCII names, so no cluster has one.
        if (hasNonCharacter(name))
            continue;
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
