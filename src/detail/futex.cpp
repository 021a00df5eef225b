#include "concur/detail/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace concur::detail {

namespace {
int op(int base, Scope scope) noexcept {
  return scope == Scope::Private ? (base | FUTEX_PRIVATE_FLAG) : base;
}
}  // namespace

bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, Scope scope,
                const Clock::time_point* deadline) noexcept {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (deadline) {
    // steady_clock is CLOCK_MONOTONIC; FUTEX_WAIT_BITSET takes an absolute monotonic time.
    const Deadline d(*deadline);
    if (d.expired()) return false;
    tsp = d.futex_timespec(ts);
  }
  const long rc = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
                          op(FUTEX_WAIT_BITSET, scope), expected, tsp, nullptr,
                          FUTEX_BITSET_MATCH_ANY);
  if (rc == -1 && errno == ETIMEDOUT) return false;
  return true;  // woken, EAGAIN (value changed) or EINTR: the caller re-checks
}

int futex_wake(std::atomic<std::uint32_t>* word, int count, Scope scope) noexcept {
  const long rc = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
                          op(FUTEX_WAKE, scope), count, nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace concur::detail
