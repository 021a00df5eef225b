// concur-test: labels=no_tsan
// Process's pidfd: opened right after fork() in the parent, before anyone concur does not
// know of could reap the child, and checked to name our own child (see launch_fork in
// src/multiprocessing/process.cpp for why not clone3). The guard cases put the two ways
// user code can reap behind concur's back — SIGCHLD = SIG_IGN and a foreign waitpid(-1)
// — against many short children: every Process ends (no hang), and none is ever signalled
// through a pidfd that names a stranger.
// no_tsan: one case reaps from a second thread while the main thread forks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <concur/multiprocessing.hpp>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mp = concur::multiprocessing;

namespace {

// The pid the kernel says a pidfd refers to (/proc/self/fdinfo "Pid:"), -1 if none.
long pidfd_pid(int fd) {
  std::ifstream f("/proc/self/fdinfo/" + std::to_string(fd));
  std::string key;
  while (f >> key) {
    if (key == "Pid:") {
      long v = -1;
      f >> v;
      return v;
    }
  }
  return -1;
}

}  // namespace

TEST(ProcessPidfd, SentinelIsAPidfdOfTheChild) {
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  mp::Process p([r = gate[0], w = gate[1]] {
    ::close(w);
    char c;
    (void)::read(r, &c, 1);
  });
  p.start();
  ::close(gate[0]);
  const int fd = *p.sentinel();
  EXPECT_GE(fd, 3);
  EXPECT_EQ(pidfd_pid(fd), static_cast<long>(*p.pid()));
  siginfo_t si{};
  EXPECT_EQ(::waitid(P_PIDFD, static_cast<id_t>(fd), &si, WEXITED | WNOHANG | WNOWAIT), 0);
  EXPECT_EQ(si.si_pid, 0);  // ours, still running
  ::close(gate[1]);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(ProcessPidfd, SigchldIgnoredChildrenAllEnd) {
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGCHLD, &ign, &old), 0);
  for (int i = 0; i < 40; ++i) {
    mp::Process p([] {});
    p.start();
    p.join();
    const auto code = p.exitcode();
    ASSERT_TRUE(code.has_value());
    EXPECT_TRUE(*code == 0 || *code == 255) << *code;  // 255: status lost to the kernel
    EXPECT_FALSE(p.is_alive());
    p.terminate();  // a reaped child is never signalled (no throw, nobody hit)
    p.kill();
  }
  ::sigaction(SIGCHLD, &old, nullptr);
}

TEST(ProcessPidfd, ForeignReaperNeverMakesAProcessHangOrSignalAStranger) {
  std::atomic<bool> stop{false};
  std::atomic<int> stolen{0};
  std::thread reaper([&] {
    while (!stop.load()) {
      int st;
      if (::waitpid(-1, &st, WNOHANG) > 0) stolen.fetch_add(1);
      std::this_thread::yield();
    }
  });
  for (int i = 0; i < 40; ++i) {
    mp::Process p([] {});
    p.start();
    p.join();
    ASSERT_TRUE(p.exitcode().has_value());
    EXPECT_FALSE(p.is_alive());
    p.terminate();
  }
  stop.store(true);
  reaper.join();
  RecordProperty("stolen", stolen.load());
}
