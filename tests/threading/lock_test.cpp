// threading::Lock — Python's lock_tests (BaseLockTests, LockTests) ported, plus the
// standard Lockable/TimedLockable requirements.
// concur-test: timeout=60
#include "concur/threading/lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace {
using namespace std::chrono_literals;
using concur::RuntimeError;
using concur::ValueError;
using concur::threading::Lock;

TEST(Lock, AcquireRelease) {
  Lock lock;
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire());
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, NonBlockingAcquire) {
  Lock lock;
  EXPECT_TRUE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(false));  // not reentrant
  std::thread t([&] { EXPECT_FALSE(lock.acquire(false)); });
  t.join();
  lock.release();
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

// BaseLockTests.test_timeout
TEST(Lock, TimeoutArgumentsAndExpiry) {
  Lock lock;
  EXPECT_THROW((void)lock.acquire(false, 1s), ValueError);
  EXPECT_THROW((void)lock.acquire(-100ms), ValueError);
  EXPECT_THROW((void)lock.acquire(true, -1ns), ValueError);
  try {
    (void)lock.acquire(false, 1s);
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "can't specify a timeout for a non-blocking call");
  }
  try {
    (void)lock.acquire(-1s);
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "timeout value must be a non-negative number");
  }
  EXPECT_FALSE(lock.locked());  // the bad calls changed nothing
  EXPECT_TRUE(lock.acquire(0s));  // zero timeout on a free lock succeeds
  std::thread t([&] {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(lock.acquire(200ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);  // lower bound only
    EXPECT_FALSE(lock.acquire(0s));
  });
  t.join();
  lock.release();
}

// LockTests.test_different_thread: a lock acquired in one thread is released by another.
TEST(Lock, ReleasedByAnotherThread) {
  Lock lock;
  lock.acquire();
  std::thread t([&] { lock.release(); });
  t.join();
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
}

// A lock taken in another thread, released here, wakes a blocked acquirer there.
TEST(Lock, BinarySemaphoreHandOff) {
  Lock lock;
  std::atomic<int> stage{0};
  lock.acquire();
  std::thread t([&] {
    lock.acquire();  // blocks until main releases
    stage = 1;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(stage.load(), 0);
  lock.release();
  t.join();
  EXPECT_EQ(stage.load(), 1);
  EXPECT_TRUE(lock.locked());  // t acquired it and never released
  lock.release();
}

// LockTests.test_state_after_timeout
TEST(Lock, StateAfterTimeout) {
  Lock lock;
  lock.acquire();
  std::thread t([&] { EXPECT_FALSE(lock.acquire(20ms)); });
  t.join();
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(lock.acquire(0s));
  lock.release();
}

TEST(Lock, ReleaseUnlockedThrows) {
  Lock lock;
  try {
    lock.release();
    FAIL() << "no exception";
  } catch (const RuntimeError& e) {
    EXPECT_STREQ(e.what(), "release unlocked lock");
  }
  lock.acquire();
  lock.release();
  EXPECT_THROW(lock.release(), RuntimeError);
  // unlock() (Lockable) is noexcept: that misuse aborts (LockDeathTest below).
}

TEST(Lock, MutualExclusionManyThreads) {
  Lock lock;
  long counter = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard g(lock);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 80000);
  EXPECT_FALSE(lock.locked());
}

TEST(Lock, StandardLockableAndTimedLockable) {
  Lock a, b;
  {
    std::scoped_lock g(a, b);
    EXPECT_TRUE(a.locked());
    EXPECT_TRUE(b.locked());
  }
  EXPECT_FALSE(a.locked());
  EXPECT_FALSE(b.locked());
  {
    std::unique_lock g(a, std::defer_lock);
    EXPECT_TRUE(g.try_lock_for(10ms));
    std::thread t([&] {
      EXPECT_FALSE(a.try_lock());
      EXPECT_FALSE(a.try_lock_for(10ms));
      EXPECT_FALSE(a.try_lock_until(std::chrono::steady_clock::now() + 10ms));
      EXPECT_FALSE(a.try_lock_until(std::chrono::system_clock::now() + 10ms));
      EXPECT_FALSE(a.try_lock_for(-5ms));  // std semantics: like try_lock, no throw
    });
    t.join();
  }
  EXPECT_FALSE(a.locked());
  EXPECT_TRUE(a.try_lock_until(std::chrono::system_clock::now() + 10ms));
  a.unlock();
}

TEST(Lock, WorksWithConditionVariableAny) {
  Lock lock;
  std::condition_variable_any cv;
  bool ready = false;
  std::thread t([&] {
    std::unique_lock g(lock);
    cv.wait(g, [&] { return ready; });
    EXPECT_TRUE(lock.locked());
  });
  {
    std::lock_guard g(lock);
    ready = true;
  }
  cv.notify_all();
  t.join();
  EXPECT_FALSE(lock.locked());
}

}  // namespace

// Issue 9: `{ std::lock_guard g(l); l.release(); }` — the guard's unlock() of an unlocked
// lock. Lockable unlock() is noexcept: misuse aborts with a clear message instead of
// std::terminate from an exception in a destructor.
static_assert(noexcept(std::declval<concur::threading::Lock&>().unlock()));
static_assert(noexcept(std::declval<concur::threading::RLock&>().unlock()));

TEST(LockDeathTest, ReleaseInsideLockGuardAbortsWithAClearMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        concur::threading::Lock l;
        std::lock_guard g(l);
        l.release();
      },
      "concur: threading::Lock::unlock\\(\\): release unlocked lock");
  EXPECT_DEATH(
      {
        concur::threading::RLock r;
        std::lock_guard g(r);
        r.release();
      },
      "concur: threading::RLock::unlock\\(\\): cannot release un-acquired lock");
}
