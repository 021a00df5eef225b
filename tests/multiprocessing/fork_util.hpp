// Helpers for the shared-memory tests: run a function in a fork()ed child and collect its
// exit status. The tests that use them are single-threaded when they fork.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

namespace concur_test {

// Forks; the child runs f() (returning its exit code; 99 if it throws) and _exits.
template <class F>
pid_t fork_child(F f) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 0;
    try {
      rc = f();
    } catch (...) {
      rc = 99;
    }
    ::_exit(rc);
  }
  return pid;
}

// Waits for pid; returns its exit code, or -SIG if a signal killed it.
inline int wait_exit(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
  }
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return WEXITSTATUS(st);
}

}  // namespace concur_test
