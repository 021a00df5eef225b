// concur/multiprocessing/synchronize.hpp — cross-process Lock, RLock, Semaphore,
// BoundedSemaphore, Event, Condition and Barrier (Python's multiprocessing.synchronize).
//
// Each class is a copyable handle to one object in the process-shared arena
// (detail/arena.hpp): create it before Process::start() and every child — holding a copy
// made by fork — works on the same lock. Copies in one process are the same lock too.
// The objects are the futex core's primitives (detail/futex.hpp) and RobustLock
// (detail/robust_lock.hpp) placed in MAP_SHARED memory; nothing else is between you and the
// atomics: an uncontended acquire+release is two atomic RMWs and no syscall.
//
// Robustness (beyond Python, cpython#88304): if the process (thread) holding a Lock or an
// RLock dies, the next acquirer gets the lock — woken by the kernel within milliseconds —
// and owner_died() returns true (for everybody) until consistent() is called. The lock
// stays usable either way (glibc would make it ENOTRECOVERABLE; we leave that policy to
// the caller). Semaphores, BoundedSemaphores and Events have no owner, so a process that
// dies after acquire() and before release() loses that unit for good, as in Python and
// POSIX; use a Lock where a death must be survived.
//
// Lifetime: the shared object lives as long as a handle exists in the process that created
// it (and in children until they exit). Thread-safety: every method may be called from any
// thread of any process holding a handle. Memory ordering: acquire/lock/wait synchronize
// with the release/unlock/set/notify that let them through, like std::mutex.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "concur/detail/barrier.hpp"
#include "concur/detail/condition.hpp"
#include "concur/detail/futex.hpp"
#include "concur/detail/lock_surface.hpp"
#include "concur/detail/robust_lock.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace concur::detail {
// The cores of Lock and RLock for detail::LockSurface: handles to one RobustLock in shared
// memory (copies are the same lock), with the core-lock member names; -> and * reach it.
struct LockHandle {
  explicit LockHandle(std::shared_ptr<concur::detail::RobustLock> lock) : p(std::move(lock)) {}
  std::shared_ptr<concur::detail::RobustLock> p;
  void lock() noexcept { p->lock(); }
  bool try_lock() noexcept { return p->try_lock(); }
  bool lock_until(concur::detail::Clock::time_point deadline) noexcept {
    return p->lock_until(deadline);
  }
  bool locked() const noexcept { return p->locked(); }
  concur::detail::RobustLock* operator->() const noexcept { return p.get(); }
  concur::detail::RobustLock& operator*() const noexcept { return *p; }
};
// Re-entrant: the owner's nested acquire only counts (RuntimeError on count overflow).
struct RLockHandle : LockHandle {
  using LockHandle::LockHandle;
  void lock() { (void)lock_until(concur::detail::Clock::time_point::max()); }
  bool try_lock() {
    concur::detail::RobustLock& l = *p;
    // CAS first: an owner check before it would read the (contended) line once more.
    if (!l.try_lock()) return l.owned_by_me() && nest();
    l.count() = 1;
    return true;
  }
  bool lock_until(concur::detail::Clock::time_point deadline) {
    concur::detail::RobustLock& l = *p;
    if (!l.try_lock()) {
      if (l.owned_by_me()) return nest();
      if (deadline == concur::detail::Clock::time_point::max()) {
        l.lock();
      } else if (!l.lock_until(deadline)) {
        return false;
      }
    }
    l.count() = 1;
    return true;
  }
  bool nest() {  // the owner's nested acquire
    std::uint32_t& c = p->count();
    if (c == UINT32_MAX) throw RuntimeError("RLock recursion count overflow");
    ++c;
    return true;
  }
};
}  // namespace concur::detail

