// concur-test: timeout=180
// Popen: communicate (large both ways, retry after timeout), poll/wait/wait(timeout),
// signals, streaming pipe ends, pipelines, SIGPIPE, and no fd / zombie leaks (via /proc).
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "concur/subprocess.hpp"

namespace sp = concur::subprocess;
using namespace std::chrono_literals;
using sp::Redirect;

namespace {
const std::string kChild = CONCUR_CHILD_PATH;

int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the DIR's own fd
}

// Children of this process (any state), and how many of them are zombies.
std::pair<int, int> count_children() {
  const std::string me = std::to_string(::getpid());
  int all = 0, zombies = 0;
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream st(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(st, line)) continue;
    const auto rp = line.rfind(')');
    if (rp == std::string::npos) continue;
    // ") S PPID ..."
    const char state = line[rp + 2];
    const auto sp1 = line.find(' ', rp + 4);
    const std::string ppid = line.substr(rp + 4, sp1 - (rp + 4));
    if (ppid != me) continue;
    ++all;
    if (state == 'Z') ++zombies;
  }
  ::closedir(d);
  return {all, zombies};
}

// Polls /proc/PID/status until signal `sig` is ignored (up to 30 s).
bool wait_ignores(pid_t pid, int sig) {
  for (int i = 0; i < 3000; ++i) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(st, line)) {
      if (line.rfind("SigIgn:", 0) == 0) {
        const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
        if (mask & (1ULL << (sig - 1))) return true;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Polls /proc/PID/stat until the process is a zombie (up to 30 s).
bool wait_zombie(pid_t pid) {
  for (int i = 0; i < 3000; ++i) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (std::getline(st, line)) {
      const auto rp = line.rfind(')');
      if (rp != std::string::npos && line[rp + 2] == 'Z') return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return s;
}
}  // namespace

TEST(Popen, CommunicateReturnsBothStreams) {
  sp::Popen p({kChild, "out-err"}, {.out = Redirect::Pipe, .err = Redirect::Pipe});
  EXPECT_GT(p.pid(), 0);
  EXPECT_EQ(p.args(), (std::vector<std::string>{kChild, "out-err"}));
  auto [out, err] = p.communicate();
  EXPECT_EQ(out, "out");
  EXPECT_EQ(err, "err");
  EXPECT_EQ(p.returncode(), 0);
  EXPECT_EQ(p.poll(), 0);
  EXPECT_EQ(p.wait(), 0);
  EXPECT_EQ(p.pidfd(), -1);  // reaped: the pidfd is closed
  EXPECT_EQ(sp::to_string(p), "<Popen: returncode: 0 args: ['" + kChild + "', 'out-err']>");
}

TEST(Popen, ReprWhileRunning) {
  sp::Popen p({kChild, "sleep", "600000"});
  EXPECT_EQ(sp::to_string(p), "<Popen: returncode: None args: ['" + kChild + "', 'sleep', '600000']>");
  p.kill();
  EXPECT_EQ(p.wait(), -SIGKILL);
  EXPECT_EQ(sp::to_string(p), "<Popen: returncode: -9 args: ['" + kChild + "', 'sleep', '600000']>");
}

TEST(Popen, CommunicateLargeBothWaysNeverDeadlocks) {
  // 8 MiB in, 8 MiB back on stdout: far beyond pipe buffers in both directions.
  const std::string in = pattern(8 << 20, 7);
  sp::Popen p({kChild, "echo"}, {.in = Redirect::Pipe, .out = Redirect::Pipe, .err = Redirect::Pipe});
  auto [out, err] = p.communicate(in);
  EXPECT_EQ(out.size(), in.size());
  EXPECT_TRUE(out == in);
  EXPECT_EQ(err, "");
  EXPECT_EQ(p.returncode(), 0);
  // 4 MiB + 1 (CPython's test_communicate_pipe_buf) to stderr while stdout stays quiet.
  const std::string in2 = pattern((4 << 20) + 1, 3);
  sp::Popen q({kChild, "echo-err"}, {.in = Redirect::Pipe, .out = Redirect::Pipe, .err = Redirect::Pipe});
  auto [out2, err2] = q.communicate(in2);
  EXPECT_EQ(out2, "");
  EXPECT_TRUE(err2 == in2);
}

TEST(Popen, LargeOutputOnBothStreamsWithoutInput) {
  sp::Popen p({"sh", "-c", std::string(kChild) + " write 8388608 & " + kChild + " write 8388608 err; wait"},
              {.out = Redirect::Pipe, .err = Redirect::Pipe});
  auto [out, err] = p.communicate();
  EXPECT_EQ(out.size(), 8u << 20);
  EXPECT_EQ(err.size(), 8u << 20);
  EXPECT_EQ(out.find_first_not_of('x'), std::string::npos);
}

TEST(Popen, CommunicateTimeoutThenRetryKeepsOutput) {
  // CPython test_communicate_timeout: output before and after the timeout both arrive.
  // Short communicate() calls are retried until one times out holding the first half (on a
  // loaded machine the shell may need a while to print it).
  sp::Popen p({"sh", "-c", "printf first; printf e1 >&2; sleep 2; printf second; printf e2 >&2"},
              {.out = Redirect::Pipe, .err = Redirect::Pipe});
  bool saw_partial = false;
  std::optional<std::pair<std::string, std::string>> result;
  for (int i = 0; i < 400 && !result && !saw_partial; ++i) {
    try {
      result = p.communicate(std::nullopt, 50ms);
    } catch (const sp::TimeoutExpired& e) {
      EXPECT_EQ(e.timeout(), 50ms);
      EXPECT_FALSE(p.returncode().has_value());  // not killed
      if (e.output() == "first" && e.err() == "e1") saw_partial = true;
    }
  }
  EXPECT_TRUE(saw_partial);
  if (!result) result = p.communicate();
  EXPECT_EQ(result->first, "firstsecond");
  EXPECT_EQ(result->second, "e1e2");
  EXPECT_EQ(p.returncode(), 0);
}

TEST(Popen, CommunicateTimeoutWithLargeOutputAndInput) {
  // CPython test_communicate_timeout_large_output, plus input still being written.
  const std::string in = pattern(2 << 20, 1);
  sp::Popen p({"sh", "-c", "sleep 0.3; cat"}, {.in = Redirect::Pipe, .out = Redirect::Pipe});
  EXPECT_THROW((void)p.communicate(in, 50ms), sp::TimeoutExpired);
  // Input may not be given again once communication started.
  EXPECT_THROW((void)p.communicate(std::string("more")), concur::ValueError);
  auto [out, err] = p.communicate();
  EXPECT_TRUE(out == in);
  EXPECT_EQ(p.returncode(), 0);
}

TEST(Popen, CommunicateMisuse) {
  sp::Popen p({kChild, "exit", "0"});
  EXPECT_THROW((void)p.communicate(std::string("x")), concur::ValueError);  // stdin not a pipe
  auto [o, e] = p.communicate();
  EXPECT_EQ(o, "");
  EXPECT_EQ(e, "");
  // A second communicate after the end is harmless.
  auto [o2, e2] = p.communicate();
  EXPECT_EQ(o2, "");
}

TEST(Popen, PollWaitAndWaitTimeout) {
  sp::Popen p({kChild, "sleep", "600000"});
  EXPECT_FALSE(p.poll().has_value());
  EXPECT_FALSE(p.returncode().has_value());
  try {
    (void)p.wait(100ms);
    FAIL();
  } catch (const sp::TimeoutExpired& e) {
    EXPECT_EQ(e.timeout(), 100ms);
    EXPECT_NE(std::string(e.what()).find("timed out after 0.1 seconds"), std::string::npos);
  }
  EXPECT_FALSE(p.try_wait(50ms).has_value());
  EXPECT_FALSE(p.poll().has_value());  // wait(timeout) did not kill
  p.terminate();
  EXPECT_EQ(p.wait(), -SIGTERM);
  EXPECT_EQ(p.poll(), -SIGTERM);
  EXPECT_EQ(p.wait(30s), -SIGTERM);
}

TEST(Popen, KillTerminateAndSignalsAfterReapAreNoOps) {
  sp::Popen k({kChild, "ignore-term", "600000"});
  ASSERT_TRUE(wait_ignores(k.pid(), SIGTERM));  // it has installed SIG_IGN
  k.terminate();
  EXPECT_FALSE(k.try_wait(200ms).has_value());  // SIGTERM ignored
  k.kill();
  EXPECT_EQ(k.wait(), -SIGKILL);
  // Reaped: signals do nothing, even though the pid may be recycled.
  EXPECT_NO_THROW(k.kill());
  EXPECT_NO_THROW(k.terminate());
  EXPECT_NO_THROW(k.send_signal(SIGUSR1));
  EXPECT_EQ(k.returncode(), -SIGKILL);

  sp::Popen s({kChild, "sleep", "600000"});
  s.send_signal(SIGUSR1);
  EXPECT_EQ(s.wait(), -SIGUSR1);
  // Exited but not yet reaped (a zombie): signals are still harmless.
  sp::Popen z({kChild, "exit", "5"});
  pollfd pf{z.pidfd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 30000), 1);
  EXPECT_NO_THROW(z.kill());
  EXPECT_EQ(z.wait(), 5);
}

TEST(Popen, StreamingPipeEnds) {
  sp::Popen p({kChild, "echo"}, {.in = Redirect::Pipe, .out = Redirect::Pipe});
  EXPECT_GE(p.stdin_fd(), 0);
  EXPECT_GE(p.stdout_fd(), 0);
  EXPECT_EQ(p.stderr_fd(), -1);
  p.write_stdin("line one\n");
  std::string got;
  while (got.size() < 9) got += p.read_stdout(4);
  EXPECT_EQ(got, "line one\n");
  p.write_stdin("two");
  p.close_stdin();
  EXPECT_EQ(p.stdin_fd(), -1);
  EXPECT_EQ(p.read_stdout_all(), "two");
  EXPECT_EQ(p.read_stdout(), "");  // EOF
  EXPECT_EQ(p.wait(), 0);
  EXPECT_THROW(p.write_stdin("x"), concur::ValueError);
  EXPECT_EQ(p.read_stderr(), "");  // not a pipe
}

TEST(Popen, WriteToExitedChildIsEpipeNotSigpipe) {
  // SIGPIPE at its default (death) here: a write to a dead reader must not kill us.
  struct sigaction dfl {}, old {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, &old);
  sp::Popen p({kChild, "exit", "0"}, {.in = Redirect::Pipe});
  EXPECT_EQ(p.wait(), 0);
  try {
    p.write_stdin(std::string(1 << 20, 'x'));
    FAIL();
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.code(), EPIPE);
  }
  // communicate ignores the broken pipe, as Python does.
  sp::Popen q({kChild, "exit", "3"}, {.in = Redirect::Pipe, .out = Redirect::Pipe});
  (void)q.wait();
  auto [out, err] = q.communicate(std::string(1 << 20, 'y'));
  EXPECT_EQ(out, "");
  EXPECT_EQ(q.returncode(), 3);
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  ::sigaction(SIGPIPE, &old, nullptr);
}

