#include "concur/detail/runtime.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "concur/detail/fork.hpp"
#include "concur/detail/thread_annotations.hpp"

namespace concur::detail {

namespace {

struct Hook {
  int priority;
  unsigned long order;
  void (*fn)();
};

struct Runtime {
  Mutex mu;
  std::vector<Hook> exit_hooks CONCUR_GUARDED_BY(mu);
  unsigned long next_order CONCUR_GUARDED_BY(mu) = 0;
  bool atexit_installed CONCUR_GUARDED_BY(mu) = false;
  bool exit_ran CONCUR_GUARDED_BY(mu) = false;
  std::string process_name CONCUR_GUARDED_BY(mu) = "MainProcess";
};

// Leaked on purpose: hooks may run from atexit after static destructors started.
Runtime& rt() {
  static Runtime* r = new Runtime;
  return *r;
}

void atexit_handler() { run_exit_hooks(); }

// Fork protocol rank kRuntime (the innermost lock: process and SharedMemory code call in
// here with their own locks held): mu is held across fork and released on both sides.
[[maybe_unused]] const bool g_fork_registered =
    (register_fork_handler(ForkRank::kRuntime, {.prepare = []() noexcept { rt().mu.fork_lock(); },
                                                .parent = []() noexcept { rt().mu.fork_unlock(); },
                                                .child = []() noexcept { rt().mu.fork_unlock(); }}),
     true);

}  // namespace

void register_exit_hook(int priority, void (*fn)()) {
  Runtime& r = rt();
  MutexLock g(r.mu);
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
    MutexLock g(r.mu);
    if (r.exit_ran) return;
    r.exit_ran = true;
    hooks = r.exit_hooks;
  }
  std::stable_sort(hooks.begin(), hooks.end(), [](const Hook& a, const Hook& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.order < b.order;
  });
  for (const Hook& h : hooks) h.fn();
}

std::string current_process_name() {
  Runtime& r = rt();
  MutexLock g(r.mu);
  return r.process_name;
}

void set_current_process_name(std::string name) {
  Runtime& r = rt();
  MutexLock g(r.mu);
  r.process_name = std::move(name);
}

}  // namespace concur::detail
