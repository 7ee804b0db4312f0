#include "TestSessionKey.h"

#include "proxy/SessionKey.h"

#include <QtGlobal>

QByteArray newTestSessionKey()
{
    const lamplighter::Result<QByteArray> key = lamplighter::generateSessionKey();
    if (!key.ok())
        qFatal("%s", qPrintable(key.errorMessage()));
    return key.value();
}
