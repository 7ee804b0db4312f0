#include "DescriptorExhaustion.h"

#include <algorithm>
#include <fcntl.h>
#include <unistd.h>

DescriptorExhaustion::DescriptorExhaustion(int spare)
{
    if (getrlimit(RLIMIT_NOFILE, &m_original) != 0)
        return;
    rlimit lowered = m_original;
    lowered.rlim_cur = std::min<rlim_t>(m_original.rlim_cur, 256);
    if (setrlimit(RLIMIT_NOFILE, &lowered) != 0)
        return;
    m_limitLowered = true;
    for (int descriptor = ::open("/dev/null", O_RDONLY | O_CLOEXEC); descriptor >= 0;
         descriptor = ::open("/dev/null", O_RDONLY | O_CLOEXEC))
        m_taken.push_back(descriptor);
    for (int i = 0; i < spare && !m_taken.empty(); ++i) {
        ::close(m_taken.back());
        m_taken.pop_back();
    }
}

DescriptorExhaustion::~DescriptorExhaustion()
{
    release();
    if (m_limitLowered)
        setrlimit(RLIMIT_NOFILE, &m_original);
}

void DescriptorExhaustion::release()
{
    for (int descriptor : m_taken)
        ::close(descriptor);
    m_taken.clear();
}
