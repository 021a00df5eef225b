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
//
// Deaths (Scope::Shared only): a party SIGKILLed inside wait() or inside the action breaks
// the barrier for the others (BrokenBarrierError), as a timeout would; nobody waits
// forever on it, and reset() makes it usable again for the live parties.
//  * The barrier's lock is a RobustLock: a party that dies holding it (in the action, or
//    mid-update) hands it to the next locker with owner_died(), which breaks the barrier.
//  * Party tokens (if the object was built with room for them, as mp::Barrier does): each
//    party inside wait() holds a RobustLock token, taken and released under the barrier
//    lock, whose `count()` says whether the party is counted in count_. When a party
//    dies, the kernel marks its token (owner died, TID 0); the sleepers wake every
//    kDeathPoll to look (a memory read per token), and every wait/reset/abort looks too.
//    A death found recomputes count_ from the live counted tokens and breaks the barrier.
//  Without tokens (parties beyond them, or an object built without), a party killed while
//  sleeping is noticed only through the others' timeouts, as before.
// Lifetime: trivially destructible; destroy only when nobody waits.
// Thread-safety: every member may be called concurrently from any thread/process.
// Memory ordering: what every party did before wait() happens-before the action and before
// every wait() of the same cycle returns (all of it goes through the barrier's lock).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "concur/detail/condition.hpp"
#include "concur/detail/futex.hpp"
#include "concur/detail/robust_lock.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

template <Scope S>
class BasicBarrier {
 public:
  // `parties` >= 1 (the public layer checks); `default_timeout_ns` < 0 means no default.
  // `tokens` (Shared only): how many party tokens follow the object in its memory block,
  // which must then be tokens_bytes(tokens) long at least.
  constexpr explicit BasicBarrier(std::uint32_t parties, std::int64_t default_timeout_ns = -1,
                                  std::uint32_t tokens = 0) noexcept
      : parties_(parties), timeout_ns_(default_timeout_ns), n_tokens_(tokens) {
    if constexpr (S == Scope::Shared) {
      for (std::uint32_t i = 0; i < n_tokens_; ++i) ::new (&token(i)) RobustLock();
    } else {
      n_tokens_ = 0;
    }
  }
  // Bytes of a block that holds the barrier and `tokens` party tokens.
  static constexpr std::size_t tokens_bytes(std::uint32_t tokens) noexcept {
    return kTokensAt + std::size_t{tokens} * sizeof(RobustLock);
  }
  // How often sleeping parties look for dead ones (Shared with tokens).
  static constexpr std::chrono::milliseconds kDeathPoll{50};
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
    sweep_locked();
    Token tok{this};
    enter(deadline);
    const std::uint32_t index = count_++;
    tok.count(1);
    Leave leave{this, &tok};                                // runs before tok and g release
    if (state_ < 0) throw threading::BrokenBarrierError();  // a death found meanwhile
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
    sweep_locked();
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
    sweep_locked();
    break_locked();
  }
  bool broken() noexcept {
    Guard g(lock_);
    sweep_locked();
    return state_ == kBroken;
  }
  // Parties currently waiting in the filling phase (0 while draining/resetting/broken).
  std::uint32_t n_waiting() noexcept {
    Guard g(lock_);
    sweep_locked();
    return state_ == kFilling ? count_ : 0;
  }
  std::uint32_t parties() const noexcept { return parties_; }
  std::int64_t default_timeout_ns() const noexcept { return timeout_ns_; }

 private:
  static constexpr std::int32_t kFilling = 0, kDraining = 1, kResetting = -1, kBroken = -2;
  using LockT = std::conditional_t<S == Scope::Shared, RobustLock, BasicLock<S>>;

  struct Guard {
    explicit Guard(LockT& l) noexcept : l_(l) { l_.lock(); }
    ~Guard() { l_.unlock(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    LockT& l_;
  };
  // This party's token (none if all are taken or the object has none); under the lock.
  struct Token {
    BasicBarrier* b;
    RobustLock* t = nullptr;
    explicit Token(BasicBarrier* bb) noexcept : b(bb) {
      for (std::uint32_t i = 0; i < b->n_tokens_ && !t; ++i)
        if (b->token(i).try_lock_free()) t = &b->token(i);
    }
    ~Token() {
      if (t) {
        t->count() = 0;
        t->unlock();
      }
    }
    void count(std::uint32_t c) noexcept {
      if (t) t->count() = c;
    }
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
  };
  struct Leave {
    BasicBarrier* b;
    Token* tok;
    ~Leave() {
      tok->count(0);
      if (b->count_ > 0) --b->count_;
      b->exit_locked();
    }
  };

  RobustLock& token(std::uint32_t i) noexcept {
    return reinterpret_cast<RobustLock*>(reinterpret_cast<char*>(this) + kTokensAt)[i];
  }

  // Under the lock (Shared): was a party found dead — the lock's last holder, or a token
  // the kernel marked? Then count_ is recomputed from the live parties and the barrier
  // breaks. Returns whether it broke it.
  bool sweep_locked() noexcept {
    if constexpr (S == Scope::Shared) {
      bool died = lock_.owner_died();
      if (died) lock_.consistent();
      for (std::uint32_t i = 0; i < n_tokens_; ++i) {
        RobustLock& t = token(i);
        if (!t.dead_unclaimed()) continue;
        died = true;
        if (t.try_lock()) {  // takes the dead party's token over, then frees it
          t.count() = 0;
          t.unlock();
          t.consistent();
        }
      }
      if (!died) return false;
      std::uint32_t live = 0;
      for (std::uint32_t i = 0; i < n_tokens_; ++i) {
        RobustLock& t = token(i);
        if (t.locked() && t.count() != 0) ++live;
      }
      if (n_tokens_ > 0) count_ = live;
      break_locked();
      return true;
    } else {
      return false;
    }
  }

  // One condition wait. Shared with tokens: in slices of kDeathPoll, looking for dead
  // parties after each. Returns false once *deadline passed (or a death broke it).
  bool wait_step(const Clock::time_point* deadline) {
    if constexpr (S == Scope::Shared) {
      if (n_tokens_ > 0) {
        const Clock::time_point slice = Clock::now() + kDeathPoll;
        const bool user_first = deadline && *deadline <= slice;
        const bool notified = cond_.wait(lock_, user_first ? deadline : &slice);
        if (sweep_locked()) return false;
        return notified || !user_first;
      }
      const bool r = cond_.wait(lock_, deadline);
      return !sweep_locked() && r;
    } else {
      return cond_.wait(lock_, deadline);
    }
  }

  // Blocks while a previous cycle drains or resets.
  void enter(const Clock::time_point* deadline) {
    (void)deadline;
    while (state_ == kDraining || state_ == kResetting) (void)wait_step(nullptr);
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
      if (!wait_step(deadline) && state_ == kFilling) {
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

  LockT lock_;
  BasicCondition<S> cond_;
  std::uint32_t parties_;
  std::int32_t state_ = kFilling;  // guarded by lock_
  std::uint32_t count_ = 0;        // guarded by lock_
  std::int64_t timeout_ns_;
  std::uint32_t n_tokens_ = 0;  // party tokens after the object (Shared)

 public:
  // Where the tokens start in the block (after the object, on a cache line of their own).
  static constexpr std::size_t kTokensAt = 2048;
};

static_assert(std::is_standard_layout_v<BasicBarrier<Scope::Shared>> &&
              std::is_trivially_destructible_v<BasicBarrier<Scope::Shared>>);
static_assert(sizeof(BasicBarrier<Scope::Shared>) <= BasicBarrier<Scope::Shared>::kTokensAt);

}  // namespace concur::detail
