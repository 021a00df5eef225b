// multiprocessing::Process and the process runtime. See process.hpp for the contract.
//
// Layout of the state:
// * One process-wide State (leaked, so it outlives static destructors and atexit order
//   games) guarded by one mutex `mu`. The mutex is never held across a blocking call
//   (only WNOHANG waitid, pidfd_send_signal, small allocations), and the fork protocol
//   (detail/fork.hpp) holds it across every fork() so a child never inherits it locked.
// * A started child is a ChildRecord shared between its Process object and the registry
//   `children` (the records not yet reaped). The record owns the pidfd; it is closed when
//   both let go (Process destroyed/closed, and the child reaped), so a Process destroyed
//   while its child runs leaves the runtime able to reap and join that child.
// * Start methods: start() prepares a ChildSetup, then a launcher makes the child (fork
//   only for now) and the child runs bootstrap_child(): the part a forkserver would reuse.
#include "concur/multiprocessing/process.hpp"

#include <cxxabi.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ext/stdio_sync_filebuf.h>
#include <iostream>
#include <mutex>
#include <new>
#include <sstream>
#include <typeinfo>

#include "concur/detail/deadline.hpp"
#include "concur/detail/exception_transport.hpp"
#include "concur/detail/fd.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/py_repr.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/detail/shm_tracker.hpp"
#include "concur/errors.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/logging.hpp"

namespace concur::multiprocessing {

namespace rt = ::concur::detail;

}  // namespace concur::multiprocessing

namespace concur::detail {

struct ChildRecord {
  pid_t pid = -1;
  int pidfd = -1;               // closed when the last holder lets go
  std::optional<int> exitcode;  // set once reaped
  bool daemon = false;
  std::string name;
  multiprocessing::Process* owner = nullptr;  // null once the Process object is gone or closed
  ChildRecord() = default;
  ChildRecord(const ChildRecord&) = delete;
  ChildRecord& operator=(const ChildRecord&) = delete;
  ~ChildRecord() { close_fd(pidfd); }
};

// Everything the child needs to become the new process; built by the parent before the
// launcher runs, so a forkserver could ship it instead of inheriting it.
struct ChildSetup {
  std::string name;
  std::vector<unsigned> identity;
  bool daemon = false;
  pid_t parent_pid = 0;
  std::string parent_name;
  bool pdeathsig = false;
};

}  // namespace concur::detail

