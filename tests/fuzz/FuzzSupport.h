#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QList>
#include <QPair>

// Helpers that the libFuzzer targets share.

namespace lamplighter::fuzz {

// Creates the QCoreApplication that Qt's event loop, sockets and logging expect, once per
// process. Call it from LLVMFuzzerInitialize.
void ensureApplication();

// Reports that `property` does not hold for the current input and aborts, so that libFuzzer
// stores the input as a crash. A non-empty `detail`, such as the bytes that broke the property,
// is printed too, with bytes outside printable ASCII escaped.
[[noreturn]] void failProperty(const char *property, QByteArrayView detail = {});

inline void requireProperty(bool condition, const char *property, QByteArrayView detail = {})
{
    if (!condition)
        failProperty(property, detail);
}

// Replaces each placeholder in `input` with its value. The targets use placeholders such as
// @SESSION_KEY@ for secrets that are generated at run time, which a mutated input could never
// guess, so that seeds reach the code behind the secret checks.
QByteArray substitutePlaceholders(QByteArray input,
                                  const QList<QPair<QByteArray, QByteArray>> &values);

} // namespace lamplighter::fuzz
