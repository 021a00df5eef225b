// concur/multiprocessing/process.hpp — Python's multiprocessing.Process and the process
// runtime: current_process(), parent_process(), active_children(), cpu_count(), start
// methods, mp::exit(), and the library's lifecycle logger (log_to_stderr / get_logger).
//
// Lifetime:
// * A Process is neither copyable nor movable (the runtime keeps a pointer to it for
//   active_children(), and a subclass's run() must not be sliced). Keep processes in a
//   std::deque, a std::list or std::vector<std::unique_ptr<Process>>.
// * Destroying a Process whose child still runs does not block and does not kill it (as in
//   Python, where the object stays in multiprocessing's child registry): the child is
//   reaped by the next start()/active_children()/at exit, and at exit it is joined (or
//   terminated first if it is a daemon), exactly like a child whose object is alive.
// * Every child is reaped: through its pidfd with waitid(P_PIDFD), never waitpid(-1) and
//   never a SIGCHLD handler, so other code's children are left alone.
//
// Start method fork (the only one so far): start() flushes std::cout/std::cerr/std::clog
// and stdio's stdout/stderr (as Python flushes sys.stdout/sys.stderr; a stream whose lock
// another thread holds is skipped, never waited for), then fork()s. The fork protocol
// (detail/fork.hpp) repairs concur's runtime state in the child, which takes its name,
// runs run(), runs concur's own exit hooks for the state it created itself (the non-daemon threads
// it started, its own children — what Python's _bootstrap does with threading._shutdown and
// util._exit_function), flushes, and leaves with _exit: the parent's static destructors
// and std::atexit handlers never run in a child. As with any fork of a multi-threaded
// program, only the forking thread exists in the child (cpython#84559): a child must not
// rely on locks other threads of the parent held at fork time.
//
// At exit of the process (return from main, std::exit, mp::exit outside a child):
// daemon children get SIGTERM, then every child is joined (Python's order). Beyond
// Python: a daemon that is still alive one second after SIGTERM gets SIGKILL (Python
// would hang at exit on a daemon that ignores SIGTERM), and daemon children started from
// the main thread die with SIGKILL when the parent dies by any means (PR_SET_PDEATHSIG,
// set in the child and then re-checked against getppid() so a parent dying in between is
// not missed). The kernel ties PR_SET_PDEATHSIG to the *thread* that forked, so it is only
// armed when start() runs on the main thread; a daemon started from another thread is
// still terminated at a normal exit, but not when the parent is killed.
//
// When not to use it: to run another program, use concur::subprocess (posix_spawn, ~0.6 ms
// whatever the parent's size) rather than a Process that execs; a fork costs more as the
// parent's resident memory grows (~0.25 ms small, ~2.4 ms at 64 MiB touched here). For many
// short tasks, keep processes alive (a Pool) instead of starting one per task.
//
// Thread-safety: every function here may be called from any thread. The members of one
// Process may be called concurrently (e.g. join() from two threads); set_name/set_daemon
// and close() race with other calls on the same object only as ordinary writes would.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "concur/detail/deadline.hpp"

namespace concur::logging {
class Logger;
enum class Level : int;
}  // namespace concur::logging

namespace concur::multiprocessing {

// Python's `name=` and `daemon=` keywords. daemon = nullopt inherits the creating
// process's flag (which is false everywhere a process may start children).
struct ProcessOptions {
  std::string name{};
  std::optional<bool> daemon{};
};

enum class StartMethod { fork, spawn, forkserver };
// "fork", "spawn", "forkserver".
std::string to_string(StartMethod);

class Process;

}  // namespace concur::multiprocessing

namespace concur::detail {
struct ChildRecord;
struct ChildSetup;
// Type-erased target: the callable and its arguments, copied/moved in at construction.
struct ProcessTargetBase {
  virtual ~ProcessTargetBase() = default;
  virtual void call() = 0;
};
template <class F, class... A>
struct ProcessTarget final : ProcessTargetBase {
  template <class G, class... B>
  explicit ProcessTarget(G&& g, B&&... b) : fn(std::forward<G>(g)), args(std::forward<B>(b)...) {}
  void call() override { std::apply(fn, args); }  // arguments passed as lvalues
  F fn;
  std::tuple<A...> args;
};
[[noreturn]] void bootstrap_child(multiprocessing::Process& self, const ChildSetup& setup);
}  // namespace concur::detail

