#include "oidc/ClaimSet.h"

#include <algorithm>
#include <simdjson.h>
#include <string_view>
#include <vector>

namespace lamplighter {

namespace {

std::string_view view(QByteArrayView text)
{
    return std::string_view(text.data(), size_t(text.size()));
}

QString toQString(std::string_view text)
{
    return QString::fromUtf8(text.data(), qsizetype(text.size()));
}

// Returns the first name that the object has more than once, or nothing.
std::optional<std::string_view> findDuplicateName(simdjson::dom::object object)
{
    std::vector<std::string_view> names;
    names.reserve(object.size());
    for (const simdjson::dom::key_value_pair member : object)
        names.push_back(member.key);
    std::sort(names.begin(), names.end());
    const auto duplicate = std::adjacent_find(names.begin(), names.end());
    if (duplicate == names.end())
        return std::nullopt;
    return *duplicate;
}

} // namespace

ClaimSet::ClaimSet()
    : m_document(std::make_unique<simdjson::dom::document>())
{}

ClaimSet::ClaimSet(ClaimSet &&) noexcept = default;
ClaimSet &ClaimSet::operator=(ClaimSet &&) noexcept = default;
ClaimSet::~ClaimSet() = default;

Result<ClaimSet> ClaimSet::parse(QByteArrayView payload)
{
    // One parser per thread keeps its buffers between tokens, and each claim set owns its document.
    static thread_local simdjson::dom::parser parser;
    ClaimSet claims;
    simdjson::dom::object object;
    const simdjson::error_code error =
        parser.parse_into_document(*claims.m_document, payload.data(), size_t(payload.size()))
            .get(object);
    if (error != simdjson::SUCCESS)
        return Error{QStringLiteral("The ID token's payload is not a JSON object.")};
    if (const std::optional<std::string_view> name = findDuplicateName(object)) {
        return Error{QStringLiteral("The ID token's payload has the claim \"%1\" more than once.")
                         .arg(toQString(*name))};
    }
    return claims;
}

ClaimSet::Type ClaimSet::type(QByteArrayView name) const
{
    simdjson::dom::element value;
    if (m_document->root().at_key(view(name)).get(value) != simdjson::SUCCESS)
        return Type::Absent;
    switch (value.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
        return Type::Null;
    case simdjson::dom::element_type::BOOL:
        return Type::Boolean;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
        return Type::Number;
    case simdjson::dom::element_type::STRING:
        return Type::String;
    case simdjson::dom::element_type::ARRAY:
        return Type::Array;
    case simdjson::dom::element_type::OBJECT:
        return Type::Object;
    }
    return Type::Absent;
}

std::optional<QString> ClaimSet::string(QByteArrayView name) const
{
    std::string_view text;
    if (m_document->root().at_key(view(name)).get(text) != simdjson::SUCCESS)
        return std::nullopt;
    return toQString(text);
}

std::optional<double> ClaimSet::number(QByteArrayView name) const
{
    double value = 0;
    if (m_document->root().at_key(view(name)).get(value) != simdjson::SUCCESS)
        return std::nullopt;
    return value;
}

std::optional<ClaimSet::Strings> ClaimSet::strings(QByteArrayView name) const
{
    simdjson::dom::array array;
    if (m_document->root().at_key(view(name)).get(array) != simdjson::SUCCESS)
        return std::nullopt;
    Strings strings;
    strings.values.reserve(qsizetype(array.size()));
    for (const simdjson::dom::element entry : array) {
        std::string_view text;
        if (entry.get(text) == simdjson::SUCCESS)
            strings.values.append(toQString(text));
        else
            ++strings.nonStrings;
    }
    return strings;
}

bool ClaimSet::objectContains(QByteArrayView name, QByteArrayView member) const
{
    simdjson::dom::object object;
    if (m_document->root().at_key(view(name)).get(object) != simdjson::SUCCESS)
        return false;
    simdjson::dom::element ignored;
    return object.at_key(view(member)).get(ignored) == simdjson::SUCCESS;
}

} // namespace lamplighter
