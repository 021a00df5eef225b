// The process-pool engine: zygote (fork server), worker loop, and the parent's manager
// thread. See include/concur/detail/worker_pool.hpp for the protocol.
#include "concur/detail/worker_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "concur/detail/fd.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/logging.hpp"
#include "concur/multiprocessing/process.hpp"

namespace concur::detail::wp {

void append_exception(std::exception_ptr e, std::vector<std::byte>& out) {
  ExceptionInfo info = describe(e);
  try {
    codec::encode(info, out);
  } catch (...) {
    codec::encode(ExceptionInfo{"std::bad_alloc", "std::bad_alloc", {}}, out);
  }
}

std::exception_ptr decode_exception(std::span<const std::byte> payload) noexcept {
  try {
    rethrow(codec::decode<ExceptionInfo>(payload));
  } catch (...) {
    return std::current_exception();
  }
}

namespace {

using futures::BrokenProcessPool;

constexpr std::size_t kResultHeader = 5;  // len:u32 status:u8
constexpr std::size_t kTaskHeader = 12;   // len:u32 tramp:u64
constexpr std::size_t kWindow = 512;      // tasks sent to one worker and not yet answered
constexpr std::size_t kFlushBytes = 1 << 16;
constexpr std::size_t kReadChunk = 1 << 16;
constexpr std::uint8_t kStatusInitFailed = 2;
constexpr std::uint8_t kStatusSkipped = 3;  // shutdown(cancel_futures) reached it first
// A worker's unsent results live in its slot's shared batch while they fit (every batch
// below kFlushBytes does): see SlotShm.
constexpr std::size_t kSpillBytes = kFlushBytes;

// One worker slot's shared state, in one shared anonymous mapping made before the fork
// server (so every worker of the slot, and the parent, see the same pages).
struct SlotShm {
  // Low 32 bits: tasks taken (started or skipped); high 32 bits: how many of the next
  // ones to skip. See "Cancelling" in worker_pool.hpp.
  std::atomic<std::uint64_t> progress;
  // The worker's result frames not yet written to its socket, mirrored here so that a
  // worker that dies does not take the results of tasks it finished with it. High 32 bits:
  // how many results it had written before this batch (mod 2^32); low 32 bits: the batch's
  // bytes in `batch` (each frame is copied before the word that counts it is released).
  std::atomic<std::uint64_t> spill;
  alignas(64) std::byte batch[kSpillBytes];
};

// Zygote <-> parent messages (SOCK_SEQPACKET; descriptors ride along with SCM_RIGHTS).
enum class Op : std::uint32_t { spawn = 1, spawned = 2, exited = 3 };
struct Msg {
  Op op;
  std::uint32_t slot;
  std::int32_t pid;     // spawned: the pid, or -errno; exited: the pid
  std::int32_t status;  // exited: the wait status
};

bool send_msg(int sock, const Msg& m, int fd) noexcept {
  iovec iov{const_cast<Msg*>(&m), sizeof m};
  PassedFdBuffer ctl;
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  attach_fd(h, ctl, fd);
  for (;;) {
    const ssize_t n = ::sendmsg(sock, &h, MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno != EINTR) return false;
  }
}

// 1: a message (fd = the descriptor it carried, or -1); 0: EOF; -1: error (EAGAIN too).
int recv_msg(int sock, Msg& m, int& fd, int flags) noexcept {
  fd = -1;
  iovec iov{&m, sizeof m};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = ctl;
  h.msg_controllen = sizeof ctl;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC | flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  if (fd >= 0 && fd < 3) {
    // With stdio closed a received descriptor would land on 0-2, where a task's printf or
    // a child's redirection would write into the pool's stream: keep it above stdio.
    const int up = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::close(fd);
    fd = up;
  }
  if (n == 0) {
    if (fd >= 0) close_fd(fd);
    return 0;
  }
  if (static_cast<std::size_t>(n) != sizeof m) {
    if (fd >= 0) close_fd(fd);
    errno = EPROTO;
    return -1;
  }
  return 1;
}

void close_from(int lowest, int keep) noexcept {
  // Every descriptor >= lowest except `keep`.
  auto range = [](unsigned lo, unsigned hi) {
    if (lo > hi) return;
    if (::syscall(SYS_close_range, lo, hi, 0) == 0) return;
    for (unsigned fd = lo; fd <= hi && fd < 65536; ++fd) ::close(static_cast<int>(fd));
  };
  if (keep >= lowest) {
    range(static_cast<unsigned>(lowest), static_cast<unsigned>(keep) - 1);
    range(static_cast<unsigned>(keep) + 1, ~0U);
  } else {
    range(static_cast<unsigned>(lowest), ~0U);
  }
}

void flush_stdio() noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
  } catch (...) {
  }
  (void)std::fflush(stdout);
  (void)std::fflush(stderr);
}

