// concur/threading/thread.hpp — Python's threading.Thread and the module functions around it
// (current_thread, main_thread, active_count, enumerate, get_ident, get_native_id,
// excepthook).
//
// Two styles, as in Python:
//   * target style: Thread t(fn, args...);  Thread t({.name = "w", .daemon = true}, fn, args...)
//     The callable and its arguments are decay-copied (like std::thread) into a shared state
//     that the running thread owns a reference to.
//   * subclass style: struct W : Thread { W() : Thread({.name = "w"}) {} void run() override; };
//
// Lifetime (what ~Thread does with a thread that still runs — nothing is UB):
//   * never started, or finished: the OS thread (if any) is reaped; nothing else happens.
//   * target style (a plain Thread or a Timer) still running: the running thread keeps its
//     shared state (target, arguments, name...) alive and continues; the library adopts it
//     with a stand-in Thread object that current_thread()/enumerate() return from then on,
//     deleted when the thread ends. A non-daemon thread adopted this way is still joined at
//     exit, exactly as Python joins a thread whose Thread object was dropped. A reference to
//     the destroyed object obtained earlier through current_thread() must not be used.
//   * subclass style still running: run() uses the derived object, so ~Thread joins the
//     thread (like std::jthread). Because the derived part is already destroyed when the base
//     destructor runs, a subclass whose run() touches its own members must call join() in
//     its own destructor (or before dropping the object).
//
// Exit: non-daemon threads started by concur are joined when main returns or exit() is
// called (an exit hook at detail::kExitJoinThreads); daemon threads are not waited for and
// keep running until the process ends, as in Python. exit() may be called from any thread
// (the calling thread is not waited for); once the main thread exits it counts as ended,
// so a thread joining main_thread() is released. A foreign thread's stand-in (a
// _DummyThread) cannot be joined: RuntimeError("cannot join a dummy thread").
//
// Fork: in a child created by fork() (concur's own fork paths and plain fork(): the fork
// protocol of detail/fork.hpp runs for both), only the forking thread survives; it becomes
// the main thread, every other thread is marked stopped (joins return at once), as
// Python's threading._after_fork does.
//
// Thread-safety: every member may be called from any thread (name/daemon accessors take a
// per-thread lock; the state flags are atomics). start()/join() take no global lock beyond
// one registry insertion/removal. Memory ordering: everything the thread did happens-before
// a join() that returns (true); everything before start() happens-before run().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/detail/futex.hpp"
#include "concur/detail/timeouts.hpp"
#include "concur/errors.hpp"

namespace concur::threading {

class Thread;

// Python's keyword arguments of Thread(): name ("" = "Thread-N") and daemon (nullopt = the
// creating thread's flag). Member order is part of the API.
struct ThreadOptions {
  std::string name = {};                 // (default member initializers: no
  std::optional<bool> daemon = {};       //  -Wmissing-field-initializers on {.name = ..})
};

// What the excepthook receives when an exception escapes a thread's run() (Python's
// threading.ExceptHookArgs). exc_type is the demangled dynamic type ("concur::ValueError",
// "std::out_of_range"; "unknown exception" for a non-std::exception), what is its what().
struct ExceptHookArgs {
  std::exception_ptr exc_value;
  std::string exc_type;
  std::string what;
  Thread* thread = nullptr;  // the thread that raised (valid during the hook call)
};

}  // namespace concur::threading

namespace concur::detail {

// Type-erased, move-only callable with its bound arguments (C++20 has no
// std::move_only_function). Allocated once per Thread at construction.
struct TargetBase {
  virtual ~TargetBase() = default;
  virtual void call() = 0;
};

template <class F, class... A>
struct Target final : TargetBase {
  template <class F2, class... A2>
  explicit Target(F2&& f, A2&&... a) : fn(std::forward<F2>(f)), args(std::forward<A2>(a)...) {}
  void call() override { std::apply(fn, std::move(args)); }
  F fn;
  std::tuple<A...> args;
};

template <class F, class... A>
std::unique_ptr<TargetBase> make_target(F&& f, A&&... a) {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>,
                "Thread target must be callable with the (decay-copied) arguments");
  return std::make_unique<Target<std::decay_t<F>, std::decay_t<A>...>>(std::forward<F>(f),
                                                                       std::forward<A>(a)...);
}

struct ThreadState;  // defined in src/threading/thread_state.hpp

}  // namespace concur::detail

namespace concur::threading {

class Thread {
 public:
  // Target style: runs target(args...) in the new thread. Arguments are decay-copied; use
  // std::ref to pass a reference. Allocates the shared state; does not start the thread.
  template <class F, class... A,
            class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, ThreadOptions>>>
  explicit Thread(F&& target, A&&... args)
      : Thread(ThreadOptions{}, detail::make_target(std::forward<F>(target),
                                                    std::forward<A>(args)...)) {}
  template <class F, class... A>
  Thread(ThreadOptions options, F&& target, A&&... args)
      : Thread(std::move(options), detail::make_target(std::forward<F>(target),
                                                       std::forward<A>(args)...)) {}
  // Subclass style: override run(). A Thread made this way without overriding run() does
  // nothing when started (Python's Thread(target=None)).
  explicit Thread(ThreadOptions options = {});

  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;
  // See the file banner for what happens to a thread that still runs.
  virtual ~Thread();

