// concur/detail/lock_surface.hpp — Python's acquire forms, locked(), and the standard
// Lockable/TimedLockable members over a core lock: the one surface shared by
// threading::Lock/RLock and multiprocessing::Lock/RLock.
//
// Core has the core-lock member names: lock(), try_lock(), lock_until(Clock::time_point)
// and locked() (detail::BasicLock, detail::BasicRLock, or a handle to a robust lock in
// shared memory). Each timed form builds one Deadline (detail/deadline.hpp): hours::max()
// and any time_point::max() wait forever, NaN is ValueError. Neg is what acquire(timeout)
// does with a negative timeout: threading rejects it (ValueError), multiprocessing's
// SemLock treats it as zero. TimedLockable's try_lock_for always treats it as zero.
// The derived class adds release()/unlock() (their errors differ) and its extras.
// Thread-safety: that of Core.
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include "concur/detail/deadline.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

template <class Core, NegativeTimeout Neg>
class LockSurface {
  static constexpr bool kNoexceptLock = noexcept(std::declval<Core&>().lock());
  static constexpr bool kNoexceptTry = noexcept(std::declval<Core&>().try_lock());
  static constexpr bool kNoexceptAcquire = kNoexceptLock && kNoexceptTry;

 public:
  template <class... A>
  requires std::is_constructible_v<Core, A...>
  explicit LockSurface(A&&... core_args) : lock_(std::forward<A>(core_args)...) {}
  LockSurface(const LockSurface&) = default;
  LockSurface& operator=(const LockSurface&) = default;

  // acquire(): blocks until held (for an RLock: one more level if the caller owns it),
  // returns true. acquire(false): takes the lock only if free (RLock: or already owned).
  bool acquire(bool blocking = true) noexcept(kNoexceptAcquire) {
    if (!blocking) return lock_.try_lock();
    lock_.lock();
    return true;
  }
  // Blocks at most `timeout` (hours::max(): forever); false if it expired. Negative: see
  // Neg above. ValueError for NaN.
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return lock_.lock_until(deadline_for<Neg>(timeout).time_point());
  }
  // Python's acquire(blocking, timeout): ValueError for blocking == false (a timeout makes
  // no sense without blocking).
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    if (!blocking) throw ValueError(kNonBlockingTimeout);
    return acquire(timeout);
  }
  // Whether somebody holds the lock (a snapshot; for RLock, Python 3.14's locked()).
  bool locked() const noexcept { return lock_.locked(); }

  // Lockable / TimedLockable (RLock: recursive, like std::recursive_timed_mutex).
  // unlock() is the derived class's release(). The timed forms saturate (a negative
  // duration tries once, time_point::max() of any precision waits forever); ValueError for
  // a NaN floating duration.
  void lock() noexcept(kNoexceptLock) { lock_.lock(); }
  [[nodiscard]] bool try_lock() noexcept(kNoexceptTry) { return lock_.try_lock(); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return lock_.lock_until(Deadline::after(d).time_point());
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, D> t) {
    return lock_.lock_until(Deadline::at(t).time_point());
  }

 protected:
  ~LockSurface() = default;
  Core lock_;
};

}  // namespace concur::detail
