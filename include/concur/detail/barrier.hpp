// concur/detail/barrier.hpp — BasicBarrier<S>: Python's Barrier algorithm on BasicLock +
// BasicCondition, for threads (Scope::Private) and for processes in MAP_SHARED memory
// (Scope::Shared).
//
// States (CPython's threading.Barrier): filling (0) → the waiter that gets index parties-1
// runs the action, with the barrier's lock held, before anyone is released → draining (1)
// until the last waiter of the cycle leaves → filling again. resetting (-1) drains the
// current waiters with BrokenBarrierError, then fills again. broken (-2) until reset().
// An action that throws breaks the barrier; its thread rethrows the action's exception,
// every other waiter gets BrokenBarrierError. A wait that times out breaks the barrier for
// everybody (the timed-out waiter too gets BrokenBarrierError).
//
// The action is passed to each wait() call rather than stored, so the object stays
// pointer-free: in shared memory every process passes its own copy of the action.
// Lifetime: trivially destructible; destroy only when nobody waits.
// Thread-safety: every member may be called concurrently from any thread/process.
// Memory ordering: what every party did before wait() happens-before the action and before
// every wait() of the same cycle returns (all of it goes through the barrier's lock).
#pragma once

#include <cstdint>
#include <type_traits>

#include "concur/detail/condition.hpp"
#include "concur/detail/futex.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

template <Scope S>
class BasicBarrier {
 public:
  // `parties` >= 1 (the public layer checks); `default_timeout_ns` < 0 means no default.
  constexpr explicit BasicBarrier(std::uint32_t parties,
                                  std::int64_t default_timeout_ns = -1) noexcept
      : parties_(parties), timeout_ns_(default_timeout_ns) {}
  BasicBarrier(const BasicBarrier&) = delete;
  BasicBarrier& operator=(const BasicBarrier&) = delete;

  // Waits with the default timeout (if any). Returns this party's index 0..parties-1.
  // Throws threading::BrokenBarrierError, or whatever `action` throws (in its thread only).
  template <class Action>
  std::uint32_t wait(Action&& action) {
    if (timeout_ns_ < 0) return wait_until(nullptr, action);
    const Deadline d = Deadline::after(std::chrono::nanoseconds(timeout_ns_));
    return wait_until(d.get(), action);
  }
  // Waits until *deadline at the latest (nullptr: no deadline, ignoring the default).
  template <class Action>
  std::uint32_t wait_until(const Clock::time_point* deadline, Action&& action) {
    Guard g(lock_);
    enter();
    const std::uint32_t index = count_++;
    Leave leave{this};  // runs before g releases the lock
    if (index + 1 == parties_) {
      release(action);
    } else {
      wait_release(deadline);
    }
    return index;
  }

  // Returns the barrier to the empty filling state; current waiters get BrokenBarrierError.
  void reset() noexcept {
    Guard g(lock_);
    if (count_ > 0) {
      if (state_ == kFilling || state_ == kBroken) state_ = kResetting;
      // draining or already resetting: the last one out resets the state
    } else {
      state_ = kFilling;
    }
    cond_.notify_all();
  }
  // Breaks the barrier: current and future waiters get BrokenBarrierError until reset().
  void abort() noexcept {
    Guard g(lock_);
    break_locked();
  }
  bool broken() noexcept {
    Guard g(lock_);
    return state_ == kBroken;
  }
  // Parties currently waiting in the filling phase (0 while draining/resetting/broken).
  std::uint32_t n_waiting() noexcept {
    Guard g(lock_);
    return state_ == kFilling ? count_ : 0;
  }
  std::uint32_t parties() const noexcept { return parties_; }
  std::int64_t default_timeout_ns() const noexcept { return timeout_ns_; }

 private:
  static constexpr std::int32_t kFilling = 0, kDraining = 1, kResetting = -1, kBroken = -2;

  struct Guard {
    explicit Guard(BasicLock<S>& l) noexcept : l_(l) { l_.lock(); }
    ~Guard() { l_.unlock(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    BasicLock<S>& l_;
  };
  struct Leave {
    BasicBarrier* b;
    ~Leave() {
      --b->count_;
      b->exit_locked();
    }
  };

  // Blocks while a previous cycle drains or resets.
  void enter() {
    while (state_ == kDraining || state_ == kResetting) cond_.wait(lock_);
    if (state_ < 0) throw threading::BrokenBarrierError();
  }
  template <class Action>
  void release(Action& action) {
    try {
      action();
      state_ = kDraining;
      cond_.notify_all();
    } catch (...) {
      break_locked();
      throw;
    }
  }
  void wait_release(const Clock::time_point* deadline) {
    while (state_ == kFilling) {
      if (!cond_.wait(lock_, deadline) && state_ == kFilling) {
        break_locked();
        throw threading::BrokenBarrierError();
      }
    }
    if (state_ < 0) throw threading::BrokenBarrierError();
  }
  void exit_locked() noexcept {
    if (count_ == 0 && (state_ == kResetting || state_ == kDraining)) {
      state_ = kFilling;
      cond_.notify_all();
    }
  }
  void break_locked() noexcept {
    state_ = kBroken;
    cond_.notify_all();
  }

  BasicLock<S> lock_;
  BasicCondition<S> cond_;
  std::uint32_t parties_;
  std::int32_t state_ = kFilling;  // guarded by lock_
  std::uint32_t count_ = 0;        // guarded by lock_
  std::int64_t timeout_ns_;
};

static_assert(std::is_standard_layout_v<BasicBarrier<Scope::Shared>> &&
              std::is_trivially_destructible_v<BasicBarrier<Scope::Shared>>);

}  // namespace concur::detail
