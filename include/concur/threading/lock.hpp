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
template <class Core>
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
  // Blocks at most `timeout`; false if it expired. ValueError if timeout < 0.
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return lock_.lock_until(detail::checked_deadline(timeout));
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
  // unlock() is the derived class's release().
  void lock() noexcept { lock_.lock(); }
  [[nodiscard]] bool try_lock() noexcept { return lock_.try_lock(); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) noexcept {
    return lock_.lock_until(detail::deadline_after(d));
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, D> t) noexcept {
    return lock_.lock_until(detail::to_steady_deadline(t));
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
  // Lockable unlock(): noexcept (std::lock_guard's destructor calls it); unlocking an
  // unlocked Lock aborts with "concur: threading::Lock::unlock(): release unlocked lock".
  void unlock() noexcept {
    if (!lock_.unlock())
      detail::lock_misuse_abort("threading::Lock::unlock(): release unlocked lock");
  }

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
  // Lockable unlock(): noexcept; by a thread that does not own the RLock it aborts with a
  // clear message (see Lock::unlock).
  void unlock() noexcept {
    if (!lock_.unlock())
      detail::lock_misuse_abort("threading::RLock::unlock(): cannot release un-acquired lock");
  }
  // Whether the calling thread holds it (Python's RLock._is_owned()).
  bool is_owned() const noexcept { return lock_.is_owned(); }
  // How many levels the calling thread holds (0 if it does not own the lock).
  unsigned level() const noexcept { return lock_.level(); }

 private:
  friend class Condition;
};

}  // namespace concur::threading
