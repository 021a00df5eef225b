#include "concur/detail/runtime.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace concur::detail {

namespace {

struct Hook {
  int priority;
  unsigned long order;
  void (*fn)();
};

struct Runtime {
  std::mutex mu;
  std::vector<Hook> exit_hooks;
  std::vector<void (*)()> fork_hooks;
  unsigned long next_order = 0;
  bool atexit_installed = false;
  bool exit_ran = false;
  std::string process_name = "MainProcess";
};

// Leaked on purpose: hooks may run from atexit after static destructors started.
Runtime& rt() {
  static Runtime* r = new Runtime;
  return *r;
}

void atexit_handler() { run_exit_hooks(); }

thread_local int tls_tid = 0;

}  // namespace

void register_exit_hook(int priority, void (*fn)()) {
  Runtime& r = rt();
  std::lock_guard g(r.mu);
  r.exit_hooks.push_back({priority, r.next_order++, fn});
  if (!r.atexit_installed) {
    r.atexit_installed = true;
    std::atexit(atexit_handler);
  }
}

void run_exit_hooks() {
  Runtime& r = rt();
  std::vector<Hook> hooks;
  {
    std::lock_guard g(r.mu);
    if (r.exit_ran) return;
    r.exit_ran = true;
    hooks = r.exit_hooks;
  }
  std::stable_sort(hooks.begin(), hooks.end(), [](const Hook& a, const Hook& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.order < b.order;
  });
  for (const Hook& h : hooks) h.fn();
}

void register_after_fork_child(void (*fn)()) {
  Runtime& r = rt();
  std::lock_guard g(r.mu);
  r.fork_hooks.push_back(fn);
}

void run_after_fork_in_child() {
  tls_tid = 0;
  Runtime& r = rt();
  // The forking thread may not have held r.mu (concur never forks while holding it), but
  // another thread might have: re-create the mutex state for the single-threaded child.
  new (&r.mu) std::mutex;
  std::vector<void (*)()> hooks = r.fork_hooks;
  for (auto* fn : hooks) fn();
}

std::string current_process_name() {
  Runtime& r = rt();
  std::lock_guard g(r.mu);
  return r.process_name;
}

void set_current_process_name(std::string name) {
  Runtime& r = rt();
  std::lock_guard g(r.mu);
  r.process_name = std::move(name);
}

int current_tid() noexcept {
  // The cache must not survive any fork (concur's or a plain fork()): the child's only
  // thread has a new tid. The atfork child handler runs in that thread.
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, [] { tls_tid = 0; });
    return true;
  }();
  (void)registered;
  if (tls_tid == 0) tls_tid = static_cast<int>(syscall(SYS_gettid));
  return tls_tid;
}

}  // namespace concur::detail