namespace concur::multiprocessing {

// A non-recursive lock that any thread of any process may release (Python's rule), robust
// against the death of its holder. Lockable / TimedLockable. acquire()/acquire(timeout)/
// acquire(blocking, timeout)/locked()/lock()/try_lock*() are detail/lock_surface.hpp's,
// shared with threading's locks; a negative timeout tries once, like Python's SemLock.
class Lock : public concur::detail::LockSurface<concur::detail::LockHandle,
                                                concur::detail::NegativeTimeout::AsZero> {
 public:
  // Allocates the lock in shared memory, unlocked. Throws OSError if memory is exhausted.
  Lock();

  // Releases; any thread or process may. Throws ValueError("semaphore or lock released
  // too many times") if the lock is not held.
  void release() {
    if (!lock_->unlock()) throw ValueError("semaphore or lock released too many times");
  }
  // True after the lock was taken over from a holder that died, until consistent().
  bool owner_died() const noexcept { return lock_->owner_died(); }
  // Declares the protected state repaired; owner_died() becomes false.
  void consistent() noexcept { lock_->consistent(); }
  // Lockable unlock(): noexcept (std::lock_guard's destructor calls it); unlocking an
  // unlocked Lock aborts with a clear message ("concur: multiprocessing::Lock::unlock():
  // ..."), release() throws ValueError.
  void unlock() noexcept {
    if (!lock_->unlock())
      concur::detail::lock_misuse_abort(
          "multiprocessing::Lock::unlock(): semaphore or lock released too many times");
  }

  // The underlying robust lock (for Condition and Value).
  concur::detail::RobustLock& native() const noexcept { return *lock_; }

 private:
  friend class Condition;
};

// A recursive lock owned by one thread of one process; robust against its owner's death
// (the recursion count is then reset: the new owner holds it once). The acquire forms are
// detail/lock_surface.hpp's (a negative timeout tries once).
class RLock : public concur::detail::LockSurface<concur::detail::RLockHandle,
                                                 concur::detail::NegativeTimeout::AsZero> {
 public:
  RLock();
  // An RLock on a lock that lives inside another shared block (Value's get_lock()).
  explicit RLock(std::shared_ptr<concur::detail::RobustLock> inner)
      : LockSurface(std::move(inner)) {}

  // Releases one level. Throws RuntimeError("cannot release un-acquired lock") unless the
  // calling thread owns it.
  void release() {
    concur::detail::RobustLock& l = *lock_;
    if (!l.owned_by_me() || l.count() == 0) throw_unowned();
    if (--l.count() == 0) l.unlock();
  }
  // Whether the calling thread holds it; the recursion depth.
  bool is_owned() const noexcept { return lock_->owned_by_me(); }
  std::uint32_t recursion_count() const noexcept {
    return lock_->owned_by_me() ? lock_->count() : 0;
  }
  bool owner_died() const noexcept { return lock_->owner_died(); }
  void consistent() noexcept { lock_->consistent(); }
  // Lockable unlock(): noexcept; by a non-owner it aborts with a clear message.
  void unlock() noexcept {
    concur::detail::RobustLock& l = *lock_;
    if (!l.owned_by_me() || l.count() == 0)
      concur::detail::lock_misuse_abort(
          "multiprocessing::RLock::unlock(): cannot release un-acquired lock");
    if (--l.count() == 0) l.unlock();
  }

  concur::detail::RobustLock& native() const noexcept { return *lock_; }

 private:
  [[noreturn]] static void throw_unowned();
  friend class Condition;
};

// A counting semaphore shared by processes. No owner: not robust (see the banner).
class Semaphore {
 public:
  // Throws ValueError("semaphore initial value must be >= 0") if value < 0.
  explicit Semaphore(int value = 1);
  // Takes a unit, blocking until one is available (blocking = false: tries once).
  bool acquire(bool blocking = true);
  template <class R, class P>
  [[nodiscard]] bool acquire(std::chrono::duration<R, P> timeout) {
    return sem().acquire(concur::detail::Deadline::after(timeout).get());
  }
  // Adds n units and wakes up to n waiters. ValueError if n < 1 or the value would pass
  // INT_MAX (Python: SEM_VALUE_MAX).
  // A BoundedSemaphore (even through a Semaphore&) throws ValueError("semaphore or lock
  // released too many times") above its initial value.
  void release(int n = 1);
  // Current value (Python's get_value()).
  int get_value() const noexcept;

  void lock() { acquire(true); }
  [[nodiscard]] bool try_lock() { return acquire(false); }
  // Lockable unlock(): noexcept; above the bound (or SEM_VALUE_MAX) it aborts with a
  // clear message, where release() throws ValueError.
  void unlock() noexcept;

