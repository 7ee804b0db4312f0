#pragma once

#include <QString>
#include <optional>
#include <utility>
#include <variant>

namespace lamplighter {

// An error for a person to read: what failed, on which value, and what to do next.
// It never contains a token, code or key.
struct Error {
    QString message;
};

// The value of an operation that can fail, or the Error that explains why it failed.
template <typename T>
class Result {
public:
    Result(T value)
        : m_state(std::move(value))
    {}
    Result(Error error)
        : m_state(std::move(error))
    {}

    bool ok() const { return std::holds_alternative<T>(m_state); }
    explicit operator bool() const { return ok(); }

    const T &value() const & { return std::get<T>(m_state); }
    T &value() & { return std::get<T>(m_state); }
    T &&value() && { return std::get<T>(std::move(m_state)); }
    const T *operator->() const { return &value(); }
    const T &operator*() const { return value(); }

    const Error &error() const { return std::get<Error>(m_state); }
    QString errorMessage() const { return ok() ? QString() : error().message; }

private:
    std::variant<T, Error> m_state;
};

// Result for operations that produce nothing but can fail.
struct Done {};
using Status = Result<Done>;

} // namespace lamplighter