namespace concur::multiprocessing {

namespace {

using detail::ChildRecord;

// Thrown by mp::exit() inside a target; deliberately not a std::exception.
struct ExitRequest {
  int code;
};

struct State {
  rt::Mutex mu;
  std::vector<std::shared_ptr<ChildRecord>> children CONCUR_GUARDED_BY(mu);  // not yet reaped
  unsigned counter = 0;                // identities handed out by this process
  std::vector<unsigned> identity;      // this process's identity (empty in the main one)
  bool daemon = false;                 // this process is a daemon
  pid_t parent_pid = 0;                // 0 in the main process
  std::string parent_name;
  StartMethod method = StartMethod::fork;
  bool method_fixed = false;  // Python's "context has already been set"
  bool exit_hook = false;
  Process* self = nullptr;  // in a child: the Process it runs
  struct Reaped {
    std::string name;
    pid_t pid;
    int code;
  };
  std::vector<Reaped> pending_log CONCUR_GUARDED_BY(mu);  // reaped under mu, logged after
};

pid_t self_pid() noexcept {
  return rt::this_process_pid();
}

State& st() {
  static State* s = new State;  // leaked on purpose (used from atexit and after fork)
  return *s;
}

// Fork protocol (rank kProcess): any fork() — ours or the user's — happens with mu held, so
// the child's copy is unlocked and consistent (the forking thread owns it and releases it
// on both sides). Lock order: while holding mu, concur takes only locks of higher rank
// (the runtime's name lock, logging's lock on the first get_logger()); see detail/fork.hpp.
void atfork_prepare() noexcept {
  st().mu.fork_lock();
}
void atfork_parent() noexcept {
  st().mu.fork_unlock();
}
// In any forked child (ours, or a user's raw fork()): the parent's children are not ours.
// Only close(2) and plain stores here, nothing that allocates or frees. mu is held (the
// prepare handler took it), which the analysis cannot see.
void atfork_child() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  State& s = st();
  for (auto& r : s.children) {
    rt::close_fd(r->pidfd);
    r->pidfd = -1;
    r->owner = nullptr;
  }
  s.mu.fork_unlock();
}

[[maybe_unused]] const bool g_fork_registered =
    (rt::register_fork_handler(rt::ForkRank::kProcess,
                               {atfork_prepare, atfork_parent, atfork_child}),
     true);

thread_local bool tls_in_target = false;  // this thread runs a child's run()

constexpr logging::Level kDebug = logging::Level::DEBUG;
constexpr logging::Level kInfo = logging::Level::INFO;

// A lifecycle record on the "multiprocessing" logger; two relaxed loads when it is off.
// Never called with mu held (logging has its own lock).
template <class... A>
void mp_log(logging::Level level, std::string_view fmt, const A&... args) {
  logging::Logger& lg = get_logger();
  if (!lg.is_enabled_for(level)) return;
  if (level == kDebug)
    lg.debug(fmt, args...);
  else
    lg.info(fmt, args...);
}

// Holds mu; on release, logs the children reaped meanwhile (outside the lock).
class CONCUR_SCOPED_CAPABILITY Guard {
 public:
  explicit Guard(State& s) CONCUR_ACQUIRE(s.mu) : s_(s) { s_.mu.lock(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  // (The analysis checks the callers; this body reads pending_log before unlocking.)
  ~Guard() CONCUR_RELEASE() CONCUR_NO_THREAD_SAFETY_ANALYSIS {
    if (s_.pending_log.empty()) {
      s_.mu.unlock();
      return;
    }
    std::vector<State::Reaped> done;
    done.swap(s_.pending_log);
    s_.mu.unlock();
    for (auto& r : done)
      mp_log(kDebug, "process {} (pid {}) ended with exitcode {}", r.name, r.pid, r.code);
  }

 private:
  State& s_;
};

// With sync_with_stdio(true) (the default) the standard streams keep no buffer of their
// own: everything sits in stdio's FILEs, which fflush(nullptr) writes. Flushing a stream
// is needed only when it has its own buffer (sync_with_stdio(false), or a replaced
// rdbuf). Skipping the other flushes matters in a child, where every library code page
// touched for the first time is a page fault: this saves ~8 faults per child.
template <class Stream>
void flush_if_buffered(Stream& os) {
#if defined(__GLIBCXX__)
  using Sync = __gnu_cxx::stdio_sync_filebuf<typename Stream::char_type>;
  auto* buf = os.rdbuf();
  if (buf == nullptr || typeid(*buf) == typeid(Sync)) return;
#endif
  os.flush();
}

// Flushes one stdio FILE unless another thread holds its lock (a thread blocked in
// std::getline(std::cin) or fgets holds stdin's for as long as it waits; a writer holds
// stdout's only while copying into the buffer). Python flushes sys.stdout and sys.stderr
// only, never every FILE: fflush(nullptr) would take every FILE's lock, stdin's included.
void flush_file_nonblocking(FILE* f) noexcept {
  if (f == nullptr || ::ftrylockfile(f) != 0) return;
  (void)::fflush_unlocked(f);
  ::funlockfile(f);
}

// What Python's util._flush_std_streams() flushes before a fork and at a child's exit: the
// standard output streams (the C++ ones when they keep a buffer of their own, then stdio's
// stdout and stderr). Never blocks on a lock another thread holds.
void flush_all() noexcept {
  try {
    flush_if_buffered(std::cout);
    flush_if_buffered(std::cerr);
    flush_if_buffered(std::clog);
    flush_if_buffered(std::wcout);
    flush_if_buffered(std::wcerr);
  } catch (...) {
  }
  flush_file_nonblocking(stdout);
  flush_file_nonblocking(stderr);
}

std::string exitcode_text(int code) {
  if (code < 0) {
    if (const char* abbrev = ::sigabbrev_np(-code)) return std::string("-SIG") + abbrev;
  }
  return std::to_string(code);
}

// Reaps `r` if its child has ended (never blocks); true if it has ended. Drops a newly
// reaped record from the registry. Caller holds mu.
bool poll_locked(State& s, ChildRecord& r) CONCUR_REQUIRES(s.mu) {
  if (r.exitcode) return true;
  if (r.pidfd < 0) return false;  // a sibling's record seen from inside a child
  siginfo_t si{};
  int rc;
  do {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(r.pidfd), &si, WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    // ECHILD: someone reaped it behind our back (SIGCHLD set to SIG_IGN, a waitpid(-1)
    // elsewhere). The status is lost; report 255 rather than "running forever".
    if (errno != ECHILD) return false;
    r.exitcode = 255;
  } else if (si.si_pid == 0) {
    return false;
  } else {
    r.exitcode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
  }
  if (get_logger().is_enabled_for(kDebug)) s.pending_log.push_back({r.name, r.pid, *r.exitcode});
  auto it = std::find_if(s.children.begin(), s.children.end(),
                         [&](const std::shared_ptr<ChildRecord>& c) { return c.get() == &r; });
  if (it != s.children.end()) s.children.erase(it);
  return true;
}

// Python's _cleanup(): reap every child that has ended. Caller holds mu.
void reap_finished_locked(State& s) CONCUR_REQUIRES(s.mu) {
  auto kids = s.children;  // poll_locked erases from s.children
  for (auto& k : kids) poll_locked(s, *k);
}

// Waits until pidfd is readable (the child ended) or the deadline passes (nullptr:
// forever). EINTR-safe; true if readable.
bool wait_pidfd(int pidfd, const std::chrono::steady_clock::time_point* deadline) {
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};
    timespec ts{};
    const timespec* tsp =
        deadline != nullptr ? concur::detail::Deadline(*deadline).relative_timespec(ts) : nullptr;
    const int rc = ::ppoll(&p, 1, tsp, nullptr);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;  // EBADF etc.: let the caller's waitid decide
  }
}

// Blocks until the child of `r` ended and reaps it. Waits on the pidfd first: a poll that
// finds the child ended costs the same as a waitid that finds it running.
void join_record(State& s, const std::shared_ptr<ChildRecord>& r) {
  {
    Guard g(s);
    if (r->exitcode || r->pidfd < 0) return;
  }
  for (;;) {
    wait_pidfd(r->pidfd, nullptr);
    Guard g(s);
    if (poll_locked(s, *r) || r->pidfd < 0) return;
  }
}

void send_signal(ChildRecord& r, int sig) {
  if (r.pidfd < 0 || r.exitcode) return;
  // ESRCH: it has already ended (a zombie still accepts signals, so this is rare).
  (void)::syscall(SYS_pidfd_send_signal, r.pidfd, sig, nullptr, 0);
}

// At exit (kExitChildren): Python's util._exit_function for children — terminate the
// daemons, then join everyone. Daemons that outlive SIGTERM by kDaemonGrace get SIGKILL.
constexpr auto kDaemonGrace = std::chrono::seconds(1);

void exit_children() {
  State& s = st();
  std::vector<std::shared_ptr<ChildRecord>> kids;
  {
    Guard g(s);
    reap_finished_locked(s);
    kids = s.children;
  }
  mp_log(kInfo, "process shutting down");
  if (kids.empty()) return;
  bool any_daemon = false;
  for (auto& k : kids) {
    if (!k->daemon) continue;
    any_daemon = true;
    mp_log(kInfo, "calling terminate() for daemon {}", k->name);
    Guard g(s);
    if (!poll_locked(s, *k)) send_signal(*k, SIGTERM);
  }
  if (any_daemon) {
    const auto deadline = concur::detail::Deadline::after(kDaemonGrace).time_point();
    for (auto& k : kids) {
      if (!k->daemon || k->pidfd < 0) continue;
      if (!wait_pidfd(k->pidfd, &deadline)) {
        Guard g(s);
        if (!poll_locked(s, *k)) send_signal(*k, SIGKILL);
      }
    }
  }
  for (auto& k : kids) {
    mp_log(kInfo, "calling join() for process {}", k->name);
    join_record(s, k);
  }
}

void report_exception(const std::string& name) {
  std::string msg = "Process " + name + ":\n";
  const std::type_info* t = abi::__cxa_current_exception_type();
  std::string type = rt::demangle(t != nullptr ? t->name() : nullptr);
  try {
    throw;
  } catch (const std::exception& e) {
    msg += type + ": " + e.what() + "\n";
  } catch (...) {
    msg += type + "\n";
  }
  flush_all();
  rt::write_all(2, msg.data(), msg.size());
}

std::string identity_name(const std::vector<unsigned>& id) {
  std::string n = "Process-";
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i) n += ':';
    n += std::to_string(id[i]);
  }
  return n;
}

