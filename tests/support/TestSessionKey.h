#pragma once

#include <QByteArray>

// Returns a fresh session key for a proxy under test. A failure of the random number generator
// ends the test process with its message, because no test can go on without a key.
QByteArray newTestSessionKey();
