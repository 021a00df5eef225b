// The shared-memory resource tracker (contract in concur/detail/shm_tracker.hpp).
//
// State of a program process: the connection fd (inherited by fork), the pid of the
// process that started the tracker (only it reaps it), the tracker's pid and pidfd, and
// the fallback list. All of it is guarded by a fork-aware lock: a word holding the pid of
// the process whose thread holds it, so a forked child that finds its parent's pid there
// knows the holder did not come along and takes the lock over.
#include "concur/detail/shm_tracker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "concur/detail/fd.hpp"
#include "concur/detail/py_repr.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/detail/spawn.hpp"
#include "concur/errors.hpp"

extern char** environ;

namespace concur::detail {
namespace {

constexpr char kTrackerArgv0[] = "concur-shm-tracker";
constexpr char kTrackerEnv[] = "CONCUR_SHM_TRACKER";
constexpr char kReady = 'R';
constexpr char kOpRegister = 'R';
constexpr char kOpUnregister = 'U';
// How long the top process's exit waits for the tracker to finish its cleanup. It needs
// microseconds once every holder of the connection is gone; the bound only matters when a
// forked process still holds it (the tracker then outlives us and init reaps it).
constexpr int kReapAtExitMs = 2000;

// ------------------------------------------------------------------ the tracker process

std::string leaked_message(const std::vector<std::string>& names) {
  return "concur: resource_tracker: There appear to be " + std::to_string(names.size()) +
         " leaked shared_memory objects to clean up at shutdown: " + py_repr(names) + "\n";
}

void unlink_leftovers(const std::vector<std::string>& names) {
  if (names.empty()) return;
  const std::string msg = leaked_message(names);
  (void)write_all(2, msg.data(), msg.size());
  for (const auto& n : names) ::shm_unlink(n.c_str());
}

[[noreturn]] void tracker_main() {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::sigaction(sig, &ign, nullptr);
  // Ready: the program's start() waits for this byte (or our death) before using us.
  (void)write_all(1, &kReady, 1);
  close_fd(1);
  std::map<std::string, long> names;
  char buf[kShmTrackerMaxName + 2];
  for (;;) {
    const ssize_t n = ::recv(0, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // 0: the last holder of the program's end is gone
    if (n < 2) continue;
    std::string name(buf + 1, static_cast<std::size_t>(n - 1));
    if (buf[0] == kOpRegister) {
      ++names[std::move(name)];
    } else if (buf[0] == kOpUnregister) {
      auto it = names.find(name);
      if (it != names.end() && --it->second <= 0) names.erase(it);
    }
  }
  std::vector<std::string> left;
  for (const auto& [name, count] : names) left.push_back(name);
  unlink_leftovers(left);
  ::_exit(0);
}

// Runs before main() (and before the default-priority static initializers of the
// program): in the exec'd tracker it never returns. glibc passes argc/argv/envp to
// ELF constructors.
__attribute__((constructor(101))) void tracker_entry(int argc, char** argv, char**) {
  if (argc < 1 || argv == nullptr || argv[0] == nullptr) return;
  if (std::strcmp(argv[0], kTrackerArgv0) != 0) return;
  const char* v = std::getenv(kTrackerEnv);
  if (v == nullptr || std::strcmp(v, "1") != 0) return;
  tracker_main();
}

// ------------------------------------------------------------------ the program's side

struct State {
  std::atomic<pid_t> lock{0};
  int conn = -1;    // our end of the socketpair (inherited by fork)
  pid_t owner = 0;  // the process that started the tracker (reaps it)
  pid_t tracker_pid = -1;
  int tracker_pidfd = -1;
  bool start_failed = false;  // fallback: in-process tracking
  pid_t fallback_owner = 0;
  std::vector<std::string> fallback;
  bool exit_hook = false;
};

State& st() {
  static State* s = new State;  // never destroyed: used from the exit hook and in children
  return *s;
}

class Lock {
 public:
  explicit Lock(State& s) : s_(s) {
    const pid_t me = static_cast<pid_t>(::getpid());
    for (;;) {
      pid_t cur = 0;
      if (s_.lock.compare_exchange_weak(cur, me, std::memory_order_acquire)) return;
      // Held by a thread of another process: our parent's, frozen at fork. Take over.
      if (cur != 0 && cur != me &&
          s_.lock.compare_exchange_weak(cur, me, std::memory_order_acquire))
        return;
      std::this_thread::yield();
    }
  }
  ~Lock() { s_.lock.store(0, std::memory_order_release); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  State& s_;
};

void at_exit() {
  State& s = st();
  int pidfd = -1;
  std::vector<std::string> fallback;
  {
    Lock g(s);
    const pid_t me = static_cast<pid_t>(::getpid());
    if (s.fallback_owner == me) fallback.swap(s.fallback);
    if (s.owner != me) return unlink_leftovers(fallback);
    close_fd(s.conn);  // the tracker sees EOF once every forked holder is gone too
    s.conn = -1;
    pidfd = s.tracker_pidfd;
    s.tracker_pidfd = -1;
    s.owner = 0;
  }
  unlink_leftovers(fallback);
  if (pidfd < 0) return;
  if (wait_readable(pidfd, kReapAtExitMs)) {
    try {
      (void)reap_pidfd(pidfd, false);
    } catch (...) {
    }
  }
  close_fd(pidfd);
}

void ensure_exit_hook(State& s) {
  if (s.exit_hook) return;
  s.exit_hook = true;
  register_exit_hook(kExitResources, &at_exit);
}

// Starts the tracker. Caller holds the lock. On failure sets start_failed (fallback).
void start_locked(State& s) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
    s.start_failed = true;
    return;
  }
  UniqueFd mine, theirs;
  try {
    mine = above_stdio(UniqueFd(sp[0]));
    theirs = above_stdio(UniqueFd(sp[1]));
  } catch (const Error&) {
    close_fd(sp[0]);
    close_fd(sp[1]);
    s.start_failed = true;
    return;
  }
  try {
    auto [ready_rd, ready_wr] = make_pipe();
    std::vector<const char*> envp;
    const std::string mark = std::string(kTrackerEnv) + "=1";
    for (char** e = environ; e && *e; ++e)
      if (std::strncmp(*e, kTrackerEnv, sizeof kTrackerEnv - 1) != 0 ||
          (*e)[sizeof kTrackerEnv - 1] != '=')
        envp.push_back(*e);
    envp.push_back(mark.c_str());
    envp.push_back(nullptr);
    const char* argv[] = {kTrackerArgv0, nullptr};
    const char* paths[] = {"/proc/self/exe"};
    SpawnRequest req;
    req.argv = argv;
    req.envp = envp.data();
    req.exec_paths = paths;
    req.stdio[0] = theirs.get();
    req.stdio[1] = ready_wr.get();
    req.process_group = 0;
    req.exec_context = "/proc/self/exe";
    SpawnResult r = spawn(req);
    theirs.reset();
    ready_wr.reset();
    // Ready byte, or the tracker's death (an image without the tracker entry).
    bool ready = false;
    for (;;) {
      pollfd p[2] = {{ready_rd.get(), POLLIN, 0}, {r.pidfd.get(), POLLIN, 0}};
      const int rc = ::poll(p, 2, -1);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) break;
      if (p[0].revents) {
        char c = 0;
        ready = ::read(ready_rd.get(), &c, 1) == 1 && c == kReady;
        break;
      }
      if (p[1].revents) break;
    }
    if (!ready) {
      ::syscall(SYS_pidfd_send_signal, r.pidfd.get(), SIGKILL, nullptr, 0);
      (void)reap_pidfd(r.pidfd.get(), true);
      s.start_failed = true;
      return;
    }
    s.conn = mine.release();
    s.owner = static_cast<pid_t>(::getpid());
    s.tracker_pid = r.pid;
    s.tracker_pidfd = r.pidfd.release();
    ensure_exit_hook(s);
  } catch (const Error&) {
    s.start_failed = true;
  }
}

// The connection to use (starting the tracker if needed), or -1 for the fallback.
int connection_locked(State& s) {
  if (s.conn < 0 && !s.start_failed) start_locked(s);
  return s.conn;
}

void check_name(std::string_view name) {
  if (name.empty()) throw ValueError("shared memory name must not be empty");
  if (name.size() > kShmTrackerMaxName) throw ValueError("shared memory name too long");
  if (name.find('\0') != std::string_view::npos)
    throw ValueError("embedded null character in shared memory name");
}

void send_op(char op, std::string_view name) {
  check_name(name);
  char buf[kShmTrackerMaxName + 1];
  buf[0] = op;
  std::memcpy(buf + 1, name.data(), name.size());
  State& s = st();
  Lock g(s);
  const int fd = connection_locked(s);
  if (fd < 0) {
    const pid_t me = static_cast<pid_t>(::getpid());
    if (s.fallback_owner != me) {  // a forked child does not own its parent's list
      s.fallback.clear();
      s.fallback_owner = me;
    }
    if (op == kOpRegister) {
      s.fallback.emplace_back(name);
      ensure_exit_hook(s);
    } else {
      auto it = std::find(s.fallback.begin(), s.fallback.end(), name);
      if (it != s.fallback.end()) s.fallback.erase(it);
    }
    return;
  }
  // One datagram: atomic. MSG_NOSIGNAL: a dead tracker is EPIPE, never SIGPIPE; then the
  // name is simply not tracked (nothing better can be done for it).
  while (::send(fd, buf, name.size() + 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

[[maybe_unused]] const bool kPreforkSet = [] {
  shm_tracker_prefork.store(&shm_tracker_ensure_running, std::memory_order_release);
  return true;
}();

}  // namespace

void shm_tracker_register(std::string_view name) {
  send_op(kOpRegister, name);
}
void shm_tracker_unregister(std::string_view name) {
  send_op(kOpUnregister, name);
}

void shm_tracker_ensure_running() {
  State& s = st();
  Lock g(s);
  (void)connection_locked(s);
}

int shm_tracker_pid() noexcept {
  State& s = st();
  Lock g(s);
  return s.owner == static_cast<pid_t>(::getpid()) ? s.tracker_pid : -1;
}

}  // namespace concur::detail
