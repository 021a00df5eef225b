// concur/detail/condition.hpp — BasicCondition<S>: Python's Condition algorithm on futexes.
//
// Python's Condition keeps a FIFO of waiters, each blocked on its own lock; notify(n) pops
// the n oldest and releases their locks. So it has NO spurious wake-ups and notify(n) wakes
// exactly the n oldest waiters. BasicCondition reproduces that with one algorithm over a
// waiter store:
//   * Scope::Private: an intrusive FIFO of nodes living on the waiting threads' stacks
//     (unbounded, no allocation);
//   * Scope::Shared: kSlots (64) slots inside the object, linked by index, so the object is
//     pointer-free and works in MAP_SHARED memory across processes.
// Each waiter sleeps on its own 32-bit word (0 waiting, 2 asleep in the kernel, 1 notified),
// so a notify wakes exactly the chosen waiter and FUTEX_WAKE is issued only when that waiter
// really sleeps.
//
// Out of slots (Shared only, more than 64 simultaneous waiters): the extra waiters wait on a
// generation word instead. A notify that has woken every slotted waiter and still has
// wake-ups left (and notify_all) bumps the generation and wakes ALL overflow waiters, so
// nothing is ever lost, but overflow waiters can be woken more than n at a time (spurious
// from their point of view) and are not ordered FIFO against slotted ones. Use predicate
// loops (wait_for) when more than 64 processes/threads may wait at once.
//
// Dead waiters (Shared): each slot records its waiter's pid and TID. A waiter killed inside
// wait() never takes its wake-up, so notify() must not count it: when the chosen waiter
// was not asleep in the kernel (FUTEX_WAKE woke nobody, or it had not gone to sleep yet)
// notify asks the kernel whether that thread still exists (tgkill(pid, tid, 0)); a dead
// one's slot is freed and the wake-up goes to the next waiter. The common path (a sleeping
// waiter, FUTEX_WAKE returns 1) costs nothing extra. Slots of waiters killed after their
// notification are reclaimed the same way when the 64 slots run out.
//
// Better than Python: a waiter whose timeout races with a notify that picked it returns true
// (the decision is taken under the user's lock), where CPython can lose that notify.
//
// The store is protected by the user's lock: every wait/notify must hold it. The lock type L
// is adapted through three overloads found by ADL in this namespace:
//   cond_is_owned(L&), cond_release_save(L&) -> uint32_t, cond_acquire_restore(L&, uint32_t)
// (provided here for BasicLock and BasicRLock; other lock types add their own).
//
// Lifetime: trivially destructible; destroy only when nobody waits. All-zero memory is a
// valid empty BasicCondition (handy for shared memory).
// Memory ordering: everything the notifier did before notify() (under the lock) is visible
// to the waiter when wait() returns, since the waiter re-acquires the same lock.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "concur/detail/futex.hpp"
#include "concur/detail/rlock.hpp"
#include "concur/detail/robust_lock.hpp"

namespace concur::detail {

// ---- lock adapters -------------------------------------------------------------------
// BasicLock has no owner: "owned" means "locked" (Python's Condition._is_owned does the
// same for a plain Lock: it cannot tell who holds it).
template <Scope S>
bool cond_is_owned(const BasicLock<S>& l) noexcept { return l.locked(); }
template <Scope S>
std::uint32_t cond_release_save(BasicLock<S>& l) noexcept { l.unlock(); return 0; }
template <Scope S>
void cond_acquire_restore(BasicLock<S>& l, std::uint32_t) noexcept { l.lock(); }

template <Scope S>
bool cond_is_owned(const BasicRLock<S>& l) noexcept { return l.is_owned(); }
template <Scope S>
std::uint32_t cond_release_save(BasicRLock<S>& l) noexcept { return l.release_save(); }
template <Scope S>
void cond_acquire_restore(BasicRLock<S>& l, std::uint32_t saved) noexcept {
  l.acquire_restore(saved);
}

// ---- waiter stores -------------------------------------------------------------------
namespace cond {
inline constexpr std::uint32_t kWaiting = 0;   // queued, not (yet) asleep
inline constexpr std::uint32_t kNotified = 1;  // popped by notify
inline constexpr std::uint32_t kSleeping = 2;  // queued and asleep in FUTEX_WAIT
}  // namespace cond

template <Scope S>
class WaiterStore;

// Threads of one process: the nodes live on the waiters' stacks.
template <>
class WaiterStore<Scope::Private> {
 public:
  struct Node {
    std::atomic<std::uint32_t> word{cond::kWaiting};
    Node* next = nullptr;
  };
  using Handle = Node*;
  static constexpr Handle kNone = nullptr;

