#pragma once

#include <sys/resource.h>
#include <vector>

// Takes every file descriptor the process may open, under a limit lowered to at most 256, so
// that accept() fails with EMFILE. It leaves `spare` descriptors free, for the test's own
// sockets. release() or the destructor closes them and restores the limit.
class DescriptorExhaustion {
public:
    explicit DescriptorExhaustion(int spare);
    ~DescriptorExhaustion();
    DescriptorExhaustion(const DescriptorExhaustion &) = delete;
    DescriptorExhaustion &operator=(const DescriptorExhaustion &) = delete;

    // Returns true when the limit could be lowered and descriptors were taken.
    bool active() const { return !m_taken.empty(); }
    // Closes the descriptors taken. The lowered limit stays until the destructor.
    void release();

private:
    rlimit m_original{};
    bool m_limitLowered = false;
    std::vector<int> m_taken;
};
