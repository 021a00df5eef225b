// src/threading/thread_state.hpp — the shared state behind a Thread (private to the library).
//
// Lifetime: owned by shared_ptr. Holders: the Thread object (or its stand-in), the running
// thread (from pthread_create until its thread_local holder dies at OS-thread exit), and
// exit-hook snapshots. The main thread's and dummies' states live as long as their Thread.
//
// Locks: `mu` guards name, os_alive and rename_pending. The registry lock
// (thread_registry_mu) guards the intrusive list links, `finished` and `adopted`. Everything
// else is atomic or written before the thread is published. Checked by clang's
// -Wthread-safety (`make tsa`).
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "concur/detail/futex.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/threading/thread.hpp"

namespace concur::detail {

using concur::threading::Thread;

using PrivateEvent = BasicEvent<Scope::Private>;

// The thread registry's lock (thread.cpp): a global, so the analysis can name it in the
// GUARDED_BY of every state; trivially destructible, so daemon threads may take it after
// static destructors ran.
extern Mutex thread_registry_mu;

struct ThreadState : std::enable_shared_from_this<ThreadState> {
  enum class Kind : std::uint8_t { Normal, Main, Dummy };

  explicit ThreadState(Kind k) : kind(k) {}
  // A Thread object that adopts `s` (main thread, dummies, stand-ins). Allocates.
  static Thread* adopt(std::shared_ptr<ThreadState> s);
  // The final overrider of t->run(), resolved now (while *t is fully constructed) so the
  // thread never reads the vtable later: if a subclass object is destroyed before its thread
  // got scheduled, the thread still runs the subclass's run(), not Thread::run. GCC's
  // bound-member-function extension; other compilers fall back to a virtual call.
  using RunFn = void (*)(Thread*);
  static RunFn resolve_run(Thread* t) {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpmf-conversions"
#pragma GCC diagnostic ignored "-Wpedantic"
    return reinterpret_cast<RunFn>(t->*(&Thread::run));
#pragma GCC diagnostic pop
#else
    (void)t;
    return [](Thread* obj) { obj->run(); };
#endif
  }
  RunFn run_fn = nullptr;

  const Kind kind;
  Mutex mu;
  std::string name CONCUR_GUARDED_BY(mu);
  bool os_alive CONCUR_GUARDED_BY(mu) = false;  // pthread_setname_np may target handle
  bool rename_pending CONCUR_GUARDED_BY(mu) = false;  // set_name() ran before handle was known
  std::atomic<bool> daemon{false};
  std::atomic<bool> started{false};
  bool finished CONCUR_GUARDED_BY(thread_registry_mu) = false;
  PrivateEvent done;                   // set once run() has returned and we left the registry
  PrivateEvent ids_ready;              // set once ident/native_id are published
  std::atomic<std::uint64_t> ident{0};
  std::atomic<pid_t> native_id{0};
  pthread_t handle{};                  // valid once has_handle is true (release/acquire)
  std::atomic<bool> has_handle{false};
  std::atomic<bool> reap_claimed{false};  // one thread may pthread_join/detach the handle
  bool detachable = false;             // target style: run() does not use the Thread object
  std::unique_ptr<TargetBase> target;  // the callable (target style)
  std::atomic<Thread*> self{nullptr};  // the Thread object current_thread() returns
  // Stand-in created by ~Thread; deleted at thread exit.
  Thread* adopted CONCUR_GUARDED_BY(thread_registry_mu) = nullptr;
  // Intrusive registry list.
  ThreadState* prev CONCUR_GUARDED_BY(thread_registry_mu) = nullptr;
  ThreadState* next CONCUR_GUARDED_BY(thread_registry_mu) = nullptr;
  bool registered CONCUR_GUARDED_BY(thread_registry_mu) = false;
};

}  // namespace concur::detail
