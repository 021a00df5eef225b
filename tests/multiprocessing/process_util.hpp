// Helpers shared by the multiprocessing process tests: pipes, reading them to EOF, running a
// body in a forked copy of the test program, counting fds and looking for zombies.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace ptest {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    close_r();
    close_w();
  }
  void close_r() {
    if (r >= 0) ::close(r);
    r = -1;
  }
  void close_w() {
    if (w >= 0) ::close(w);
    w = -1;
  }
  // Reads until every writer has closed its end (close ours first).
  std::string read_all() {
    close_w();
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(r, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
};

inline void put(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Runs body in a forked copy of this test program, which then leaves with std::exit(0)
// (the "return from main" path: atexit handlers and concur's exit hooks run). Returns the
// copy's wait status.
inline int run_copy(const std::function<void()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    body();
    std::exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

inline int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n - 1;  // the DIR's own descriptor
}

// True if this process has a child that has ended and not been reaped (a zombie).
inline bool has_zombie_child() {
  siginfo_t si{};
  if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return false;  // ECHILD
  return si.si_pid != 0;
}

// Zombie children of this process, counted through /proc/<pid>/stat (state Z, ppid = us).
inline int zombie_children_in_proc() {
  int n = 0;
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string path = std::string("/proc/") + e->d_name + "/stat";
    FILE* f = std::fopen(path.c_str(), "re");
    if (!f) continue;
    char buf[512];
    const std::size_t len = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[len] = 0;
    const char* close_paren = std::strrchr(buf, ')');  // the name may hold spaces
    char state = 0;
    int ppid = 0;
    if (close_paren && std::sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 && state == 'Z' &&
        ppid == ::getpid())
      ++n;
  }
  ::closedir(d);
  return n;
}

// Whether pid still exists (not even as a zombie).
inline bool pid_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace ptest