// The first call of a dynamically linked function goes through ld.so's lazy binder, which
// walks the symbol tables of every loaded library: measured here at ~16 extra page faults
// and 50-70 us per child (fork+_exit+waitpid itself is ~235 us). A function that only
// children call would pay that in every child, since a child's binding dies with it.
// So the parent calls, once, the library functions the child path needs: libstdc++'s own
// operator new, the nothrow new of std::stable_sort's buffer (run_exit_hooks), and the
// "multiprocessing" logger lookup. The child leaves with exit_group through syscall(),
// which the parent has already bound (pidfd_open), instead of _exit.
void prewarm_child_path() {
  std::string s;
  s.reserve(200);  // out of line in libstdc++: binds its operator new
  void* p = ::operator new(16, std::nothrow);
  asm volatile("" : : "r"(p), "r"(s.data()) : "memory");
  ::operator delete(p);
  (void)get_logger();
}

[[noreturn]] void exit_now(int code) {
  ::syscall(SYS_exit_group, code);
  ::_exit(code);  // not reached
}

}  // namespace

// ----------------------------------------------------------------------------- bootstrap

namespace {

// The body of detail::bootstrap_child, in this file's namespace (its helpers are here).
// `run` is self.run() (protected: only the friend can call it).
template <class Run>
[[noreturn]] void run_child(Process& self, const std::string& name, const detail::ChildSetup& setup,
                            Run run) {
  if (setup.pdeathsig) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died between fork() and prctl(): then nobody will send the
    // signal, and we have already been re-parented.
    if (::getppid() != setup.parent_pid) ::kill(::getpid(), SIGKILL);
  }
  State& s = st();  // the atfork child handler released mu and the siblings' pidfds
  {
    Guard g(s);  // uncontended: this is the new child's only thread
    s.children.clear();
  }
  s.counter = 0;
  s.identity = setup.identity;
  s.daemon = setup.daemon;
  s.parent_pid = setup.parent_pid;
  s.parent_name = setup.parent_name;
  s.self = &self;
  rt::set_current_process_name(setup.name);

