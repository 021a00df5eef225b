// concur/detail/rlock.hpp — BasicRLock<S>: a reentrant, owner-checked lock on BasicLock.
//
// Defines the algorithm behind threading::RLock and (in MAP_SHARED memory, Scope::Shared)
// multiprocessing::RLock. The owner id (owner_id() below, from detail/fork.hpp):
// * Scope::Shared (mp::RLock): the kernel thread id, unique across every process of the pid
//   namespace, so the same word identifies an owner in another process too; refreshed in
//   the child of every fork, so a child never mistakes itself for its parent's thread
//   (Python: the child's copy of a multiprocessing RLock is not owned).
// * Scope::Private (threading::RLock): the thread's process-local serial, which the forking
//   thread keeps in the child, so an RLock held by the forking thread is still owned by
//   the child's only thread (Python: the child owns it, acquire and release work).
// Like BasicLock it is standard layout, pointer-free and trivially destructible; all-zero
// memory is a valid unlocked BasicRLock.
//
// Lifetime: the object must outlive every thread (process) using it; it does not notice a
// dead owner (the shm helper's robust variant does).
// Thread-safety: every member may be called concurrently; count_ is only ever touched by
// the thread that holds the inner lock.
// Memory ordering: acquiring the outermost level synchronizes-with the release of the
// outermost level by the previous owner (through BasicLock's acquire/release pair).
// owner_ is read relaxed: a thread only needs to know whether it holds the lock itself,
// and only that thread ever stores its own tid there.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "concur/detail/fork.hpp"
#include "concur/detail/futex.hpp"

namespace concur::detail {

template <Scope S>
class BasicRLock {
 public:
  constexpr BasicRLock() noexcept = default;
  BasicRLock(const BasicRLock&) = delete;
  BasicRLock& operator=(const BasicRLock&) = delete;

  // Takes the lock (or one more level of it, for the owner). Never blocks.
  bool try_lock() noexcept {
    const int me = owner_id();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++count_;
      return true;
    }
    if (!lock_.try_lock()) return false;
    own(me, 1);
    return true;
  }
  // Blocks until the lock (or one more level of it) is held.
  void lock() noexcept {
    const int me = owner_id();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++count_;
      return;
    }
    lock_.lock();
    own(me, 1);
  }
  // Like lock(), giving up at `deadline`; false on timeout (nothing changed).
  bool lock_until(Clock::time_point deadline) noexcept {
    const int me = owner_id();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++count_;
      return true;
    }
    if (!lock_.lock_until(deadline)) return false;
    own(me, 1);
    return true;
  }
  // Drops one level; the last level releases the lock. Returns false (nothing changed) when
  // the caller does not own the lock — the public layer turns that into RuntimeError.
  bool unlock() noexcept {
    if (!is_owned()) return false;
    if (--count_ == 0) {
      owner_.store(0, std::memory_order_relaxed);
      lock_.unlock();
    }
    return true;
  }
  // True when the calling thread holds the lock (Python's RLock._is_owned()).
  bool is_owned() const noexcept { return owner_.load(std::memory_order_relaxed) == owner_id(); }
  // True when some thread holds the lock (a snapshot).
  bool locked() const noexcept { return lock_.locked(); }
  // Recursion depth held by the caller; 0 when the caller is not the owner.
  std::uint32_t level() const noexcept { return is_owned() ? count_ : 0; }

  // Condition support (Python's _release_save/_acquire_restore): releases every level the
  // owner holds and returns how many; the caller must own the lock.
  std::uint32_t release_save() noexcept {
    const std::uint32_t saved = count_;
    count_ = 0;
    owner_.store(0, std::memory_order_relaxed);
    lock_.unlock();
    return saved;
  }
  // Re-takes the lock, blocking, with the depth release_save() returned.
  void acquire_restore(std::uint32_t saved) noexcept {
    lock_.lock();
    own(owner_id(), saved);
  }

 private:
  // Never 0; one TLS read after the first call (see the banner).
  static int owner_id() noexcept {
    if constexpr (S == Scope::Shared)
      return this_thread_tid();
    else
      return static_cast<int>(this_thread_serial());
  }
  void own(int me, std::uint32_t count) noexcept {
    count_ = count;
    owner_.store(me, std::memory_order_relaxed);
  }

  BasicLock<S> lock_;
  std::atomic<int> owner_{0};   // owner_id() of the owner, 0 = none
  std::uint32_t count_ = 0;     // recursion depth; owner-only
};

static_assert(std::is_standard_layout_v<BasicRLock<Scope::Shared>> &&
              std::is_trivially_destructible_v<BasicRLock<Scope::Shared>>);

}  // namespace concur::detail
