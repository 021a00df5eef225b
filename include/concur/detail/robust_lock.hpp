// concur/detail/robust_lock.hpp — a process-shared mutex that survives the death of its
// holder: the kernel robust-futex contract, without glibc's pthread_mutex_t.
//
// What it is: one futex word holding the owner's kernel TID (| kWaiters | kOwnerDied) plus
// a robust-list node. On lock the node is linked into the calling thread's robust list
// (the list glibc registered with set_robust_list(2) for every thread), exactly as glibc
// links a PTHREAD_MUTEX_ROBUST mutex; on unlock it is unlinked. When a thread dies (exit,
// SIGKILL, exec) the kernel walks that list, sets kOwnerDied in every word still owned by
// the dead TID and wakes one waiter. The next acquirer takes the lock and sees
// owner_died() == true until somebody calls consistent(). Unlike glibc we never make the
// lock ENOTRECOVERABLE: it stays usable after recovery, owner_died() is only the warning
// that the data it protects may be half-updated.
//
// Why not a robust pthread_mutex_t (the other way the lead allowed)?
//  * Python lets ANY process release a multiprocessing.Lock; glibc's robust mutexes refuse
//    an unlock by a non-owner (EPERM).
//  * Speed: it does the same list work as glibc with fewer checks and an inlined fast
//    path: an uncontended lock+unlock pair measured 14.6 ns against 16.0 ns for glibc's
//    robust pshared mutex in the same run (bench/shared_counter_bench; docs/benchmarks.md).
//    A contended lock spins kSpinLimit rounds (~1-4 us, below the 12-16 us a futex
//    sleep/wake costs here) before it sets kWaiters and sleeps.
//
// Layout contract (checked at run time, see RobustThread): the word is at offset 0 and the
// list node {prev, next} at offsets 24/32, where glibc keeps __lock and __list in
// pthread_mutex_t on 64-bit targets, so the futex_offset glibc registered (-32) is right
// for our nodes too, and our nodes can sit in the same list as glibc's robust mutexes.
// Each thread verifies once (by probing with a private robust pthread mutex) that glibc
// lays out its list as expected; if not — or if the thread has no robust list — the lock
// still works, it just is not robust for that thread's holds.
//
// Release by a non-owner (allowed for Lock, not for RLock): the word is released and the
// waiters woken, but the node stays in the acquirer's list — only the thread that owns a
// list may edit it. link_tid_/link_token_/link_pid_ remember whose list holds the node.
// Until that thread unlinks it (its next own release of this lock, its normal end) or dies
// (then any acquirer reclaims the node), holds by other threads are not robust. Plain
// owner-releases — the normal case — are always robust.
//
// The soundness rule of the list: a node's memory is never reused while it is in a live
// thread's list (the kernel walk, and the lister's next link/unlink, would otherwise read
// and write into whatever object took its place). So the memory of a RobustLock is given
// back through robust_retire(), never freed directly: the arena's deleter does that for
// every type with a kRobustLockAt member (make_shared_object). A lock retired while its
// node is in its own thread's list is unlinked at once; in another live thread's list of
// this process, the block is posted to that thread, which unlinks and frees it at its next
// list operation or at its end (until then the block stays unused, never reused).
//
// A holder that ENDS NORMALLY keeps its locks held, as in Python: a thread's end (its
// thread_local epilogue, also the main thread's exit()) and a concur child's exit path
// (the exit hooks, which concur children run before exit_group) detach the thread's held
// nodes before the kernel walk: the word's owner becomes kDetachedTid (no thread has it,
// so the kernel walk leaves it alone), the lock stays held and any thread may release a
// Lock. Holds taken after that point are not linked (the thread is ending). Only a death
// — SIGKILL, a crash, a raw _exit()/exit_group() that skips concur's epilogue, a thread
// killed by its process's exit — hands the lock over with owner_died().
//
// Walk limit: the kernel follows at most ROBUST_LIST_LIMIT (2048) entries of a dying
// thread's list. Nodes are linked at the head, so when one thread dies holding more than
// 2048 robust locks, the 2048 it took last are recovered and the older ones stay held by
// the dead TID for good (glibc's robust mutexes have the same limit).
//
// Memory ordering: lock() acquires, unlock() releases (as std::mutex). All members are
// pointer-sized or 32-bit words with no process-local pointers except the list links,
// which only the listing thread follows; the object is standard layout, trivially
// destructible and lives in MAP_SHARED memory.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "concur/detail/futex.hpp"

