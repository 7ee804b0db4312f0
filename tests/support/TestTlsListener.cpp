#include "TestTlsListener.h"

#include "tls/LocalCertificate.h"

#include <QDateTime>

lamplighter::Result<TestTlsContexts> TestTlsContexts::create()
{
    using namespace lamplighter;
    const Result<LocalCertificate> certificate =
        LocalCertificate::generate(QDateTime::currentDateTimeUtc());
    if (!certificate.ok())
        return certificate.error();
    const auto server = TlsContext::forServer(certificate->certificate, certificate->privateKey);
    if (!server.ok())
        return server.error();
    const auto client = TlsContext::forClient({certificate->certificate});
    if (!client.ok())
        return client.error();
    return TestTlsContexts{*server, *client};
}