  // Starts the thread. Throws RuntimeError("threads can only be started once") on a second
  // call, RuntimeError("can't start new thread") if the OS refuses one (EAGAIN, no memory
  // for the stack; the Thread may then be started again). Returns without waiting for the new
  // thread to be scheduled; is_alive() is true from here until run() returns.
  void start();

  // Waits until the thread has ended. Throws RuntimeError("cannot join thread before it is
  // started") / RuntimeError("cannot join current thread"). Never rethrows the thread's
  // exception (that went to the excepthook). Any number of threads may join at once.
  void join();
  // Waits at most `timeout` (negative: do not wait). Returns true if the thread has ended
  // (Python returns None and leaves the check to is_alive(); here both work). Same errors.
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(concur::detail::deadline_for(timeout).time_point());
  }
  // Waits until the steady-clock deadline. Same as join(timeout).
  [[nodiscard]] bool join_until(std::chrono::steady_clock::time_point deadline);

  // True from start() until run() has returned (or thrown).
  bool is_alive() const noexcept;

  // The thread's name. Lock-protected copy.
  std::string name() const;
  // Renames the thread. For a thread started by concur that is still alive, the first 15
  // bytes also reach the OS (pthread_setname_np; /proc/<pid>/task/<tid>/comm, top -H, gdb).
  void set_name(std::string name);

  bool daemon() const noexcept;
  // Throws RuntimeError("cannot set daemon status of active thread") once started.
  void set_daemon(bool daemonic);

  // pthread_self() of the thread as an integer (Python's ident); nullopt before start().
  // After start() it is available at once.
  std::optional<std::uint64_t> ident() const;
  // The kernel thread id (gettid; Python's native_id); nullopt before start(). After start()
  // this may wait (microseconds) until the new thread has published its id.
  std::optional<pid_t> native_id() const;

  // Python's repr: "<Thread(Thread-1, started 1399...)>", "<Thread(w, initial daemon)>",
  // "<_MainThread(MainThread, started 1400...)>", "<Timer(Thread-3, stopped 1399...)>".
  std::string repr() const;

 protected:
  // The thread's activity. The default calls the target given to the constructor (if any).
  virtual void run();

 private:
  friend struct detail::ThreadState;
  friend Thread& current_thread();
  friend Thread& main_thread();
  friend class Timer;
  struct AdoptTag {};
  Thread(ThreadOptions options, std::unique_ptr<detail::TargetBase> target);
  Thread(AdoptTag, std::shared_ptr<detail::ThreadState> state);  // stand-ins, main, dummies

  std::shared_ptr<detail::ThreadState> state_;
};

// The Thread object of the calling thread. For a thread not started by concur (std::thread,
// a C library's callback thread) a "Dummy-N" daemon Thread is created on first call and
// removed when that thread exits (Python's _DummyThread). Never throws except bad_alloc.
Thread& current_thread();
// The process's main thread ("MainThread"; in a forked child, the thread that forked).
Thread& main_thread();
// Number of Thread objects alive: main, dummies and started-not-finished concur threads.
std::size_t active_count();
// Those threads, main first. The pointers stay valid while the threads are alive.
std::vector<Thread*> enumerate();
// pthread_self() of the caller as an integer (Python's get_ident). No allocation.
std::uint64_t get_ident() noexcept;
// gettid() of the caller (Python's get_native_id). Cached per thread, no syscall after the
// first call.
pid_t get_native_id() noexcept;

// Python's threading.stack_size(): the stack size used for threads started from now on
// (0 = the system default, 8 MiB here). Returns the previous value. Throws
// ValueError("size not valid: N bytes") below 32 KiB (except 0), as Python does.
std::size_t stack_size(std::size_t size);
// The current setting (0 = system default).
std::size_t stack_size() noexcept;

// Replaces the hook called with an exception that escapes run(); an empty function restores
// the default. Thread-safe. If the hook itself throws, "Exception in threading.excepthook:"
// and that exception are printed, then the default hook runs (as Python does).
void set_excepthook(std::function<void(const ExceptHookArgs&)> hook);
// The hook currently installed (the default if none was set).
std::function<void(const ExceptHookArgs&)> get_excepthook();
// The default: writes "Exception in thread NAME:\n<type>: <what>\n" to stderr in one write(2).
void default_excepthook(const ExceptHookArgs& args);

std::ostream& operator<<(std::ostream& os, const Thread& t);
std::string to_string(const Thread& t);

}  // namespace concur::threading