  // Appends the caller's node; never fails.
  Handle push(Node& local) noexcept {
    local.word.store(cond::kWaiting, std::memory_order_relaxed);
    local.next = nullptr;
    if (tail_) tail_->next = &local; else head_ = &local;
    tail_ = &local;
    ++size_;
    return &local;
  }
  static std::atomic<std::uint32_t>& word(Handle h) noexcept { return h->word; }
  // Removes and returns the oldest node, kNone if empty.
  Handle pop() noexcept {
    Node* n = head_;
    if (!n) return kNone;
    head_ = n->next;
    if (!head_) tail_ = nullptr;
    --size_;
    return n;
  }
  // Removes `h` if still queued (a timed-out waiter); O(waiters), only on timeouts.
  void erase(Handle h) noexcept {
    Node* prev = nullptr;
    for (Node* n = head_; n; prev = n, n = n->next) {
      if (n != h) continue;
      (prev ? prev->next : head_) = n->next;
      if (tail_ == n) tail_ = prev;
      --size_;
      return;
    }
  }
  // The waiter is done with its node (after re-taking the lock).
  void release(Handle) noexcept {}
  bool empty() const noexcept { return head_ == nullptr; }
  std::uint32_t size() const noexcept { return size_; }
  // In a child after fork: the queued nodes belong to threads that do not exist there.
  void clear() noexcept {
    head_ = tail_ = nullptr;
    size_ = 0;
  }
  // Threads of one process cannot die alone.
  static constexpr bool gone(Handle) noexcept { return false; }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
  std::uint32_t size_ = 0;
};

// Any process mapping the object: a fixed array of slots linked by index. Indices are
// stored +1 so that 0 means "none" and all-zero memory is an empty store.
template <>
class WaiterStore<Scope::Shared> {
 public:
  // 64 slots: one 64-bit free mask, 520 bytes per condition; more simultaneous waiters
  // than that take the overflow path (see the banner).
  static constexpr std::uint32_t kSlots = 64;
  struct Node {};  // nothing on the waiter's stack
  using Handle = std::uint32_t;
  static constexpr Handle kNone = UINT32_MAX;

  // Takes a free slot and appends it; kNone when all kSlots are in use.
  Handle push(Node&) noexcept {
    if (used_ == ~std::uint64_t{0}) reclaim_dead();
    if (used_ == ~std::uint64_t{0}) return kNone;
    const auto i = static_cast<std::uint32_t>(__builtin_ctzll(~used_));
    used_ |= std::uint64_t{1} << i;
    const RobustThread& me = robust_thread();
    slots_[i].word.store(cond::kWaiting, std::memory_order_relaxed);
    slots_[i].next = 0;
    slots_[i].pid = me.pid;
    slots_[i].tid = me.tid;
    if (tail_) slots_[tail_ - 1].next = i + 1; else head_ = i + 1;
    tail_ = i + 1;
    return i;
  }
  std::atomic<std::uint32_t>& word(Handle h) noexcept { return slots_[h].word; }
  Handle pop() noexcept {
    if (!head_) return kNone;
    const std::uint32_t i = head_ - 1;
    head_ = slots_[i].next;
    if (!head_) tail_ = 0;
    return i;
  }
  void erase(Handle h) noexcept {
    std::uint32_t prev = 0;
    for (std::uint32_t n = head_; n; prev = n, n = slots_[n - 1].next) {
      if (n != h + 1) continue;
      (prev ? slots_[prev - 1].next : head_) = slots_[n - 1].next;
      if (tail_ == n) tail_ = prev;
      return;
    }
  }
  // Returns the slot to the free mask (only the waiter that owned it does this, under the
  // lock, so a notified word is never recycled before its waiter has seen it).
  void release(Handle h) noexcept { used_ &= ~(std::uint64_t{1} << h); }
  bool empty() const noexcept { return head_ == 0; }
  // Whether the slot's waiter no longer exists (a syscall: only on the rare paths).
  bool gone(Handle h) const noexcept { return thread_gone(slots_[h].pid, slots_[h].tid); }

