// threading::RLock — Python's RLockTests ported (release un-acquired, different thread,
// reentrancy), plus Lockable/TimedLockable use through the standard library.
// concur-test: timeout=60
#include "concur/threading/lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using concur::RuntimeError;
using concur::ValueError;
using concur::threading::RLock;

TEST(RLock, Reentrancy) {
  RLock lock;
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.acquire(false));
  EXPECT_TRUE(lock.acquire(10ms));
  EXPECT_EQ(lock.level(), 4u);
  EXPECT_TRUE(lock.is_owned());
  for (int i = 0; i < 3; ++i) lock.release();
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_FALSE(lock.is_owned());
  EXPECT_EQ(lock.level(), 0u);
}

// RLockTests.test_release_unacquired
TEST(RLock, ReleaseUnacquiredThrows) {
  RLock lock;
  try {
    lock.release();
    FAIL() << "no exception";
  } catch (const RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot release un-acquired lock");
  }
  lock.acquire();
  lock.acquire();
  lock.release();
  lock.acquire();
  lock.release();
  lock.release();
  EXPECT_THROW(lock.release(), RuntimeError);
  // unlock() (Lockable) is noexcept: that misuse aborts (lock_test's death test).
}

// RLockTests.test_different_thread: the owner is checked.
TEST(RLock, ReleaseByOtherThreadThrows) {
  RLock lock;
  std::atomic<bool> held{false}, done{false};
  std::thread t([&] {
    lock.acquire();
    held = true;
    while (!done) std::this_thread::sleep_for(1ms);
    lock.release();
  });
  while (!held) std::this_thread::sleep_for(1ms);
  EXPECT_THROW(lock.release(), RuntimeError);
  EXPECT_FALSE(lock.is_owned());
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(10ms));
  done = true;
  t.join();
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

TEST(RLock, TimeoutArguments) {
  RLock lock;
  EXPECT_THROW((void)lock.acquire(false, 1s), ValueError);
  EXPECT_THROW((void)lock.acquire(-1ms), ValueError);
  EXPECT_FALSE(lock.locked());
  lock.acquire();
  std::thread t([&] { EXPECT_FALSE(lock.acquire(50ms)); });
  t.join();
  lock.release();
}

TEST(RLock, MutualExclusionWithRecursion) {
  RLock lock;
  long counter = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        std::lock_guard outer(lock);
        std::lock_guard inner(lock);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 40000);
  EXPECT_FALSE(lock.locked());
}

TEST(RLock, StandardLockable) {
  RLock a;
  {
    std::unique_lock g1(a);
    std::unique_lock g2(a, std::try_to_lock);
    EXPECT_TRUE(g2.owns_lock());
    std::unique_lock g3(a, std::defer_lock);
    EXPECT_TRUE(g3.try_lock_for(1ms));
    EXPECT_TRUE(g3.owns_lock());
    EXPECT_EQ(a.level(), 3u);
    std::thread t([&] {
      EXPECT_FALSE(a.try_lock());
      EXPECT_FALSE(a.try_lock_until(std::chrono::steady_clock::now() + 5ms));
    });
    t.join();
  }
  EXPECT_FALSE(a.locked());
}

}  // namespace
