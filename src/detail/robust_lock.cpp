#include "concur/detail/robust_lock.hpp"

#include <pthread.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "concur/detail/arena.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/detail/thread_annotations.hpp"

#include "concur/detail/fork.hpp"

namespace concur::detail {

// The layout promise of the header: glibc's futex_offset (word - list entry) is -32.
struct RobustLockLayout {
  static_assert(std::is_standard_layout_v<RobustLock>);
  static_assert(std::is_trivially_destructible_v<RobustLock>);
  static_assert(offsetof(RobustLock, word_) == 0);
  static_assert(offsetof(RobustLock, prev_) == 24);
  static_assert(offsetof(RobustLock, next_) == 32);
  static constexpr long kFutexOffset =
      static_cast<long>(offsetof(RobustLock, word_)) - static_cast<long>(offsetof(RobustLock, next_));
};

namespace {

// The kernel's struct robust_list_head (linux/futex.h): list, futex_offset, list_op_pending.
struct KernelRobustHead {
  void* list;
  long futex_offset;
  void* list_op_pending;
};

// A block robust_retire() posted to the thread whose list still holds its node.
struct Posted {
  RobustThread* owner;
  RobustLock* node;
  void (*release)(void*, std::size_t, unsigned long);
  void* block;
  std::size_t bytes;
  unsigned long gen;
};

}  // namespace

// The threads of this process that have a robust record, and the blocks posted to them.
// Leaked on purpose: thread ends and exit hooks use it during static destruction.
struct RobustRegistry {
  Mutex mu;
  RobustThread* first CONCUR_GUARDED_BY(mu) = nullptr;
  std::vector<Posted> posted CONCUR_GUARDED_BY(mu);