namespace concur::multiprocessing {

class Process {
 public:
  // Target style: run() calls target(args...). The target and the arguments are copied
  // (or moved) into the Process, like std::thread; the child calls the target with its
  // own copies as lvalues, so a target may take T, const T& or T&. Use std::ref to pass
  // something by reference (useful only with memory the child can see, e.g. shared memory).
  template <class F, class... A>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<A>&...>
  explicit Process(F&& target, A&&... args) : Process(ProcessOptions{}) {
    target_ = make_target(std::forward<F>(target), std::forward<A>(args)...);
  }
  template <class F, class... A>
    requires std::is_invocable_v<std::decay_t<F>&, std::decay_t<A>&...>
  Process(ProcessOptions options, F&& target, A&&... args) : Process(std::move(options)) {
    target_ = make_target(std::forward<F>(target), std::forward<A>(args)...);
  }
  // Subclass style (override run()), or a Process that does nothing. Takes the next
  // identity of this process (names Process-N, nested Process-1:2). Never throws except
  // std::bad_alloc.
  explicit Process(ProcessOptions options = {});
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Does not block: a child still running is left to the runtime (see the banner).
  virtual ~Process();

  // Starts the child. Throws ValueError if closed; ProcessError "cannot start a process
  // twice", "can only start a process object created by current process", "daemonic
  // processes are not allowed to have children"; OSError if fork fails. Blocks only for
  // fork itself (about 0.25 ms plus page-table copying: ~2.4 ms at 64 MiB resident).
  void start();
  // Waits until the child has ended and reaps it. Throws ValueError if closed;
  // ProcessError "can only join a child process" / "can only join a started process".
  void join();
  // Same, for at most `timeout`; true if the child has ended (Python returns None: check
  // is_alive() there). A negative timeout is a zero timeout, hours::max() forever;
  // ValueError for NaN.
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = concur::detail::Deadline::after(timeout);
    if (deadline.is_forever()) {
      join();
      return true;
    }
    return join_until(deadline.time_point());
  }
  [[nodiscard]] bool join_until(std::chrono::steady_clock::time_point deadline);
  // True from start() until the child has ended (reaps it if it has). Never blocks.
  // ValueError if closed; ProcessError "can only test a child process" in another process.
  bool is_alive();
  // SIGTERM / SIGKILL through the pidfd (never hits a recycled pid); nothing if the child
  // has already ended. ValueError if closed; ProcessError if never started.
  void terminate();
  void kill();
  // Releases the pidfd and forgets the child. ValueError if the child is still running;
  // afterwards every member but name()/daemon()/close() throws ValueError("process object
  // is closed"). Closing twice is allowed.
  void close();

  // nullopt until the child has ended (or before start); 0 after run() returned; 1 if
  // run() threw; n after mp::exit(n) (the OS keeps n & 0xff); -SIG if killed by SIG;
  // 255 if something else reaped the child first (SIGCHLD set to SIG_IGN, a waitpid(-1)
  // elsewhere), which loses its status. Reaps, never blocks. ValueError if closed.
  std::optional<int> exitcode() const;
  // The child's pid once started (kept after it ended); nullopt before. ValueError if closed.
  std::optional<pid_t> pid() const;
  std::optional<pid_t> ident() const { return pid(); }  // Python's alias
  std::string name() const;
  void set_name(std::string name);
  bool daemon() const;
  // ProcessError "process has already started" after start().
  void set_daemon(bool daemon);
  // A pidfd that becomes readable when the child ends (poll/epoll/mp::wait it). Owned by
  // the Process: valid until close() or destruction. ValueError "process not started"
  // before start (as Python), ValueError if closed; so it always holds a value when it
  // returns (the std::optional is DESIGN.md's type).
  std::optional<int> sentinel() const;
  // The pid of the process that created this object.
  pid_t parent_pid() const noexcept { return parent_pid_; }

  // Python's repr: "<Process name='x' pid=5805 parent=5800 started>", "... stopped
  // exitcode=1>", "<Process name='x' parent=5800 initial>", "... exitcode=-SIGKILL daemon>".
  // A subclass shows its own class name, as in Python. Reaps (never blocks).
  std::string repr() const;