TEST(Popen, PipelineThroughTwoPopens) {
  // printf 'c\na\nb\n' | sort
  sp::Popen producer({"printf", "c\\na\\nb\\n"}, {.out = Redirect::Pipe});
  sp::Popen sorter({"sort"}, {.in = producer.stdout_fd(), .out = Redirect::Pipe});
  producer.close_stdout();  // only the sorter holds the read end now
  auto [out, err] = sorter.communicate();
  EXPECT_EQ(out, "a\nb\nc\n");
  EXPECT_EQ(producer.wait(), 0);
  EXPECT_EQ(sorter.returncode(), 0);
}

TEST(Popen, ShellAndSessionOptions) {
  sp::Popen p({"echo $0-$1", "a", "b"}, {.out = Redirect::Pipe, .shell = true, .start_new_session = true});
  EXPECT_EQ(p.communicate().first, "a-b\n");
  sp::Popen missing_ok({"exit 9"}, {.shell = true});
  EXPECT_EQ(missing_ok.wait(), 9);
  EXPECT_THROW(sp::Popen({"nope-no-such-binary-xyz"}, {.out = Redirect::Pipe}), concur::FileNotFoundError);
}

TEST(Popen, MoveKeepsOwnership) {
  sp::Popen a({kChild, "print-args", "moved"}, {.out = Redirect::Pipe});
  const pid_t pid = a.pid();
  sp::Popen b(std::move(a));
  EXPECT_EQ(b.pid(), pid);
  EXPECT_EQ(b.communicate().first, "moved\n");
  sp::Popen c({kChild, "exit", "2"});
  pollfd pf{c.pidfd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 30000), 1);  // ended, not reaped: the assignment reaps it
  const pid_t old = c.pid();
  c = std::move(b);
  EXPECT_FALSE(std::ifstream("/proc/" + std::to_string(old) + "/stat").good());
  EXPECT_EQ(c.returncode(), 0);
  EXPECT_EQ(c.pid(), pid);
}