 protected:
  Semaphore(int value, bool bounded);
  struct Block {
    concur::detail::BasicSemaphore<concur::detail::Scope::Shared> sem;
    std::uint32_t bounded;  // 1 for a BoundedSemaphore
    std::uint32_t bound;    // its initial value
    Block(std::uint32_t v, bool b) : sem(v), bounded(b ? 1u : 0u), bound(v) {}
  };
  concur::detail::BasicSemaphore<concur::detail::Scope::Shared>& sem() const noexcept {
    return block_->sem;
  }
  std::shared_ptr<Block> block_;
};

// A semaphore whose release() above the initial value throws ValueError("semaphore or lock
// released too many times").
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(int value = 1) : Semaphore(value, true) {}
};

// Python's multiprocessing.Event: a flag in shared memory.
class Event {
 public:
  Event();
  bool is_set() const noexcept;
  // Sets the flag and wakes every waiter in every process.
  void set() noexcept;
  void clear() noexcept;
  // Blocks until the flag is set. Returns true.
  bool wait() noexcept;
  // Blocks at most `timeout`; returns the flag (false only on timeout).
  template <class R, class P>
  [[nodiscard]] bool wait(std::chrono::duration<R, P> timeout) {
    return wait_until(concur::detail::Deadline::after(timeout).time_point());
  }
  [[nodiscard]] bool wait_until(concur::detail::Clock::time_point deadline) noexcept;

 private:
  std::shared_ptr<concur::detail::BasicEvent<concur::detail::Scope::Shared>> ev_;
};

}  // namespace concur::multiprocessing

namespace concur::detail {
// Adapters that let detail::BasicCondition release and re-take our robust locks (found by
// ADL: cond_is_owned / cond_release_save / cond_acquire_restore).
struct PlainLockRef {
  concur::detail::RobustLock* l;
};
struct RecursiveLockRef {
  concur::detail::RobustLock* l;
};
// A plain Lock has no owner in Python's model: "owned" means "locked", as Python's
// Condition._is_owned decides for a Lock.
inline bool cond_is_owned(const PlainLockRef& r) noexcept { return r.l->locked(); }
inline std::uint32_t cond_release_save(PlainLockRef& r) noexcept {
  r.l->unlock();
  return 0;
}
inline void cond_acquire_restore(PlainLockRef& r, std::uint32_t) noexcept { r.l->lock(); }
inline bool cond_is_owned(const RecursiveLockRef& r) noexcept {
  return r.l->owned_by_me() && r.l->count() > 0;
}
inline std::uint32_t cond_release_save(RecursiveLockRef& r) noexcept {
  const std::uint32_t saved = r.l->count();
  r.l->count() = 0;
  r.l->unlock();
  return saved;
}
// If the lock's holder died meanwhile, lock() takes it over (owner_died() becomes true)
// and the waiter gets its own recursion depth back.
inline void cond_acquire_restore(RecursiveLockRef& r, std::uint32_t saved) noexcept {
  r.l->lock();
  r.l->count() = saved;
}
}  // namespace concur::detail

namespace concur::multiprocessing {

// Python's multiprocessing.Condition: sync's FIFO condition algorithm
// (detail/condition.hpp, Shared waiter slots) over a robust Lock or RLock.
// No spurious wake-ups for up to 64 simultaneous waiters; notify(n) wakes the n oldest.
// Robustness: if the lock's holder dies, a waiter re-taking the lock after its wake-up gets
// it and sees owner_died() == true — it never hangs on the dead holder. A process (thread)
// killed while WAITING does not swallow a notification: notify(n) skips dead waiters and
// wakes n live ones (detail/condition.hpp: each slot records its waiter).
class Condition {
 public:
  // A condition with its own RLock (Python's default).
  Condition();
  // A condition over `lock` (the handle is copied: the lock lives as long as needed).
  explicit Condition(const Lock& lock);
  explicit Condition(const RLock& lock);

  // ---- the underlying lock (Lockable) ----
  bool acquire(bool blocking = true) { return plain_ ? plain_->acquire(blocking) : rlock_->acquire(blocking); }
  template <class R, class P>
  [[nodiscard]] bool acquire(std::chrono::duration<R, P> timeout) {
    return plain_ ? plain_->acquire(timeout) : rlock_->acquire(timeout);
  }
  void release() { plain_ ? plain_->release() : rlock_->release(); }
  void lock() { acquire(true); }
  // Lockable unlock(): noexcept; misuse aborts with a clear message (see Lock::unlock).
  void unlock() noexcept { plain_ ? plain_->unlock() : rlock_->unlock(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }
  template <class R, class P>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<R, P> d) { return acquire(d); }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, D> tp) {
    return plain_ ? plain_->try_lock_until(tp) : rlock_->try_lock_until(tp);
  }
  // The lock's owner_died()/consistent() (see Lock).
  bool owner_died() const noexcept { return native().owner_died(); }
  void consistent() noexcept { native().consistent(); }