 protected:
  // What the child runs: the target, if any. Override it in subclass style.
  virtual void run();

 private:
  friend void detail::bootstrap_child(Process&, const detail::ChildSetup&);
  template <class F, class... A>
  static std::unique_ptr<detail::ProcessTargetBase> make_target(F&& f, A&&... a) {
    return std::make_unique<detail::ProcessTarget<std::decay_t<F>, std::decay_t<A>...>>(
        std::forward<F>(f), std::forward<A>(a)...);
  }
  void check_closed() const;
  void check_child(const char* what) const;
  void signal(int sig, const char* what);

  std::unique_ptr<detail::ProcessTargetBase> target_;
  std::string name_;
  bool daemon_ = false;
  bool closed_ = false;
  pid_t parent_pid_;
  std::vector<unsigned> identity_;
  std::shared_ptr<detail::ChildRecord> rec_;  // set by start()
};

std::ostream& operator<<(std::ostream&, const Process&);
std::string to_string(const Process&);

// A snapshot of a process's identity: current_process() and parent_process().
class ProcessInfo {
 public:
  ProcessInfo(std::string name, pid_t pid, bool daemon, std::optional<pid_t> parent_pid)
      : name_(std::move(name)), pid_(pid), daemon_(daemon), parent_pid_(parent_pid) {}
  const std::string& name() const noexcept { return name_; }
  pid_t pid() const noexcept { return pid_; }
  std::optional<pid_t> ident() const noexcept { return pid_; }
  bool daemon() const noexcept { return daemon_; }
  // The pid of its parent as concur knows it (nullopt for the main process and for
  // parent_process() itself).
  std::optional<pid_t> parent_pid() const noexcept { return parent_pid_; }
  // Whether that process still runs: always true for the current process; for the parent,
  // true while this process has not been re-parented (getppid() still equals pid()).
  bool is_alive() const;

 private:
  std::string name_;
  pid_t pid_;
  bool daemon_;
  std::optional<pid_t> parent_pid_;
};
// "<_MainProcess name='MainProcess' parent=None started>" (Python's reprs).
std::ostream& operator<<(std::ostream&, const ProcessInfo&);
std::string to_string(const ProcessInfo&);

// The calling process: "MainProcess" in the program that was not started by concur.
ProcessInfo current_process();
// nullopt in the main process; in a child, its parent (name, pid).
std::optional<ProcessInfo> parent_process();
// Started children of this process that are still running (reaps the ones that ended,
// also those whose Process object is gone). The pointers are valid while the objects live.
std::vector<Process*> active_children();
// CPUs this process may run on (the affinity mask), at least 1.
unsigned cpu_count();

// Only StartMethod::fork is supported yet: others throw ValueError("start method 'spawn'
// is not supported yet"). Setting a method again without force throws
// RuntimeError("context has already been set"), as Python.
void set_start_method(StartMethod method, bool force = false);
StartMethod get_start_method();
// The methods that work here: {fork} for now.
std::vector<StartMethod> get_all_start_methods();

// sys.exit(code) inside a process's target: unwinds the target's stack (it throws an
// internal type, not derived from std::exception: a catch (...) in the target must
// rethrow) and the child ends with exit code `code`. Anywhere else (the main process, or
// a thread of a child other than the one running the target) it calls std::exit(code),
// as Python's sys.exit ends the program: concur's exit hooks run (children are joined),
// static destructors run, the caller's stack is NOT unwound; in a child it flushes stdio
// and leaves with _exit(code) instead, since a child never runs the parent's atexit handlers.
[[noreturn]] void exit(int code = 0);

// The "multiprocessing" logger with Python's pattern "[{level}/{process}] {message}" on
// stderr. log_to_stderr(level) also sets its level (nullopt: leave it). Records: child
// started/exiting with its exit code (INFO), a process started/reaped (DEBUG),
// terminate()/kill() (DEBUG), the at-exit terminate/join steps (INFO).
logging::Logger& log_to_stderr(std::optional<logging::Level> level = std::nullopt);
logging::Logger& get_logger();

}  // namespace concur::multiprocessing
