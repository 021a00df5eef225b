// concur::subprocess — Popen, run and the helpers (contract in concur/subprocess.hpp).
#include "concur/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <ostream>

#include "concur/detail/py_repr.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/detail/spawn.hpp"

namespace concur::subprocess {
namespace {

using Clock = std::chrono::steady_clock;
using detail::UniqueFd;

// After a timeout kill, how long run() keeps reading pipes that a grandchild may hold open
// (cpython#81605). The killed child's own output arrives within microseconds of its death;
// 250 ms only bounds the wait for pipes nobody will ever close.
constexpr std::chrono::milliseconds kDrainAfterKill{250};

// Read size: a pipe holds 64 KiB by default, so one read takes all it has.
constexpr std::size_t kReadChunk = 64 * 1024;

// Pipes carrying a large input are grown to 1 MiB (/proc/sys/fs/pipe-max-size, the
// unprivileged limit) so the child can run ahead of us, while each write stays at 128 KiB so
// the child is woken after every 128 KiB rather than after a whole 1 MiB copy. 50 MiB
// through `cat`, captured, 8 interleaved rounds on this (busy, 2-core) machine, medians:
// 64 KiB pipes 49.5 ms, 256 KiB 49 ms, 1 MiB + 128 KiB writes 45 ms, 1 MiB unbounded writes
// ~52 ms, and the raw l07 spawn+poll loop 45.5 ms. The differences are near the noise; the
// chosen pair was never worse. On a quieter machine (load 1.4) it ran at 1296 MB/s against
// the l07 loop's 1074 MB/s (docs/benchmarks.md).
constexpr std::size_t kBigInput = 256 * 1024;
constexpr int kBigPipe = 1 << 20;
constexpr std::size_t kWriteChunk = 128 * 1024;

void check_no_nul(std::string_view s, const char* what) {
  if (s.find('\0') != std::string_view::npos)
    throw ValueError(std::string("embedded null byte in ") + what);
}

// --- abandoned children (Popen destroyed while the child ran) -----------------------------

struct Abandoned {
  detail::Mutex mu;
  std::vector<UniqueFd> pidfds CONCUR_GUARDED_BY(mu);
  std::atomic<std::size_t> count{0};
};

Abandoned& abandoned() {
  static Abandoned* a = new Abandoned;  // never destroyed: usable from exit hooks
  return *a;
}

// Fork protocol (rank kSubprocess): the lock is held across fork. A forked child does not
// own its parent's children: it drops the inherited list (closing its copies of the fds).
// mu is held there (the prepare handler took it), which the analysis cannot see.
void abandoned_atfork_child() noexcept CONCUR_NO_THREAD_SAFETY_ANALYSIS {
  Abandoned& x = abandoned();
  for (auto& fd : x.pidfds) fd.reset();
  x.pidfds.clear();
  x.count.store(0, std::memory_order_relaxed);
  x.mu.fork_unlock();
}
[[maybe_unused]] const bool g_fork_registered =
    (detail::register_fork_handler(detail::ForkRank::kSubprocess,
                                   {.prepare = []() noexcept { abandoned().mu.fork_lock(); },
                                    .parent = []() noexcept { abandoned().mu.fork_unlock(); },
                                    .child = abandoned_atfork_child}),
     true);

// Reaps every abandoned child that has ended. Never blocks. One relaxed load when none.
std::atomic<bool>& abandoned_ever();

void reap_abandoned() noexcept {
  if (!abandoned_ever().load(std::memory_order_relaxed)) return;
  Abandoned& a = abandoned();
  if (a.count.load(std::memory_order_relaxed) == 0) return;
  detail::MutexLock g(a.mu);
  auto& v = a.pidfds;
  v.erase(std::remove_if(v.begin(), v.end(),
                         [](UniqueFd& fd) {
                           try {
                             return detail::reap_pidfd(fd.get(), false).has_value();
                           } catch (...) {
                             return true;  // not ours any more
                           }
                         }),
          v.end());
  a.count.store(v.size(), std::memory_order_relaxed);
}

std::atomic<bool>& abandoned_ever() {
  static std::atomic<bool> ever{false};
  return ever;
}

// --- SIGPIPE ----------------------------------------------------------------------------

// Blocks SIGPIPE in this thread for the guard's life; if a write raised one that was not
// pending before, it is consumed so it is never delivered (the EPIPE says it all).
class SigpipeGuard {
 public:
  SigpipeGuard() noexcept {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  void note_epipe() noexcept { epipe_ = true; }
  ~SigpipeGuard() {
    if (epipe_ && !was_pending_) {
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
  bool was_pending_ = false;
  bool epipe_ = false;
};

// --- stream setup -----------------------------------------------------------------------

struct ChildStdio {
  int fd[3] = {detail::kSpawnStdioInherit, detail::kSpawnStdioInherit,
               detail::kSpawnStdioInherit};
  UniqueFd owned[3];  // child-side ends we opened (closed after the spawn)
  UniqueFd devnull;
};

void setup_stream(const Stream& s, int slot, ChildStdio& cs, UniqueFd& parent_end) {
  static const char* const names[] = {"in", "out", "err"};
  if (const auto* r = std::get_if<Redirect>(&s)) {
    switch (*r) {
      case Redirect::Inherit: return;
      case Redirect::Pipe: {
        auto [rd, wr] = detail::make_pipe();
        if (slot == 0) {
          parent_end = std::move(wr);
          cs.owned[0] = std::move(rd);
        } else {
          parent_end = std::move(rd);
          cs.owned[slot] = std::move(wr);
        }
        cs.fd[slot] = cs.owned[slot].get();
        return;
      }
      case Redirect::DevNull:
        if (!cs.devnull) {
          const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
          if (fd < 0) throw_os_error(errno, "/dev/null");
          cs.devnull.reset(fd);
        }
        cs.fd[slot] = cs.devnull.get();
        return;
      case Redirect::Stdout:
        if (slot != 2)
          throw ValueError(std::string("Redirect::Stdout is only valid for err, not ") +
                           names[slot]);
        cs.fd[2] = detail::kSpawnStdioMergeOut;
        return;
    }
    throw ValueError("invalid Redirect value");
  }
  if (const int* fd = std::get_if<int>(&s)) {
    if (*fd < 0) throw ValueError("invalid file descriptor for " + std::string(names[slot]));
    cs.fd[slot] = *fd;
    return;
  }
  const auto& path = std::get<std::filesystem::path>(s);
  check_no_nul(path.native(), "path");
  const int flags = slot == 0 ? (O_RDONLY | O_CLOEXEC) : (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0666);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_os_error(errno, path.string());
  cs.owned[slot].reset(fd);
  cs.fd[slot] = fd;
}

// Python's os.get_exec_path(env): env's PATH when env is given, else ours; default
// "/bin:/usr/bin".
std::string exec_search_path(const std::optional<Environment>& env) {
  if (env) {
    auto it = env->find("PATH");
    return it != env->end() ? it->second : std::string("/bin:/usr/bin");
  }
  const char* p = std::getenv("PATH");
  return p ? std::string(p) : std::string("/bin:/usr/bin");
}

bool write_some(int fd, const std::string& data, std::size_t& offset, SigpipeGuard& guard,
                bool& broken) {
  for (;;) {
    const ssize_t n = ::write(fd, data.data() + offset, std::min(kWriteChunk, data.size() - offset));
    if (n >= 0) {
      offset += static_cast<std::size_t>(n);
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return true;
    if (errno == EPIPE) {
      guard.note_epipe();
      broken = true;
      return false;
    }
    throw OSError(errno, "write to stdin");
  }
}

// Large output buffers ask for transparent huge pages (THP is "madvise" on Debian): a fresh
// 50 MiB std::string costs 12800 page faults with 4 KiB pages, 25 with 2 MiB ones. Measured
// with run({"cat"}) and 50 MiB captured (plus the exact reservation below): the parent's
// page faults went from 13.5k to 0.8k per run and its CPU time from ~70 ms to ~30 ms.
constexpr std::size_t kHugeFrom = 4u << 20;

void advise_huge(std::string& buf) {
  if (buf.capacity() < kHugeFrom) return;
  constexpr std::uintptr_t k2M = std::uintptr_t{2} << 20;
  const auto lo = reinterpret_cast<std::uintptr_t>(buf.data() + buf.size());
  const auto hi = reinterpret_cast<std::uintptr_t>(buf.data() + buf.capacity());
  const std::uintptr_t b = (lo + k2M - 1) & ~(k2M - 1), e = hi & ~(k2M - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
}

// Reads what is available from fd after c.len; false at EOF. Reads into all the zeroed
// room there is (at least `chunk`), growing geometrically and zeroing only new bytes.
bool read_into(int fd, detail::CapturedOutput& c, std::size_t chunk) {
  std::string& s = c.data;
  if (s.size() - c.len < chunk) {
    const std::size_t want = c.len + chunk;
    if (s.capacity() < want) {
      s.reserve(std::max(s.capacity() * 2, want));
      advise_huge(s);
    }
    s.resize(want);
  }
  for (;;) {
    const ssize_t n = ::read(fd, s.data() + c.len, s.size() - c.len);
    if (n >= 0) {
      c.len += static_cast<std::size_t>(n);
      return n > 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return true;
    throw OSError(errno, "read from child pipe");
  }
}

}  // namespace

// --- CompletedProcess -------------------------------------------------------------------

void CompletedProcess::check_returncode() const {
  if (returncode != 0) throw CalledProcessError(returncode, args, out, err);
}


std::string to_string(const CompletedProcess& cp) {
  std::string s = "CompletedProcess(args=" + format_args(cp.args) +
                  ", returncode=" + std::to_string(cp.returncode);
  if (!cp.out.empty()) s += ", stdout=" + detail::py_repr(cp.out);
  if (!cp.err.empty()) s += ", stderr=" + detail::py_repr(cp.err);
  return s + ")";
}

std::ostream& operator<<(std::ostream& os, const CompletedProcess& cp) {
  return os << to_string(cp);
}

// --- Popen ------------------------------------------------------------------------------

Popen::Popen(std::vector<std::string> args, PopenOptions o) : args_(std::move(args)) {
  if (args_.empty()) throw ValueError("args must not be empty");
  for (const auto& a : args_) check_no_nul(a, "args");
  if (o.executable) check_no_nul(*o.executable, "executable");
  if (o.cwd) check_no_nul(o.cwd->native(), "cwd");
  if (o.process_group && *o.process_group < 0) throw ValueError("process_group must be >= 0");
  reap_abandoned();

  // argv
  // Python: with shell, args = ["/bin/sh", "-c", *args] and then executable, if given,
  // replaces args[0] — so the shell that runs is `executable`, and it sees itself as $0.
  std::vector<const char*> argv;
  argv.reserve(args_.size() + 3);
  if (o.shell) {
    argv.push_back(o.executable ? o.executable->c_str() : "/bin/sh");
    argv.push_back("-c");
  }
  for (const auto& a : args_) argv.push_back(a.c_str());
  argv.push_back(nullptr);

  // environment
  std::vector<std::string> env_strings;
  std::vector<const char*> envp;
  if (o.env) {
    env_strings.reserve(o.env->size());
    envp.reserve(o.env->size() + 1);
    for (const auto& [k, v] : *o.env) {
      if (k.empty() || k.find('=') != std::string::npos)
        throw ValueError("illegal environment variable name");
      check_no_nul(k, "env");
      check_no_nul(v, "env");
      env_strings.push_back(k + "=" + v);
      envp.push_back(env_strings.back().c_str());
    }
    envp.push_back(nullptr);
  }

  // candidate executables
  const std::string program = o.executable ? *o.executable : o.shell ? "/bin/sh" : args_[0];
  std::vector<std::string> candidates;
  if (program.find('/') != std::string::npos) {
    candidates.push_back(program);
  } else {
    const std::string path = exec_search_path(o.env);
    std::size_t start = 0;
    for (;;) {
      const std::size_t colon = path.find(':', start);
      const std::string dir = path.substr(start, colon == std::string::npos ? colon : colon - start);
      candidates.push_back(dir.empty() ? program : dir + "/" + program);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  std::vector<const char*> exec_paths;
  exec_paths.reserve(candidates.size());
  for (const auto& c : candidates) exec_paths.push_back(c.c_str());

  // pass_fds: sorted, unique, above 2, and open (else the child could not keep them)
  std::vector<int> pass = std::move(o.pass_fds);
  for (int fd : pass) {
    if (fd < 0) throw ValueError("invalid file descriptor in pass_fds");
    if (::fcntl(fd, F_GETFD) < 0) throw OSError(errno, "pass_fds " + std::to_string(fd));
  }
  std::sort(pass.begin(), pass.end());
  pass.erase(std::unique(pass.begin(), pass.end()), pass.end());
  pass.erase(std::remove_if(pass.begin(), pass.end(), [](int fd) { return fd < 3; }), pass.end());

  ChildStdio cs;
  setup_stream(o.in, 0, cs, stdin_);
  setup_stream(o.out, 1, cs, stdout_);
  setup_stream(o.err, 2, cs, stderr_);

  detail::SpawnRequest req;
  req.argv = argv.data();
  req.envp = o.env ? envp.data() : nullptr;
  req.exec_paths = exec_paths;
  for (int i = 0; i < 3; ++i) req.stdio[i] = cs.fd[i];
  const std::string cwd = o.cwd ? o.cwd->string() : std::string();
  req.cwd = o.cwd ? cwd.c_str() : nullptr;
  req.new_session = o.start_new_session;
  req.process_group = o.process_group ? *o.process_group : -1;
  req.close_fds = o.close_fds;
  req.pass_fds = pass;
  req.exec_context = program.c_str();

  detail::SpawnResult r = detail::spawn(req);
  pid_ = r.pid;
  pidfd_ = std::move(r.pidfd);
  kill_group_ = o.start_new_session || (o.process_group && *o.process_group == 0);
  // cs's child-side ends close here.
}

Popen::Popen(Popen&& o) noexcept
    : args_(std::move(o.args_)),
      pid_(std::exchange(o.pid_, -1)),
      pidfd_(std::move(o.pidfd_)),
      returncode_(std::exchange(o.returncode_, std::nullopt)),
      stdin_(std::move(o.stdin_)),
      stdout_(std::move(o.stdout_)),
      stderr_(std::move(o.stderr_)),
      kill_group_(o.kill_group_),
      communication_started_(o.communication_started_),
      input_(std::move(o.input_)),
      input_offset_(o.input_offset_),
      out_buf_(std::move(o.out_buf_)),
      err_buf_(std::move(o.err_buf_)),
      read_chunk_(o.read_chunk_) {}

Popen& Popen::operator=(Popen&& o) noexcept {
  if (this != &o) {
    abandon();
    args_ = std::move(o.args_);
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    returncode_ = std::exchange(o.returncode_, std::nullopt);
    stdin_ = std::move(o.stdin_);
    stdout_ = std::move(o.stdout_);
    stderr_ = std::move(o.stderr_);
    kill_group_ = o.kill_group_;
    communication_started_ = o.communication_started_;
    input_ = std::move(o.input_);
    input_offset_ = o.input_offset_;
    out_buf_ = std::move(o.out_buf_);
    err_buf_ = std::move(o.err_buf_);
    read_chunk_ = o.read_chunk_;
  }
  return *this;
}

Popen::~Popen() { abandon(); }

void Popen::abandon() noexcept {
  stdin_.reset();
  stdout_.reset();
  stderr_.reset();
  if (!pidfd_ || returncode_) {
    pidfd_.reset();
    return;
  }
  try {
    if (detail::reap_pidfd(pidfd_.get(), false)) {
      pidfd_.reset();
      return;
    }
  } catch (...) {
    pidfd_.reset();
    return;
  }
  Abandoned& a = abandoned();
  try {
    detail::MutexLock g(a.mu);
    a.pidfds.push_back(std::move(pidfd_));
    a.count.store(a.pidfds.size(), std::memory_order_relaxed);
  } catch (...) {
    pidfd_.reset();  // out of memory: the zombie is left to init at our exit
  }
  abandoned_ever().store(true, std::memory_order_relaxed);
}

std::optional<int> Popen::poll() {
  if (returncode_ || !pidfd_) return returncode_;
  returncode_ = detail::reap_pidfd(pidfd_.get(), false);
  if (returncode_) pidfd_.reset();
  return returncode_;
}

int Popen::wait() {
  if (returncode_) return *returncode_;
  if (!pidfd_) throw ValueError("Popen has no child (moved from)");
  returncode_ = detail::reap_pidfd(pidfd_.get(), true);
  pidfd_.reset();
  return *returncode_;
}

std::optional<int> Popen::try_wait_ns(std::chrono::nanoseconds timeout) {
  if (returncode_) return returncode_;
  if (!pidfd_) throw ValueError("Popen has no child (moved from)");
  const auto deadline = concur::detail::Deadline::after(timeout).time_point();
  if (!detail::wait_pidfd(pidfd_.get(), &deadline)) return std::nullopt;
  return wait();
}

int Popen::wait_ns(std::chrono::nanoseconds timeout) {
  if (auto rc = try_wait_ns(timeout)) return *rc;
  throw TimeoutExpired(args_, timeout);
}

void Popen::send_signal(int sig) {
  if (returncode_ || !pidfd_) return;
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0 && errno != ESRCH)
    throw OSError(errno, "pidfd_send_signal");
}
void Popen::terminate() { send_signal(SIGTERM); }
void Popen::kill() { send_signal(SIGKILL); }

void Popen::kill_after_timeout() noexcept {
  if (returncode_ || !pidfd_) return;
  // The child is not reaped yet, so its pid (and group id) cannot have been recycled.
  if (kill_group_) ::kill(-pid_, SIGKILL);
  ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

void Popen::write_stdin(std::string_view data) {
  if (!stdin_) throw ValueError("stdin is not a pipe (or was closed)");
  SigpipeGuard guard;
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(stdin_.get(), p, left);
    if (n >= 0) {
      p += n;
      left -= static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // communicate() left it non-blocking
      pollfd pf{stdin_.get(), POLLOUT, 0};
      ::poll(&pf, 1, -1);
      continue;
    }
    const int e = errno;
    if (e == EPIPE) guard.note_epipe();
    throw OSError(e, "write to stdin");
  }
}

void Popen::close_stdin() noexcept { stdin_.reset(); }
void Popen::close_stdout() noexcept { stdout_.reset(); }
void Popen::close_stderr() noexcept { stderr_.reset(); }

namespace {
std::string read_some(UniqueFd& fd, std::size_t max) {
  if (!fd || max == 0) return {};
  std::string s(max, '\0');
  for (;;) {
    const ssize_t n = ::read(fd.get(), s.data(), max);
    if (n > 0) {
      s.resize(static_cast<std::size_t>(n));
      return s;
    }
    if (n == 0) {
      fd.reset();
      return {};
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      pollfd pf{fd.get(), POLLIN, 0};
      ::poll(&pf, 1, -1);
      continue;
    }
    throw OSError(errno, "read from child pipe");
  }
}
std::string read_all(UniqueFd& fd, detail::CapturedOutput& pending) {
  if (fd) {
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK)) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    while (read_into(fd.get(), pending, kReadChunk)) {
    }
    fd.reset();
  }
  return pending.take();
}
}  // namespace

}  // namespace concur::subprocess

namespace concur::detail {

std::string CapturedOutput::take() {
  data.resize(len);
  len = 0;
  return std::move(data);
}

std::string CapturedOutput::take_front(std::size_t max) {
  const std::size_t n = std::min(max, len);
  std::string s = data.substr(0, n);
  data.erase(0, n);
  len -= n;
  return s;
}

}  // namespace concur::detail

namespace concur::subprocess {

std::string Popen::read_stdout(std::size_t max) {
  // Output left by an interrupted communicate() comes first.
  if (!out_buf_.empty()) return out_buf_.take_front(max);
  return read_some(stdout_, max);
}
std::string Popen::read_stderr(std::size_t max) {
  if (!err_buf_.empty()) return err_buf_.take_front(max);
  return read_some(stderr_, max);
}
std::string Popen::read_stdout_all() { return read_all(stdout_, out_buf_); }
std::string Popen::read_stderr_all() { return read_all(stderr_, err_buf_); }

bool Popen::pump(const TimePoint* deadline) {
  std::optional<SigpipeGuard> guard;
  if (stdin_) guard.emplace();
  bool polled_once = false;
  while (stdin_ || stdout_ || stderr_) {
    pollfd fds[3];
    UniqueFd* owners[3];
    nfds_t n = 0;
    if (stdin_) {
      fds[n] = {stdin_.get(), POLLOUT, 0};
      owners[n++] = &stdin_;
    }
    if (stdout_) {
      fds[n] = {stdout_.get(), POLLIN, 0};
      owners[n++] = &stdout_;
    }
    if (stderr_) {
      fds[n] = {stderr_.get(), POLLIN, 0};
      owners[n++] = &stderr_;
    }
    timespec ts{};
    const timespec* tsp = nullptr;
    if (deadline) {
      const concur::detail::Deadline d(*deadline);
      if (d.expired() && polled_once) return false;
      tsp = d.relative_timespec(ts);  // nullptr for forever
    }
    const int rc = ::ppoll(fds, n, tsp, nullptr);
    polled_once = true;
    if (rc < 0) {
      if (errno == EINTR) continue;
      throw OSError(errno, "poll");
    }
    if (rc == 0) return false;
    for (nfds_t i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      UniqueFd& fd = *owners[i];
      if (&fd == &stdin_) {
        bool broken = false;
        if (input_offset_ < input_.size() && !(fds[i].revents & POLLERR))
          write_some(fd.get(), input_, input_offset_, *guard, broken);
        else
          broken = true;  // POLLERR: the reader is gone
        if (broken || input_offset_ >= input_.size()) {
          fd.reset();
          std::string().swap(input_);
          input_offset_ = 0;
        }
      } else {
        if (!read_into(fd.get(), &fd == &stdout_ ? out_buf_ : err_buf_, read_chunk_)) fd.reset();
      }
    }
  }
  return true;
}

std::pair<std::string, std::string> Popen::communicate_until(std::optional<std::string> input,
                                                             const TimePoint* deadline,
                                                             std::chrono::nanoseconds timeout) {
  if (communication_started_ && input && !input->empty())
    throw ValueError("Cannot send input after starting communication");
  if (!communication_started_) {
    if (input && !input->empty() && !stdin_)
      throw ValueError("communicate: input given but stdin is not a pipe");
    communication_started_ = true;
    if (stdin_) {
      if (input && !input->empty()) {
        input_ = std::move(*input);
        input_offset_ = 0;
        const int flags = ::fcntl(stdin_.get(), F_GETFL);
        ::fcntl(stdin_.get(), F_SETFL, flags | O_NONBLOCK);
        if (input_.size() >= kBigInput) {
          ::fcntl(stdin_.get(), F_SETPIPE_SZ, kBigPipe);
          if (stdout_ && ::fcntl(stdout_.get(), F_SETPIPE_SZ, kBigPipe) >= kBigPipe) {
            read_chunk_ = static_cast<std::size_t>(kBigPipe);
            // Filters (cat, sort, tr...) give back about what they get. Reserving that is
            // free when wrong: the untouched pages of a large allocation are never faulted
            // in; when right it saves every copy of the geometric growth (~1x the output).
            out_buf_.data.reserve(input_.size() + read_chunk_);  // + room to read the EOF
            advise_huge(out_buf_.data);
          }
        }
      } else {
        stdin_.reset();
      }
    }
  }
  if (!pump(deadline)) throw TimeoutExpired(args_, timeout, out_buf_.copy(), err_buf_.copy());
  if (!returncode_ && pidfd_) {
    // Without a deadline a blocking waitid is the whole wait (one syscall, no poll).
    if (deadline && !detail::wait_pidfd(pidfd_.get(), deadline))
      throw TimeoutExpired(args_, timeout, out_buf_.copy(), err_buf_.copy());
    wait();
  }
  return {out_buf_.take(), err_buf_.take()};
}

std::pair<std::string, std::string> Popen::communicate(std::optional<std::string> input,
                                                       std::optional<std::chrono::nanoseconds> timeout) {
  if (!timeout) return communicate_until(std::move(input), nullptr, {});
  const TimePoint deadline = concur::detail::Deadline::after(*timeout).time_point();
  return communicate_until(std::move(input), &deadline, *timeout);
}

std::string to_string(const Popen& p) {
  return "<Popen: returncode: " + (p.returncode() ? std::to_string(*p.returncode()) : "None") +
         " args: " + format_args(p.args()) + ">";
}

std::ostream& operator<<(std::ostream& os, const Popen& p) { return os << to_string(p); }

// --- run and friends --------------------------------------------------------------------

namespace {
bool is_inherit(const Stream& s) {
  const auto* r = std::get_if<Redirect>(&s);
  return r && *r == Redirect::Inherit;
}
}  // namespace

CompletedProcess run(std::vector<std::string> args, RunOptions o) {
  std::optional<Clock::time_point> deadline;
  // the one deadline for the whole run
  if (o.timeout) deadline = concur::detail::Deadline::after(*o.timeout).time_point();
  if (o.input) {
    if (!is_inherit(o.in)) throw ValueError("stdin and input arguments may not both be used.");
    o.in = Redirect::Pipe;
  }
  if (o.capture_output) {
    if (!is_inherit(o.out) || !is_inherit(o.err))
      throw ValueError("stdout and stderr arguments may not be used with capture_output.");
    o.out = Redirect::Pipe;
    o.err = Redirect::Pipe;
  }
  Popen p(args, PopenOptions{std::move(o.in), std::move(o.out), std::move(o.err),
                             std::move(o.cwd), std::move(o.env), o.shell, o.start_new_session,
                             o.process_group, o.close_fds, std::move(o.pass_fds),
                             std::move(o.executable)});
  std::pair<std::string, std::string> r;
  try {
    r = p.communicate_until(std::move(o.input), deadline ? &*deadline : nullptr,
                            o.timeout.value_or(std::chrono::nanoseconds{0}));
  } catch (const TimeoutExpired&) {
    p.kill_after_timeout();
    p.wait();
    // Collect what the dead child left in the pipes, but only briefly: a grandchild may
    // hold them open for ever (cpython#81605).
    p.stdin_.reset();
    const Clock::time_point drain = concur::detail::Deadline::after(kDrainAfterKill).time_point();
    try {
      (void)p.pump(&drain);
    } catch (const Error&) {
    }
    throw TimeoutExpired(std::move(args), *o.timeout, p.out_buf_.take(), p.err_buf_.take());
  } catch (...) {
    p.kill_after_timeout();
    try {
      p.wait();
    } catch (...) {
    }
    throw;
  }
  CompletedProcess cp{std::move(args), *p.returncode(), std::move(r.first), std::move(r.second)};
  if (o.check) cp.check_returncode();
  return cp;
}

std::string check_output(std::vector<std::string> args, RunOptions o) {
  if (!is_inherit(o.out)) throw ValueError("stdout argument not allowed, it will be overridden.");
  o.out = Redirect::Pipe;
  o.check = true;
  return run(std::move(args), std::move(o)).out;
}

int call(std::vector<std::string> args, RunOptions o) {
  o.check = false;
  return run(std::move(args), std::move(o)).returncode;
}

void check_call(std::vector<std::string> args, RunOptions o) {
  o.check = true;
  (void)run(std::move(args), std::move(o));
}

std::pair<int, std::string> getstatusoutput(const std::string& cmd) {
  CompletedProcess cp = run({cmd}, {.out = Redirect::Pipe, .err = Redirect::Stdout, .shell = true});
  if (!cp.out.empty() && cp.out.back() == '\n') cp.out.pop_back();
  return {cp.returncode, std::move(cp.out)};
}

std::string getoutput(const std::string& cmd) { return getstatusoutput(cmd).second; }

}  // namespace concur::subprocess
