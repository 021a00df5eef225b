// The fork protocol (see concur/detail/fork.hpp): one pthread_atfork registration, a fixed
// table of ranked handlers, the tid/pid caches and the fork epoch.
#include "concur/detail/fork.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "concur/detail/thread_annotations.hpp"

namespace concur::detail {

namespace {

constexpr int kMaxHandlers = 32;

struct Entry {
  int rank;
  ForkHandler h;
};

// Registrations (rare, mostly at static init) serialize on reg_mu. glibc holds its own
// atfork lock from the prepare step until the parent/child step is over, so two forks never
// run the handlers at the same time: `snapshot` (filled in prepare) is used by the forking
// thread only. reg_mu is held only while copying the table, never while a handler runs: a
// handler may construct a module singleton whose constructor registers a handler.
constinit Mutex reg_mu;
constinit Entry table[kMaxHandlers] CONCUR_GUARDED_BY(reg_mu){};
constinit int table_size CONCUR_GUARDED_BY(reg_mu) = 0;
constinit Entry snapshot[kMaxHandlers]{};
constinit int snapshot_size = 0;

constinit std::atomic<unsigned long> g_epoch{0};
constinit std::atomic<pid_t> g_pid{0};
constinit std::atomic<unsigned> g_serial{0};
constinit thread_local int tls_tid = 0;
constinit thread_local unsigned tls_serial = 0;

void on_prepare() noexcept {
  g_epoch.fetch_add(1, std::memory_order_relaxed);
  {
    MutexLock g(reg_mu);
    for (int i = 0; i < table_size; ++i) snapshot[i] = table[i];
    snapshot_size = table_size;
  }
  for (int i = 0; i < snapshot_size; ++i)
    if (snapshot[i].h.prepare) snapshot[i].h.prepare();
}

void on_parent() noexcept {
  for (int i = snapshot_size; i-- > 0;)
    if (snapshot[i].h.parent) snapshot[i].h.parent();
}

void on_child() noexcept {
  // The only thread of the child is the forking one: its kernel tid is new, its serial is
  // kept (see the header).
  tls_tid = static_cast<int>(::syscall(SYS_gettid));
  g_pid.store(::getpid(), std::memory_order_relaxed);
  for (int i = snapshot_size; i-- > 0;)
    if (snapshot[i].h.child) snapshot[i].h.child();
}

void install() noexcept {
  if (::pthread_atfork(on_prepare, on_parent, on_child) != 0) {
    std::fputs("concur: pthread_atfork failed\n", stderr);
    std::abort();
  }
}

// The registration itself, at static-init time (once: this object file is linked into
// every program that uses a module with a handler, since they all call into it).
[[maybe_unused]] const bool g_installed = (install(), true);

}  // namespace

void fork_prepare() noexcept {
  on_prepare();
}
void fork_parent() noexcept {
  on_parent();
}
void fork_child() noexcept {
  on_child();
}

void register_fork_handler(ForkRank rank, ForkHandler handler) noexcept {
  MutexLock g(reg_mu);
  if (table_size == kMaxHandlers) {
    std::fputs("concur: too many fork handlers\n", stderr);
    std::abort();
  }
  // Stable insertion by rank.
  const int r = static_cast<int>(rank);
  int pos = table_size;
  while (pos > 0 && table[pos - 1].rank > r) {
    table[pos] = table[pos - 1];
    --pos;
  }
  table[pos] = Entry{r, handler};
  ++table_size;
}

int this_thread_tid() noexcept {
  if (tls_tid == 0) [[unlikely]]
    tls_tid = static_cast<int>(::syscall(SYS_gettid));
  return tls_tid;
}

pid_t this_process_pid() noexcept {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) [[unlikely]] {
    p = ::getpid();
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}

unsigned this_thread_serial() noexcept {
  if (tls_serial == 0) [[unlikely]]
    tls_serial = g_serial.fetch_add(1, std::memory_order_relaxed) + 1;
  return tls_serial;
}

unsigned long fork_epoch() noexcept {
  return g_epoch.load(std::memory_order_relaxed);
}

}  // namespace concur::detail