 private:
  // Frees the slots of notified waiters that died before taking their slot back.
  void reclaim_dead() noexcept {
    for (std::uint32_t i = 0; i < kSlots; ++i)
      if (slots_[i].word.load(std::memory_order_relaxed) == cond::kNotified && gone(i)) release(i);
  }
  struct Slot {
    std::atomic<std::uint32_t> word;
    std::uint32_t next;
    std::uint32_t pid;  // the waiter (for gone())
    std::uint32_t tid;
  };
  Slot slots_[kSlots]{};
  std::uint64_t used_ = 0;
  std::uint32_t head_ = 0;
  std::uint32_t tail_ = 0;
};

// ---- the condition -------------------------------------------------------------------

// Wake-ups decided under the lock and issued after it is released (Scope::Private only):
// BasicCondition::prepare_notify pops the chosen waiters and marks them notified while the
// caller holds the lock; the FUTEX_WAKE syscalls (one per waiter that really sleeps) are
// made by issue() after the unlock, so a woken thread does not at once block on the lock
// its waker still holds. The first kInline wake-ups are carried here; a notify_all of more
// sleepers than that makes the rest of its syscalls under the lock.
// A woken waiter may return before issue() runs (its deadline passed, or it had not yet
// slept): issue() then makes FUTEX_WAKE on the address of a node that is gone. For a
// private futex the kernel does not touch that memory; at worst some later futex waiter at
// the same address gets a spurious wake-up, which every futex wait loop here tolerates.
class Wakeups {
 public:
  static constexpr int kInline = 8;
  constexpr Wakeups() noexcept = default;
  // Makes the prepared syscalls; safe without the lock. Idempotent (a second call is a no-op).
  void issue() noexcept {
    for (int i = 0; i < n_; ++i) futex_wake(words_[i], 1, Scope::Private);
    n_ = 0;
  }
  // How many FUTEX_WAKEs issue() will make.
  int pending() const noexcept { return n_; }

 private:
  template <Scope>
  friend class BasicCondition;
  std::atomic<std::uint32_t>* words_[kInline] = {};
  int n_ = 0;
};

template <Scope S>
class BasicCondition {
  using Store = WaiterStore<S>;

 public:
  constexpr BasicCondition() noexcept = default;
  BasicCondition(const BasicCondition&) = delete;
  BasicCondition& operator=(const BasicCondition&) = delete;

  // Releases `lock` (every level of an RLock), blocks until notified or until *deadline
  // (nullptr: no deadline), re-takes the lock as it was and returns true if notified.
  // Precondition: the caller holds `lock` (cond_is_owned) — the public layer checks and
  // throws. Never throws, never allocates; no spurious wake-ups (below 64 Shared waiters).
  template <class L>
  bool wait(L& lock, const Clock::time_point* deadline = nullptr) noexcept {
    typename Store::Node local;
    const auto h = store_.push(local);
    if (h == Store::kNone) return wait_overflow(lock, deadline);
    std::atomic<std::uint32_t>& w = store_.word(h);
    const std::uint32_t saved = cond_release_save(lock);
    bool notified = sleep(w, deadline);
    cond_acquire_restore(lock, saved);
    if (!notified) {
      // Under the lock nobody can pop us any more: a notify that raced with the timeout
      // has already set the word, and then it counts.
      notified = w.load(std::memory_order_acquire) == cond::kNotified;
      if (!notified) store_.erase(h);
    }
    store_.release(h);
    return notified;
  }

  // Wakes the n oldest waiters (fewer if fewer wait; nothing for n <= 0). The caller holds
  // the lock. Never blocks, never throws.
  void notify(int n = 1) noexcept {
    while (n > 0) {
      const auto h = store_.pop();
      if (h == Store::kNone) break;
      std::atomic<std::uint32_t>& w = store_.word(h);
      // The waiter cannot free its node before we return: it must re-take the lock first.
      const std::uint32_t prev = w.exchange(cond::kNotified, std::memory_order_release);
      // A waiter not found asleep may be dead (Shared): then the wake-up is not spent.
      const bool missed = prev == cond::kSleeping ? futex_wake(&w, 1, S) == 0 : true;
      if (missed && store_.gone(h)) {
        store_.release(h);
        continue;
      }
      --n;
    }
    if (n > 0 && overflow_waiters_ > 0) wake_overflow();
  }
  // Wakes every waiter. The caller holds the lock.
  void notify_all() noexcept { notify(INT_MAX); }

