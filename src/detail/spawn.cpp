// The spawn layer (see concur/detail/spawn.hpp for the contract).
//
// Sequence in the parent: pipe2(O_CLOEXEC | O_NONBLOCK) for the error report, both ends
// moved to fd >= 3; block every signal; clone(CLONE_VFORK | CLONE_PIDFD [| CLONE_VM]) onto
// a private stack; restore the mask; read the error pipe once, without waiting: CLONE_VFORK
// resumes the parent only after the child's execve succeeded or the child exited, and a
// failing child writes its 8 bytes {stage, errno} before exiting, so the report is either
// in the pipe already or there is none. (Waiting for EOF instead would wait for every
// process that inherited the write end meanwhile: a fork() in another thread between
// pipe2 and our close keeps it open for that process's whole life.)
// Sequence in the child (raw syscalls only, nothing that touches libc or sanitizer state):
// reset caught signals to SIG_DFL; setsid/setpgid; move the stdio sources into 0–2;
// chdir; mark every other fd close-on-exec (close_range); restore the mask; execve each
// candidate path (Python's rule: remember the first error that is not ENOENT/ENOTDIR).
#include "concur/detail/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "concur/detail/deadline.hpp"
#include "concur/errors.hpp"

extern char** environ;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CONCUR_SPAWN_SHARE_VM 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CONCUR_SPAWN_SHARE_VM 0
#endif
#endif
#ifndef CONCUR_SPAWN_SHARE_VM
#define CONCUR_SPAWN_SHARE_VM 1
#endif

namespace concur::detail {
namespace {

enum Stage : int { kStageExec = 1, kStageChdir, kStageDup, kStageSession, kStageGroup, kStageFds };

struct ChildError {
  int stage;
  int err;
};

// The kernel's struct sigaction for rt_sigaction(2) on Linux (handler, flags, restorer, mask).
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  std::uint64_t mask;
};
constexpr unsigned long kSigsetBytes = 8;
constexpr int kMaxSignal = 64;

struct ChildArgs {
  const SpawnRequest* req;
  const char* const* envp;
  int err_fd;
  std::uint64_t parent_mask;
};

// Everything below runs in the child, possibly on the parent's memory: raw syscalls only.
#define CONCUR_CHILD_FN __attribute__((noinline, no_sanitize("address", "thread", "undefined")))

[[noreturn]] CONCUR_CHILD_FN void child_fail(int fd, int stage, int err) {
  ChildError e{stage, err};
  syscall(SYS_write, fd, &e, sizeof e);  // 8 bytes < PIPE_BUF: one atomic write
  syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

// Marks fds lo..hi close-on-exec rather than closing them: the error pipe must live until
// execve. Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: close for real, around err_fd.
CONCUR_CHILD_FN void child_cloexec_range(unsigned lo, unsigned hi, int err_fd) {
  if (syscall(SYS_close_range, lo, hi, CLOSE_RANGE_CLOEXEC) == 0) return;
  const auto e = static_cast<unsigned>(err_fd);
  if (e < lo || e > hi) {
    syscall(SYS_close_range, lo, hi, 0);
    return;
  }
  if (e > lo) syscall(SYS_close_range, lo, e - 1, 0);
  if (e < hi) syscall(SYS_close_range, e + 1, hi, 0);
}

CONCUR_CHILD_FN int child_main(void* p) {
  const ChildArgs& a = *static_cast<const ChildArgs*>(p);
  const SpawnRequest& r = *a.req;

  // No handler of the parent may run here; Python's restore_signals also gives the child
  // default SIGPIPE and SIGXFSZ even when the parent ignores them.
  for (int sig = 1; sig <= kMaxSignal; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction old{};
    if (syscall(SYS_rt_sigaction, sig, nullptr, &old, kSigsetBytes) != 0) continue;
    if (old.handler == SIG_DFL) continue;
    if (old.handler == SIG_IGN && sig != SIGPIPE && sig != SIGXFSZ) continue;
    KernelSigaction dfl{};
    dfl.handler = SIG_DFL;
    syscall(SYS_rt_sigaction, sig, &dfl, nullptr, kSigsetBytes);
  }

  if (r.new_session && syscall(SYS_setsid) < 0) child_fail(a.err_fd, kStageSession, errno);
  if (r.process_group >= 0 && syscall(SYS_setpgid, 0, r.process_group) < 0)
    child_fail(a.err_fd, kStageGroup, errno);

  // A source sitting on another slot of 0..2 would be overwritten by an earlier dup: move it
  // above 2 first (the copy is close-on-exec).
  int src[3] = {r.stdio[0], r.stdio[1], r.stdio[2]};
  for (int i = 0; i < 3; ++i) {
    if (src[i] >= 0 && src[i] < 3 && src[i] != i) {
      const long moved = syscall(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, 3);
      if (moved < 0) child_fail(a.err_fd, kStageDup, errno);
      src[i] = static_cast<int>(moved);
    }
  }
  for (int i = 0; i < 3; ++i) {
    long rc = 0;
    if (src[i] == i) {
      rc = syscall(SYS_fcntl, i, F_SETFD, 0);  // keep it across exec
    } else if (src[i] >= 0) {
      rc = syscall(SYS_dup3, src[i], i, 0);
    } else if (src[i] == kSpawnStdioMergeOut) {
      rc = syscall(SYS_dup3, 1, i, 0);
    }
    if (rc < 0) child_fail(a.err_fd, kStageDup, errno);
  }

  if (r.cwd && syscall(SYS_chdir, r.cwd) < 0) child_fail(a.err_fd, kStageChdir, errno);

  if (r.close_fds) {
    unsigned lo = 3;
    for (int keep : r.pass_fds) {
      const auto k = static_cast<unsigned>(keep);
      if (k > lo) child_cloexec_range(lo, k - 1, a.err_fd);
      if (syscall(SYS_fcntl, keep, F_SETFD, 0) < 0) child_fail(a.err_fd, kStageFds, errno);
      lo = k + 1;
    }
    child_cloexec_range(lo, ~0U, a.err_fd);
  }

  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &a.parent_mask, nullptr, kSigsetBytes);

  int saved = 0;
  int last = ENOENT;
  for (const char* path : r.exec_paths) {
    syscall(SYS_execve, path, r.argv, a.envp);
    last = errno;
    if (last != ENOENT && last != ENOTDIR && saved == 0) saved = last;
  }
  child_fail(a.err_fd, kStageExec, saved ? saved : last);
}

// The child's stack. It runs a handful of frames of raw syscalls: 32 KiB is many times
// what it needs (the kernel copies nothing of it: with CLONE_VM it is our own memory).
constexpr std::size_t kChildStack = 32 * 1024;

}  // namespace

