// concur-test: labels=no_tsan
// Processes and threads together. no_tsan: these tests fork while another thread of the
// test program is running (the multi-threaded-parent case ThreadSanitizer cannot follow),
// or run threads in a forked child whose thread registry was rebuilt after fork.
// They also skip themselves under TSan, in case the label does not reach CTest.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <concur/multiprocessing.hpp>
#include <concur/threading.hpp>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "process_util.hpp"

namespace mp = concur::multiprocessing;
namespace th = concur::threading;
using namespace std::chrono_literals;
using ptest::Pipe;
using ptest::put;

namespace {

class ProcessThreads : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(__SANITIZE_THREAD__)
    GTEST_SKIP() << "forks with threads around: not followable by ThreadSanitizer";
#endif
  }
};

// Only the forking thread exists in the child; the thread registry says so.
TEST_F(ProcessThreads, ChildSeesOnlyItsOwnThread) {
  th::Event stop;
  th::Thread busy({.name = "busy"}, [&] { stop.wait(); });
  busy.start();
  ASSERT_EQ(th::active_count(), 2u);
  Pipe pipe;
  mp::Process p([w = pipe.w] {
    put(w, std::to_string(th::active_count()) + " " +
               (th::current_thread().is_alive() ? "alive" : "dead"));
  });
  p.start();
  p.join();
  stop.set();
  busy.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(pipe.read_all(), "1 alive");
}

// start()/join() from several threads at once: every child is reaped exactly once.
TEST_F(ProcessThreads, ConcurrentStartJoinFromThreads) {
  const int fds = ptest::count_fds();
  std::atomic<int> ok{0};
  std::vector<std::unique_ptr<th::Thread>> threads;
  for (int t = 0; t < 4; ++t) {
    threads.push_back(std::make_unique<th::Thread>([&ok, t] {
      for (int i = 0; i < 25; ++i) {
        mp::Process p([t] { mp::exit(t); });
        p.start();
        p.join();
        if (p.exitcode() == t) ok.fetch_add(1);
      }
    }));
    threads.back()->start();
  }
  for (auto& t : threads) t->join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_TRUE(mp::active_children().empty());
  EXPECT_FALSE(ptest::has_zombie_child());
  EXPECT_EQ(ptest::count_fds(), fds);
}

// Two threads join the same child: both return, the exit code is the same.
TEST_F(ProcessThreads, TwoJoinersOneChild) {
  Pipe go;
  mp::Process p([r = go.r] {
    char c;
    (void)!::read(r, &c, 1);
    mp::exit(4);
  });
  p.start();
  std::atomic<int> seen{0};
  th::Thread a([&] { p.join(); seen += *p.exitcode(); });
  th::Thread b([&] { p.join(); seen += *p.exitcode(); });
  a.start();
  b.start();
  put(go.w, "x");
  a.join();
  b.join();
  EXPECT_EQ(seen.load(), 8);
}

// A non-daemon thread started by the child's target is joined before the child exits
// (Python's threading._shutdown in the child).
TEST_F(ProcessThreads, ChildJoinsItsNonDaemonThreads) {
  Pipe pipe;
  mp::Process p([w = pipe.w] {
    auto* t = new th::Thread([w] {
      std::this_thread::sleep_for(100ms);
      put(w, "thread-done|");
    });
    t->start();
    put(w, "target-returns|");
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(pipe.read_all(), "target-returns|thread-done|");
}

// A daemon started from a non-main thread is not tied to that thread's life (no
// PR_SET_PDEATHSIG there): it keeps running after the starting thread ended.
TEST_F(ProcessThreads, DaemonOutlivesTheThreadThatStartedIt) {
  std::unique_ptr<mp::Process> d;
  th::Thread starter([&] {
    d = std::make_unique<mp::Process>(mp::ProcessOptions{.daemon = true}, [] {
      for (;;) ::pause();
    });
    d->start();
  });
  starter.start();
  starter.join();
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(d->is_alive());
  d->terminate();
  d->join();
  EXPECT_EQ(d->exitcode(), -15);
}

}  // namespace