  // Scope::Private, two-phase notify (see Wakeups): with the lock held, pops the n oldest
  // waiters (fewer if fewer wait) and marks them notified; the returned Wakeups' issue(),
  // called after the unlock, wakes those of them that sleep in the kernel. The choice is
  // exact: exactly the popped waiters are woken, whatever their scheduling priorities (a
  // plain FUTEX_WAKE on a shared word picks by priority and can hand an older waiter's
  // wake-up to a newer one). No waiter: no syscall.
  Wakeups prepare_notify(int n = 1) noexcept
    requires(S == Scope::Private)
  {
    Wakeups wk;
    while (n > 0) {
      const auto h = store_.pop();
      if (h == Store::kNone) break;
      --n;
      std::atomic<std::uint32_t>& w = store_.word(h);
      if (w.exchange(cond::kNotified, std::memory_order_release) != cond::kSleeping) continue;
      if (wk.n_ < Wakeups::kInline)
        wk.words_[wk.n_++] = &w;
      else
        futex_wake(&w, 1, S);  // still under the lock: the node cannot be gone yet
    }
    return wk;
  }
  Wakeups prepare_notify_all() noexcept
    requires(S == Scope::Private)
  {
    return prepare_notify(INT_MAX);
  }
  // Scope::Private: waiters queued and not yet notified (read under the lock).
  std::uint32_t waiters() const noexcept
    requires(S == Scope::Private)
  {
    return store_.size();
  }
  // Scope::Private, in a child after fork (nobody else runs there): forgets the parent's
  // waiters, whose threads do not exist in the child.
  void reset_after_fork() noexcept
    requires(S == Scope::Private)
  {
    store_.clear();
  }

  // True when no thread waits (a snapshot; meaningful under the lock).
  bool empty() const noexcept { return store_.empty() && overflow_waiters_ == 0; }

 private:
  // Waits for the node's word to become kNotified; false once the deadline passes.
  static bool sleep(std::atomic<std::uint32_t>& w, const Clock::time_point* deadline) noexcept {
    // No spinning before sleeping: the notifier must first be woken itself and take the
    // lock, which takes longer than any useful spin; measured (bench/lock_bench), spinning
    // 100 or 300 `pause` rounds here made the Condition ping-pong slower (14-16 us vs
    // 8-12 us per round trip), as the spinner delays the very thread it waits for when
    // both share a CPU. Sleeping at once matches glibc's condition variable.
    std::uint32_t expected = cond::kWaiting;
    if (!w.compare_exchange_strong(expected, cond::kSleeping, std::memory_order_acquire,
                                   std::memory_order_acquire))
      return true;  // expected == kNotified
    for (;;) {
      const bool in_time = futex_wait(&w, cond::kSleeping, S, deadline);
      if (w.load(std::memory_order_acquire) == cond::kNotified) return true;
      if (!in_time) return false;
    }
  }

  template <class L>
  bool wait_overflow(L& lock, const Clock::time_point* deadline) noexcept {
    ++overflow_waiters_;
    const std::uint32_t gen = overflow_gen_.load(std::memory_order_relaxed);
    const std::uint32_t saved = cond_release_save(lock);
    for (;;) {
      const bool in_time = futex_wait(&overflow_gen_, gen, S, deadline);
      if (overflow_gen_.load(std::memory_order_acquire) != gen || !in_time) break;
    }
    cond_acquire_restore(lock, saved);
    --overflow_waiters_;
    return overflow_gen_.load(std::memory_order_relaxed) != gen;
  }

  void wake_overflow() noexcept {
    overflow_gen_.fetch_add(1, std::memory_order_release);
    futex_wake(&overflow_gen_, INT_MAX, S);
  }

  Store store_;
  std::atomic<std::uint32_t> overflow_gen_{0};
  std::uint32_t overflow_waiters_ = 0;  // guarded by the user's lock
};

static_assert(std::is_standard_layout_v<BasicCondition<Scope::Shared>> &&
              std::is_trivially_destructible_v<BasicCondition<Scope::Shared>>);
static_assert(std::is_standard_layout_v<BasicCondition<Scope::Private>> &&
              std::is_trivially_destructible_v<BasicCondition<Scope::Private>>);

}  // namespace concur::detail