SpawnResult spawn(const SpawnRequest& req) {
  // Above the stdio slots: with fds 0-2 closed, pipe2 would hand out 0..2, and the child's
  // dup3 onto its stdio would then overwrite the report channel (Python does the same).
  auto [err_rd, err_wr] = make_pipe(O_NONBLOCK);
  ChildArgs args{&req, req.envp ? req.envp : environ, err_wr.get(), 0};

  // The child calls only syscall() and __errno_location(); both are bound here first, so
  // the child never runs the dynamic linker's lazy binding on our memory.
  errno = 0;
  std::uint64_t all = ~std::uint64_t{0};
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &args.parent_mask, kSigsetBytes);

  alignas(64) unsigned char stack[kChildStack];
  int pidfd = -1;
  int flags = CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
  if (CONCUR_SPAWN_SHARE_VM) flags |= CLONE_VM;
  const pid_t pid = ::clone(child_main, stack + sizeof stack, flags, &args, &pidfd);
  const int clone_err = errno;

  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &args.parent_mask, nullptr, kSigsetBytes);
  err_wr.reset();
  if (pid < 0) throw OSError(clone_err, "clone");
  if (pidfd >= 0 && pidfd < 3) {  // with 0-2 closed: keep the pidfd off the stdio slots
    const int moved = ::fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
    if (moved >= 0) {
      close_fd(pidfd);
      pidfd = moved;
    }
  }
  UniqueFd pfd(pidfd);

  ChildError e{};
  ssize_t n;
  do {
    n = ::read(err_rd.get(), &e, sizeof e);  // non-blocking: EAGAIN = no report = exec'd
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof e)) return SpawnResult{pid, std::move(pfd)};

  (void)reap_pidfd(pfd.get(), true);
  const std::string program = req.exec_context ? req.exec_context
                              : (req.argv && req.argv[0]) ? req.argv[0] : "";
  switch (e.stage) {
    // Python's filename: shown even when it is '' (run({""})).
    case kStageExec: throw_os_error(e.err, Filename{program});
    case kStageChdir: throw_os_error(e.err, Filename{req.cwd ? req.cwd : ""});
    case kStageDup: throw OSError(e.err, "redirecting the child's standard streams");
    case kStageSession: throw OSError(e.err, "setsid");
    case kStageGroup: throw OSError(e.err, "setpgid");
    default: throw OSError(e.err, "pass_fds");
  }
}

std::optional<int> reap_pidfd(int pidfd, bool block) {
  siginfo_t si{};
  for (;;) {
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &si,
                 WEXITED | (block ? 0 : WNOHANG)) == 0)
      break;
    if (errno == EINTR) continue;
    if (errno == ECHILD) return 0;  // reaped by someone else: Python reports 0 too
    throw OSError(errno, "waitid");
  }
  if (si.si_pid == 0) return std::nullopt;
  return si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
}

bool wait_pidfd(int pidfd, const std::chrono::steady_clock::time_point* deadline) {
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};
    timespec ts{};
    const timespec* tsp = deadline ? Deadline(*deadline).relative_timespec(ts) : nullptr;
    const int rc = ::ppoll(&p, 1, tsp, nullptr);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) throw OSError(errno, "poll(pidfd)");
  }
}

}  // namespace concur::detail
