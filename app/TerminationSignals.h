#pragma once

class QCoreApplication;

namespace lamplighter {

// Makes SIGTERM and SIGINT end app's event loop normally, so that the control socket is
// removed and pending keychain writes finish. A signal handler may only write to a descriptor,
// so it wakes a QSocketNotifier through a socket pair.
void quitOnTerminationSignals(QCoreApplication *app);

} // namespace lamplighter
