#pragma once

#include <QtGlobal>

class QCoreApplication;

namespace lamplighter {

// Runs `lamplighter-cluster-proxy certs [--config FILE] [--once] [--interval SECONDS]`, which
// creates and renews the TLS Secrets of the configuration's `keys` entries. Log lines go
// through `logHandler` once the configuration has been read. Returns the exit status: 0, 1 when
// an entry failed with --once, or 2 for a usage or configuration error.
int runCertsCommand(QCoreApplication &app, QtMessageHandler logHandler);

} // namespace lamplighter
