// concur/detail/futex.hpp — the futex core every blocking primitive is built on.
//
// One implementation serves threads and processes: each primitive here is a handful of
// 32-bit atomic words with no pointers, standard layout and trivially destructible, so the
// same object works on a thread's stack or inside MAP_SHARED memory used by many processes.
// The Scope parameter selects FUTEX_PRIVATE_FLAG (one process) or not (shared memory).
//
// Costs measured on this project's 2-core machine (../shared/bench): waking a sleeper on the
// other CPU costs 12-16 us round trip whatever the mechanism, a busy-spin hand-off on a
// shared cache line 0.18 us. So the uncontended path is one atomic RMW with no syscall,
// FUTEX_WAKE is issued only when a waiter is known to exist, and a contended acquire spins
// kSpinLimit rounds (0.1-0.5 us of `pause`, see below) before it sleeps.
//
// Memory ordering: a successful lock/acquire/wait synchronizes-with the unlock/release/set
// that let it through (acquire/release pairs), as for std::mutex and std::counting_semaphore.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "concur/detail/deadline.hpp"

namespace concur::detail {

// Where the waiting threads live: Private = threads of one process (FUTEX_PRIVATE_FLAG),
// Shared = any process that maps the word (MAP_SHARED memory).
enum class Scope : bool { Private = false, Shared = true };

static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "futex words must be address-free lock-free atomics");

// Blocks while *word == expected, until woken or until *deadline (nullptr: no deadline).
// Returns false only when the deadline has passed; true on a wake-up, a changed value, a
// signal or a spurious return: callers always re-check their own condition.
// `bitset` (FUTEX_WAIT_BITSET): only a futex_wake_bitset whose mask shares a bit wakes us.
// Never throws, never allocates. The errors that are no wake-up — EFAULT (the word is not
// mapped), EINVAL (misaligned word, bad deadline), ENOSYS (no futex syscall, e.g. a
// seccomp filter) — would make every caller spin at 100 % CPU if treated as one: they
// are bugs or a broken platform, so they abort with a message naming errno and the word
// (futex_fatal). No primitive here can report an error in its noexcept API. (ENOSYS is
// not worth an OSError path either: tried under a seccomp filter that makes futex(2)
// ENOSYS, glibc itself aborts at the next contended-free static guard or pthread_once
// with "The futex facility returned an unexpected error code".)
bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, Scope scope,
                const Clock::time_point* deadline = nullptr,
                std::uint32_t bitset = ~std::uint32_t{0}) noexcept;

// Wakes at most `count` threads blocked in futex_wait on `word`. Returns how many woke.
int futex_wake(std::atomic<std::uint32_t>* word, int count, Scope scope) noexcept;
// Wakes at most `count` of the threads whose wait bitset shares a bit with `mask`.
int futex_wake_bitset(std::atomic<std::uint32_t>* word, int count, Scope scope,
                      std::uint32_t mask) noexcept;

// Writes "concur: <what>: <strerror(err)> (word <addr>)" to stderr and aborts.
[[noreturn]] void futex_fatal(const char* what, int err, const void* word) noexcept;

// Misuse of a noexcept Lockable unlock() (the caller does not hold the lock): writes
// "concur: <what>" to stderr and aborts. The Lockable unlock() of every concur lock is
// noexcept so that std::lock_guard & co. never throw from a destructor; release() keeps
// Python's exceptions.
[[noreturn]] void lock_misuse_abort(const char* what) noexcept;

// One spin-wait step: a `pause` instruction (or the architecture's equivalent).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spin rounds before sleeping. Measured here (bench/lock_bench BM_spin_budget, 2-vCPU KVM
// guest): one `pause` costs 5.7 ns on a quiet CPU and ~26 ns under load, so 20 rounds are
// 0.1-0.5 us. 100 rounds made a Condition ping-pong 2.5x slower than
// std::condition_variable (26 vs 10 us per round trip): the woken thread is often placed
// on the waker's CPU, where spinning only delays the thread it waits for (and KVM's
// pause-loop exiting adds exits). 20 rounds measured the same as 0 on every lock_bench case
// (ping-pongs, contended Lock) and still catch a lock released within a few hundred ns.
inline constexpr int kSpinLimit = 20;

// A mutual-exclusion word: 0 unlocked, 1 locked, 2 locked with (possible) sleepers
// (Drepper, "Futexes Are Tricky", mutex #2). Any thread may unlock it — Python's Lock allows
// release by a thread that did not acquire it.
template <Scope S>
class BasicLock {
 public:
  constexpr BasicLock() noexcept = default;
  BasicLock(const BasicLock&) = delete;
  BasicLock& operator=(const BasicLock&) = delete;

  // Takes the lock if it is free. Never blocks.
  bool try_lock() noexcept {
    std::uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  // Blocks until the lock is taken.
  void lock() noexcept {
    if (!try_lock()) lock_slow(nullptr);
  }
  // Blocks until the lock is taken or `deadline` passes; false on timeout.
  bool lock_until(Clock::time_point deadline) noexcept {
    return try_lock() || lock_slow(&deadline);
  }
  // Releases the lock, waking one sleeper if there may be one. Returns false (and changes
  // nothing) if the lock was not held.
  bool unlock() noexcept {
    const std::uint32_t prev = state_.exchange(0, std::memory_order_release);
    if (prev == 2) futex_wake(&state_, 1, S);
    return prev != 0;
  }
  bool locked() const noexcept { return state_.load(std::memory_order_relaxed) != 0; }

 private:
  bool lock_slow(const Clock::time_point* deadline) noexcept {
    for (int i = 0; i < kSpinLimit; ++i) {
      cpu_relax();
      if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return true;
    }
    std::uint32_t c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      if (!futex_wait(&state_, 2, S, deadline)) return false;
      c = state_.exchange(2, std::memory_order_acquire);
    }
    return true;
  }
  std::atomic<std::uint32_t> state_{0};
};