  static RobustRegistry& get() noexcept {
    static RobustRegistry* r = new RobustRegistry;
    return *r;
  }
  void add(RobustThread& t) noexcept CONCUR_EXCLUDES(mu) {
    MutexLock g(mu);
    t.reg_prev = nullptr;
    t.reg_next = first;
    if (first) first->reg_prev = &t;
    first = &t;
    t.registered = true;
  }
  void remove_locked(RobustThread& t) noexcept CONCUR_REQUIRES(mu) {
    if (!t.registered) return;
    (t.reg_prev ? t.reg_prev->reg_next : first) = t.reg_next;
    if (t.reg_next) t.reg_next->reg_prev = t.reg_prev;
    t.reg_prev = t.reg_next = nullptr;
    t.registered = false;
  }
  RobustThread* find_locked(std::uint32_t tid, std::uint64_t token) const noexcept
      CONCUR_REQUIRES(mu) {
    for (RobustThread* r = first; r; r = r->reg_next)
      if (r->tid == tid && r->token == token) return r;
    return nullptr;
  }
  // Unlinks t's posted nodes and moves their blocks to `out` (at most n); returns how many.
  // Called by t itself with mu held.
  std::size_t take_posted_locked(RobustThread& t, Posted* out, std::size_t n) noexcept
      CONCUR_REQUIRES(mu) {
    std::size_t k = 0;
    for (std::size_t i = 0; i < posted.size() && k < n;) {
      if (posted[i].owner != &t) {
        ++i;
        continue;
      }
      RobustLock* node = posted[i].node;
      if (node->linked_by(t)) node->unlink_raw();
      out[k++] = posted[i];
      posted[i] = posted.back();
      posted.pop_back();
    }
    bool more = false;
    for (const Posted& p : posted) more = more || p.owner == &t;
    t.posted.store(more, std::memory_order_relaxed);
    return k;
  }
  // The calling thread (t) frees what was posted to it.
  void drain(RobustThread& t) noexcept CONCUR_EXCLUDES(mu) {
    Posted buf[8];
    std::size_t k;
    do {
      {
        MutexLock g(mu);
        k = take_posted_locked(t, buf, 8);
      }
      for (std::size_t i = 0; i < k; ++i) buf[i].release(buf[i].block, buf[i].bytes, buf[i].gen);
    } while (k == 8);
  }
};

namespace {

// fork: the child keeps only the forking thread, whose record starts afresh, and none of
// the parent's other threads' lists. The registry is rebuilt from nothing (mutex and
// vector re-created, the old vector's storage leaked): whatever another thread was doing
// to it at the fork cannot matter. (Holding the mutex across fork instead made
// ThreadSanitizer report an order inversion against modules that re-create their own
// mutexes in the child; the ranked fork protocol of issue 9 will put it in its place.)
void reset_after_fork() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  RobustRegistry& r = RobustRegistry::get();
  ::new (&r.mu) Mutex();
  ::new (&r.posted) std::vector<Posted>();  // the parent's blocks are not ours
  r.first = nullptr;
  tls_robust_thread.head = nullptr;
  tls_robust_thread.tid = 0;
  tls_robust_thread.pid = 0;
  tls_robust_thread.token = 0;
  tls_robust_thread.posted.store(false, std::memory_order_relaxed);
  tls_robust_thread.ended = false;
  tls_robust_thread.registered = false;
  tls_robust_thread.reg_prev = tls_robust_thread.reg_next = nullptr;
}

// Observes the normal end of a thread (its thread_local destructors run before the kernel
// walks its robust list).
struct ThreadEndHook {
  ThreadEndHook() = default;
  ThreadEndHook(const ThreadEndHook&) = delete;
  ThreadEndHook& operator=(const ThreadEndHook&) = delete;
  ~ThreadEndHook() { robust_thread_end(); }
};

std::uint64_t fresh_token(std::uint32_t tid) noexcept {
  std::uint64_t tok = 0;
  if (::getrandom(&tok, sizeof tok, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof tok)) {
    const auto now = static_cast<std::uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
    tok = now * 0x9E3779B97F4A7C15ull ^ (static_cast<std::uint64_t>(tid) << 32) ^
          reinterpret_cast<std::uintptr_t>(&tok);
  }
  return tok == 0 ? 1 : tok;
}

// Checks, with a private robust pthread mutex, that glibc links robust mutexes into this
// thread's list the way RobustLock::link() does (doubly linked, entry = &__list.__next,
// __prev of the first entry = the head). Returns the head, or nullptr if anything differs.
void** probe_glibc_list() noexcept {
  KernelRobustHead* head = nullptr;
  std::size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &len) != 0 || head == nullptr ||
      len != sizeof(KernelRobustHead))
    return nullptr;
  if (head->futex_offset != RobustLockLayout::kFutexOffset) return nullptr;
#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
  pthread_mutexattr_t a;
  pthread_mutex_t m;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m, &a);
  pthread_mutexattr_destroy(&a);
  void* const before = head->list;
  bool ok = false;
  if (pthread_mutex_lock(&m) == 0) {
    ok = head->list == static_cast<void*>(&m.__data.__list.__next) &&
         static_cast<void*>(m.__data.__list.__prev) == static_cast<void*>(head) &&
         m.__data.__list.__next == before;
    pthread_mutex_unlock(&m);
    ok = ok && head->list == before;
  }
  pthread_mutex_destroy(&m);
  return ok ? reinterpret_cast<void**>(head) : nullptr;
#else
  return nullptr;  // unknown list layout: locks work, but are not robust
#endif
}

// Fork protocol (rank kRobust, no lock): the child's only thread has a new tid and an empty
// kernel robust list, so its per-thread state starts over.
[[maybe_unused]] const bool g_fork_registered =
    (register_fork_handler(ForkRank::kRobust, {.child = reset_after_fork}), true);

}  // namespace

namespace {

inline void*& prev_field(void* entry) noexcept {
  // entry points at a node's `next` field; its `prev` field is the word before it.
  return *reinterpret_cast<void**>(reinterpret_cast<char*>(entry) - sizeof(void*));
}
inline void*& next_field(void* entry) noexcept {
  return *reinterpret_cast<void**>(entry);
}
inline void* strip(void* p) noexcept {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{1});
}

}  // namespace

