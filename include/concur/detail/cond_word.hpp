// concur/detail/cond_word.hpp — a condition variable for code that already holds a BasicLock.
//
// CondWord is the futex equivalent of std::condition_variable for state guarded by a
// detail::BasicLock: a sequence word that sleepers wait on and a count of sleepers, so a
// notifier makes the FUTEX_WAKE syscall only when somebody sleeps ("wake only when someone
// sleeps"). All bookkeeping (waiters_, the decision to wake) happens under the caller's
// lock; only the syscall itself is made after the lock is released, so a woken thread does
// not immediately block on the lock its waker still holds.
//
// Protocol (no lost wake-ups): a waiter, holding the lock, registers itself and reads seq_;
// it releases the lock and futex-waits on that value. A notifier, holding the lock, bumps
// seq_ when waiters exist; the waiter's futex_wait then either sees the changed word (EAGAIN)
// or is asleep in the kernel queue and is woken. Woken threads re-check their predicate
// under the lock, as with any condition variable.
//
// Thread-safety: every member must be called with the associated lock held, except wake()
// which takes the token prepare_notify returned and runs after the unlock.
// Lifetime: trivially destructible, pointer-free (usable in shared memory with Scope::Shared).
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>

#include "concur/detail/futex.hpp"

namespace concur::detail {

template <Scope S>
class CondWord {
 public:
  constexpr CondWord() noexcept = default;
  CondWord(const CondWord&) = delete;
  CondWord& operator=(const CondWord&) = delete;

  // Called with `lock` held: releases it, sleeps until notified or *deadline (nullptr: no
  // deadline), re-takes it. Returns false if the deadline passed (the predicate must still
  // be re-checked: a notification may have raced with the timeout). Spurious returns happen.
  bool wait(BasicLock<S>& lock, const Clock::time_point* deadline = nullptr) noexcept {
    ++waiters_;
    const std::uint32_t seen = seq_.load(std::memory_order_relaxed);
    lock.unlock();
    const bool in_time = futex_wait(&seq_, seen, S, deadline, generation_bit(seen));
    lock.lock();
    // A notifier that bumped seq_ since we registered has already counted us out of
    // waiters_; otherwise (timeout, signal, spurious) we leave on our own.
    if (seq_.load(std::memory_order_relaxed) == seen && waiters_ > 0) --waiters_;
    return in_time;
  }

  // Called with the lock held: how many threads to wake (0 = nobody sleeps, no syscall).
  // Counts the woken ones out of waiters_ at once, so the notifications that follow, before
  // they have re-taken the lock, make no syscall (the 12-16 us wake-up latency would
  // otherwise turn every put of a producer into a FUTEX_WAKE: measured 107k syscalls per
  // 500k items). A waiter counted out that timed out instead leaves waiters_ one too high
  // until the next notification: one spare FUTEX_WAKE, never a lost one.
  int prepare_notify(int n = 1) noexcept {
    if (waiters_ == 0) return 0;
    const std::uint32_t k =
        static_cast<std::uint32_t>(n) < waiters_ ? static_cast<std::uint32_t>(n) : waiters_;
    waiters_ -= k;
    seq_.fetch_add(1, std::memory_order_relaxed);
    return static_cast<int>(k);
  }
  int prepare_notify_all() noexcept { return prepare_notify(INT_MAX); }

  // Makes the syscall prepare_notify asked for (if any). Safe without the lock.
  // FUTEX_WAKE picks sleepers by priority (SCHED_FIFO/RR before others), not by age, so a
  // plain wake could go to a waiter that registered after the notification: it would find
  // seq_ unchanged, count itself out again, and the counted-out older waiter would sleep
  // on with waiters_ == 0 (for good). Each waiter sleeps with the bit of its generation
  // (seq_ mod 32), and the wake excludes the current generation: a wake only ever reaches
  // waiters registered before the newest notification, whom that count covers.
  // (Residual, documented: a waiter that sleeps through exactly a multiple of 32
  // notifications without being woken shares the excluded bit until the next one.)
  void wake(int n) noexcept {
    if (n <= 0) return;
    const std::uint32_t cur = seq_.load(std::memory_order_relaxed);
    futex_wake_bitset(&seq_, n, S, ~generation_bit(cur));
  }

  // Registered sleepers not yet notified (read under the lock).
  std::uint32_t waiters() const noexcept { return waiters_; }

 private:
  static constexpr std::uint32_t generation_bit(std::uint32_t seq) noexcept {
    return std::uint32_t{1} << (seq & 31u);
  }
  std::atomic<std::uint32_t> seq_{0};
  std::uint32_t waiters_ = 0;  // guarded by the caller's lock
};

}  // namespace concur::detail