// A counting semaphore: a value word and a count of sleepers, so release() makes a
// syscall only when somebody sleeps. release(n) lets exactly n acquirers through.
template <Scope S>
class BasicSemaphore {
 public:
  constexpr explicit BasicSemaphore(std::uint32_t initial = 0) noexcept : value_(initial) {}
  BasicSemaphore(const BasicSemaphore&) = delete;
  BasicSemaphore& operator=(const BasicSemaphore&) = delete;

  // Takes one unit if available. Never blocks.
  bool try_acquire() noexcept {
    std::uint32_t v = value_.load(std::memory_order_relaxed);
    while (v > 0) {
      if (value_.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                       std::memory_order_relaxed))
        return true;
    }
    return false;
  }
  // Blocks until a unit is taken or *deadline passes (nullptr: no deadline).
  bool acquire(const Clock::time_point* deadline = nullptr) noexcept {
    if (try_acquire()) return true;
    for (int i = 0; i < kSpinLimit; ++i) {
      cpu_relax();
      if (value_.load(std::memory_order_relaxed) > 0 && try_acquire()) return true;
    }
    // Dekker with release(): our increment and the re-check below are both seq_cst, as are
    // release()'s value update and its waiters_ load, so one of us sees the other.
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
      if (value_.load(std::memory_order_seq_cst) > 0 && try_acquire()) break;
      if (!futex_wait(&value_, 0, S, deadline)) {
        const bool got = try_acquire();
        waiters_.fetch_sub(1, std::memory_order_relaxed);
        return got;
      }
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  // Adds n units and wakes up to n sleepers.
  void release(std::uint32_t n = 1) noexcept {
    value_.fetch_add(n, std::memory_order_seq_cst);
    wake(n);
  }
  // Adds n units unless the value would exceed `bound`; false (nothing changed) if it would.
  bool release_bounded(std::uint32_t n, std::uint32_t bound) noexcept {
    std::uint32_t v = value_.load(std::memory_order_relaxed);
    do {
      if (v > bound || n > bound - v) return false;
    } while (!value_.compare_exchange_weak(v, v + n, std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
    wake(n);
    return true;
  }
  std::uint32_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  void wake(std::uint32_t n) noexcept {
    if (waiters_.load(std::memory_order_seq_cst) > 0)
      futex_wake(&value_, n > INT_MAX ? INT_MAX : static_cast<int>(n), S);
  }
  std::atomic<std::uint32_t> value_;
  std::atomic<std::uint32_t> waiters_{0};
};

// A manual-reset event: a flag word with a generation, and a count of sleepers.
// Word: bit 0 = the flag, bits 1-31 = how many times set() raised it (mod 2^31). A waiter
// sleeps on the exact word it saw, so a set() immediately followed by clear() still
// changes the word (the generation moved) and wakes it, and the waiter returns true as
// Python's Event.wait() does when a set() happened while it waited.
template <Scope S>
class BasicEvent {
 public:
  constexpr BasicEvent() noexcept = default;
  BasicEvent(const BasicEvent&) = delete;
  BasicEvent& operator=(const BasicEvent&) = delete;

  bool is_set() const noexcept { return (flag_.load(std::memory_order_acquire) & 1u) != 0; }
  // Sets the flag (a new generation) and wakes every sleeper.
  void set() noexcept {
    std::uint32_t w = flag_.load(std::memory_order_relaxed);
    do {
      if (w & 1u) return;  // already set: nothing changes, nobody sleeps on a set word
    } while (!flag_.compare_exchange_weak(w, (w + 2u) | 1u, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
    if (waiters_.load(std::memory_order_seq_cst) > 0) futex_wake(&flag_, INT_MAX, S);
  }
  void clear() noexcept { flag_.fetch_and(~1u, std::memory_order_relaxed); }
  // Blocks until the flag is set (or was set since the call began) or *deadline passes.
  // Returns true if so, as Python does; false only on timeout with no set() seen.
  bool wait(const Clock::time_point* deadline = nullptr) noexcept {
    const std::uint32_t seen = flag_.load(std::memory_order_acquire);
    if (seen & 1u) return true;
    // Dekker with set(): the increment and the re-load are seq_cst, as are set()'s update
    // and its waiters_ load.
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    bool set = false;
    for (;;) {
      const std::uint32_t now = flag_.load(std::memory_order_seq_cst);
      if ((set = (now & 1u) != 0 || (now >> 1) != (seen >> 1))) break;
      if (!futex_wait(&flag_, seen, S, deadline)) {
        const std::uint32_t last = flag_.load(std::memory_order_acquire);
        set = (last & 1u) != 0 || (last >> 1) != (seen >> 1);
        break;
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return set;
  }

 private:
  std::atomic<std::uint32_t> flag_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

static_assert(std::is_standard_layout_v<BasicLock<Scope::Shared>> &&
              std::is_trivially_destructible_v<BasicLock<Scope::Shared>>);
static_assert(std::is_standard_layout_v<BasicSemaphore<Scope::Shared>> &&
              std::is_trivially_destructible_v<BasicSemaphore<Scope::Shared>>);
static_assert(std::is_standard_layout_v<BasicEvent<Scope::Shared>> &&
              std::is_trivially_destructible_v<BasicEvent<Scope::Shared>>);

}  // namespace concur::detail
