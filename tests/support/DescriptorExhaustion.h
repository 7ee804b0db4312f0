#pragma once

#include <sys/resource.h>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define LAMPLIGHTER_SANITIZED true
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define LAMPLIGHTER_SANITIZED true
#endif
#endif
#ifndef LAMPLIGHTER_SANITIZED
#define LAMPLIGHTER_SANITIZED false
#endif

// Takes every file descriptor the process may open, under a limit lowered to at most 256, so
// that accept() fails with EMFILE. It leaves `spare` descriptors free, for the test's own
// sockets. release() or the destructor closes them and restores the limit.
class DescriptorExhaustion {
public:
    explicit DescriptorExhaustion(int spare);
    ~DescriptorExhaustion();
    DescriptorExhaustion(const DescriptorExhaustion &) = delete;
    DescriptorExhaustion &operator=(const DescriptorExhaustion &) = delete;

    // True in a build with sanitizers, whose runtimes need free descriptors for their own checks:
    // UBSan probes memory through a pipe at the first member call on each class, and reports a
    // false error when it cannot open one. Tests skip the exhaustion in such builds.
    static constexpr bool kSanitized = LAMPLIGHTER_SANITIZED;

    // Returns true when the limit could be lowered and descriptors were taken.
    bool active() const { return !m_taken.empty(); }
    // Closes the descriptors taken. The lowered limit stays until the destructor.
    void release();

private:
    rlimit m_original{};
    bool m_limitLowered = false;
    std::vector<int> m_taken;
};
