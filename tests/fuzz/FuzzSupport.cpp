#include "FuzzSupport.h"

#include <QCoreApplication>
#include <QLoggingCategory>
#include <cstdio>
#include <cstdlib>

namespace lamplighter::fuzz {

void ensureApplication()
{
    if (QCoreApplication::instance())
        return;
    // Rejections of invalid input log warnings. Millions of them would hide libFuzzer's own
    // output, so only critical messages stay on.
    QLoggingCategory::setFilterRules(QStringLiteral("*.debug=false\n*.info=false\n"
                                                    "*.warning=false"));
    static int argc = 1;
    static char name[] = "lamplighter-fuzz";
    static char *argv[] = {name, nullptr};
    new QCoreApplication(argc, argv);
}

void failProperty(const char *property, QByteArrayView detail)
{
    std::fprintf(stderr, "Property failed: %s\n", property);
    if (!detail.isEmpty()) {
        QByteArray escaped;
        for (const char c : detail) {
            const auto byte = static_cast<unsigned char>(c);
            if (byte >= 0x20 && byte < 0x7f && byte != '\\')
                escaped += c;
            else
                escaped += "\\x" + QByteArray::number(byte, 16).rightJustified(2, '0');
        }
        std::fprintf(stderr, "Detail: %s\n", escaped.constData());
    }
    std::fflush(stderr);
    std::abort();
}

QByteArray substitutePlaceholders(QByteArray input,
                                  const QList<QPair<QByteArray, QByteArray>> &values)
{
    for (const QPair<QByteArray, QByteArray> &value : values)
        input.replace(value.first, value.second);
    return input;
}

} // namespace lamplighter::fuzz
