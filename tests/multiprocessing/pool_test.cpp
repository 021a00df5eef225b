// concur-test: timeout=120
// multiprocessing::Pool on the process-pool engine: apply/map/starmap/imap*, AsyncResult,
// Callbacks, close/terminate/join and Python's error texts, crash injection. Runs under
// TSan (the fork server and the workers never start threads).
#include "concur/multiprocessing/pool.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "concur/errors.hpp"
#include "process_util.hpp"

namespace mp = concur::multiprocessing;
namespace fut = concur::futures;
using namespace std::chrono_literals;

namespace {
int square(int x) {
  return x * x;
}
int add(int a, int b) {
  return a + b;
}
int fail_on_3(int x) {
  if (x == 3) throw std::invalid_argument("three");
  return x;
}
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int kill_self(int sig) {
  if (sig == 3) ::_exit(3);
  ::signal(sig, SIG_DFL);  // a sanitizer's SIGSEGV handler would turn it into exit(1)
  ::raise(sig);
  return 0;
}
}  // namespace

TEST(MpPool, ApplyAndApplyAsync) {
  mp::Pool pool(2);
  EXPECT_EQ(pool.processes(), 2u);
  EXPECT_EQ(pool.apply(square, 9), 81);
  EXPECT_EQ(pool.apply(add, 2, 3), 5);
  auto r = pool.apply_async(square, 5);
  EXPECT_EQ(r.get(), 25);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  auto bad = pool.apply_async(fail_on_3, 3);
  EXPECT_THROW(bad.get(), std::invalid_argument);
  EXPECT_FALSE(bad.successful());
}

TEST(MpPool, AsyncResultTimeoutsAndNotReady) {
  mp::Pool pool(1);
  auto slow = pool.apply_async(sleep_ms, 400);
  EXPECT_THROW(slow.get(10ms), concur::TimeoutError);
  if (!slow.ready()) {
    try {
      (void)slow.successful();
      FAIL() << "successful() before ready";
    } catch (const concur::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("not ready"), std::string::npos);
    }
  }
  slow.wait(0ms);
  slow.wait();
  EXPECT_EQ(slow.get(), 400);
}

TEST(MpPool, MapStarmapImapOrderingChunksEmpty) {
  mp::Pool pool(2);
  std::vector<int> in(777);
  for (int i = 0; i < 777; ++i) in[static_cast<std::size_t>(i)] = i;
  for (std::size_t cs : {0, 1, 5, 1000}) {
    auto out = pool.map(square, in, cs);
    ASSERT_EQ(out.size(), in.size());
    for (int i = 0; i < 777; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i * i);
  }
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap(add, pairs), (std::vector<int>{3, 7, 11}));
  std::vector<int> got;
  for (int v : pool.imap(square, in, 10)) got.push_back(v);
  ASSERT_EQ(got.size(), in.size());
  EXPECT_EQ(got[776], 776 * 776);
  std::vector<int> un;
  for (int v : pool.imap_unordered(square, in, 7)) un.push_back(v);
  std::sort(un.begin(), un.end());
  ASSERT_EQ(un.size(), in.size());
  for (int i = 0; i < 777; ++i) ASSERT_EQ(un[static_cast<std::size_t>(i)], i * i);
  // map's exception: the chunk's error for the whole map (as Python).
  EXPECT_THROW(pool.map(fail_on_3, in, 4), std::invalid_argument);
  EXPECT_EQ(pool.map(square, std::vector<int>{2}), std::vector<int>{4});
}

TEST(MpPool, CallbacksAndErrorCallbacks) {
  mp::Pool pool(2);
  std::atomic<int> sum{0};
  std::atomic<int> errors{0};
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 10; ++i)
    rs.push_back(
        pool.apply_async(mp::Callbacks{.callback = [&](const int& v) { sum += v; },
                                       .error_callback = [&](std::exception_ptr) { ++errors; }},
                         fail_on_3, i));
  for (auto& r : rs) r.wait();
  auto m = pool.map_async(
      mp::Callbacks{
          .callback = [&](const std::vector<int>& v) { sum += static_cast<int>(v.size()) * 1000; }},
      square, std::vector<int>{1, 2, 3});
  EXPECT_EQ(m.get(), (std::vector<int>{1, 4, 9}));
  pool.close();
  pool.join();  // callbacks have run once the workers are gone
  EXPECT_EQ(errors.load(), 1);
  EXPECT_EQ(sum.load(), 45 - 3 + 3000);
}

