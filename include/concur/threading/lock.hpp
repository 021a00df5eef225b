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
#include "concur/detail/lock_surface.hpp"
#include "concur/detail/rlock.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace concur::threading {

class Condition;

// Python's acquire forms and Lockable/TimedLockable: detail/lock_surface.hpp (shared with
// multiprocessing's locks); a negative acquire(timeout) is ValueError, as in Python.
class Lock : public detail::LockSurface<detail::BasicLock<detail::Scope::Private>,
                                        detail::NegativeTimeout::Reject> {
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

class RLock : public detail::LockSurface<detail::BasicRLock<detail::Scope::Private>,
                                         detail::NegativeTimeout::Reject> {
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
