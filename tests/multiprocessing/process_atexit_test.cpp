// What happens to children when their parent ends: each test runs a forked copy of the test
// program (single-threaded, so ThreadSanitizer follows it) which starts children and then
// leaves (std::exit, mp::exit, or death by SIGKILL); the test reads what the children
// reported through a pipe and checks that none of them survives.
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <concur/multiprocessing.hpp>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "process_util.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;
using ptest::Pipe;
using ptest::put;

namespace {

void sleep_forever() {
  for (;;) ::pause();
}

// Whether pid runs (exists and has not ended: a zombie does not count).
bool running(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  const bool ended = ::poll(&p, 1, 0) == 1;
  ::close(fd);
  return !ended;
}

// Waits (up to 20 s) until pid has ended (its new parent, init or a subreaper, reaps it).
bool wait_gone(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  const bool gone = ::poll(&p, 1, 20000) == 1;
  ::close(fd);
  return gone;
}

// Python's order at exit: daemons are terminated first, then non-daemon children joined.
TEST(ProcessAtExit, DaemonsTerminatedThenOthersJoined) {
  Pipe pipe;
  const int status = ptest::run_copy([w = pipe.w] {
    mp::Process worker({.name = "worker"}, [w] {
      std::this_thread::sleep_for(300ms);
      put(w, "worker-done|");
    });
    mp::Process daemon({.name = "daemon", .daemon = true}, [w] {
      ::signal(SIGTERM, +[](int) {
        ::_exit(9);  // only async-signal-safe calls in a handler
      });
      put(w, "daemon-up|");
      sleep_forever();
    });
    worker.start();
    daemon.start();
    std::this_thread::sleep_for(100ms);  // let the daemon install its handler
    put(w, "main-exit|");
    std::exit(0);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(pipe.read_all(), "daemon-up|main-exit|worker-done|");
}

// A daemon that ignores SIGTERM is killed after the grace period instead of hanging the
// parent's exit (Python would wait forever).
TEST(ProcessAtExit, StubbornDaemonIsKilledAfterGrace) {
  Pipe pipe;
  const int status = ptest::run_copy([w = pipe.w] {
    mp::Process daemon({.daemon = true}, [w] {
      ::signal(SIGTERM, SIG_IGN);
      put(w, std::to_string(::getpid()));
      sleep_forever();
    });
    daemon.start();
    std::this_thread::sleep_for(100ms);
  });
  ASSERT_TRUE(WIFEXITED(status));
  const pid_t daemon_pid = std::stoi(pipe.read_all());  // EOF: every writer is gone
  EXPECT_FALSE(running(daemon_pid));
}

// A child whose Process object was destroyed is still joined at exit.
TEST(ProcessAtExit, DestroyedProcessIsStillJoined) {
  Pipe pipe;
  const int status = ptest::run_copy([w = pipe.w] {
    {
      mp::Process p([w] {
        std::this_thread::sleep_for(200ms);
        put(w, "child-done|");
      });
      p.start();
    }
    put(w, "object-gone|");
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(pipe.read_all(), "object-gone|child-done|");
}

// mp::exit(n) in the main process ends the program with n after joining the children.
TEST(ProcessAtExit, ExitInMainProcessJoinsChildren) {
  Pipe pipe;
  const int status = ptest::run_copy([w = pipe.w] {
    mp::Process p([w] {
      std::this_thread::sleep_for(150ms);
      put(w, "child-done|");
    });
    p.start();
    mp::exit(3);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(pipe.read_all(), "child-done|");
}

// A child's own children are handled when the child ends (Python runs _exit_function in
// the child too): its daemon is terminated, its non-daemon child joined.
TEST(ProcessAtExit, ChildHandlesItsOwnChildren) {
  Pipe pipe;
  mp::Process parent([w = pipe.w] {
    mp::Process grandchild([w] {
      std::this_thread::sleep_for(150ms);
      put(w, "grandchild-done|");
    });
    grandchild.start();
    put(w, "child-returns|");
  });
  parent.start();
  parent.join();
  EXPECT_EQ(parent.exitcode(), 0);
  EXPECT_EQ(pipe.read_all(), "child-returns|grandchild-done|");
}

// Beyond Python: a daemon dies with its parent even when the parent is SIGKILLed; a
// non-daemon child is left running (as in Python).
TEST(ProcessAtExit, DaemonDiesWhenParentIsKilled) {
  Pipe pipe;
  const int status = ptest::run_copy([w = pipe.w] {
    mp::Process daemon({.daemon = true}, [w] {
      put(w, "d" + std::to_string(::getpid()) + " ");
      sleep_forever();
    });
    mp::Process orphan([w] {
      put(w, "o" + std::to_string(::getpid()) + " ");
      ::close(w);
      sleep_forever();
    });
    daemon.start();
    orphan.start();
    std::this_thread::sleep_for(100ms);
    ::raise(SIGKILL);
  });
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGKILL);
  // EOF comes once the daemon (the last writer) is gone.
  const std::string pids = pipe.read_all();
  const auto d = pids.find('d'), o = pids.find('o');
  ASSERT_NE(d, std::string::npos) << pids;
  ASSERT_NE(o, std::string::npos) << pids;
  const pid_t daemon_pid = std::stoi(pids.substr(d + 1));
  const pid_t orphan_pid = std::stoi(pids.substr(o + 1));
  EXPECT_TRUE(wait_gone(daemon_pid));
  EXPECT_TRUE(running(orphan_pid));
  ::kill(orphan_pid, SIGKILL);
  EXPECT_TRUE(wait_gone(orphan_pid));
}

// A raw fork() of a parent (not through concur) does not inherit its children: when the
// copy exits it neither terminates the parent's daemon nor waits for the parent's children.
TEST(ProcessAtExit, RawForkCopyLeavesParentsChildrenAlone) {
  mp::Process daemon({.daemon = true}, sleep_forever);
  daemon.start();
  Pipe pipe;
  const int fds = ptest::count_fds();
  const int status = ptest::run_copy([&, w = pipe.w] {
    put(w, std::to_string(mp::active_children().size()) + " " +
               std::to_string(ptest::count_fds() < fds ? 1 : 0));
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(pipe.read_all(), "0 1");  // no children there, the daemon's pidfd closed
  EXPECT_TRUE(daemon.is_alive());
  daemon.kill();
  daemon.join();
  EXPECT_EQ(daemon.exitcode(), -SIGKILL);
}

}  // namespace
