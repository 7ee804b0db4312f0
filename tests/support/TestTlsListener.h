#pragma once

#include "tls/TlsContext.h"
#include "tls/TlsSocket.h"
#include "util/Result.h"

#include <QTcpServer>
#include <memory>
#include <vector>

// A fresh self-signed certificate for 127.0.0.1, as a server context that presents it and a
// client context that trusts only it.
struct TestTlsContexts {
    std::shared_ptr<const lamplighter::TlsContext> server;
    std::shared_ptr<const lamplighter::TlsContext> client;

    static lamplighter::Result<TestTlsContexts> create();
};

// A listener that wraps every accepted connection in a server-side TlsSocket, its child.
class TestTlsListener : public QTcpServer {
public:
    explicit TestTlsListener(std::shared_ptr<const lamplighter::TlsContext> context)
        : m_context(std::move(context))
    {}

    // The accepted sockets, in the order they arrived.
    std::vector<lamplighter::TlsSocket *> accepted;

protected:
    void incomingConnection(qintptr descriptor) override
    {
        accepted.push_back(new lamplighter::TlsSocket(descriptor, m_context, this));
    }

private:
    std::shared_ptr<const lamplighter::TlsContext> m_context;
};
