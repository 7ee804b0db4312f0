#pragma once

#include "RequestAdmission.h"

#include <functional>

namespace lamplighter {

struct HttpHead;

// Decides, for each request head that a ProxyConnection reads, whether the request is forwarded
// and with which head. The local proxy decides at once from its settings. The cluster proxy may
// first have to fetch the issuer's keys, so a decision can also come later.
class RequestGate {
public:
    using Decide = std::function<void(const RequestAdmission &)>;

    virtual ~RequestGate() = default;
    // Implementations must call `decide` exactly once with the admission of `request`, before
    // returning or later on the same thread. The connection stops reading until then, and it
    // ignores a call that comes after its request has ended.
    virtual void admit(const HttpHead &request, Decide decide) = 0;
};

} // namespace lamplighter