TEST(Leaks, HundredsOfRunsLeaveNoFdsOrZombies) {
  (void)sp::run({"true"});  // warm-up (lazy statics)
  const int fds0 = count_fds();
  const auto [kids0, zombies0] = count_children();
  for (int i = 0; i < 300; ++i) {
    switch (i % 6) {
      case 0: (void)sp::run({"true"}); break;
      case 1: (void)sp::run({kChild, "out-err"}, {.capture_output = true}); break;
      case 2: (void)sp::run({kChild, "echo"}, {.input = "abc", .capture_output = true}); break;
      case 3: EXPECT_THROW((void)sp::run({"no-such-prog-xyz"}, {.capture_output = true}), concur::FileNotFoundError); break;
      case 4: (void)sp::run({kChild, "exit", "1"}, {.in = Redirect::DevNull, .out = Redirect::DevNull}); break;
      case 5: {
        sp::Popen p({kChild, "print-args", "x"}, {.out = Redirect::Pipe, .err = Redirect::Stdout});
        (void)p.communicate();
        break;
      }
    }
  }
  EXPECT_THROW((void)sp::run({kChild, "sleep", "10000"}, {.capture_output = true, .timeout = 10ms}),
               sp::TimeoutExpired);
  EXPECT_EQ(count_fds(), fds0);
  const auto [kids1, zombies1] = count_children();
  EXPECT_EQ(kids1, kids0);
  EXPECT_EQ(zombies1, zombies0);
}

