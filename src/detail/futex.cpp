#include "concur/detail/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace concur::detail {

namespace {
int op(int base, Scope scope) noexcept {
  return scope == Scope::Private ? (base | FUTEX_PRIVATE_FLAG) : base;
}
}  // namespace

bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, Scope scope,
                const Clock::time_point* deadline, std::uint32_t bitset) noexcept {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (deadline) {
    // steady_clock is CLOCK_MONOTONIC; FUTEX_WAIT_BITSET takes an absolute monotonic time.
    const Deadline d(*deadline);
    if (d.expired()) return false;
    tsp = d.futex_timespec(ts);
  }
  const long rc = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
                          op(FUTEX_WAIT_BITSET, scope), expected, tsp, nullptr, bitset);
  if (rc == -1) {
    const int err = errno;
    if (err == ETIMEDOUT) return false;
    if (err == EFAULT || err == EINVAL || err == ENOSYS) futex_fatal("futex_wait", err, word);
  }
  return true;  // woken, EAGAIN (value changed) or EINTR: the caller re-checks
}

int futex_wake(std::atomic<std::uint32_t>* word, int count, Scope scope) noexcept {
  const long rc = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
                          op(FUTEX_WAKE, scope), count, nullptr, nullptr, 0);
  if (rc < 0) {
    const int err = errno;
    if (err == EFAULT || err == EINVAL || err == ENOSYS) futex_fatal("futex_wake", err, word);
    return 0;
  }
  return static_cast<int>(rc);
}

int futex_wake_bitset(std::atomic<std::uint32_t>* word, int count, Scope scope,
                      std::uint32_t mask) noexcept {
  const long rc = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
                          op(FUTEX_WAKE_BITSET, scope), count, nullptr, nullptr, mask);
  if (rc < 0) {
    const int err = errno;
    if (err == EFAULT || err == EINVAL || err == ENOSYS)
      futex_fatal("futex_wake_bitset", err, word);
    return 0;
  }
  return static_cast<int>(rc);
}

namespace {
[[noreturn]] void die(const char* msg) noexcept {
  // write(2), not stdio: the caller may hold stdio's locks or be in a signal-ish state.
  std::size_t n = std::strlen(msg);
  const char* p = msg;
  while (n > 0) {
    const ssize_t w = ::write(2, p, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      break;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  std::abort();
}
}  // namespace

void futex_fatal(const char* what, int err, const void* word) noexcept {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "concur: %s: %s (errno %d, word %p): a futex word that is not mapped, "
                "misaligned or unsupported is a bug, not a wake-up; aborting\n",
                what, std::strerror(err), err, word);
  die(buf);
}

void lock_misuse_abort(const char* what) noexcept {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "concur: %s (a Lockable unlock() is noexcept: unlocking a lock the caller "
                "does not hold, e.g. release() inside a std::lock_guard scope, aborts)\n",
                what);
  die(buf);
}

}  // namespace concur::detail
