#include "concur/detail/robust_lock.hpp"

#include <pthread.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

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

void reset_after_fork() noexcept { tls_robust_thread = RobustThread{}; }

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

void init_robust_thread(RobustThread& t) noexcept {
  t.tid = static_cast<std::uint32_t>(this_thread_tid());
  t.pid = static_cast<std::uint32_t>(this_process_pid());
  t.token = fresh_token(t.tid);
  t.head = probe_glibc_list();
}

namespace {

inline void*& prev_field(void* entry) noexcept {
  // entry points at a node's `next` field; its `prev` field is the word before it.
  return *reinterpret_cast<void**>(reinterpret_cast<char*>(entry) - sizeof(void*));
}
inline void*& next_field(void* entry) noexcept { return *reinterpret_cast<void**>(entry); }
inline void* strip(void* p) noexcept {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{1});
}

}  // namespace

void RobustLock::link(RobustThread& t) noexcept {
  if (!t.head) return;
  const std::uint32_t lt = link_tid_.load(std::memory_order_relaxed);
  if (lt != 0) {
    if (lt == t.tid) {
      // Same TID: either still in our own list (a non-owner released our earlier hold),
      // or a dead thread's whose TID we inherited — its list died with it.
      if (link_token_.load(std::memory_order_relaxed) == t.token) return;
    } else {
      // In another live thread's list: only that thread may edit it. Hold unprotected.
      const auto lp = static_cast<pid_t>(link_pid_.load(std::memory_order_relaxed));
      if (syscall(SYS_tgkill, lp, static_cast<pid_t>(lt), 0) == 0 || errno != ESRCH) return;
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

void RobustLock::unlink(RobustThread&) noexcept {
  prev_field(strip(next_)) = prev_;
  next_field(strip(prev_)) = next_;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  prev_ = nullptr;
  next_ = nullptr;
  link_tid_.store(0, std::memory_order_relaxed);
  link_token_.store(0, std::memory_order_relaxed);
  link_pid_.store(0, std::memory_order_relaxed);
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