bool send_all(int fd, const std::byte* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

// ---- the worker ----
struct WorkerArgs {
  int sock;
  SlotShm* shm;  // this worker's slot
  const std::function<void()>* initializer;
  std::size_t max_tasks;
};

[[noreturn]] void worker_main(const WorkerArgs& a) noexcept {
  std::vector<std::byte> out;
  std::vector<std::byte> in;
  std::atomic<std::uint64_t>* const progress = &a.shm->progress;
  std::uint32_t written = 0;    // result frames written to the socket (mod 2^32)
  std::size_t since_flush = 0;  // result frames in `out`
  // Writes the batch; the shared mirror then holds nothing unsent.
  auto send_out = [&]() -> bool {
    if (!send_all(a.sock, out.data(), out.size())) return false;
    written += static_cast<std::uint32_t>(since_flush);
    since_flush = 0;
    out.clear();
    a.shm->spill.store(static_cast<std::uint64_t>(written) << 32, std::memory_order_release);
    return true;
  };
  auto finish = [&](int code) {
    if (!out.empty()) (void)send_all(a.sock, out.data(), out.size());
    flush_stdio();
    ::_exit(code);
  };
  auto begin_result = [&]() {
    const std::size_t at = out.size();
    out.resize(at + kResultHeader);
    return at;
  };
  auto end_result = [&](std::size_t at, std::uint8_t status) {
    const auto len = static_cast<std::uint32_t>(out.size() - at - 4);
    std::memcpy(out.data() + at, &len, 4);
    out[at + 4] = static_cast<std::byte>(status);
  };
  // The parent zeroed this worker's progress word before asking for it (spawn()); it may
  // already have set a skip count in it, so the worker never stores the word, it only
  // takes tasks with a compare-and-swap.
  if (a.initializer != nullptr && *a.initializer) {
    try {
      (*a.initializer)();
    } catch (...) {
      const std::size_t at = begin_result();
      append_exception(std::current_exception(), out);
      end_result(at, kStatusInitFailed);
      finish(1);
    }
  }
  std::uint64_t started = 0;
  std::size_t pos = 0;
  for (;;) {
    // Run every complete task received so far.
    while (in.size() - pos >= 4) {
      std::uint32_t len = 0;
      std::memcpy(&len, in.data() + pos, 4);
      if (in.size() - pos - 4 < len) break;
      if (len < 8) finish(1);  // a frame the parent never writes
      std::uint64_t tramp_bits = 0;
      std::memcpy(&tramp_bits, in.data() + pos + 4, 8);
      auto tramp = reinterpret_cast<Trampoline>(static_cast<std::uintptr_t>(tramp_bits));
      // Take the task: taken + 1, and one skip less if the parent asked for skips.
      std::uint64_t word = progress->load(std::memory_order_acquire);
      bool skip;
      do {
        skip = (word >> 32) != 0;
        const std::uint64_t high = skip ? (word >> 32) - 1 : 0;
        const auto low = static_cast<std::uint32_t>(static_cast<std::uint32_t>(word) + 1);
        if (progress->compare_exchange_weak(word, (high << 32) | low, std::memory_order_acq_rel,
                                            std::memory_order_acquire))
          break;
      } while (true);
      ++started;
      const std::size_t at = begin_result();
      std::uint8_t status = kStatusSkipped;
      if (!skip) {
        try {
          status = tramp(in.data() + pos + kTaskHeader, len - 8, out);
        } catch (...) {
          out.resize(at + kResultHeader);
          append_exception(std::current_exception(), out);
          status = 1;
        }
      }
      end_result(at, status);
      pos += 4 + len;
      ++since_flush;
      // Mirror the frame while the batch fits; a batch that does not is written at once
      // (kSpillBytes >= kFlushBytes), so every unsent result is in the mirror.
      if (out.size() <= kSpillBytes) {
        std::memcpy(a.shm->batch + at, out.data() + at, out.size() - at);
        a.shm->spill.store((static_cast<std::uint64_t>(written) << 32) | out.size(),
                           std::memory_order_release);
      }
      if (a.max_tasks != 0 && started == a.max_tasks) finish(0);
      if (out.size() >= kFlushBytes || since_flush >= 1024) {
        if (!send_out()) finish(1);
      }
    }
    if (pos == in.size()) {
      in.clear();
      pos = 0;
    } else if (pos > in.size() / 2) {
      in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(pos));
      pos = 0;
    }
    if (!out.empty()) {
      pollfd p{a.sock, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) {
        if (!send_out()) finish(1);
        flush_stdio();
      }
    }
    const std::size_t at = in.size();
    in.resize(at + kReadChunk);
    ssize_t n;
    do {
      n = ::read(a.sock, in.data() + at, kReadChunk);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      in.resize(at);
      finish(n == 0 ? 0 : 1);
    }
    in.resize(at + static_cast<std::size_t>(n));
  }
}

// ---- the zygote ----
struct ZygoteArgs {
  int sock;
  SlotShm* slots;
  const std::function<void()>* initializer;
  std::size_t max_tasks;
};

