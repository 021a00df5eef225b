// concur/threading/condition.hpp — threading::Condition (Python's threading.Condition).
//
// A condition variable bound to a Lock or an RLock (by default one it owns). Unlike
// std::condition_variable it has NO spurious wake-ups, and notify(n) wakes exactly the n
// oldest waiters, in FIFO order (Python's per-waiter lock queue, on futexes:
// detail/condition.hpp). A waiter whose timeout races with a notify that chose it returns
// true (CPython can lose such a notify). With an RLock held recursively, wait() releases
// every level and restores them afterwards.
//
// The Condition is itself Lockable/TimedLockable (Python's `with condition:`), so
// std::unique_lock<Condition> and std::scoped_lock hold its lock.
// Lifetime: the lock passed in must outlive the Condition; destroy the Condition only when
// nobody waits. Not copyable or movable.
// Thread-safety: wait/notify must be called with the lock held (RuntimeError otherwise);
// everything else from any thread.
// Memory ordering: what a notifier wrote under the lock is visible to the waiters it wakes.
// Cost: no allocation ever; notify() makes one FUTEX_WAKE per waiter that already sleeps
// and none otherwise; notify() with nobody waiting is a couple of nanoseconds.
#pragma once

#include <chrono>
#include <utility>

#include "concur/detail/condition.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"
#include "concur/threading/lock.hpp"

namespace concur::threading {

class Condition {
 public:
  // A condition with its own RLock (Python's Condition()).
  Condition() noexcept : rlock_(&own_) {}
  // A condition over the caller's lock, which must outlive it.
  explicit Condition(Lock& lock) noexcept : plain_(&lock) {}
  explicit Condition(RLock& lock) noexcept : rlock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  // ---- the underlying lock (Python's acquire/release; Lockable) ----
  bool acquire(bool blocking = true) {
    return plain_ ? plain_->acquire(blocking) : rlock_->acquire(blocking);
  }
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return plain_ ? plain_->acquire(timeout) : rlock_->acquire(timeout);
  }
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(bool blocking, std::chrono::duration<Rep, Period> timeout) {
    return plain_ ? plain_->acquire(blocking, timeout) : rlock_->acquire(blocking, timeout);
  }
  // Throws what the underlying lock's release throws (RuntimeError).
  void release() { plain_ ? plain_->release() : rlock_->release(); }
  void lock() noexcept { plain_ ? plain_->lock() : rlock_->lock(); }
  // Lockable unlock(): noexcept; misuse aborts with a clear message (see Lock::unlock).
  void unlock() noexcept { plain_ ? plain_->unlock() : rlock_->unlock(); }
  [[nodiscard]] bool try_lock() noexcept {
    return plain_ ? plain_->try_lock() : rlock_->try_lock();
  }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> d) {
    return plain_ ? plain_->try_lock_for(d) : rlock_->try_lock_for(d);
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, D> t) {
    return plain_ ? plain_->try_lock_until(t) : rlock_->try_lock_until(t);
  }

  // ---- waiting ----
  // Releases the lock, blocks until notified, re-takes it.
  // RuntimeError("cannot wait on un-acquired lock") if the caller does not hold the lock.
  void wait() { (void)wait_impl(nullptr); }
  // Like wait(), giving up after `timeout` (<= 0: do not block); false on timeout. The lock
  // is held again on return either way.
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_impl(detail::deadline_for(timeout).get());
  }
  // Like wait(timeout) with an absolute time on any clock.
  template <class C, class D>
  [[nodiscard]] bool wait_until(std::chrono::time_point<C, D> t) {
    return wait_impl(detail::Deadline::at(t).get());
  }
  // Waits until pred() is true; returns pred()'s last value (true).
  template <class Pred>
  bool wait_for(Pred pred) {
    bool result = static_cast<bool>(pred());
    while (!result) {
      (void)wait_impl(nullptr);
      result = static_cast<bool>(pred());
    }
    return result;
  }
  // Waits until pred() is true or `timeout` has passed (measured from this call); returns
  // pred()'s last value.
  template <class Pred, class Rep, class Period>
  [[nodiscard]] bool wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) {
    const detail::Deadline deadline = detail::deadline_for(timeout);
    bool result = static_cast<bool>(pred());
    while (!result) {
      if (deadline.expired()) break;
      (void)wait_impl(deadline.get());
      result = static_cast<bool>(pred());
    }
    return result;
  }

  // ---- notifying ----
  // Wakes the n oldest waiters (n <= 0: none). RuntimeError("cannot notify on un-acquired
  // lock") if the caller does not hold the lock. Never blocks.
  void notify(int n = 1) {
    if (!owned()) throw RuntimeError("cannot notify on un-acquired lock");
    cond_.notify(n);
  }
  // Wakes every waiter. Same precondition.
  void notify_all() {
    if (!owned()) throw RuntimeError("cannot notify on un-acquired lock");
    cond_.notify_all();
  }

 private:
  bool owned() const noexcept {
    return plain_ ? detail::cond_is_owned(plain_->lock_) : detail::cond_is_owned(rlock_->lock_);
  }
  bool wait_impl(const detail::Clock::time_point* deadline) {
    if (!owned()) throw RuntimeError("cannot wait on un-acquired lock");
    return plain_ ? cond_.wait(plain_->lock_, deadline) : cond_.wait(rlock_->lock_, deadline);
  }

  RLock own_;                 // used by the default constructor only
  Lock* plain_ = nullptr;     // exactly one of plain_ / rlock_ is set
  RLock* rlock_ = nullptr;
  detail::BasicCondition<detail::Scope::Private> cond_;
};

}  // namespace concur::threading