namespace concur::detail {

// Per-thread robust-list facts, initialized on first use and again after fork.
// Trivially destructible (a constinit thread_local read on every lock operation); the
// thread's end is observed by a separate thread_local hook (see robust_thread_end()).
struct RobustThread {
  void** head = nullptr;         // &robust_list_head.list; nullptr: no robust list here
  std::uint32_t tid = 0;         // kernel TID; 0 = not initialized yet
  std::uint32_t pid = 0;
  std::uint64_t token = 0;       // random per thread incarnation (guards against TID reuse)
  std::atomic<bool> posted{false};   // robust_retire() posted blocks for us to free
  bool ended = false;                // detached at the thread's normal end: link no more
  bool registered = false;           // in the process registry (for robust_retire)
  RobustThread* reg_prev = nullptr;  // registry links (guarded by the registry mutex)
  RobustThread* reg_next = nullptr;
};

// Fills in the calling thread's record (first use, and again after fork).
void init_robust_thread(RobustThread& t) noexcept;

// The calling thread ends normally: frees the blocks posted to it, detaches its held
// nodes (they stay held, owned by kDetachedTid) and unlinks the nodes other threads
// released, so the kernel's exit walk finds none of them. Idempotent; afterwards the
// thread's new holds are not linked. Called by the thread_local hook and the exit hooks.
void robust_thread_end() noexcept;

// Whether thread `tid` of process `pid` no longer exists (tgkill(pid, tid, 0) says ESRCH).
bool thread_gone(std::uint32_t pid, std::uint32_t tid) noexcept;

class RobustLock;
// Gives back the memory of a block holding a RobustLock `node` (see the soundness rule
// above): calls release(block, bytes, gen) now, or later from the thread whose list holds
// the node; never, if that list belongs to another process (the block then stays unused).
void robust_retire(RobustLock* node, void (*release)(void*, std::size_t, unsigned long),
                   void* block, std::size_t bytes, unsigned long gen) noexcept;

// The calling thread's record. Constant-initialized, so access is a plain TLS load (no
// TLS wrapper call); initialized on first use.
inline constinit thread_local RobustThread tls_robust_thread{};
inline RobustThread& robust_thread() noexcept {
  RobustThread& t = tls_robust_thread;
  if (__builtin_expect(t.tid == 0, 0)) init_robust_thread(t);
  return t;
}

class RobustLock {
 public:
  static constexpr std::uint32_t kWaiters = 0x80000000u;    // FUTEX_WAITERS
  static constexpr std::uint32_t kOwnerDied = 0x40000000u;  // FUTEX_OWNER_DIED
  static constexpr std::uint32_t kTidMask = 0x3fffffffu;    // FUTEX_TID_MASK
  // The owner of a lock whose holder ended normally: above PID_MAX_LIMIT (4M), so no
  // thread has this TID and no kernel walk touches the word.
  static constexpr std::uint32_t kDetachedTid = kTidMask;
  // For make_shared_object: where the RobustLock sits in the block (see robust_retire).
  static constexpr std::size_t kRobustLockAt = 0;

  constexpr RobustLock() noexcept = default;
  RobustLock(const RobustLock&) = delete;
  RobustLock& operator=(const RobustLock&) = delete;

