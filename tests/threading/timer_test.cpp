// concur::threading::Timer: fires once after the interval with its arguments, cancel()
// before firing prevents the call, cancel() after is harmless, it is a Thread (name, join,
// repr), and an exception from the function goes to the excepthook.
// concur-test: timeout=60
#include "concur/threading/timer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace {
using namespace std::chrono_literals;
namespace th = concur::threading;
using Clock = std::chrono::steady_clock;

TEST(Timer, FiresAfterIntervalWithArgs) {
  std::atomic<int> calls{0};
  std::string got;
  const auto t0 = Clock::now();
  Clock::time_point fired;
  th::Timer t(100ms, [&](std::string s, int n) {
    got = s + std::to_string(n);
    fired = Clock::now();
    ++calls;
  }, std::string("x"), 7);
  EXPECT_FALSE(t.finished());
  t.start();
  t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(got, "x7");
  EXPECT_GE(fired - t0, 100ms);  // a lower bound only
  EXPECT_TRUE(t.finished());
}

TEST(Timer, CancelBeforeFiringPreventsTheCall) {
  std::atomic<int> calls{0};
  th::Timer t(30s, [&] { ++calls; });
  t.start();
  EXPECT_TRUE(t.is_alive());
  t.cancel();
  t.join();  // returns at once: the wait is woken, not timed out
  EXPECT_EQ(calls.load(), 0);
  EXPECT_FALSE(t.is_alive());
  EXPECT_TRUE(t.finished());
}

TEST(Timer, CancelBeforeStart) {
  std::atomic<int> calls{0};
  th::Timer t(10ms, [&] { ++calls; });
  t.cancel();
  t.start();
  t.join();
  EXPECT_EQ(calls.load(), 0);
}

TEST(Timer, CancelAfterFiringIsHarmless) {
  std::atomic<int> calls{0};
  th::Timer t(1ms, [&] { ++calls; });
  t.start();
  t.join();
  t.cancel();
  t.cancel();
  EXPECT_EQ(calls.load(), 1);
}

TEST(Timer, IsAThread) {
  th::Timer t({.name = "tick", .daemon = true}, 1ms, [] {});
  EXPECT_EQ(t.name(), "tick");
  EXPECT_TRUE(t.daemon());
  EXPECT_EQ(th::to_string(t), "<Timer(tick, initial daemon)>");
  th::Thread& base = t;
  base.start();
  EXPECT_THROW(t.start(), concur::RuntimeError);
  EXPECT_TRUE(t.join(30s));
  th::Timer unnamed(1ms, [] {});
  EXPECT_THAT(unnamed.name(), ::testing::StartsWith("Thread-"));
}

TEST(Timer, ExceptionGoesToExcepthook) {
  std::string what;
  th::set_excepthook([&](const th::ExceptHookArgs& a) { what = a.what; });
  th::Timer t(1ms, [] { throw std::runtime_error("timer failed"); });
  t.start();
  t.join();
  th::set_excepthook({});
  EXPECT_EQ(what, "timer failed");
  EXPECT_TRUE(t.finished());
}

TEST(Timer, DestroyedStartedTimerStillFires) {
  std::atomic<int> calls{0};
  {
    th::Timer t(20ms, [&] { ++calls; });
    t.start();
  }  // like Python: dropping the object does not cancel it
  for (int i = 0; i < 5000 && calls.load() == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