void init_robust_thread(RobustThread& t) noexcept {
  static const bool registered = [] {
    (void)RobustRegistry::get();
    // A concur child leaves through exit_group after its exit hooks: no thread_local
    // destructor runs there, so its thread's holds are detached here (last priority: the
    // hooks before it may still take and release locks).
    try {
      register_exit_hook(kExitResources + 100, [] { robust_thread_end(); });
    } catch (...) {
    }
    return true;
  }();
  (void)registered;
  static thread_local ThreadEndHook end_hook;
  (void)&end_hook;
  t.tid = static_cast<std::uint32_t>(this_thread_tid());
  t.pid = static_cast<std::uint32_t>(this_process_pid());
  t.token = fresh_token(t.tid);
  t.head = probe_glibc_list();
  t.ended = false;
  RobustRegistry::get().add(t);
}

void robust_thread_end() noexcept {
  RobustThread& t = tls_robust_thread;
  if (t.tid == 0 || t.ended) return;
  RobustRegistry& r = RobustRegistry::get();
  Posted buf[8];
  for (;;) {
    std::size_t k;
    {
      MutexLock g(r.mu);
      k = r.take_posted_locked(t, buf, 8);
      if (k == 0) {
        // Under the registry mutex: a concurrent robust_retire() either posted to us
        // (handled above) or finds us gone — after every node of ours is unlinked.
        if (t.head) {
          void* const head = t.head;
          std::uint32_t limit = 1u << 20;  // a corrupted (cyclic) list must not hang us
          for (void* e = strip(t.head[0]); e != head && limit-- > 0;) {
            void* const next = strip(next_field(e));
            auto* node = reinterpret_cast<RobustLock*>(static_cast<char*>(e) +
                                                       RobustLockLayout::kFutexOffset);
            if (node->linked_by(t)) {
              node->detach_from(t);
              node->unlink_raw();
            }
            e = next;
          }
          t.head[2] = nullptr;
        }
        r.remove_locked(t);
        t.ended = true;
        return;
      }
    }
    for (std::size_t i = 0; i < k; ++i) buf[i].release(buf[i].block, buf[i].bytes, buf[i].gen);
  }
}

void robust_retire(RobustLock* node, void (*release)(void*, std::size_t, unsigned long),
                   void* block, std::size_t bytes, unsigned long gen) noexcept {
  RobustThread& t = robust_thread();
  const std::uint32_t lt = node->link_tid_.load(std::memory_order_relaxed);
  if (lt == 0) {
    release(block, bytes, gen);
    return;
  }
  if (node->linked_by(t)) {
    node->set_pending(t, true);
    node->unlink_raw();
    node->set_pending(t, false);
    release(block, bytes, gen);
    return;
  }
  // In another process's list (only possible for memory shared before a fork, which the
  // arena never reuses anyway): leave the block unused.
  if (node->link_pid_.load(std::memory_order_relaxed) != t.pid) return;
  RobustRegistry& r = RobustRegistry::get();
  {
    MutexLock g(r.mu);
    RobustThread* owner = r.find_locked(lt, node->link_token_.load(std::memory_order_relaxed));
    if (owner) {
      try {
        r.posted.push_back(Posted{owner, node, release, block, bytes, gen});
        owner->posted.store(true, std::memory_order_relaxed);
      } catch (...) {
        // Out of memory: the block simply stays unused (never reused: still sound).
      }
      return;
    }
  }
  // The lister is gone without unlinking (it did not end normally): its list died with it.
  release(block, bytes, gen);
}

bool thread_gone(std::uint32_t pid, std::uint32_t tid) noexcept {
  return syscall(SYS_tgkill, static_cast<pid_t>(pid), static_cast<pid_t>(tid), 0) != 0 &&
         errno == ESRCH;
}

