// mp::Process lifecycle: every exit path, repr states, names, arguments, subclass style,
// current/parent process, sentinel, misuse errors (Python's _TestProcess ports). The test
// program stays single-threaded, so ThreadSanitizer can follow its forks.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <ext/stdio_filebuf.h>
#include <iostream>
#include <concur/multiprocessing.hpp>
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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

TEST(Process, ReturnGivesExitcodeZero) {
  Pipe pipe;
  mp::Process p([w = pipe.w] { put(w, "ran"); });
  EXPECT_FALSE(p.exitcode().has_value());
  EXPECT_FALSE(p.pid().has_value());
  EXPECT_FALSE(p.is_alive());
  p.start();
  ASSERT_TRUE(p.pid().has_value());
  EXPECT_GT(*p.pid(), 0);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(pipe.read_all(), "ran");
}

TEST(Process, ExceptionGivesExitcodeOneAndReport) {
  Pipe err;
  mp::Process p({.name = "fail_job"}, [w = err.w] {
    ::dup2(w, 2);  // the child's stderr goes to our pipe
    throw std::runtime_error("boom");
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_EQ(err.read_all(), "Process fail_job:\nstd::runtime_error: boom\n");
}

TEST(Process, ConcurErrorAndNonStdExceptionAreReported) {
  Pipe err;
  mp::Process p1({.name = "a"}, [w = err.w] {
    ::dup2(w, 2);
    throw concur::ValueError("bad value");
  });
  p1.start();
  p1.join();
  mp::Process p2({.name = "b"}, [w = err.w] {
    ::dup2(w, 2);
    throw 42;
  });
  p2.start();
  p2.join();
  EXPECT_EQ(p1.exitcode(), 1);
  EXPECT_EQ(p2.exitcode(), 1);
  EXPECT_EQ(err.read_all(), "Process a:\nconcur::ValueError: bad value\nProcess b:\nint\n");
}

struct Unwound {
  int fd;
  ~Unwound() { put(fd, "unwound"); }
};

TEST(Process, ExitUnwindsTargetAndSetsCode) {
  Pipe pipe;
  mp::Process p([w = pipe.w] {
    Unwound u{w};
    mp::exit(7);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
  EXPECT_EQ(pipe.read_all(), "unwound");
}

TEST(Process, ExitCodeKeepsLowByte) {
  mp::Process p([] { mp::exit(256 + 3); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 3);
}

TEST(Process, ExitFromNestedFunctionThroughCatchStdException) {
  mp::Process p([] {
    try {
      mp::exit(5);
    } catch (const std::exception&) {  // mp::exit is not a std::exception
      mp::exit(9);
    }
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 5);
}

TEST(Process, TerminateGivesMinusSigterm) {
  mp::Process p(sleep_forever);
  p.start();
  EXPECT_TRUE(p.is_alive());
  p.terminate();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  EXPECT_FALSE(p.is_alive());
  p.terminate();  // after the end: nothing happens
  p.kill();
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST(Process, KillGivesMinusSigkill) {
  mp::Process p([] {
    ::signal(SIGTERM, SIG_IGN);
    sleep_forever();
  });
  p.start();
  p.kill();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST(Process, DeathBySignalGivesMinusSignal) {
  mp::Process p([] { ::raise(SIGUSR1); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGUSR1);
}

TEST(Process, JoinTimeout) {
  mp::Process p(sleep_forever);
  p.start();
  EXPECT_FALSE(p.join(50ms));
  EXPECT_FALSE(p.join(-5ms));
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  p.kill();
  EXPECT_TRUE(p.join(std::chrono::hours::max()));  // no overflow of the deadline
  EXPECT_TRUE(p.join(0s));
  EXPECT_TRUE(p.join(std::chrono::duration<double>(0.5)));
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST(Process, SentinelIsPollablePidfd) {
  mp::Process p(sleep_forever);
  EXPECT_THROW((void)p.sentinel(), concur::ValueError);
  p.start();
  ASSERT_TRUE(p.sentinel().has_value());
  const int fd = *p.sentinel();
  ASSERT_GE(fd, 0);
  pollfd pf{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&pf, 1, 0), 0);
  p.terminate();
  pf = {fd, POLLIN, 0};
  EXPECT_EQ(::poll(&pf, 1, 30000), 1);
  p.join();
  EXPECT_EQ(p.sentinel(), fd);  // stays valid until close()
  p.close();
}

TEST(Process, ArgumentsAreTakenByValue) {
  Pipe pipe;
  std::string word = "before";
  auto target = [](int w, const std::string& s, int n) { put(w, s + std::to_string(n)); };
  mp::Process p(target, pipe.w, word, 42);
  word = "after";
  p.start();
  p.join();
  EXPECT_EQ(pipe.read_all(), "before42");
}

TEST(Process, TargetMayTakeItsCopyByReference) {
  Pipe pipe;
  mp::Process p(
      [](int w, std::vector<int>& v) {
        v.push_back(3);
        put(w, std::to_string(v.size()));
      },
      pipe.w, std::vector<int>{1, 2});
  p.start();
  p.join();
  EXPECT_EQ(pipe.read_all(), "3");
}

class Worker : public mp::Process {
 public:
  Worker(std::string name, int fd, int arg) : mp::Process({.name = std::move(name)}), fd_(fd), arg_(arg) {}

 protected:
  void run() override {
    put(fd_, "name: " + mp::current_process().name() + ", argument: " + std::to_string(arg_));
  }

 private:
  int fd_;
  int arg_;
};

TEST(Process, SubclassStyle) {
  Pipe pipe;
  Worker w("process 3", pipe.w, 3);
  w.start();
  w.join();
  EXPECT_EQ(w.exitcode(), 0);
  EXPECT_EQ(pipe.read_all(), "name: process 3, argument: 3");
  const std::string r = mp::to_string(w);
  EXPECT_EQ(r.rfind("<Worker name='process 3' pid=", 0), 0u) << r;
}

TEST(Process, DefaultProcessWithoutTargetDoesNothing) {
  mp::Process p;
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, DefaultNamesCountUp) {
  mp::Process a, b;
  const std::string na = a.name(), nb = b.name();
  ASSERT_EQ(na.rfind("Process-", 0), 0u);
  ASSERT_EQ(nb.rfind("Process-", 0), 0u);
  EXPECT_EQ(std::stoi(nb.substr(8)), std::stoi(na.substr(8)) + 1);
  mp::Process named({.name = "x"});
  mp::Process c;
  EXPECT_EQ(std::stoi(c.name().substr(8)), std::stoi(na.substr(8)) + 3);  // a name takes a number too
  c.set_name("renamed");
  EXPECT_EQ(c.name(), "renamed");
}

TEST(Process, NestedNames) {
  Pipe pipe;
  mp::Process outer([w = pipe.w] {
    mp::Process first, second([w] { put(w, mp::current_process().name()); });
    put(w, mp::current_process().name() + "|" + first.name() + "|");
    second.start();
    second.join();
  });
  const std::string outer_name = outer.name();
  outer.start();
  outer.join();
  EXPECT_EQ(outer.exitcode(), 0);
  EXPECT_EQ(pipe.read_all(), outer_name + "|" + outer_name + ":1|" + outer_name + ":2");
}

TEST(Process, CurrentAndParentProcess) {
  const mp::ProcessInfo me = mp::current_process();
  EXPECT_EQ(me.name(), "MainProcess");
  EXPECT_EQ(me.pid(), ::getpid());
  EXPECT_FALSE(me.daemon());
  EXPECT_TRUE(me.is_alive());
  EXPECT_FALSE(mp::parent_process().has_value());
  EXPECT_EQ(mp::to_string(me), "<_MainProcess name='MainProcess' parent=None started>");

  Pipe pipe;
  mp::Process p({.name = "kid", .daemon = true}, [w = pipe.w] {
    auto cur = mp::current_process();
    auto par = mp::parent_process();
    std::ostringstream os;
    os << cur.name() << ' ' << (cur.pid() == ::getpid()) << ' ' << cur.daemon() << ' '
       << (par ? par->name() : "none") << ' ' << (par ? par->pid() : 0) << ' '
       << (par && par->is_alive()) << ' ' << (cur.parent_pid() == ::getppid());
    put(w, os.str());
  });
  p.start();
  p.join();
  EXPECT_EQ(pipe.read_all(), "kid 1 1 MainProcess " + std::to_string(::getpid()) + " 1 1");
}

TEST(Process, IsAliveAndPidOfItselfInsideTheChild) {
  Pipe pipe;
  struct Self : mp::Process {
    int fd;
    explicit Self(int f) : fd(f) {}
    void run() override {
      put(fd, std::string(is_alive() ? "alive " : "dead ") +
                  (pid() == ::getpid() ? "pid-ok " : "pid-bad ") + repr());
    }
  } p(pipe.w);
  p.start();
  p.join();
  EXPECT_EQ(pipe.read_all(), "alive pid-ok <Self name='" + p.name() + "' parent=" +
                                 std::to_string(::getpid()) + " started>");
}

TEST(Process, Repr) {
  const std::string parent = std::to_string(::getpid());
  mp::Process good({.name = "good_job"}, [] {});
  EXPECT_EQ(mp::to_string(good), "<Process name='good_job' parent=" + parent + " initial>");
  good.start();
  const std::string pid = std::to_string(*good.pid());
  good.join();
  EXPECT_EQ(mp::to_string(good),
            "<Process name='good_job' pid=" + pid + " parent=" + parent + " stopped exitcode=0>");

  mp::Process fail({.name = "fail_job"}, [] { mp::exit(1); });
  fail.start();
  fail.join();
  std::ostringstream os;
  os << fail;
  EXPECT_EQ(os.str(), "<Process name='fail_job' pid=" + std::to_string(*fail.pid()) + " parent=" +
                          parent + " stopped exitcode=1>");

  mp::Process kill_job({.name = "kill_job", .daemon = true}, sleep_forever);
  kill_job.start();
  const std::string kpid = std::to_string(*kill_job.pid());
  EXPECT_EQ(mp::to_string(kill_job),
            "<Process name='kill_job' pid=" + kpid + " parent=" + parent + " started daemon>");
  kill_job.kill();
  kill_job.join();
  EXPECT_EQ(mp::to_string(kill_job), "<Process name='kill_job' pid=" + kpid + " parent=" + parent +
                                         " stopped exitcode=-SIGKILL daemon>");
  kill_job.close();
  EXPECT_EQ(mp::to_string(kill_job),
            "<Process name='kill_job' parent=" + parent + " closed daemon>");

  mp::Process quoted({.name = "it's"});
  EXPECT_EQ(mp::to_string(quoted), "<Process name=\"it's\" parent=" + parent + " initial>");
}

TEST(Process, DaemonFlag) {
  mp::Process p(sleep_forever);
  EXPECT_FALSE(p.daemon());
  p.set_daemon(true);
  EXPECT_TRUE(p.daemon());
  mp::Process q({.daemon = true}, [] {});
  EXPECT_TRUE(q.daemon());
  q.start();
  q.join();
}

// ---------------------------------------------------------------------------- misuse

template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong type: ") + e.what();
  }
  return "no exception";
}

TEST(ProcessMisuse, StartTwice) {
  mp::Process p([] {});
  p.start();
  EXPECT_EQ(message_of<mp::ProcessError>([&] { p.start(); }), "cannot start a process twice");
  p.join();
  EXPECT_EQ(message_of<mp::ProcessError>([&] { p.start(); }), "cannot start a process twice");
}

TEST(ProcessMisuse, JoinUnstarted) {
  mp::Process p([] {});
  EXPECT_EQ(message_of<mp::ProcessError>([&] { p.join(); }), "can only join a started process");
  EXPECT_EQ(message_of<mp::ProcessError>([&] { (void)p.join(1ms); }),
            "can only join a started process");
  EXPECT_EQ(message_of<mp::ProcessError>([&] { p.terminate(); }),
            "can only terminate a started process");
  EXPECT_EQ(message_of<mp::ProcessError>([&] { p.kill(); }), "can only kill a started process");
}

TEST(ProcessMisuse, SetDaemonAfterStart) {
  mp::Process p([] {});
  p.start();
  EXPECT_EQ(message_of<mp::ProcessError>([&] { p.set_daemon(true); }),
            "process has already started");
  p.join();
  EXPECT_FALSE(p.daemon());
}

TEST(ProcessMisuse, CloseWhileRunning) {
  mp::Process p(sleep_forever);
  p.start();
  EXPECT_EQ(message_of<concur::ValueError>([&] { p.close(); }),
            "Cannot close a process while it is still running. You should first call join() or "
            "terminate().");
  p.terminate();
  p.join();
  p.close();
  p.close();  // twice is fine
}

TEST(ProcessMisuse, UseAfterClose) {
  mp::Process p({.name = "closed_one"}, [] {});
  p.start();
  p.join();
  p.close();
  const char* msg = "process object is closed";
  EXPECT_EQ(message_of<concur::ValueError>([&] { p.start(); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { p.join(); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { (void)p.join(1ms); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { (void)p.is_alive(); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { (void)p.exitcode(); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { (void)p.pid(); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { (void)p.sentinel(); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { p.terminate(); }), msg);
  EXPECT_EQ(message_of<concur::ValueError>([&] { p.kill(); }), msg);
  EXPECT_EQ(p.name(), "closed_one");  // as in Python, the name stays readable
  mp::Process unstarted;
  unstarted.close();
  EXPECT_EQ(message_of<concur::ValueError>([&] { unstarted.start(); }), msg);
}

TEST(ProcessMisuse, SentinelBeforeStart) {
  mp::Process p;
  EXPECT_EQ(message_of<concur::ValueError>([&] { (void)p.sentinel(); }), "process not started");
}

TEST(ProcessMisuse, DaemonMayNotHaveChildren) {
  Pipe pipe;
  mp::Process d({.daemon = true}, [w = pipe.w] {
    mp::Process grandchild([] {});
    EXPECT_TRUE(grandchild.daemon());  // inherits the creator's flag
    put(w, message_of<mp::ProcessError>([&] { grandchild.start(); }));
  });
  d.start();
  d.join();
  EXPECT_EQ(d.exitcode(), 0);
  EXPECT_EQ(pipe.read_all(), "daemonic processes are not allowed to have children");
}

TEST(ProcessMisuse, ChildCannotUseItsSiblings) {
  mp::Process sibling(sleep_forever);
  sibling.start();
  Pipe pipe;  // created after the sibling started, so it does not hold the write end
  mp::Process unstarted;
  mp::Process p([&, w = pipe.w] {
    put(w, message_of<mp::ProcessError>([&] { sibling.join(); }) + "|");
    put(w, message_of<mp::ProcessError>([&] { (void)sibling.is_alive(); }) + "|");
    put(w, message_of<mp::ProcessError>([&] { sibling.terminate(); }) + "|");
    put(w, message_of<mp::ProcessError>([&] { unstarted.start(); }) + "|");
    put(w, mp::to_string(sibling).find(" unknown>") != std::string::npos ? "unknown" : "?");
  });
  p.start();
  p.join();
  EXPECT_EQ(pipe.read_all(),
            "can only join a child process|can only test a child process|can only terminate a "
            "child process|can only start a process object created by current process|unknown");
  EXPECT_TRUE(sibling.is_alive());
  sibling.kill();
  sibling.join();
}

// ---------------------------------------------------------------------------- module

TEST(ProcessModule, ActiveChildrenReaps) {
  EXPECT_TRUE(mp::active_children().empty());
  mp::Process a(sleep_forever), b([] {});
  a.start();
  b.start();
  auto kids = mp::active_children();
  EXPECT_NE(std::find(kids.begin(), kids.end(), &a), kids.end());
  ASSERT_TRUE(b.join(30s));
  kids = mp::active_children();
  EXPECT_EQ(kids, std::vector<mp::Process*>{&a});
  a.kill();
  a.join();
  EXPECT_TRUE(mp::active_children().empty());
  EXPECT_FALSE(ptest::has_zombie_child());
}

TEST(ProcessModule, DestroyedWhileRunningIsReapedLater) {
  Pipe go;
  pid_t pid;
  {
    mp::Process p([r = go.r] {
      char c;
      (void)!::read(r, &c, 1);
    });
    p.start();
    pid = *p.pid();
  }  // does not block, does not kill
  EXPECT_TRUE(mp::active_children().empty());  // no object to point to
  EXPECT_TRUE(ptest::pid_exists(pid));
  put(go.w, "x");
  go.close_w();
  // It ends; the runtime reaps it on the next call.
  for (int i = 0; i < 3000 && ptest::pid_exists(pid); ++i) {
    (void)mp::active_children();
    if (ptest::pid_exists(pid)) std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(ptest::pid_exists(pid));
  EXPECT_FALSE(ptest::has_zombie_child());
  EXPECT_EQ(ptest::zombie_children_in_proc(), 0);
}

TEST(ProcessModule, CpuCountFollowsAffinity) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(mp::cpu_count(), static_cast<unsigned>(CPU_COUNT(&set)));
  Pipe pipe;
  mp::Process p([w = pipe.w] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(static_cast<int>(sched_getcpu()), &one);
    ::sched_setaffinity(0, sizeof one, &one);
    put(w, std::to_string(mp::cpu_count()));
  });
  p.start();
  p.join();
  EXPECT_EQ(pipe.read_all(), "1");
}

TEST(ProcessModule, StartMethods) {
  EXPECT_EQ(mp::get_all_start_methods(), std::vector<mp::StartMethod>{mp::StartMethod::fork});
  EXPECT_EQ(mp::get_start_method(), mp::StartMethod::fork);
  EXPECT_EQ(message_of<concur::RuntimeError>([] { mp::set_start_method(mp::StartMethod::fork); }),
            "context has already been set");
  mp::set_start_method(mp::StartMethod::fork, true);
  EXPECT_EQ(message_of<concur::ValueError>(
                [] { mp::set_start_method(mp::StartMethod::spawn, true); }),
            "start method 'spawn' is not supported yet");
  EXPECT_EQ(message_of<concur::ValueError>(
                [] { mp::set_start_method(mp::StartMethod::forkserver, true); }),
            "start method 'forkserver' is not supported yet");
  EXPECT_EQ(mp::to_string(mp::StartMethod::forkserver), "forkserver");
  EXPECT_EQ(mp::get_start_method(), mp::StartMethod::fork);
}

// Output buffered in stdio before start() is written once, not once per process.
TEST(ProcessModule, BufferedOutputIsFlushedBeforeFork) {
  Pipe out;
  std::fflush(stdout);
  const int saved = ::dup(1);
  ::dup2(out.w, 1);
  std::printf("parent-before|");  // stdout is a pipe now: fully buffered
  mp::Process p([] { std::printf("child|"); });
  p.start();
  p.join();
  std::printf("parent-after");
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  EXPECT_EQ(out.read_all(), "parent-before|child|parent-after");
}

// Same when std::cout has a buffer of its own (a replaced rdbuf, as with
// sync_with_stdio(false)): flushed before fork, and by the child before it leaves.
TEST(ProcessModule, BufferedOstreamIsFlushedBeforeForkAndAtChildExit) {
  Pipe out;
  {
    __gnu_cxx::stdio_filebuf<char> buf(out.w, std::ios::out, 4096);
    std::streambuf* old = std::cout.rdbuf(&buf);
    std::cout << "parent-before|";  // stays in buf's buffer
    mp::Process p([] { std::cout << "child|"; });
    p.start();
    p.join();
    std::cout << "parent-after";
    std::cout.flush();
    std::cout.rdbuf(old);
  }  // buf closes out.w
  out.w = -1;
  EXPECT_EQ(out.read_all(), "parent-before|child|parent-after");
}

int g_marker_fd = -1;
struct StaticWitness {
  ~StaticWitness() {
    if (g_marker_fd >= 0) put(g_marker_fd, "static-destructor|");
  }
} g_witness;
void atexit_witness() {
  if (g_marker_fd >= 0) put(g_marker_fd, "atexit|");
}

// The child leaves with _exit: the parent's static destructors and atexit handlers do not
// run there.
TEST(ProcessModule, ChildSkipsParentsAtexitAndStaticDestructors) {
  static bool registered = (std::atexit(atexit_witness), true);
  (void)registered;
  Pipe pipe;
  g_marker_fd = pipe.w;
  mp::Process p([] { put(g_marker_fd, "child|"); });
  p.start();
  p.join();
  g_marker_fd = -1;
  EXPECT_EQ(pipe.read_all(), "child|");
}

// A child reaped behind concur's back (SIGCHLD ignored: the kernel reaps it) does not hang
// join(); its status is lost, reported as 255.
TEST(ProcessModule, ChildReapedElsewhereDoesNotHangJoin) {
  struct sigaction old {};
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGCHLD, &ign, &old);
  const int fds = ptest::count_fds();
  for (int i = 0; i < 50; ++i) {  // the child may even be gone before start() returns
    mp::Process p([] { mp::exit(3); });
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 255);
    EXPECT_FALSE(p.is_alive());
    pollfd pf{*p.sentinel(), POLLIN, 0};
    EXPECT_EQ(::poll(&pf, 1, 0), 1);
  }
  ::sigaction(SIGCHLD, &old, nullptr);
  EXPECT_EQ(ptest::count_fds(), fds);
  EXPECT_TRUE(mp::active_children().empty());
}

// The zombie detectors used below do see a zombie.
TEST(ProcessModule, ZombieDetectorsWork) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  siginfo_t si{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT), 0);  // now a zombie
  EXPECT_TRUE(ptest::has_zombie_child());
  EXPECT_EQ(ptest::zombie_children_in_proc(), 1);
  int st;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_FALSE(ptest::has_zombie_child());
  EXPECT_EQ(ptest::zombie_children_in_proc(), 0);
}

// No fd and no zombie survives many start/join/close cycles (checked through /proc).
TEST(ProcessModule, NoLeaksOverManyCycles) {
  (void)mp::active_children();
  const int fds = ptest::count_fds();
  for (int i = 0; i < 300; ++i) {
    mp::Process p([i] {
      if (i % 3 == 1) {
        ::close(2);  // keep the exception report off the test output
        throw std::runtime_error("x");
      }
      if (i % 3 == 2) mp::exit(2);
    });
    p.start();
    if (i % 2) {
      p.join();
      EXPECT_EQ(p.exitcode(), i % 3);
    } else {
      while (p.is_alive()) (void)p.join(10ms);
    }
    if (i % 4 == 0) p.close();
  }
  EXPECT_EQ(ptest::count_fds(), fds);
  EXPECT_FALSE(ptest::has_zombie_child());
  EXPECT_EQ(ptest::zombie_children_in_proc(), 0);
  EXPECT_TRUE(mp::active_children().empty());
}

}  // namespace