TEST(Leaks, DestroyingARunningPopenLeavesNoZombie) {
  (void)sp::run({"true"});
  const int fds0 = count_fds();
  const auto [kids0, zombies0] = count_children();
  pid_t pid;
  {
    sp::Popen p({kChild, "sleep", "100"}, {.in = Redirect::Pipe, .out = Redirect::Pipe});
    pid = p.pid();
  }  // does not block; the child is now on the abandoned list
  ASSERT_TRUE(wait_zombie(pid));  // it has ended (a zombie until the next Popen)
  (void)sp::run({"true"});        // any later spawn reaps it
  EXPECT_FALSE(std::ifstream("/proc/" + std::to_string(pid) + "/stat").good());
  EXPECT_EQ(count_fds(), fds0);
  const auto [kids1, zombies1] = count_children();
  EXPECT_EQ(kids1, kids0);
  EXPECT_EQ(zombies1, zombies0);
  // A finished child is reaped by the destructor itself.
  {
    sp::Popen q({kChild, "exit", "0"});
    pollfd pf{q.pidfd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pf, 1, 30000), 1);
    pid = q.pid();
  }
  EXPECT_FALSE(std::ifstream("/proc/" + std::to_string(pid) + "/stat").good());
}

TEST(Threads, ManyThreadsSpawnAtOnce) {
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto cp = sp::run({kChild, "print-args", std::to_string(t * 100 + i)}, {.capture_output = true});
        if (cp.out == std::to_string(t * 100 + i) + "\n") ++ok;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 100);
}

TEST(Popen, MovedFromObjectIsInert) {
  sp::Popen a({kChild, "exit", "0"});
  sp::Popen b(std::move(a));
  EXPECT_EQ(a.pid(), -1);  // NOLINT(bugprone-use-after-move): documented moved-from state
  EXPECT_EQ(a.pidfd(), -1);
  EXPECT_THROW((void)a.wait(), concur::ValueError);
  EXPECT_FALSE(a.poll().has_value());
  EXPECT_NO_THROW(a.kill());
  EXPECT_EQ(b.wait(), 0);
}
