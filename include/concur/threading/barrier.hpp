// concur/threading/barrier.hpp — threading::Barrier (Python's threading.Barrier).
//
// `parties` threads call wait(); each gets a distinct index 0..parties-1 and all are
// released together. The thread that gets index parties-1 runs `action` (holding the
// barrier's internal lock) before anyone is released. The barrier is reusable cycle after
// cycle. It BREAKS — every current and later waiter gets BrokenBarrierError until reset() —
// when: action throws (its thread gets the action's exception), a wait times out (default
// timeout from the constructor, or wait(timeout)), or abort() is called. reset() makes the
// current waiters fail with BrokenBarrierError and leaves the barrier empty and usable.
// Algorithm: detail/barrier.hpp (also used in shared memory by multiprocessing::Barrier).
// Lifetime: destroy only when nobody waits. Not copyable or movable.
// Thread-safety: all members from any thread. Memory ordering: everything each party did
// before wait() happens-before the action and the return of every wait() of that cycle.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>

#include "concur/detail/barrier.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace concur::threading {

class Barrier {
 public:
  // ValueError("parties must be > 0") for parties < 1. A negative default timeout is
  // treated as zero (every wait breaks the barrier unless all parties are already there).
  explicit Barrier(int parties, std::function<void()> action = {},
                   std::optional<std::chrono::nanoseconds> timeout = std::nullopt)
      : action_(std::move(action)), b_(checked(parties), to_ns(timeout)) {}
  // Same with a default timeout of any duration type (saturated: hours::max() is no
  // timeout at all; ValueError for NaN).
  template <class Rep, class Period>
  Barrier(int parties, std::function<void()> action, std::chrono::duration<Rep, Period> timeout)
      : Barrier(parties, std::move(action),
                std::optional<std::chrono::nanoseconds>(detail::saturating_ns(timeout))) {}
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  // Waits for all parties (with the default timeout, if any); returns this thread's index.
  // Throws BrokenBarrierError, or the action's exception in the thread that ran it.
  int wait() { return static_cast<int>(b_.wait(Run{this})); }
  // Waits at most `timeout` (overrides the default; <= 0: do not block); on timeout the
  // barrier breaks and BrokenBarrierError is thrown.
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return static_cast<int>(b_.wait_until(detail::deadline_for(timeout).get(), Run{this}));
  }
  // Empties the barrier; threads waiting now get BrokenBarrierError. Never blocks long.
  void reset() noexcept { b_.reset(); }
  // Breaks the barrier: current and future waiters get BrokenBarrierError until reset().
  void abort() noexcept { b_.abort(); }
  bool broken() noexcept { return b_.broken(); }
  int parties() const noexcept { return static_cast<int>(b_.parties()); }
  // Threads waiting in the current cycle (0 while it drains, resets or is broken).
  int n_waiting() noexcept { return static_cast<int>(b_.n_waiting()); }

 private:
  struct Run {
    Barrier* self;
    void operator()() const {
      if (self->action_) self->action_();
    }
  };
  static std::uint32_t checked(int parties) {
    if (parties < 1) throw ValueError("parties must be > 0");
    return static_cast<std::uint32_t>(parties);
  }
  static std::int64_t to_ns(std::optional<std::chrono::nanoseconds> t) noexcept {
    if (!t) return -1;
    return t->count() < 0 ? 0 : static_cast<std::int64_t>(t->count());
  }

  std::function<void()> action_;
  detail::BasicBarrier<detail::Scope::Private> b_;
};

}  // namespace concur::threading