  // Takes the lock if it is free (or free because its owner died). Never blocks.
  [[nodiscard]] bool try_lock() noexcept {
    RobustThread& t = robust_thread();
    set_pending(t, true);
    std::uint32_t expected = 0;
    if (word_.compare_exchange_strong(expected, t.tid, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      link(t);
      set_pending(t, false);
      return true;
    }
    set_pending(t, false);
    if ((expected & kTidMask) == 0) return lock_slow(t, nullptr, /*block=*/false);
    return false;
  }
  // A brief hold: takes the lock if it is plainly free and leaves the node out of the
  // robust list. The hold is announced in the thread's list_op_pending slot instead, which
  // stays set until unlock(): the kernel treats a pending entry like a listed one when the
  // thread dies (a word still owned by the dead TID gets kOwnerDied and a waiter is woken;
  // a free word just gets the wake), so a holder SIGKILLed at any instant is handed over
  // exactly as with a listed hold. What it saves: the list link and unlink (about 20
  // stores and two calls, 55 -> 39 ns for a one-thread put + get pair of the shared-memory
  // queue, docs/benchmarks.md). The slot holds one entry, so the caller must not touch any
  // other robust lock (ours or glibc's) until it has released this one: only for short
  // critical sections that run no foreign code. A signal handler that takes a robust lock
  // inside such a hold (not async-signal-safe anyway) would clear the slot and leave the
  // rest of the hold unprotected. Returns false (changing nothing) if the lock is not
  // plainly free, if a robust operation of this thread is already pending, or if the thread
  // has no usable robust list: the caller then takes the ordinary (listed) path. The
  // release is the ordinary unlock(). Never blocks.
  [[nodiscard]] bool try_lock_brief() noexcept {
    RobustThread& t = robust_thread();
    if (!t.head || t.ended || t.head[2] != nullptr) return false;
    set_pending(t, true);
    std::uint32_t expected = 0;
    if (word_.compare_exchange_strong(expected, t.tid, std::memory_order_acquire,
                                      std::memory_order_relaxed))
      return true;  // the pending slot now protects the hold, until unlock() clears it
    set_pending(t, false);
    return false;
  }
  // Takes the lock only if it is plainly free (not free because its owner died: such a
  // word is left for whoever checks dead_unclaimed()). Never blocks.
  [[nodiscard]] bool try_lock_free() noexcept {
    if (word_.load(std::memory_order_relaxed) != 0) return false;
    RobustThread& t = robust_thread();
    set_pending(t, true);
    std::uint32_t expected = 0;
    const bool got = word_.compare_exchange_strong(expected, t.tid, std::memory_order_acquire,
                                                   std::memory_order_relaxed);
    if (got) link(t);
    set_pending(t, false);
    return got;
  }
  // True if the kernel marked the word: its owner died and nobody has taken it since.
  bool dead_unclaimed() const noexcept {
    const std::uint32_t w = word_.load(std::memory_order_acquire);
    return (w & kOwnerDied) != 0 && (w & kTidMask) == 0;
  }
  // Blocks until the lock is taken.
  void lock() noexcept {
    if (!try_lock()) lock_slow(robust_thread(), nullptr, true);
  }
  // Blocks until the lock is taken or `deadline` passes; false on timeout.
  [[nodiscard]] bool lock_until(Clock::time_point deadline) noexcept {
    return try_lock() || lock_slow(robust_thread(), &deadline, true);
  }
  // Releases the lock; any thread of any process may call it. Returns false (changing
  // nothing) if the lock was not held.
  bool unlock() noexcept {
    RobustThread& t = robust_thread();
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    if ((w & kTidMask) == 0) return false;
    // Pending is set even for a non-owner: if we die between the release and the wake,
    // the kernel sees a free word with a pending op and wakes a waiter for us.
    set_pending(t, true);
    if ((w & kTidMask) == t.tid && linked_by(t)) unlink(t);
    // A CAS rather than an exchange: a word the kernel just marked kOwnerDied (its owner
    // died under a non-owner's release) must keep that mark for the next acquirer.
    while (!word_.compare_exchange_weak(w, 0, std::memory_order_release,
                                        std::memory_order_relaxed)) {
      if ((w & kTidMask) == 0) {
        set_pending(t, false);
        return false;
      }
    }
    if (w & kWaiters) futex_wake(&word_, 1, Scope::Shared);
    set_pending(t, false);
    return true;
  }
  // True if some thread holds the lock (a snapshot).
  bool locked() const noexcept { return (word_.load(std::memory_order_relaxed) & kTidMask) != 0; }
  // True if the calling thread holds the lock.
  bool owned_by_me() const noexcept {
    return (word_.load(std::memory_order_relaxed) & kTidMask) == robust_thread().tid;
  }
  // Kernel TID of the holder, 0 if free.
  std::uint32_t owner() const noexcept { return word_.load(std::memory_order_relaxed) & kTidMask; }
  // True after an acquirer took the lock from a dead owner, until consistent().
  bool owner_died() const noexcept { return died_.load(std::memory_order_acquire) != 0; }
  // Marks the protected state repaired: owner_died() becomes false.
  void consistent() noexcept { died_.store(0, std::memory_order_release); }

  // Recursion depth for RLock; only the owner reads or writes it.
  std::uint32_t& count() noexcept { return count_; }

 private:
  // Announces (or clears) an operation on this node in robust_list_head.list_op_pending
  // (head[2]: list, futex_offset, list_op_pending), so a death mid-operation is handled.
  void set_pending(RobustThread& t, bool on) noexcept {
    if (!t.head) return;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    t.head[2] = on ? static_cast<void*>(&next_) : nullptr;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }

  bool linked_by(const RobustThread& t) const noexcept {
    return link_tid_.load(std::memory_order_relaxed) == t.tid &&
           link_token_.load(std::memory_order_relaxed) == t.token;
  }
  void link(RobustThread& t) noexcept;
  void unlink(RobustThread& t) noexcept;  // frees posted blocks first, then unlink_raw()
  void unlink_raw() noexcept;             // only the listing thread, on its own list
  // The listing thread ends normally: a word it owns gets owner kDetachedTid (still held).
  void detach_from(const RobustThread& t) noexcept;
  bool lock_slow(RobustThread& t, const Clock::time_point* deadline, bool block) noexcept;

  std::atomic<std::uint32_t> word_{0};        // offset 0: TID | kWaiters | kOwnerDied
  std::uint32_t count_ = 0;                   // 4: RLock recursion depth (owner only)
  std::atomic<std::uint32_t> died_{0};        // 8: owner_died() flag
  std::atomic<std::uint32_t> link_tid_{0};    // 12: whose robust list holds the node
  std::atomic<std::uint64_t> link_token_{0};  // 16: that thread's incarnation token
  void* prev_ = nullptr;                      // 24: glibc __list.__prev
  void* next_ = nullptr;                      // 32: glibc __list.__next (the list entry)
  std::atomic<std::uint32_t> link_pid_{0};    // 40: process of link_tid_
  std::uint32_t pad_ = 0;

  friend struct RobustLockLayout;
  friend void robust_thread_end() noexcept;
  friend void robust_retire(RobustLock*, void (*)(void*, std::size_t, unsigned long), void*,
                            std::size_t, unsigned long) noexcept;
  friend struct RobustRegistry;
};

// BasicCondition's lock adapters (found by ADL), for state guarded by a RobustLock: it has
// no Python owner rule here, "owned" means "locked". If the holder died meanwhile, the
// re-take gets the lock with owner_died() set for the caller to see.
inline bool cond_is_owned(const RobustLock& l) noexcept {
  return l.locked();
}
inline std::uint32_t cond_release_save(RobustLock& l) noexcept {
  l.unlock();
  return 0;
}
inline void cond_acquire_restore(RobustLock& l, std::uint32_t) noexcept {
  l.lock();
}

}  // namespace concur::detail
