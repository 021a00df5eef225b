// threading::Semaphore / BoundedSemaphore — Python's BaseSemaphoreTests ported
// (constructor, multirelease with Semaphore(7) and 10 threads, release_unacquired on both
// kinds, timeouts), plus Lockable use.
// concur-test: timeout=60
#include "concur/threading/semaphore.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using concur::ValueError;
using concur::threading::BoundedSemaphore;
using concur::threading::Semaphore;

TEST(Semaphore, Constructor) {
  try {
    Semaphore s(-1);
    FAIL() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "semaphore initial value must be >= 0");
  }
  EXPECT_THROW(BoundedSemaphore(-5), ValueError);
  Semaphore s0(0);
  EXPECT_EQ(s0.value(), 0);
  Semaphore s1;
  EXPECT_EQ(s1.value(), 1);
}

TEST(Semaphore, AcquireRelease) {
  Semaphore s(2);
  EXPECT_TRUE(s.acquire());
  EXPECT_TRUE(s.acquire(false));
  EXPECT_FALSE(s.acquire(false));
  EXPECT_FALSE(s.acquire(10ms));
  EXPECT_FALSE(s.acquire(-1s));  // negative: do not block (Python)
  s.release();
  EXPECT_EQ(s.value(), 1);
  s.release(3);
  EXPECT_EQ(s.value(), 4);
}

TEST(Semaphore, BadArguments) {
  Semaphore s(1);
  try {
    s.release(0);
    FAIL() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "n must be one or more");
  }
  EXPECT_THROW(s.release(-2), ValueError);
  try {
    (void)s.acquire(false, 1s);
    FAIL() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "can't specify a timeout for a non-blocking call");
  }
  EXPECT_EQ(s.value(), 1);
}

// BaseSemaphoreTests.test_multirelease: release(n) lets exactly n acquirers through.
TEST(Semaphore, MultiRelease) {
  Semaphore sem(7);
  sem.acquire();
  std::mutex mu;
  std::vector<int> results1, results2;
  std::atomic<int> phase{0};
  auto total = [&] {
    std::lock_guard g(mu);
    return results1.size() + results2.size();
  };
  auto wait_total = [&](std::size_t n) {
    while (total() < n) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);  // and no more than n go through
  };
  std::vector<std::thread> ts;
  for (int i = 0; i < 10; ++i)
    ts.emplace_back([&] {
      sem.acquire();
      {
        std::lock_guard g(mu);
        results1.push_back(phase);
      }
      sem.acquire();
      std::lock_guard g(mu);
      results2.push_back(phase);
    });
  auto all = [&] {
    std::lock_guard g(mu);
    std::vector<int> v(results1);
    v.insert(v.end(), results2.begin(), results2.end());
    std::sort(v.begin(), v.end());
    return v;
  };
  wait_total(6);
  EXPECT_EQ(all(), std::vector<int>(6, 0));
  phase = 1;
  sem.release(7);
  wait_total(13);
  std::vector<int> want(6, 0);
  want.insert(want.end(), 7, 1);
  EXPECT_EQ(all(), want);
  phase = 2;
  sem.release(6);
  wait_total(19);
  want.insert(want.end(), 6, 2);
  EXPECT_EQ(all(), want);
  EXPECT_FALSE(sem.acquire(false));  // still locked
  sem.release();  // the last thread finishes
  for (auto& t : ts) t.join();
  EXPECT_EQ(sem.value(), 0);
}

// test_release_unacquired: a plain Semaphore may be released above its initial value...
TEST(Semaphore, ReleaseUnacquiredIsAllowed) {
  Semaphore s(1);
  s.release();
  EXPECT_EQ(s.value(), 2);
  EXPECT_TRUE(s.acquire());
  EXPECT_TRUE(s.acquire());
  EXPECT_FALSE(s.acquire(false));
}

// ...a BoundedSemaphore may not.
TEST(BoundedSemaphore, ReleaseUnacquiredThrows) {
  BoundedSemaphore s(2);
  try {
    s.release();
    FAIL() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "Semaphore released too many times");
  }
  s.acquire();
  s.acquire();
  EXPECT_THROW(s.release(3), ValueError);  // all-or-nothing
  EXPECT_EQ(s.value(), 0);
  s.release(2);
  EXPECT_EQ(s.value(), 2);
  EXPECT_THROW(s.release(), ValueError);
  Semaphore& base = s;  // through the base class the bound still holds
  EXPECT_THROW(base.release(), ValueError);
  // unlock() (Lockable) is noexcept: that misuse aborts (lock_test's death test).
}

// Beyond Python: the value is a 32-bit counter capped at INT_MAX so value() stays exact.
TEST(Semaphore, OverflowIsRefused) {
  Semaphore s(INT32_MAX - 1);
  s.release();
  EXPECT_EQ(s.value(), INT32_MAX);
  try {
    s.release();
    FAIL() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "semaphore value would overflow");
  }
  EXPECT_EQ(s.value(), INT32_MAX);
}

TEST(Semaphore, TimedAcquireWokenByRelease) {
  Semaphore s(0);
  std::atomic<bool> got{false};
  std::thread t([&] { got = s.acquire(10s); });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(got.load());
  s.release();
  t.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(s.value(), 0);
}

TEST(Semaphore, LimitsConcurrency) {
  Semaphore s(3);
  std::atomic<int> inside{0}, peak{0};
  std::vector<std::thread> ts;
  for (int k = 0; k < 6; ++k)
    ts.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::lock_guard g(s);  // Lockable
        const int now = ++inside;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        --inside;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 1);
  EXPECT_EQ(s.value(), 3);
}

TEST(Semaphore, TimedLockable) {
  BoundedSemaphore s(1);
  std::unique_lock g(s, std::defer_lock);
  EXPECT_TRUE(g.try_lock_for(1ms));
  EXPECT_FALSE(s.try_lock());
  EXPECT_FALSE(s.try_lock_for(5ms));
  EXPECT_FALSE(s.try_lock_until(std::chrono::system_clock::now() + 5ms));
  g.unlock();
  EXPECT_TRUE(s.try_lock_until(std::chrono::steady_clock::now() + 5ms));
  s.unlock();
  EXPECT_EQ(s.value(), 1);
}

}  // namespace