  // ---- waiting ----
  // Releases the lock (all levels of an RLock), blocks until notified, re-takes it.
  // RuntimeError("cannot wait on un-acquired lock") unless the caller holds the lock.
  void wait() { (void)wait_impl(nullptr); }
  // As wait(), giving up after `timeout`; false on timeout (the lock is held again).
  template <class R, class P>
  [[nodiscard]] bool wait(std::chrono::duration<R, P> timeout) {
    return wait_impl(concur::detail::Deadline::after(timeout).get());
  }
  template <class C, class D>
  [[nodiscard]] bool wait_until(std::chrono::time_point<C, D> tp) {
    return wait_impl(concur::detail::Deadline::at(tp).get());
  }
  // Waits until pred() holds; returns its last value.
  template <class Pred>
  bool wait_for(Pred pred) {
    bool r = static_cast<bool>(pred());
    while (!r) {
      (void)wait_impl(nullptr);
      r = static_cast<bool>(pred());
    }
    return r;
  }
  template <class Pred, class R, class P>
  [[nodiscard]] bool wait_for(Pred pred, std::chrono::duration<R, P> timeout) {
    const auto deadline = concur::detail::Deadline::after(timeout);
    bool r = static_cast<bool>(pred());
    while (!r) {
      if (deadline.expired()) break;
      (void)wait_impl(deadline.get());
      r = static_cast<bool>(pred());
    }
    return r;
  }
  // ---- notifying (the caller holds the lock; RuntimeError("cannot notify on un-acquired
  // lock") otherwise) ----
  void notify(int n = 1);
  void notify_all();

 private:
  concur::detail::RobustLock& native() const noexcept {
    return plain_ ? plain_->native() : rlock_->native();
  }
  bool owned() const noexcept;
  bool wait_impl(const concur::detail::Clock::time_point* deadline);

  std::optional<Lock> plain_;
  std::optional<RLock> rlock_;
  std::shared_ptr<concur::detail::BasicCondition<concur::detail::Scope::Shared>> cond_;
};

// Python's multiprocessing.Barrier: sync's barrier algorithm (detail/barrier.hpp) in
// shared memory. The action runs in the process whose wait() completes the cycle (each
// process holds its own copy of the callable, inherited through fork).
// Robust: a party killed inside wait() or inside the action breaks the barrier — the
// others get BrokenBarrierError (within ~50 ms of the death, timeouts or not) instead of
// waiting forever or being released by a cycle the dead party "completed"; reset() makes
// it usable again for the live parties. The internal lock is a RobustLock, and each party
// inside wait() holds a robust token (detail/barrier.hpp).
class Barrier {
 public:
  // ValueError("parties must be > 0") for parties < 1.
  explicit Barrier(int parties, std::function<void()> action = {},
                   std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  // Same with a default timeout of any duration type (saturated: hours::max() is no
  // timeout; ValueError for NaN).
  template <class R, class P>
  Barrier(int parties, std::function<void()> action, std::chrono::duration<R, P> timeout)
      : Barrier(parties, std::move(action),
                std::optional<std::chrono::nanoseconds>(concur::detail::saturating_ns(timeout))) {}
  // Waits for all parties; returns this party's index 0..parties-1. Throws
  // threading::BrokenBarrierError, or the action's exception in the process that ran it.
  int wait();
  template <class R, class P>
  int wait(std::chrono::duration<R, P> timeout) {
    return wait_until_impl(concur::detail::Deadline::after(timeout).get());
  }
  void reset() noexcept;
  void abort() noexcept;
  bool broken() const noexcept;
  int parties() const noexcept;
  int n_waiting() const noexcept;

 private:
  int wait_until_impl(const concur::detail::Clock::time_point* deadline);
  std::shared_ptr<concur::detail::BasicBarrier<concur::detail::Scope::Shared>> b_;
  std::function<void()> action_;
};

}  // namespace concur::multiprocessing
