#pragma once

#include "tls/TlsContext.h"
#include "tls/TlsSocket.h"

#include <QTcpServer>
#include <memory>
#include <vector>

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