TEST(MpPool, CloseTerminateJoinErrors) {
  mp::Pool pool(2);
  EXPECT_THROW(pool.join(), concur::ValueError);
  try {
    pool.join();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "Pool is still running");
  }
  auto r = pool.apply_async(square, 4);
  pool.close();
  try {
    (void)pool.apply_async(square, 1);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "Pool not running");
  }
  EXPECT_THROW(pool.map(square, std::vector<int>{1}), concur::ValueError);
  pool.join();
  EXPECT_EQ(r.get(), 16);  // queued work finishes after close()
  EXPECT_THROW(mp::Pool(0u), concur::ValueError);
}

TEST(MpPool, TerminateKillsRunningWorkAndReapsEverything) {
  const int fds = ptest::count_fds();
  std::vector<int> pids;
  std::vector<mp::AsyncResult<int>> rs;
  {
    mp::Pool pool(2);
    for (int i = 0; i < 6; ++i) rs.push_back(pool.apply_async(sleep_ms, 5000));
    while (!rs[0].future().running()) std::this_thread::yield();
    pids = pool.worker_pids();
    pool.terminate();
    pool.join();
  }
  for (auto& r : rs) {
    ASSERT_TRUE(r.ready());  // nothing waits forever
    EXPECT_ANY_THROW(r.get());
  }
  for (int p : pids) EXPECT_FALSE(ptest::pid_exists(p));
  EXPECT_EQ(ptest::count_fds(), fds);
  EXPECT_FALSE(ptest::has_zombie_child());
}

TEST(MpPool, KilledWorkerDoesNotHangTheMap) {
  // cpython#66587: Python's Pool waits forever here.
  mp::Pool pool(2);
  for (int sig : {SIGKILL, SIGSEGV, 3}) {
    auto crash = pool.apply_async(kill_self, sig);
    try {
      crash.get();
      FAIL();
    } catch (const fut::BrokenProcessPool& e) {
      EXPECT_NE(std::string(e.what()).find(sig == 3         ? "exited with code 3"
                                           : sig == SIGKILL ? "SIGKILL"
                                                            : "SIGSEGV"),
                std::string::npos)
          << e.what();
    }
    std::vector<int> in(200, 3);
    auto out = pool.map(square, in, 1);
    EXPECT_EQ(out, std::vector<int>(200, 9));
  }
}

// A crash fails only the task that crashed: the tasks its worker finished just before (their
// results still in its outgoing batch) call their callbacks with their values.
TEST(MpPool, CrashKeepsTheResultsItsWorkerFinished) {
  mp::Pool pool(1);
  std::atomic<long> sum{0};
  std::atomic<int> errors{0}, broken{0};
  mp::Callbacks<std::function<void(const int&)>, std::function<void(std::exception_ptr)>> cb{
      .callback = [&](const int& v) { sum += v; },
      .error_callback =
          [&](std::exception_ptr e) {
            ++errors;
            try {
              std::rethrow_exception(e);
            } catch (const fut::BrokenProcessPool&) {
              ++broken;
            } catch (...) {
            }
          }};
  std::vector<mp::AsyncResult<int>> rs;
  rs.push_back(pool.apply_async(cb, sleep_ms, 100));  // the worker is busy meanwhile
  long expect = 100;
  for (int i = 0; i < 30; ++i) {
    rs.push_back(pool.apply_async(cb, square, i));
    expect += i * i;
  }
  auto crash = pool.apply_async(cb, kill_self, SIGKILL);
  for (int i = 30; i < 60; ++i) {
    rs.push_back(pool.apply_async(cb, square, i));
    expect += i * i;
  }
  for (auto& r : rs) r.wait();
  crash.wait();
  EXPECT_THROW(crash.get(), fut::BrokenProcessPool);
  for (auto& r : rs) EXPECT_TRUE(r.successful());
  pool.close();
  pool.join();  // callbacks have run
  EXPECT_EQ(errors.load(), 1);
  EXPECT_EQ(broken.load(), 1);
  EXPECT_EQ(sum.load(), expect);
}

TEST(MpPool, MaxTasksPerChildAndInitializerFailure) {
  {
    mp::Pool pool(2, {.maxtasksperchild = 2});
    std::vector<int> pids;
    for (int i = 0; i < 12; ++i) pids.push_back(pool.apply([](int) { return ::getpid(); }, i));
    std::sort(pids.begin(), pids.end());
    EXPECT_GE(std::unique(pids.begin(), pids.end()) - pids.begin(), 6);
  }
  mp::Pool broken(2, {.initializer = [] { throw std::runtime_error("init boom"); }});
  EXPECT_THROW(broken.apply(square, 1), fut::BrokenProcessPool);
}
