// threading::Event — Python's EventTests ported (is_set, notify of many waiters,
// test_timeout with 5 threads, set/clear), plus a stress of set/clear hand-offs.
// concur-test: timeout=60
#include "concur/threading/event.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "../helpers/blocked.hpp"

namespace {
using namespace std::chrono_literals;
using concur::threading::Event;

TEST(Event, IsSetSetClear) {
  Event e;
  EXPECT_FALSE(e.is_set());
  e.set();
  EXPECT_TRUE(e.is_set());
  e.set();
  EXPECT_TRUE(e.is_set());
  e.clear();
  EXPECT_FALSE(e.is_set());
  e.clear();
  EXPECT_FALSE(e.is_set());
}

// EventTests.test_notify: set() wakes every waiter.
TEST(Event, SetWakesAllWaiters) {
  Event e;
  std::atomic<int> woke{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i)
    ts.emplace_back([&] {
      EXPECT_TRUE(e.wait());
      ++woke;
    });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(woke.load(), 0);
  e.set();
  for (auto& t : ts) t.join();
  EXPECT_EQ(woke.load(), 5);
}

// Issue 9: set() immediately followed by clear() wakes every waiter (Python: all wake and
// wait() returns True). The flag word carries a generation, so the waiters' futex word
// changed even though the flag is clear again when they look.
TEST(Event, SetThenClearWakesEveryWaiter) {
  for (int round = 0; round < 5; ++round) {
    Event e;
    std::atomic<int> woke{0};
    std::vector<std::thread> ts;
    std::vector<std::atomic<int>> tids(5);
    for (int i = 0; i < 5; ++i)
      ts.emplace_back([&, i] {
        tids[static_cast<std::size_t>(i)] = concur_test::gettid_now();
        if (e.wait(20s)) ++woke;
      });
    for (auto& t : tids) {
      while (t.load() == 0) std::this_thread::yield();
      ASSERT_TRUE(concur_test::wait_blocked_in(::getpid(), t.load()));
    }
    e.set();
    e.clear();
    for (auto& t : ts) t.join();
    EXPECT_EQ(woke.load(), 5) << "round " << round;
    EXPECT_FALSE(e.is_set());
  }
}

// EventTests.test_timeout: 5 threads; wait(0) False, wait(t) False after >= t; after
// set() both True.
TEST(Event, TimeoutFiveThreads) {
  Event e;
  std::mutex mu;
  std::vector<bool> results1;
  std::vector<std::pair<bool, std::chrono::steady_clock::duration>> results2;
  const auto timeout = 100ms;
  auto f = [&] {
    const bool r1 = e.wait(0s);
    const auto t0 = std::chrono::steady_clock::now();
    const bool r2 = e.wait(timeout);
    const auto dt = std::chrono::steady_clock::now() - t0;
    std::lock_guard g(mu);
    results1.push_back(r1);
    results2.emplace_back(r2, dt);
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i) ts.emplace_back(f);
  for (auto& t : ts) t.join();
  ts.clear();
  EXPECT_EQ(results1, std::vector<bool>(5, false));
  ASSERT_EQ(results2.size(), 5u);
  for (auto& [r, dt] : results2) {
    EXPECT_FALSE(r);
    EXPECT_GE(dt, timeout);  // lower bound only
  }
  results1.clear();
  results2.clear();
  e.set();
  for (int i = 0; i < 5; ++i) ts.emplace_back(f);
  for (auto& t : ts) t.join();
  EXPECT_EQ(results1, std::vector<bool>(5, true));
  for (auto& [r, dt] : results2) EXPECT_TRUE(r);
}

TEST(Event, NegativeTimeoutPolls) {
  Event e;
  EXPECT_FALSE(e.wait(-1s));
  EXPECT_FALSE(e.wait_until(std::chrono::system_clock::now() - 1s));
  e.set();
  EXPECT_TRUE(e.wait(-1s));
  EXPECT_TRUE(e.wait_until(std::chrono::steady_clock::now() + 1ms));
}

TEST(Event, TimedWaitWokenBySet) {
  Event e;
  std::atomic<int> r{-1};
  std::thread t([&] { r = e.wait(30s) ? 1 : 0; });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(r.load(), -1);
  e.set();
  t.join();
  EXPECT_EQ(r.load(), 1);
}

// Ping-pong with two events for many rounds: a lost wake-up deadlocks (test timeout).
TEST(Event, PingPongStress) {
  Event ping, pong;
  const int kRounds = 20000;
  std::thread t([&] {
    for (int i = 0; i < kRounds; ++i) {
      ping.wait();
      ping.clear();
      pong.set();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  t.join();
  EXPECT_FALSE(ping.is_set());
  EXPECT_FALSE(pong.is_set());
}

}  // namespace