  mp_log(kInfo, "child process calling self.run()");
  int code = 0;
  tls_in_target = true;
  try {
    run();
  } catch (const ExitRequest& e) {
    code = e.code;
  } catch (...) {
    report_exception(name);
    code = 1;
  }
  tls_in_target = false;
  // Python's threading._shutdown() and util._exit_function(): join the threads this child
  // started, terminate/join its own children.
  try {
    rt::run_exit_hooks();
  } catch (...) {
  }
  mp_log(kInfo, "process exiting with exitcode {}", code);
  flush_all();
  exit_now(code);
}

}  // namespace

}  // namespace concur::multiprocessing

[[noreturn]] void concur::detail::bootstrap_child(multiprocessing::Process& self,
                                                  const ChildSetup& setup) {
  multiprocessing::run_child(self, self.name_, setup, [&self] { self.run(); });
}

namespace concur::multiprocessing {

// ----------------------------------------------------------------------------- launchers

namespace {

struct Launched {
  pid_t pid;
  int pidfd;
  bool gone;  // already ended and reaped by someone else (SIGCHLD ignored)
};

// Start method fork: the child inherits everything and runs the bootstrap directly. A
// forkserver launcher would instead send `setup` (and the target) to a server that forks
// and calls the same bootstrap_child. Returns the child's pid and a pidfd for it.
//
// Why fork() + pidfd_open() and not clone3(CLONE_PIDFD): clone3 bypasses glibc's fork —
// its pthread_atfork handlers, its malloc/stdio lock handling and the child's thread
// bookkeeping (TCB tid, robust list, stack list) — which the child needs to run C++ code
// as after fork(). Instead the pidfd is opened at once in the parent, and that is
// race-free: a child cannot be reaped (so its pid cannot be reused) before pidfd_open
// unless someone other than concur reaps it — SIGCHLD set to SIG_IGN / SA_NOCLDWAIT (the
// kernel reaps at exit), or a waitpid(-1)/wait() in user code. concur itself reaps only
// through the pidfd. Both remaining cases are detected: ESRCH (reaped, pid free) and a
// pidfd that names a process that is not our child (waitid on it fails with ECHILD: reaped
// and the pid reused) — then the child counts as gone and no signal is ever sent to it.
Launched launch_fork(Process& self, const detail::ChildSetup& setup) {
  flush_all();  // so output buffered before start() is not written twice
  const pid_t pid = ::fork();
  if (pid < 0) throw_os_error(errno, "fork");
  if (pid == 0) detail::bootstrap_child(self, setup);
  int fd = rt::pidfd_open(pid);
  int err = errno;
  if (fd >= 0) {
    siginfo_t si{};
    int rc;
    do {
      rc = ::waitid(P_PIDFD, static_cast<id_t>(fd), &si, WEXITED | WNOHANG | WNOWAIT);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0 || errno != ECHILD) return {pid, fd, false};
    rt::close_fd(fd);  // a stranger that got our child's pid: never signal it
    fd = -1;
    err = ESRCH;
  }
  if (err == ESRCH) {
    // Our own child can only be missing if it ended and was reaped already (SIGCHLD set
    // to SIG_IGN, or user code's waitpid(-1)). Stand in an always-readable eventfd for
    // the sentinel.
    int efd = ::eventfd(1, EFD_CLOEXEC);
    if (efd >= 0 && efd < 3) {  // keep it off the stdio slots (see rt::above_stdio)
      const int moved = ::fcntl(efd, F_DUPFD_CLOEXEC, 3);
      rt::close_fd(efd);
      efd = moved;
    }
    if (efd >= 0) return {pid, efd, true};
  }
  // Only without pidfd support (Linux < 5.3) or out of descriptors.
  ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  throw_os_error(err, "pidfd_open");
}

}  // namespace

// ----------------------------------------------------------------------------- Process

Process::Process(ProcessOptions options) : name_(std::move(options.name)), parent_pid_(self_pid()) {
  State& s = st();
  Guard g(s);
  identity_ = s.identity;
  identity_.push_back(++s.counter);
  daemon_ = options.daemon.value_or(s.daemon);
  if (name_.empty()) name_ = identity_name(identity_);
}

Process::~Process() {
  State& s = st();
  Guard g(s);
  if (rec_) {
    rec_->owner = nullptr;
    poll_locked(s, *rec_);  // reap now if it can be (no zombie left behind)
    rec_.reset();           // the registry keeps it while the child runs
  }
}

void Process::run() {
  if (target_) target_->call();
}

void Process::check_closed() const {
  if (closed_) throw ValueError("process object is closed");
}

void Process::check_child(const char* what) const {
  check_closed();
  if (parent_pid_ != self_pid())
    throw ProcessError(std::string("can only ") + what + " a child process");
  if (!rec_) throw ProcessError(std::string("can only ") + what + " a started process");
}

void Process::start() {
  check_closed();
  if (rec_) throw ProcessError("cannot start a process twice");
  if (parent_pid_ != self_pid())
    throw ProcessError("can only start a process object created by current process");
  State& s = st();
  detail::ChildSetup setup;
  bool first_start = false;
  {
    Guard g(s);
    if (s.daemon) throw ProcessError("daemonic processes are not allowed to have children");
    reap_finished_locked(s);  // Python's _cleanup()
    s.method_fixed = true;
    if (!s.exit_hook) {
      s.exit_hook = true;
      first_start = true;
      rt::register_exit_hook(rt::kExitChildren, exit_children);
    }
    setup.identity = identity_;
    setup.parent_name = rt::current_process_name();
  }
  if (first_start) prewarm_child_path();  // outside mu: it takes the logging lock
  // A program that contains SharedMemory starts its resource tracker before its first
  // child, so every child inherits the connection and the top process's tracker owns
  // the segments children create (as Python's spawn/forkserver start it in the parent).
  if (auto* prefork = rt::shm_tracker_prefork.load(std::memory_order_acquire)) prefork();
  setup.name = name_;
  setup.daemon = daemon_;
  setup.parent_pid = self_pid();
  setup.pdeathsig = daemon_ && rt::this_thread_tid() == self_pid();
  auto rec = std::make_shared<ChildRecord>();
  rec->daemon = daemon_;
  rec->name = name_;
  rec->owner = this;

  const Launched child = launch_fork(*this, setup);
  rec->pid = child.pid;
  rec->pidfd = child.pidfd;
  if (child.gone) rec->exitcode = 255;  // its status is lost (see exitcode())
  {
    Guard g(s);
    if (!rec->exitcode) s.children.push_back(rec);
    rec_ = std::move(rec);
  }
  mp_log(kDebug, "started process {} (pid {})", name_, child.pid);
}

void Process::join() {
  check_child("join");
  join_record(st(), rec_);
}

bool Process::join_until(std::chrono::steady_clock::time_point deadline) {
  check_child("join");
  State& s = st();
  for (;;) {
    {
      Guard g(s);
      if (poll_locked(s, *rec_)) return true;
    }
    if (!wait_pidfd(rec_->pidfd, &deadline)) {
      Guard g(s);
      return poll_locked(s, *rec_);
    }
  }
}

bool Process::is_alive() {
  check_closed();
  State& s = st();
  if (s.self == this) return true;
  if (parent_pid_ != self_pid()) throw ProcessError("can only test a child process");
  if (!rec_) return false;
  Guard g(s);
  return !poll_locked(s, *rec_);
}

void Process::signal(int sig, const char* what) {
  check_closed();
  if (parent_pid_ != self_pid())
    throw ProcessError(std::string("can only ") + what + " a child process");
  if (!rec_) throw ProcessError(std::string("can only ") + what + " a started process");
  mp_log(kDebug, "calling {}() for process {}", what, name_);
  State& s = st();
  Guard g(s);
  send_signal(*rec_, sig);
}

void Process::terminate() {
  signal(SIGTERM, "terminate");
}
void Process::kill() {
  signal(SIGKILL, "kill");
}

void Process::close() {
  if (closed_) return;
  State& s = st();
  Guard g(s);
  if (rec_) {
    if (parent_pid_ == self_pid() && !poll_locked(s, *rec_))
      throw ValueError(
          "Cannot close a process while it is still running. You should first call join() or "
          "terminate().");
    rec_->owner = nullptr;
    auto it = std::find(s.children.begin(), s.children.end(), rec_);
    if (it != s.children.end()) s.children.erase(it);
    rec_.reset();  // closes the pidfd
  }
  closed_ = true;
}

std::optional<int> Process::exitcode() const {
  check_closed();
  if (!rec_) return std::nullopt;
  State& s = st();
  Guard g(s);
  if (parent_pid_ == self_pid()) poll_locked(s, *rec_);
  return rec_->exitcode;
}

std::optional<pid_t> Process::pid() const {
  check_closed();
  if (st().self == this) return self_pid();
  if (!rec_) return std::nullopt;
  return rec_->pid;
}

std::string Process::name() const {
  Guard g(st());
  return name_;
}

void Process::set_name(std::string name) {
  Guard g(st());
  name_ = std::move(name);
  if (rec_) rec_->name = name_;
}

bool Process::daemon() const {
  return daemon_;
}

void Process::set_daemon(bool daemon) {
  if (rec_) throw ProcessError("process has already started");
  daemon_ = daemon;
}

std::optional<int> Process::sentinel() const {
  check_closed();
  if (!rec_) throw ValueError("process not started");
  return rec_->pidfd;
}

std::string Process::repr() const {
  State& s = st();
  std::optional<int> code;
  const char* status;
  std::string name;
  std::optional<pid_t> pid;
  {
    Guard g(s);
    name = name_;
    if (rec_) pid = rec_->pid;
    if (s.self == this) {
      status = "started";
    } else if (closed_) {
      status = "closed";
    } else if (parent_pid_ != self_pid()) {
      status = "unknown";
    } else if (!rec_) {
      status = "initial";
    } else if (poll_locked(s, *rec_)) {
      status = "stopped";
      code = rec_->exitcode;
    } else {
      status = "started";
    }
  }
  // Python shows type(self).__name__: drop namespaces (but not inside template arguments).
  const std::string type = rt::unqualified(rt::type_name(typeid(*this)));
  std::string out = "<" + type + " name=" + rt::py_repr(name);
  if (pid) out += " pid=" + std::to_string(*pid);
  out += " parent=" + std::to_string(parent_pid_) + " " + status;
  if (code) out += " exitcode=" + exitcode_text(*code);
  if (daemon_) out += " daemon";
  out += ">";
  return out;
}

std::ostream& operator<<(std::ostream& os, const Process& p) {
  return os << p.repr();
}
std::string to_string(const Process& p) {
  return p.repr();
}

// ----------------------------------------------------------------------------- module

std::string to_string(StartMethod m) {
  switch (m) {
    case StartMethod::fork:
      return "fork";
    case StartMethod::spawn:
      return "spawn";
    case StartMethod::forkserver:
      return "forkserver";
  }
  return "unknown";
}

bool ProcessInfo::is_alive() const {
  if (pid_ == self_pid()) return true;
  State& s = st();
  pid_t parent;
  {
    Guard g(s);
    parent = s.parent_pid;
  }
  if (pid_ == parent) return ::getppid() == pid_;
  return ::kill(pid_, 0) == 0 || errno == EPERM;
}

std::string to_string(const ProcessInfo& p) {
  const bool self = p.pid() == self_pid();
  const char* type = self ? (p.parent_pid() ? "Process" : "_MainProcess") : "_ParentProcess";
  std::string out = std::string("<") + type + " name=" + rt::py_repr(p.name());
  if (!self) out += " pid=" + std::to_string(p.pid());
  out += " parent=" + (p.parent_pid() ? std::to_string(*p.parent_pid()) : std::string("None"));
  out += p.is_alive() ? " started" : " stopped";
  if (p.daemon()) out += " daemon";
  return out + ">";
}

std::ostream& operator<<(std::ostream& os, const ProcessInfo& p) {
  return os << to_string(p);
}

ProcessInfo current_process() {
  State& s = st();
  std::string name = rt::current_process_name();
  Guard g(s);
  return ProcessInfo(std::move(name), self_pid(), s.daemon,
                     s.parent_pid ? std::optional<pid_t>(s.parent_pid) : std::nullopt);
}

std::optional<ProcessInfo> parent_process() {
  State& s = st();
  Guard g(s);
  if (s.parent_pid == 0) return std::nullopt;
  return ProcessInfo(s.parent_name, s.parent_pid, false, std::nullopt);
}

std::vector<Process*> active_children() {
  State& s = st();
  Guard g(s);
  reap_finished_locked(s);
  std::vector<Process*> out;
  for (auto& k : s.children)
    if (k->owner != nullptr) out.push_back(k->owner);
  return out;
}

unsigned cpu_count() {
  const long conf = ::sysconf(_SC_NPROCESSORS_CONF);
  const int ncpu = static_cast<int>(std::max(conf, 1024L));
  cpu_set_t* set = CPU_ALLOC(ncpu);
  if (set == nullptr) return 1;
  const std::size_t size = CPU_ALLOC_SIZE(ncpu);
  unsigned n = 0;
  if (::sched_getaffinity(0, size, set) == 0) n = static_cast<unsigned>(CPU_COUNT_S(size, set));
  CPU_FREE(set);
  if (n == 0) n = conf > 0 ? static_cast<unsigned>(conf) : 1;
  return n;
}

void set_start_method(StartMethod method, bool force) {
  State& s = st();
  Guard g(s);
  if (s.method_fixed && !force) throw RuntimeError("context has already been set");
  if (method != StartMethod::fork)
    throw ValueError("start method '" + to_string(method) + "' is not supported yet");
  s.method = method;
  s.method_fixed = true;
}

StartMethod get_start_method() {
  State& s = st();
  Guard g(s);
  s.method_fixed = true;  // Python: asking fixes the default context
  return s.method;
}

std::vector<StartMethod> get_all_start_methods() {
  return {StartMethod::fork};
}

[[noreturn]] void exit(int code) {
  if (tls_in_target) throw ExitRequest{code};
  bool child;
  {
    State& s = st();
    Guard g(s);
    child = s.self != nullptr;
  }
  if (child) {  // another thread of a child: end the child now, like os._exit
    flush_all();
    ::_exit(code);
  }
  std::exit(code);
}

logging::Logger& get_logger() {
  // Python's util.get_logger(): propagate = 0, no handler until log_to_stderr(), so the
  // root's configuration (basic_config({.level = DEBUG})) does not turn the records on.
  static logging::Logger& lg = []() -> logging::Logger& {
    logging::Logger& l = logging::get_logger("multiprocessing");
    l.set_propagate(false);
    return l;
  }();
  return lg;
}

logging::Logger& log_to_stderr(std::optional<logging::Level> level) {
  logging::Logger& lg = get_logger();
  lg.set_format("[{level}/{process}] {message}");
  lg.set_stream(2);
  if (level) lg.set_level(*level);
  return lg;
}

}  // namespace concur::multiprocessing
