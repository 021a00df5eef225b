// concur/threading/semaphore.hpp — threading::Semaphore and threading::BoundedSemaphore.
//
// A counter of permits: acquire() takes one (blocking while none is left), release(n) adds
// n and lets exactly n blocked acquirers through. BoundedSemaphore refuses a release that
// would raise the value above the initial one (ValueError, as Python). Both satisfy
// Lockable/TimedLockable (lock = acquire one permit) for std::scoped_lock etc.
// Order: waiters are not served FIFO (neither are CPython's); a thread arriving while
// permits are free may take one before an older sleeper wakes.
// Cost: uncontended acquire/release are one atomic RMW each, no syscall; release issues
// FUTEX_WAKE only when somebody sleeps.
// Lifetime: destroy only when nobody waits. Not copyable or movable.
// Thread-safety: all members from any thread. Memory ordering: an acquire synchronizes-with
// the release whose permit it took.
#pragma once

#include <chrono>
#include <cstdint>

#include "concur/detail/futex.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace concur::threading {

class Semaphore {
 public:
  // ValueError("semaphore initial value must be >= 0") for value < 0.
  explicit Semaphore(int value = 1) : Semaphore(value, false) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // acquire(): blocks until a permit is taken; acquire(false): only if one is free.
  bool acquire(bool blocking = true) noexcept {
    return blocking ? sem_.acquire() : sem_.try_acquire();
  }
  // Blocks at most `timeout` (<= 0: do not block, as Python); false if none was taken.
  // ValueError for NaN (CPython spins forever).
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return sem_.acquire(detail::deadline_for(timeout).get());
  }
  // ValueError("can't specify a timeout for a non-blocking call") for blocking == false.
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    if (!blocking) throw ValueError(detail::kNonBlockingTimeout);
    return acquire(timeout);
  }
  // Adds n permits, waking up to n waiters. ValueError("n must be one or more") for n < 1;
  // BoundedSemaphore: ValueError("Semaphore released too many times") above the initial
  // value (then nothing is released).
  void release(int n = 1) {
    if (n < 1) throw ValueError("n must be one or more");
    if (!sem_.release_bounded(static_cast<std::uint32_t>(n), bound_))
      throw ValueError(bounded_ ? "Semaphore released too many times"
                                : "semaphore value would overflow");
  }
  // The number of free permits (a snapshot; Python keeps it private as _value).
  int value() const noexcept { return static_cast<int>(sem_.value()); }

  // Lockable / TimedLockable: one permit.
  void lock() noexcept { sem_.acquire(); }
  // Lockable unlock(): noexcept; a BoundedSemaphore unlocked above its initial value
  // aborts with a clear message (release() throws ValueError instead).
  void unlock() noexcept {
    if (!sem_.release_bounded(1, bound_))
      detail::lock_misuse_abort(bounded_ ? "threading::BoundedSemaphore::unlock(): Semaphore "
                                           "released too many times"
                                         : "threading::Semaphore::unlock(): semaphore value "
                                           "would overflow");
  }
  [[nodiscard]] bool try_lock() noexcept { return sem_.try_acquire(); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return acquire(d);
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, D> t) {
    return sem_.acquire(detail::Deadline::at(t).get());
  }

 protected:
  Semaphore(int value, bool bounded)
      : sem_(checked(value)),
        bound_(bounded ? static_cast<std::uint32_t>(value) : std::uint32_t{INT32_MAX}),
        bounded_(bounded) {}

 private:
  static std::uint32_t checked(int value) {
    if (value < 0) throw ValueError("semaphore initial value must be >= 0");
    return static_cast<std::uint32_t>(value);
  }
  detail::BasicSemaphore<detail::Scope::Private> sem_;
  std::uint32_t bound_;  // release never raises the value above this (INT32_MAX: value() fits an int)
  bool bounded_;
};

// A Semaphore whose value may never exceed its initial value.
class BoundedSemaphore : public Semaphore {
 public:
  // ValueError for value < 0.
  explicit BoundedSemaphore(int value = 1) : Semaphore(value, true) {}
};

}  // namespace concur::threading