[[noreturn]] void zygote_main(const ZygoteArgs& z) noexcept {
  ::prctl(PR_SET_NAME, "concur-zygote", 0, 0, 0);
  close_from(3, z.sock);
  struct Child {
    pid_t pid;
    int pidfd;
    std::uint32_t slot;
  };
  std::vector<Child> kids;
  std::vector<pollfd> fds;
  const pid_t self = ::getpid();
  for (;;) {
    fds.clear();
    fds.push_back({z.sock, POLLIN, 0});
    for (const Child& c : kids) fds.push_back({c.pidfd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = kids.size(); i-- > 0;) {
      if ((fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      int status = 0;
      pid_t r;
      do {
        r = ::waitpid(kids[i].pid, &status, 0);
      } while (r < 0 && errno == EINTR);
      (void)send_msg(z.sock, Msg{Op::exited, kids[i].slot, kids[i].pid, status}, -1);
      ::close(kids[i].pidfd);
      kids.erase(kids.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    Msg m{};
    int fd = -1;
    const int got = recv_msg(z.sock, m, fd, 0);
    if (got <= 0) break;  // the parent is gone or has closed the pool
    if (m.op != Op::spawn || fd < 0) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    flush_stdio();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      if (::getppid() != self) ::_exit(1);
      ::close(z.sock);
      for (const Child& c : kids) ::close(c.pidfd);
      ::prctl(PR_SET_NAME, "concur-worker", 0, 0, 0);
      worker_main(WorkerArgs{fd, z.slots + m.slot, z.initializer, z.max_tasks});
    }
    ::close(fd);
    if (pid < 0) {
      (void)send_msg(z.sock, Msg{Op::spawned, m.slot, -errno, 0}, -1);
      continue;
    }
    const int pidfd = pidfd_open(pid);
    (void)send_msg(z.sock, Msg{Op::spawned, m.slot, pid, 0}, pidfd);
    if (pidfd < 0) {  // no pidfds: wait for it at once (only when the kernel lacks them)
      ::kill(pid, SIGKILL);
      int st = 0;
      (void)::waitpid(pid, &st, 0);
      (void)send_msg(z.sock, Msg{Op::exited, m.slot, pid, st}, -1);
      continue;
    }
    kids.push_back({pid, pidfd, m.slot});
  }
  for (const Child& c : kids) ::kill(c.pid, SIGKILL);
  for (const Child& c : kids) {
    int st = 0;
    while (::waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  ::_exit(0);
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* ab = ::sigabbrev_np(sig);
    return "killed by " +
           (ab != nullptr ? "SIG" + std::string(ab) : "signal " + std::to_string(sig));
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

int pidfd_kill(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

template <class... A>
void pool_log(std::string_view fmt, const A&... args) {
  logging::Logger& lg = multiprocessing::get_logger();
  if (lg.is_enabled_for(logging::Level::INFO)) lg.info(fmt, args...);
}

}  // namespace

// ---- the parent's state ----
class EngineCore : public std::enable_shared_from_this<EngineCore> {
 public:
  EngineCore(int workers, EngineOptions o) : n_(workers), opts_(std::move(o)) {}
  ~EngineCore();

  void start();
  void run() noexcept;  // the manager thread

  struct Worker {
    std::uint32_t slot = 0;
    pid_t pid = -1;
    UniqueFd sock;
    UniqueFd pidfd;
    bool active = false;     // a spawn was requested and its exit not yet seen
    bool io_dead = false;    // the socket failed or hung up
    bool doomed = false;     // to be killed (a hostile frame), also if its pid comes later
    bool wr_closed = false;  // SHUT_WR sent (no more tasks)
    std::deque<std::unique_ptr<Job>> inflight;
    std::uint64_t dispatched = 0;
    std::uint64_t answered = 0;
    std::vector<std::byte> out;
    std::size_t out_off = 0;
    std::vector<std::byte> in;
  };

  enum class Mode { running, stopping, broken, terminated };

  Mutex mu_;
  std::deque<std::unique_ptr<Job>> queue_ CONCUR_GUARDED_BY(mu_);
  Mode mode_ CONCUR_GUARDED_BY(mu_) = Mode::running;
  std::string broken_reason_ CONCUR_GUARDED_BY(mu_);
  bool done_ CONCUR_GUARDED_BY(mu_) = false;  // the manager thread has ended
  // shutdown(cancel_futures): skip the tasks sent ahead
  bool withdraw_asked_ CONCUR_GUARDED_BY(mu_) = false;
  // Guards workers_ and everything the manager thread does with them (dispatch, results,
  // exits). The manager holds it except while it sleeps in poll(); a submit from another
  // thread that gets it writes the task to an idle worker itself, saving the hand-off to
  // the manager (eventfd, wake, dispatch). Order: io_mu_ before mu_.
  Mutex io_mu_;

  const int n_;
  EngineOptions opts_;
  std::vector<Worker> workers_ CONCUR_GUARDED_BY(io_mu_);
  SlotShm* slots_ = nullptr;  // one per worker slot, shared with the workers
  std::size_t slots_bytes_ = 0;
  UniqueFd wake_;
  UniqueFd zsock_;
  pid_t zpid_ = -1;
  std::thread thread_;
  std::thread::id thread_id_;
  Mutex join_mu_;
  std::atomic<bool> orphan_{false};
  std::atomic<std::size_t> replaced_{0};
  // Consecutive deaths before a first task.
  std::size_t stillborn_ CONCUR_GUARDED_BY(io_mu_) = 0;
  mutable Mutex pids_mu_;
  std::vector<int> pids_ CONCUR_GUARDED_BY(pids_mu_);

  void wake() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }

 private:
  void spawn(Worker& w) CONCUR_REQUIRES(io_mu_);
  void on_zygote() noexcept CONCUR_REQUIRES(io_mu_);
  void on_readable(Worker& w) noexcept CONCUR_REQUIRES(io_mu_);
  void parse_results(Worker& w) noexcept CONCUR_REQUIRES(io_mu_);
  void recover_unsent(Worker& w) noexcept CONCUR_REQUIRES(io_mu_);
  void flush(Worker& w) noexcept CONCUR_REQUIRES(io_mu_);
  void withdraw_sent_ahead() noexcept CONCUR_REQUIRES(io_mu_);

 public:
  void dispatch() noexcept CONCUR_REQUIRES(io_mu_);
  // With io_mu_ held: true if some worker has bytes the manager must still write (POLLOUT).
  bool idle_worker() const noexcept CONCUR_REQUIRES(io_mu_) {
    for (const Worker& w : workers_)
      if (w.active && !w.io_dead && !w.wr_closed && w.sock && w.inflight.empty()) return true;
    return false;
  }
  bool output_pending() const noexcept CONCUR_REQUIRES(io_mu_) {
    for (const Worker& w : workers_)
      if (w.out_off < w.out.size()) return true;
    return false;
  }

 private:
  void on_exit(Worker& w, pid_t pid, int status) noexcept CONCUR_REQUIRES(io_mu_);
  void break_pool(const std::string& reason) noexcept CONCUR_REQUIRES(io_mu_);
  void kill_all() noexcept CONCUR_REQUIRES(io_mu_);
  void fail_all_inflight(Worker& w, const std::exception_ptr& e) noexcept;
  void update_pids() noexcept CONCUR_REQUIRES(io_mu_);
  Mode mode() CONCUR_EXCLUDES(mu_) {
    MutexLock g(mu_);
    return mode_;
  }
};

namespace {

// Every live engine, so the child of a user's fork() can drop them (fds closed, destructor
// does not wait for a manager thread the child does not have).
std::mutex g_reg_mu;
std::set<EngineCore*>& registry() {
  static std::set<EngineCore*> r;
  return r;
}
std::set<int>& engine_fds() {
  static std::set<int> r;
  return r;
}
void track_fd(int fd) {
  std::lock_guard g(g_reg_mu);
  engine_fds().insert(fd);
}
void untrack_close(UniqueFd& fd) noexcept {
  if (!fd) return;
  {
    std::lock_guard g(g_reg_mu);
    engine_fds().erase(fd.get());
  }
  fd.reset();
}

const bool g_fork_registered =
    (register_fork_handler(ForkRank::kPools, {[]() noexcept { g_reg_mu.lock(); },
                                              []() noexcept { g_reg_mu.unlock(); },
                                              []() noexcept {
                                                for (int fd : engine_fds()) ::close(fd);
                                                for (EngineCore* c : registry())
                                                  c->orphan_.store(true);
                                                // The child owns none of them: forget them,
                                                // so that a later fork of this child (a
                                                // zygote forking a worker) does not close
                                                // the numbers again once they are reused.
                                                engine_fds().clear();
                                                registry().clear();
                                                g_reg_mu.unlock();
                                              }}),
     true);

}  // namespace

EngineCore::~EngineCore() {
  if (orphan_.load()) {  // a fork child: the fork handler closed the descriptors
    for (Worker& w : workers_) {
      (void)w.sock.release();
      (void)w.pidfd.release();
    }
    (void)zsock_.release();
    (void)wake_.release();
    return;
  }
  for (Worker& w : workers_) {
    untrack_close(w.sock);
    untrack_close(w.pidfd);
  }
  untrack_close(zsock_);
  untrack_close(wake_);
  if (slots_ != nullptr) ::munmap(slots_, slots_bytes_);
  std::lock_guard g(g_reg_mu);
  registry().erase(this);
}

void EngineCore::start() {
  (void)g_fork_registered;
  slots_bytes_ = sizeof(SlotShm) * static_cast<std::size_t>(n_);
  void* m = ::mmap(nullptr, slots_bytes_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) throw OSError(errno, "mmap");
  slots_ = static_cast<SlotShm*>(m);
  for (int i = 0; i < n_; ++i) {
    ::new (&slots_[i].progress) std::atomic<std::uint64_t>(0);
    ::new (&slots_[i].spill) std::atomic<std::uint64_t>(0);
  }
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) throw OSError(errno, "eventfd");
  wake_ = above_stdio(UniqueFd(efd));
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw OSError(errno, "socketpair");
  UniqueFd mine = above_stdio(UniqueFd(sv[0]));
  UniqueFd theirs = above_stdio(UniqueFd(sv[1]));
  flush_stdio();
  const pid_t pid = ::fork();
  if (pid < 0) throw OSError(errno, "fork");
  if (pid == 0) {
    mine.release();  // closed by close_from in the zygote
    zygote_main(ZygoteArgs{theirs.get(), slots_, &opts_.initializer, opts_.max_tasks_per_child});
  }
  zpid_ = pid;
  theirs.reset();
  zsock_ = std::move(mine);
  track_fd(zsock_.get());
  track_fd(wake_.get());
  {
    std::lock_guard g(g_reg_mu);
    registry().insert(this);
  }
  {
    MutexLock io(io_mu_);  // no manager thread yet: for the analysis' sake
    workers_.resize(static_cast<std::size_t>(n_));
    for (int i = 0; i < n_; ++i) {
      workers_[static_cast<std::size_t>(i)].slot = static_cast<std::uint32_t>(i);
      spawn(workers_[static_cast<std::size_t>(i)]);
    }
  }
  auto self = shared_from_this();
  thread_ = std::thread([self] { self->run(); });
  thread_id_ = thread_.get_id();
}

void EngineCore::spawn(Worker& w) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw OSError(errno, "socketpair");
  UniqueFd mine = above_stdio(UniqueFd(sv[0]));
  UniqueFd theirs = above_stdio(UniqueFd(sv[1]));
  const int fl = ::fcntl(mine.get(), F_GETFL);
  (void)::fcntl(mine.get(), F_SETFL, fl | O_NONBLOCK);
  slots_[w.slot].progress.store(0, std::memory_order_relaxed);
  slots_[w.slot].spill.store(0, std::memory_order_relaxed);
  if (!send_msg(zsock_.get(), Msg{Op::spawn, w.slot, 0, 0}, theirs.get()))
    throw OSError(errno, "process pool: the fork server is gone");
  track_fd(mine.get());
  w.sock = std::move(mine);
  w.active = true;
  w.io_dead = false;
  w.doomed = false;
  w.wr_closed = false;
  w.pid = -1;
  w.dispatched = 0;
  w.answered = 0;
  w.out.clear();
  w.out_off = 0;
  w.in.clear();
}

void EngineCore::update_pids() noexcept {
  MutexLock g(pids_mu_);
  pids_.clear();
  for (const Worker& w : workers_)
    if (w.active && w.pid > 0) pids_.push_back(w.pid);
}

void EngineCore::fail_all_inflight(Worker& w, const std::exception_ptr& e) noexcept {
  while (!w.inflight.empty()) {
    std::unique_ptr<Job> j = std::move(w.inflight.front());
    w.inflight.pop_front();
    j->fail(e);
  }
}

void EngineCore::kill_all() noexcept {
  for (Worker& w : workers_)
    if (w.active && w.pidfd) (void)pidfd_kill(w.pidfd.get(), SIGKILL);
}

void EngineCore::break_pool(const std::string& reason) noexcept {
  std::deque<std::unique_ptr<Job>> q;
  {
    MutexLock g(mu_);
    if (mode_ == Mode::broken) return;
    if (mode_ != Mode::terminated) {
      mode_ = Mode::broken;
      broken_reason_ = reason;
    }
    q.swap(queue_);
  }
  const auto e = std::make_exception_ptr(BrokenProcessPool(reason));
  for (auto& j : q) j->fail(e);
  for (Worker& w : workers_) fail_all_inflight(w, e);
  kill_all();
}

void EngineCore::on_zygote() noexcept {
  for (;;) {
    Msg m{};
    int fd = -1;
    const int got = recv_msg(zsock_.get(), m, fd, MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got <= 0) {
      // The fork server died: its workers die with it (PDEATHSIG).
      untrack_close(zsock_);
      break_pool("A process pool's fork server died, the process pool is not usable anymore");
      for (Worker& w : workers_) {
        untrack_close(w.sock);
        untrack_close(w.pidfd);
        w.active = false;
      }
      update_pids();
      return;
    }
    if (m.slot >= workers_.size()) {
      if (fd >= 0) close_fd(fd);
      continue;
    }
    Worker& w = workers_[m.slot];
    if (m.op == Op::spawned) {
      if (m.pid < 0) {
        w.active = false;
        untrack_close(w.sock);
        break_pool("A process pool could not start a worker: " +
                   std::string(std::strerror(-m.pid)));
        continue;
      }
      w.pid = m.pid;
      if (fd >= 0) {
        track_fd(fd);
        w.pidfd = UniqueFd(fd);
      }
      if (w.doomed) {
        if (w.pidfd)
          (void)pidfd_kill(w.pidfd.get(), SIGKILL);
        else
          (void)::kill(w.pid, SIGKILL);  // no pidfd (pidfd_open failed in the fork server)
      }
      update_pids();
      pool_log("{} worker {} started (pid {})", opts_.kind, w.slot, w.pid);
    } else if (m.op == Op::exited) {
      if (fd >= 0) close_fd(fd);
      on_exit(w, m.pid, m.status);
    }
  }
}

void EngineCore::parse_results(Worker& w) noexcept {
  std::size_t pos = 0;
  while (w.in.size() - pos >= 4) {
    std::uint32_t len = 0;
    std::memcpy(&len, w.in.data() + pos, 4);
    const auto status =
        w.in.size() - pos > 4 ? static_cast<std::uint8_t>(w.in[pos + 4]) : std::uint8_t{0};
    if (len < 1 || len > codec::kDefaultMaxMessage + 16 || status > kStatusSkipped) {
      // Not a frame a worker writes (something else wrote into its socket): stop reading
      // it and kill the worker; its exit fails its tasks (never a hang on a bogus length).
      // Its results can arrive before the fork server's "spawned" message (with the pid and
      // pidfd) is read: then the kill happens when that message comes (doomed).
      w.io_dead = true;
      w.doomed = true;
      if (w.pidfd) (void)pidfd_kill(w.pidfd.get(), SIGKILL);
      break;
    }
    if (w.in.size() - pos - 4 < len) break;
    std::span<const std::byte> payload(w.in.data() + pos + kResultHeader, len - 1);
    pos += 4 + len;
    if (status == kStatusInitFailed) {
      std::string what = "?";
      try {
        const ExceptionInfo info = codec::decode<ExceptionInfo>(payload);
        what = unqualified(info.type) + ": " + info.what;
      } catch (...) {
      }
      break_pool("A process initializer failed, the process pool is not usable anymore (" + what +
                 ")");
      continue;
    }
    if (w.inflight.empty()) continue;  // failed meanwhile (a broken pool)
    std::unique_ptr<Job> j = std::move(w.inflight.front());
    w.inflight.pop_front();
    ++w.answered;
    if (j->withdrawn) continue;  // cancelled when the skip was asked (its answer is status 3)
    if (status == kStatusSkipped) {
      // Only a task the parent asked to skip is skipped: anything else is not our worker.
      j->fail(std::make_exception_ptr(
          BrokenProcessPool("process pool: a worker skipped a task it was not asked to skip")));
      continue;
    }
    j->finish(status, payload);
  }
  if (pos == w.in.size())
    w.in.clear();
  else if (pos > 0)
    w.in.erase(w.in.begin(), w.in.begin() + static_cast<std::ptrdiff_t>(pos));
}

// A dead worker's results that were still in its batch: the frames of its slot's mirror
// past the ones the parent has already read from the socket (a frame cut short in the
// socket by the death is read again from the mirror, whole).
void EngineCore::recover_unsent(Worker& w) noexcept {
  const SlotShm& s = slots_[w.slot];
  const std::uint64_t word = s.spill.load(std::memory_order_acquire);
  const auto bytes = static_cast<std::uint32_t>(word);
  if (w.doomed || w.inflight.empty() || bytes == 0 || bytes > kSpillBytes) return;
  // Frames of the batch the socket already delivered (the worker died after writing it,
  // before it cleared the mirror).
  std::uint32_t have =
      static_cast<std::uint32_t>(w.answered) - static_cast<std::uint32_t>(word >> 32);
  std::size_t pos = 0;
  while (have > 0 && bytes - pos >= 4) {
    std::uint32_t len = 0;
    std::memcpy(&len, s.batch + pos, 4);
    if (len < 1 || len > bytes - pos - 4) return;
    pos += 4 + len;
    --have;
  }
  if (have > 0 || pos == bytes) return;  // all of it was read already
  w.in.assign(s.batch + pos, s.batch + bytes);
  parse_results(w);
  w.in.clear();
}

void EngineCore::on_readable(Worker& w) noexcept {
  for (;;) {
    const std::size_t at = w.in.size();
    w.in.resize(at + kReadChunk);
    const ssize_t n = ::recv(w.sock.get(), w.in.data() + at, kReadChunk, MSG_DONTWAIT);
    if (n <= 0) {
      w.in.resize(at);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) w.io_dead = true;
      break;
    }
    w.in.resize(at + static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < kReadChunk) break;
  }
  parse_results(w);
}

void EngineCore::flush(Worker& w) noexcept {
  while (w.out_off < w.out.size() && !w.io_dead) {
    const ssize_t n = ::send(w.sock.get(), w.out.data() + w.out_off, w.out.size() - w.out_off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) w.io_dead = true;
      return;
    }
    w.out_off += static_cast<std::size_t>(n);
  }
  if (w.out_off == w.out.size()) {
    w.out.clear();
    w.out_off = 0;
  }
}

void EngineCore::dispatch() noexcept {
  // Least-loaded: each task goes to the open worker with the fewest outstanding tasks, so a
  // worker never gets a second task while another has none (8 equal CPU-bound tasks split
  // 4:4 on 2 workers; with "an equal share of the queue per worker" they split 5:3 when the
  // first task left alone, 1.59x instead of 2x). Beyond one task each, tasks are sent ahead
  // (up to kWindow per worker) only once every open worker has work: that keeps tiny tasks
  // streaming (a worker never waits for the parent between two of them) without giving a
  // busy worker a task an idle one could start now.
  std::vector<Worker*> open;
  std::vector<std::size_t> room;
  for (Worker& w : workers_) {
    if (!w.active || w.io_dead || w.wr_closed || !w.sock) continue;
    std::size_t r = w.inflight.size() < kWindow ? kWindow - w.inflight.size() : 0;
    if (opts_.max_tasks_per_child != 0)
      r = std::min(r, w.dispatched < opts_.max_tasks_per_child
                          ? opts_.max_tasks_per_child - w.dispatched
                          : std::size_t{0});
    if (r == 0) continue;
    open.push_back(&w);
    room.push_back(r);
  }
  if (open.empty()) return;
  std::vector<std::unique_ptr<Job>> take;
  std::vector<std::size_t> dest;  // index into open, per taken job
  {
    std::vector<std::size_t> load(open.size());
    for (std::size_t i = 0; i < open.size(); ++i) load[i] = open[i]->inflight.size();
    MutexLock g(mu_);
    while (!queue_.empty()) {
      std::size_t best = open.size();
      for (std::size_t i = 0; i < open.size(); ++i)
        if (room[i] > 0 && (best == open.size() || load[i] < load[best])) best = i;
      if (best == open.size()) break;
      take.push_back(std::move(queue_.front()));
      queue_.pop_front();
      dest.push_back(best);
      ++load[best];
      --room[best];
    }
  }
  for (std::size_t t = 0; t < take.size(); ++t) {
    Worker& w = *open[dest[t]];
    std::unique_ptr<Job> j = std::move(take[t]);
    if (!j->started) {
      if (!j->start()) continue;  // cancelled while queued
      j->started = true;
    }
    const auto len = static_cast<std::uint32_t>(8 + j->payload.size());
    const auto bits = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(j->tramp));
    const std::size_t o = w.out.size();
    w.out.resize(o + kTaskHeader + j->payload.size());
    std::memcpy(w.out.data() + o, &len, 4);
    std::memcpy(w.out.data() + o + 4, &bits, 8);
    if (!j->payload.empty())
      std::memcpy(w.out.data() + o + kTaskHeader, j->payload.data(), j->payload.size());
    w.inflight.push_back(std::move(j));
    ++w.dispatched;
  }
  for (Worker* w : open)
    if (w->out_off < w->out.size()) flush(*w);
}

void EngineCore::withdraw_sent_ahead() noexcept {
  for (Worker& w : workers_) {
    if (!w.active || w.inflight.empty()) continue;
    // One compare-and-swap with the worker's: the tasks written to it and not yet taken are
    // the last `k` of inflight, and the worker will skip exactly those.
    std::atomic<std::uint64_t>& word = slots_[w.slot].progress;
    std::uint64_t v = word.load(std::memory_order_acquire);
    std::uint32_t k;
    do {
      const auto taken = static_cast<std::uint32_t>(v);
      k = static_cast<std::uint32_t>(static_cast<std::uint32_t>(w.dispatched) - taken);
      if (k > w.inflight.size()) k = 0;  // not ours to judge (a worker not yet reset)
    } while (!word.compare_exchange_weak(v,
                                         (std::uint64_t{k} << 32) | static_cast<std::uint32_t>(v),
                                         std::memory_order_acq_rel, std::memory_order_acquire));
    const auto e = std::make_exception_ptr(
        BrokenProcessPool("cancelled by shutdown(cancel_futures) before it started"));
    for (std::size_t i = w.inflight.size() - k; i < w.inflight.size(); ++i) {
      Job& j = *w.inflight[i];
      j.withdrawn = true;
      if (!j.withdraw()) j.fail(e);
    }
  }
}

void EngineCore::on_exit(Worker& w, pid_t pid, int status) noexcept {
  if (w.sock) on_readable(w);  // results it wrote before it died
  recover_unsent(w);           // results it had not written yet
  const Mode m = mode();
  // Taken (started or skipped) tasks, modulo 2^32: the window is far below that.
  const std::uint32_t started =
      static_cast<std::uint32_t>(slots_[w.slot].progress.load(std::memory_order_acquire));
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && w.inflight.empty();
  if (!w.inflight.empty()) {
    const std::uint64_t ran =
        static_cast<std::uint32_t>(started - static_cast<std::uint32_t>(w.answered));
    std::string why =
        m == Mode::terminated
            ? std::string("pool terminated")
            : "A process in the process pool was terminated abruptly while the future was "
              "running or pending (worker pid " +
                  std::to_string(pid) + " " + describe_status(status) + ")";
    const auto e = std::make_exception_ptr(BrokenProcessPool(why));
    std::deque<std::unique_ptr<Job>> back;  // received, never started: run elsewhere
    std::uint64_t i = 0;
    while (!w.inflight.empty()) {
      std::unique_ptr<Job> j = std::move(w.inflight.front());
      w.inflight.pop_front();
      if (j->withdrawn) {  // cancelled already; never run it elsewhere
        ++i;
        continue;
      }
      if (i++ < ran || m == Mode::terminated || m == Mode::broken)
        j->fail(e);
      else
        back.push_back(std::move(j));
    }
    if (!back.empty()) {
      MutexLock g(mu_);
      for (auto it = back.rbegin(); it != back.rend(); ++it) queue_.push_front(std::move(*it));
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && opts_.max_tasks_per_child != 0 &&
      w.dispatched >= opts_.max_tasks_per_child)
    pool_log("{} worker {} (pid {}) exiting after {} tasks", opts_.kind, w.slot, pid, w.dispatched);
  else
    pool_log("{} worker {} (pid {}) {}", opts_.kind, w.slot, pid, describe_status(status));
  untrack_close(w.sock);
  untrack_close(w.pidfd);
  w.active = false;
  w.pid = -1;
  update_pids();
  // A worker that dies before starting any task, again and again (a broken environment),
  // would make the pool fork forever: after 3 * max_workers such deaths in a row, break it.
  if (!clean && started == 0)
    ++stillborn_;
  else
    stillborn_ = 0;
  if (stillborn_ > 3 * static_cast<std::size_t>(n_)) {
    break_pool("A process pool's workers keep dying before running a task (last: pid " +
               std::to_string(pid) + " " + describe_status(status) +
               "), the process pool is not usable anymore");
    return;
  }
  bool need;
  {
    MutexLock g(mu_);
    need = mode_ == Mode::running || (mode_ == Mode::stopping && !queue_.empty());
  }
  if (need && zsock_) {
    try {
      spawn(w);
      if (!clean) replaced_.fetch_add(1, std::memory_order_relaxed);
      pool_log("{} worker {} replaced (pid {} {})", opts_.kind, w.slot, pid,
               clean ? "recycled" : describe_status(status));
    } catch (const std::exception& ex) {
      break_pool(std::string("A process pool could not replace a worker: ") + ex.what());
    }
  }
}

void EngineCore::run() noexcept {
  std::vector<pollfd> fds;
  std::vector<Worker*> who;
  // Held except while blocked in poll(): a submit that finds it free dispatches itself.
  io_mu_.lock();
  for (;;) {
    bool withdraw;
    {
      MutexLock g(mu_);
      withdraw = withdraw_asked_;
      withdraw_asked_ = false;
    }
    if (withdraw) withdraw_sent_ahead();
    dispatch();
    Mode m = mode();
    bool queue_empty;
    {
      MutexLock g(mu_);
      queue_empty = queue_.empty();
    }
    if (m != Mode::running && queue_empty) {
      for (Worker& w : workers_)
        if (w.active && w.sock && !w.wr_closed && w.inflight.empty() && w.out.empty()) {
          (void)::shutdown(w.sock.get(), SHUT_WR);
          w.wr_closed = true;
        }
    }
    bool any_active = false;
    for (const Worker& w : workers_) any_active = any_active || w.active;
    if (m != Mode::running && queue_empty && !any_active) break;
    if (!zsock_ && !any_active) break;
    fds.clear();
    who.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    fds.push_back({zsock_ ? zsock_.get() : -1, POLLIN, 0});
    for (Worker& w : workers_) {
      if (!w.active || !w.sock || w.io_dead) continue;
      short ev = POLLIN;
      if (w.out_off < w.out.size()) ev = static_cast<short>(ev | POLLOUT);
      fds.push_back({w.sock.get(), ev, 0});
      who.push_back(&w);
    }
    io_mu_.unlock();
    const int r = ::poll(fds.data(), fds.size(), -1);
    io_mu_.lock();
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & POLLIN) {
      std::uint64_t v;
      (void)!::read(wake_.get(), &v, sizeof v);
    }
    for (std::size_t i = 0; i < who.size(); ++i) {
      const short re = fds[i + 2].revents;
      if (re & (POLLIN | POLLHUP | POLLERR)) on_readable(*who[i]);
      if ((re & POLLOUT) && !who[i]->io_dead) flush(*who[i]);
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) on_zygote();
    // Terminated: kill what was started meanwhile.
    if (mode() == Mode::terminated) kill_all();
  }
  // Everything exited: let the zygote go and reap it.
  untrack_close(zsock_);
  if (zpid_ > 0) {
    int st = 0;
    while (::waitpid(zpid_, &st, 0) < 0 && errno == EINTR) {
    }
    zpid_ = -1;
  }
  // Anything still queued (a zygote that died) fails.
  std::deque<std::unique_ptr<Job>> q;
  {
    MutexLock g(mu_);
    q.swap(queue_);
  }
  if (!q.empty()) {
    const auto e = std::make_exception_ptr(BrokenProcessPool("the process pool has stopped"));
    for (auto& j : q) j->fail(e);
  }
  {
    MutexLock g(mu_);
    done_ = true;
  }
  io_mu_.unlock();
}

// ---- Engine ----
Engine::Engine(int workers, EngineOptions options) {
  if (workers <= 0) throw ValueError("max_workers must be greater than 0");
  core_ = std::make_shared<EngineCore>(workers, std::move(options));
  core_->start();
}

Engine::~Engine() {
  if (!core_) return;
  if (core_->orphan_.load()) {
    // The child of a fork(): the manager thread and the workers belong to the parent.
    core_->thread_.detach();
    return;
  }
  shutdown(true, false);
  MutexLock jg(core_->join_mu_);
  if (core_->thread_.joinable()) core_->thread_.detach();  // shut down from its own thread
}

void Engine::submit(std::unique_ptr<Job> job, const char* after_shutdown) {
  std::vector<std::unique_ptr<Job>> one;
  one.push_back(std::move(job));
  submit_many(one, after_shutdown);
}

void Engine::submit_many(std::vector<std::unique_ptr<Job>>& jobs, const char* after_shutdown) {
  for (const auto& j : jobs)
    if (j->payload.size() > 0xfffffff0u)
      throw ValueError("process pool: a task's arguments exceed 4 GiB");
  EngineCore& c = *core_;
  bool was_empty;
  {
    MutexLock g(c.mu_);
    if (c.mode_ == EngineCore::Mode::broken) throw futures::BrokenProcessPool(c.broken_reason_);
    if (c.mode_ != EngineCore::Mode::running) throw RuntimeError(after_shutdown);
    was_empty = c.queue_.empty();
    for (auto& j : jobs) c.queue_.push_back(std::move(j));
  }
  jobs.clear();
  // The manager asleep in poll() (io_mu_ free): write the tasks to the workers from here
  // (one hand-off less for a one-at-a-time submit().result()). It must still be woken if
  // some bytes could not be written now (it adds POLLOUT for them) or tasks stay queued.
  // Only when a worker is idle: a stream of submits (workers busy) is batched by the manager
  // instead, one send for many tasks (writing each from here took 10k submits from 2.6-3.5 M/s
  // to 0.55-0.94 M/s, below the raw pipe farm, in one loaded sitting).
  if (std::this_thread::get_id() != c.thread_id_ && c.io_mu_.try_lock()) {
    if (!c.idle_worker()) {
      c.io_mu_.unlock();
    } else {
      c.dispatch();
      bool need_wake = c.output_pending();
      c.io_mu_.unlock();
      if (!need_wake) {
        MutexLock g(c.mu_);
        need_wake = !c.queue_.empty();
      }
      if (need_wake) c.wake();
      return;
    }
  }
  if (was_empty) c.wake();
}

void Engine::shutdown(bool wait, bool cancel_futures) {
  EngineCore& c = *core_;
  if (c.orphan_.load()) return;
  std::deque<std::unique_ptr<Job>> cancelled;
  {
    MutexLock g(c.mu_);
    if (c.mode_ == EngineCore::Mode::running) c.mode_ = EngineCore::Mode::stopping;
    if (cancel_futures) {
      c.withdraw_asked_ = true;
      std::deque<std::unique_ptr<Job>> keep;
      for (auto& j : c.queue_) (j->started ? keep : cancelled).push_back(std::move(j));
      c.queue_.swap(keep);
    }
  }
  for (auto& j : cancelled) (void)j->cancel();
  cancelled.clear();
  c.wake();
  if (wait && std::this_thread::get_id() != c.thread_id_) {
    MutexLock jg(c.join_mu_);
    if (c.thread_.joinable()) c.thread_.join();
  }
}

void Engine::terminate() {
  EngineCore& c = *core_;
  if (c.orphan_.load()) return;
  std::deque<std::unique_ptr<Job>> q;
  {
    MutexLock g(c.mu_);
    if (c.mode_ != EngineCore::Mode::broken) c.mode_ = EngineCore::Mode::terminated;
    q.swap(c.queue_);
  }
  const auto e = std::make_exception_ptr(futures::BrokenProcessPool("pool terminated"));
  for (auto& j : q)
    if (j->started || !j->cancel()) j->fail(e);
  q.clear();
  c.wake();
  if (std::this_thread::get_id() != c.thread_id_) {
    MutexLock jg(c.join_mu_);
    if (c.thread_.joinable()) c.thread_.join();
  }
}

bool Engine::closed() const {
  MutexLock g(core_->mu_);
  return core_->mode_ != EngineCore::Mode::running;
}

int Engine::max_workers() const noexcept {
  return core_->n_;
}

std::vector<int> Engine::worker_pids() const {
  MutexLock g(core_->pids_mu_);
  return core_->pids_;
}

std::size_t Engine::replaced_workers() const {
  return core_->replaced_.load(std::memory_order_relaxed);
}

}  // namespace concur::detail::wp
