// concur/threading/lock.hpp — threading::Lock and threading::RLock (Python's threading.Lock
// and threading.RLock).
//
// Lock: a non-recursive mutex that ANY thread may release (Python allows it, so it doubles
// as a binary semaphore). RLock: reentrant, owned by the thread that took it; only the
// owner may release it. Both satisfy the standard Lockable and TimedLockable requirements
// (std::scoped_lock, std::unique_lock, std::condition_variable_any all work), next to
// Python's acquire/release/locked.
//
// Cost: an uncontended acquire+release is two atomic read-modify-writes and no syscall
// (Lock ≈ pthread_mutex; see docs/benchmarks.md). A contended acquire spins 0.1-0.5 us
// before sleeping on a futex (detail/futex.hpp, kSpinLimit).
// Lifetime: destroy only when unlocked and nobody waits. Not copyable or movable.
// Thread-safety: all members may be called from any thread.
// Memory ordering: a successful acquire synchronizes-with the release that freed the lock.
// When not to use: for cross-process locking use multiprocessing::Lock/RLock (same
// algorithm in shared memory).
#pragma once

#include <chrono>

#include "concur/detail/futex.hpp"
#include "concur/detail/rlock.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace concur::threading {

class Condition;

namespace detail_lock {
// Python's acquire forms, locked(), and Lockable/TimedLockable over a core lock: what Lock
// and RLock share. Core is detail::BasicLock or detail::BasicRLock (same member names).
// Neg: what acquire(timeout) does with a negative timeout (threading: ValueError).
template <class Core, detail::NegativeTimeout Neg = detail::NegativeTimeout::Reject>
class LockSurface {
 public:
  LockSurface() noexcept = default;
  LockSurface(const LockSurface&) = delete;
  LockSurface& operator=(const LockSurface&) = delete;

  // acquire(): blocks until held (for RLock: one more level if the caller owns it), returns
  // true. acquire(false): takes the lock only if free (RLock: or already owned).
  bool acquire(bool blocking = true) noexcept {
    if (!blocking) return lock_.try_lock();
    lock_.lock();
    return true;
  }
  // Blocks at most `timeout` (hours::max(): forever); false if it expired. ValueError if
  // timeout < 0 or NaN.
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return lock_.lock_until(detail::deadline_for<Neg>(timeout).time_point());
  }
  // Python's acquire(blocking, timeout): ValueError for blocking == false (a timeout makes
  // no sense without blocking) or for timeout < 0.
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    if (!blocking) throw ValueError(detail::kNonBlockingTimeout);
    return acquire(timeout);
  }
  // Whether some thread holds the lock (a snapshot; for RLock, Python 3.14's locked()).
  bool locked() const noexcept { return lock_.locked(); }

  // Lockable / TimedLockable (RLock: recursive, like std::recursive_timed_mutex).
  // unlock() is the derived class's release(). The timed forms saturate (a negative
  // duration tries once, time_point::max() of any precision waits forever); ValueError for
  // a NaN floating duration.
  void lock() noexcept { lock_.lock(); }
  [[nodiscard]] bool try_lock() noexcept { return lock_.try_lock(); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return lock_.lock_until(detail::Deadline::after(d).time_point());
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, D> t) {
    return lock_.lock_until(detail::Deadline::at(t).time_point());
  }

 protected:
  ~LockSurface() = default;
  Core lock_;
};
}  // namespace detail_lock

class Lock : public detail_lock::LockSurface<detail::BasicLock<detail::Scope::Private>> {
 public:
  Lock() noexcept = default;
  // Releases the lock; any thread may. RuntimeError("release unlocked lock") if unlocked.
  void release() {
    if (!lock_.unlock()) throw RuntimeError("release unlocked lock");
  }
  void unlock() { release(); }

 private:
  friend class Condition;
};

class RLock : public detail_lock::LockSurface<detail::BasicRLock<detail::Scope::Private>> {
 public:
  RLock() noexcept = default;
  // Drops one level. RuntimeError("cannot release un-acquired lock") unless the caller owns it.
  void release() {
    if (!lock_.unlock()) throw RuntimeError("cannot release un-acquired lock");
  }
  void unlock() { release(); }
  // Whether the calling thread holds it (Python's RLock._is_owned()).
  bool is_owned() const noexcept { return lock_.is_owned(); }
  // How many levels the calling thread holds (0 if it does not own the lock).
  unsigned level() const noexcept { return lock_.level(); }

 private:
  friend class Condition;
};

}  // namespace concur::threading
