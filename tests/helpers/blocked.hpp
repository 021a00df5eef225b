// Test helper: wait until a thread sleeps in a given system call (read from
// /proc/self/task/<tid>/syscall), so a test can act on "the waiter is asleep in the
// kernel" without sleeping and hoping.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace concur_test {

// True once thread `tid` of process `pid` is blocked in syscall `nr` (SYS_futex by
// default); false after `limit`. A single-threaded child: tid == pid.
inline bool wait_blocked_in(int pid, int tid, long nr = SYS_futex,
                            std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  const std::string path =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall";
  while (std::chrono::steady_clock::now() < end) {
    std::ifstream f(path);
    long n = -1;
    if (f >> n && n == nr) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

inline int gettid_now() {
  return static_cast<int>(::syscall(SYS_gettid));
}

}  // namespace concur_test