void shared_free_robust(void* block, std::size_t lock_at, std::size_t bytes,
                        unsigned long gen) noexcept {
  robust_retire(reinterpret_cast<RobustLock*>(static_cast<char*>(block) + lock_at), &shared_free,
                block, bytes, gen);
}

void RobustLock::link(RobustThread& t) noexcept {
  if (!t.head || t.ended) return;
  if (t.posted.load(std::memory_order_relaxed)) RobustRegistry::get().drain(t);
  const std::uint32_t lt = link_tid_.load(std::memory_order_relaxed);
  if (lt != 0) {
    if (lt == t.tid) {
      // Same TID: either still in our own list (a non-owner released our earlier hold),
      // or a dead thread's whose TID we inherited — its list died with it.
      if (link_token_.load(std::memory_order_relaxed) == t.token) return;
    } else {
      // In another live thread's list: only that thread may edit it. Hold unprotected.
      if (!thread_gone(link_pid_.load(std::memory_order_relaxed), lt)) return;
      // That thread is gone, and with it the list: reclaim the node.
    }
  }
  void** head = t.head;
  void* first = strip(head[0]);
  prev_field(first) = &next_;
  next_ = head[0];
  prev_ = head;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  head[0] = &next_;
  link_pid_.store(t.pid, std::memory_order_relaxed);
  link_token_.store(t.token, std::memory_order_relaxed);
  link_tid_.store(t.tid, std::memory_order_relaxed);
}

void RobustLock::unlink(RobustThread& t) noexcept {
  if (t.posted.load(std::memory_order_relaxed)) RobustRegistry::get().drain(t);
  unlink_raw();
}

void RobustLock::unlink_raw() noexcept {
  // Forward links first: the kernel walks `next`, so the list stays walkable at each store.
  prev_field(strip(next_)) = prev_;
  next_field(strip(prev_)) = next_;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  prev_ = nullptr;
  next_ = nullptr;
  link_tid_.store(0, std::memory_order_relaxed);
  link_token_.store(0, std::memory_order_relaxed);
  link_pid_.store(0, std::memory_order_relaxed);
}

void RobustLock::detach_from(const RobustThread& t) noexcept {
  std::uint32_t w = word_.load(std::memory_order_relaxed);
  while ((w & kTidMask) == t.tid) {
    if (word_.compare_exchange_weak(w, kDetachedTid | (w & kWaiters), std::memory_order_release,
                                    std::memory_order_relaxed))
      return;
  }
}

bool RobustLock::lock_slow(RobustThread& t, const Clock::time_point* deadline,
                           bool block) noexcept {
  // list_op_pending stays set for the whole slow path, as glibc does: if this thread dies
  // after being woken but before taking the word, the kernel wakes the next waiter.
  set_pending(t, true);
  bool slept = false;
  int spins = kSpinLimit;
  for (;;) {
    std::uint32_t v = word_.load(std::memory_order_relaxed);
    if ((v & kTidMask) == 0) {
      // Free, or free because the owner died (kOwnerDied set by the kernel).
      const std::uint32_t nv = t.tid | (v & kWaiters) | (slept ? kWaiters : 0u);
      if (word_.compare_exchange_weak(v, nv, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        if (v & kOwnerDied) died_.store(1, std::memory_order_release);
        link(t);
        set_pending(t, false);
        return true;
      }
      continue;
    }
    if (!block) break;
    if (spins > 0) {
      --spins;
      cpu_relax();
      continue;
    }
    if (!(v & kWaiters)) {
      if (!word_.compare_exchange_weak(v, v | kWaiters, std::memory_order_relaxed,
                                       std::memory_order_relaxed))
        continue;
      v |= kWaiters;
    }
    slept = true;
    if (!futex_wait(&word_, v, Scope::Shared, deadline)) block = false;  // one last try
  }
  set_pending(t, false);
  return false;
}

}  // namespace concur::detail
