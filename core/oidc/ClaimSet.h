#pragma once

#include "util/Result.h"

#include <QByteArray>
#include <QByteArrayView>
#include <QString>
#include <QStringList>
#include <memory>
#include <optional>

namespace simdjson::dom {
class document;
}

namespace lamplighter {

// The claims of a JWT (RFC 7519, section 4): the JSON object of an ID token's payload, parsed
// once with simdjson and read one claim at a time. The cluster proxy checks and maps the claims
// of every new token. In a trial, building a QJsonObject of 12 claims took about 9 µs, four times
// Qt's own JSON parse, so no QJsonObject is built here. Names are UTF-8.
class ClaimSet {
public:
    enum class Type { Absent, Null, Boolean, Number, String, Array, Object };

    // The string entries of an array claim, and how many of its entries were not strings.
    struct Strings {
        QStringList values;
        qsizetype nonStrings = 0;
    };

    // Parses payload, which must be a JSON object. A payload that names a claim twice is
    // rejected. RFC 7519 allows that, and two readers that took different copies could
    // disagree on whom a token names.
    static Result<ClaimSet> parse(QByteArrayView payload);

    ClaimSet(ClaimSet &&) noexcept;
    ClaimSet &operator=(ClaimSet &&) noexcept;
    ~ClaimSet();

    Type type(QByteArrayView name) const;
    // Returns the claim's value when it is a string.
    std::optional<QString> string(QByteArrayView name) const;
    // Returns the claim's value when it is a number.
    std::optional<double> number(QByteArrayView name) const;
    // Returns the claim's entries when it is an array.
    std::optional<Strings> strings(QByteArrayView name) const;
    // Returns whether the claim is an object with a member called member.
    bool objectContains(QByteArrayView name, QByteArrayView member) const;

private:
    ClaimSet();

    // Owned through a pointer because simdjson's elements point at their document.
    std::unique_ptr<simdjson::dom::document> m_document;
};

} // namespace lamplighter
