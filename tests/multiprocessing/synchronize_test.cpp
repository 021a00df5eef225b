// concur-test: timeout=120
// Cross-process Lock, RLock, Semaphore, BoundedSemaphore, Event (and Condition, Barrier):
// the threading interfaces working across fork()ed processes, Python's errors, and
// thread-death robustness (TSan-visible: no fork in those cases).
#include "concur/multiprocessing/synchronize.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "../helpers/blocked.hpp"
#include "concur/errors.hpp"
#include "concur/multiprocessing/sharedctypes.hpp"
#include "fork_util.hpp"

namespace mp = concur::multiprocessing;
using concur_test::fork_child;
using concur_test::wait_exit;
using namespace std::chrono_literals;

namespace {

// ---- Lock -------------------------------------------------------------------------------

// Issue 9: the Lockable unlock() is noexcept; misuse inside a std::lock_guard aborts with
// a clear message.
static_assert(noexcept(std::declval<mp::Lock&>().unlock()));
static_assert(noexcept(std::declval<mp::RLock&>().unlock()));
static_assert(noexcept(std::declval<mp::Semaphore&>().unlock()));
static_assert(noexcept(std::declval<mp::Condition&>().unlock()));

TEST(LockDeathTest, ReleaseInsideLockGuardAbortsWithAClearMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        mp::Lock l;
        std::lock_guard g(l);
        l.release();
      },
      "concur: multiprocessing::Lock::unlock\\(\\)");
  EXPECT_DEATH(
      {
        mp::BoundedSemaphore s(1);
        std::lock_guard g(s);
        s.release();
      },
      "concur: multiprocessing::BoundedSemaphore::unlock\\(\\)");
}

TEST(Lock, AcquireReleaseLocked) {
  mp::Lock l;
  EXPECT_FALSE(l.locked());
  EXPECT_TRUE(l.acquire());
  EXPECT_TRUE(l.locked());
  EXPECT_FALSE(l.acquire(false));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(l.acquire(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_FALSE(l.acquire(-1s)) << "negative timeout: try once";
  l.release();
  EXPECT_FALSE(l.locked());
  try {
    l.release();
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "semaphore or lock released too many times");
  }
  EXPECT_TRUE(l.acquire(0s));
  l.release();
}

TEST(Lock, NonBlockingWithTimeoutIsAValueError) {
  mp::Lock l;
  mp::RLock r;
  try {
    (void)l.acquire(false, 1s);
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "can't specify a timeout for a non-blocking call");
  }
  EXPECT_THROW((void)r.acquire(false, 1s), concur::ValueError);
  EXPECT_FALSE(l.locked());
  EXPECT_TRUE(l.acquire(true, 1s));
  EXPECT_TRUE(r.acquire(true, 1s));
  l.release();
  r.release();
}

TEST(Lock, IsLockableAndTimedLockable) {
  mp::Lock l;
  {
    std::scoped_lock g(l);
    EXPECT_TRUE(l.locked());
  }
  std::unique_lock u(l, std::defer_lock);
  EXPECT_TRUE(u.try_lock_for(10ms));
  u.unlock();
  EXPECT_TRUE(l.try_lock_until(std::chrono::system_clock::now() + 10ms));
  EXPECT_FALSE(l.try_lock_until(std::chrono::steady_clock::now() + 1ms));
  l.unlock();
}

TEST(Lock, AnotherThreadMayRelease) {
  mp::Lock l;
  l.acquire();
  std::thread([&] { l.release(); }).join();
  EXPECT_FALSE(l.locked());
  EXPECT_TRUE(l.acquire(false));
  l.release();
}

TEST(Lock, ThreadEndingWhileHoldingKeepsItHeld) {
  // Python's hand-off: a thread that ends normally is not a death (issue 9; the robust
  // recovery is for holders that die: tests/detail/robust_lock_test.cpp).
  mp::Lock l;
  std::thread([&] { l.acquire(); }).join();  // the thread ends holding it
  EXPECT_FALSE(l.acquire(100ms));
  l.release();
  EXPECT_FALSE(l.owner_died());
  mp::RLock r;
  std::thread([&] {
    r.acquire();
    r.acquire();
  }).join();
  EXPECT_FALSE(r.acquire(100ms));
  EXPECT_EQ(r.recursion_count(), 0u);
  EXPECT_THROW(r.release(), concur::RuntimeError);
}

TEST(Lock, MutualExclusionAcrossProcesses) {
  mp::Lock l;
  mp::RawValue<long> counter(0);
  std::vector<pid_t> pids;
  for (int p = 0; p < 4; ++p)
    pids.push_back(fork_child([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard g(l);
        *counter.get_obj() = *counter.get_obj() + 1;  // plain read-modify-write
      }
      return 0;
    }));
  for (pid_t p : pids) EXPECT_EQ(wait_exit(p), 0);
  EXPECT_EQ(counter.value(), 80000);
  EXPECT_FALSE(l.locked());
}

TEST(Lock, AnotherProcessMayRelease) {
  mp::Lock l;
  l.acquire();
  const pid_t pid = fork_child([&] {
    l.release();
    return 0;
  });
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_FALSE(l.locked());
  EXPECT_TRUE(l.acquire(false));
  l.release();
}

// ---- RLock ------------------------------------------------------------------------------

TEST(RLock, RecursionAndOwnership) {
  mp::RLock r;
  EXPECT_FALSE(r.is_owned());
  try {
    r.release();
    FAIL();
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot release un-acquired lock");
  }
  EXPECT_TRUE(r.acquire());
  EXPECT_TRUE(r.acquire(false));
  EXPECT_TRUE(r.acquire(10ms));
  EXPECT_EQ(r.recursion_count(), 3u);
  EXPECT_TRUE(r.is_owned());
  std::thread([&] {
    EXPECT_FALSE(r.is_owned());
    EXPECT_EQ(r.recursion_count(), 0u);
    EXPECT_FALSE(r.acquire(false));
    EXPECT_FALSE(r.acquire(20ms));
    EXPECT_THROW(r.release(), concur::RuntimeError);
  }).join();
  r.release();
  r.release();
  EXPECT_TRUE(r.locked());
  r.release();
  EXPECT_FALSE(r.locked());
  EXPECT_THROW(r.release(), concur::RuntimeError);
}

TEST(RLock, OtherProcessCannotRelease) {
  mp::RLock r;
  r.acquire();
  const pid_t pid = fork_child([&] {
    try {
      r.release();
    } catch (const concur::RuntimeError&) {
      return r.acquire(false) ? 2 : 7;  // held by the parent, not by us
    }
    return 1;
  });
  EXPECT_EQ(wait_exit(pid), 7);
  EXPECT_TRUE(r.is_owned());
  r.release();
}

TEST(RLock, HandsOverBetweenProcesses) {
  mp::RLock r;
  mp::Event child_has_it, parent_tried;
  r.acquire();
  const pid_t pid = fork_child([&] {
    r.acquire();  // blocks until the parent releases
    r.acquire();
    child_has_it.set();
    if (!parent_tried.wait(10s)) return 3;
    r.release();
    r.release();
    return 0;
  });
  r.release();
  ASSERT_TRUE(child_has_it.wait(10s));
  EXPECT_FALSE(r.acquire(false));
  parent_tried.set();
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_TRUE(r.acquire(false));
  r.release();
}

// ---- Semaphore / BoundedSemaphore --------------------------------------------------------

TEST(Semaphore, ValuesAndErrors) {
  EXPECT_THROW(mp::Semaphore(-1), concur::ValueError);
  mp::Semaphore s(2);
  EXPECT_EQ(s.get_value(), 2);
  EXPECT_TRUE(s.acquire());
  EXPECT_TRUE(s.acquire(false));
  EXPECT_FALSE(s.acquire(false));
  EXPECT_FALSE(s.acquire(30ms));
  EXPECT_EQ(s.get_value(), 0);
  s.release(3);  // unbounded: above the initial value is fine
  EXPECT_EQ(s.get_value(), 3);
  EXPECT_THROW(s.release(0), concur::ValueError);
  {
    std::lock_guard g(s);
    EXPECT_EQ(s.get_value(), 2);
  }
  EXPECT_EQ(s.get_value(), 3);
}

TEST(Semaphore, BoundedOverRelease) {
  mp::BoundedSemaphore b(2);
  EXPECT_THROW(b.release(), concur::ValueError);
  b.acquire();
  b.release();
  b.acquire();
  b.acquire();
  EXPECT_THROW(b.release(3), concur::ValueError);
  EXPECT_EQ(b.get_value(), 0);
  b.release(2);
  EXPECT_EQ(b.get_value(), 2);
  // Across processes: the child takes one unit, returns it, and cannot over-release.
  const pid_t pid = fork_child([&] {
    if (!b.acquire(false)) return 1;
    b.release();
    try {
      b.release();
    } catch (const concur::ValueError&) {
      return b.get_value() == 2 ? 0 : 3;
    }
    return 2;
  });
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_EQ(b.get_value(), 2);
  mp::Semaphore& as_base = b;  // the bound holds through the base class too
  try {
    as_base.release();
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "semaphore or lock released too many times");
  }
}

TEST(Semaphore, MultiReleaseAcrossProcesses) {
  // Python's test_multirelease, with processes: release(n) lets exactly n through.
  mp::Semaphore s(0);
  mp::Value<int> passed(0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 6; ++i)
    pids.push_back(fork_child([&] {
      if (!s.acquire(10s)) return 1;
      passed.fetch_add(1);
      return 0;
    }));
  s.release(4);
  while (passed.value() < 4) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(passed.value(), 4);
  EXPECT_EQ(s.get_value(), 0);
  s.release(2);
  for (pid_t p : pids) EXPECT_EQ(wait_exit(p), 0);
  EXPECT_EQ(passed.value(), 6);
  EXPECT_EQ(s.get_value(), 0);
}

// ---- Event ------------------------------------------------------------------------------

// Issue 9: set() immediately followed by clear() wakes every waiting process.
TEST(Event, SetThenClearWakesEveryWaitingProcess) {
  for (int round = 0; round < 3; ++round) {
    mp::Event e;
    std::vector<pid_t> pids;
    for (int i = 0; i < 3; ++i) pids.push_back(fork_child([&] { return e.wait(20s) ? 0 : 1; }));
    for (pid_t p : pids) ASSERT_TRUE(concur_test::wait_blocked_in(p, p));
    e.set();
    e.clear();
    for (pid_t p : pids) EXPECT_EQ(wait_exit(p), 0) << "round " << round;
  }
}

TEST(Event, WaitSetClearAcrossProcesses) {
  mp::Event e;
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(0s));
  EXPECT_FALSE(e.wait(20ms));
  mp::Event back;
  std::vector<pid_t> pids;
  mp::Value<int> woke(0);
  for (int i = 0; i < 3; ++i)
    pids.push_back(fork_child([&] {
      if (!e.wait(10s)) return 1;
      woke.fetch_add(1);
      return 0;
    }));
  e.set();
  for (pid_t p : pids) EXPECT_EQ(wait_exit(p), 0);
  EXPECT_EQ(woke.value(), 3);
  EXPECT_TRUE(e.wait());
  e.clear();
  EXPECT_FALSE(e.is_set());
  const pid_t setter = fork_child([&] {
    back.set();
    return 0;
  });
  EXPECT_TRUE(back.wait(10s));
  EXPECT_EQ(wait_exit(setter), 0);
}

// ---- Condition --------------------------------------------------------------------------

TEST(Condition, MisuseThrows) {
  mp::Condition c;
  try {
    c.wait();
    FAIL();
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot wait on un-acquired lock");
  }
  try {
    c.notify();
    FAIL();
  } catch (const concur::RuntimeError& e) {
    EXPECT_STREQ(e.what(), "cannot notify on un-acquired lock");
  }
  EXPECT_THROW(c.notify_all(), concur::RuntimeError);
  std::unique_lock g(c);
  EXPECT_FALSE(c.wait(20ms));
  EXPECT_FALSE(c.wait_for([] { return false; }, 10ms));
  EXPECT_TRUE(c.wait_for([] { return true; }, 10ms));
}

TEST(Condition, ProducerConsumerAcrossProcesses) {
  mp::Lock lock;
  mp::Condition cond(lock);
  mp::RawArray<int> items(64);
  mp::RawValue<int> count(0);
  const pid_t consumer = fork_child([&] {
    int sum = 0;
    for (int got = 0; got < 50; ++got) {
      std::unique_lock g(cond);
      if (!cond.wait_for([&] { return *count.get_obj() > got; }, 10s)) return 1;
      sum += items[static_cast<std::size_t>(got)];
    }
    return sum == 50 * 49 / 2 ? 0 : 2;
  });
  for (int i = 0; i < 50; ++i) {
    std::unique_lock g(cond);
    items[static_cast<std::size_t>(i)] = i;
    *count.get_obj() += 1;
    cond.notify();
  }
  EXPECT_EQ(wait_exit(consumer), 0);
}

TEST(Condition, NotifyNWakesExactlyNThenAll) {
  mp::Condition cond;  // own RLock
  mp::Value<int> waiting(0), woken(0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 5; ++i)
    pids.push_back(fork_child([&] {
      std::unique_lock g(cond);
      cond.acquire();  // held twice: wait() must release both levels
      waiting.fetch_add(1);
      if (!cond.wait(10s)) return 1;
      woken.fetch_add(1);
      cond.release();
      return 0;
    }));
  while (waiting.value() < 5) std::this_thread::sleep_for(1ms);
  {
    std::unique_lock g(cond);
    cond.notify(2);
  }
  while (woken.value() < 2) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(woken.value(), 2);
  {
    std::unique_lock g(cond);
    cond.notify_all();
  }
  for (pid_t p : pids) EXPECT_EQ(wait_exit(p), 0);
  EXPECT_EQ(woken.value(), 5);
}

// ---- Barrier ----------------------------------------------------------------------------

TEST(Barrier, IndicesAndActionAcrossProcesses) {
  EXPECT_THROW(mp::Barrier(0), concur::ValueError);
  mp::Value<int> actions(0), index_sum(0), after_action(0);
  mp::Barrier b(5, [&] { actions.fetch_add(1); });
  EXPECT_EQ(b.parties(), 5);
  std::vector<pid_t> pids;
  for (int i = 0; i < 4; ++i)
    pids.push_back(fork_child([&] {
      for (int round = 0; round < 3; ++round) {
        index_sum.fetch_add(b.wait());
        if (actions.value() >= round + 1) after_action.fetch_add(1);
      }
      return 0;
    }));
  for (int round = 0; round < 3; ++round) {
    index_sum.fetch_add(b.wait());
    if (actions.value() >= round + 1) after_action.fetch_add(1);
  }
  for (pid_t p : pids) EXPECT_EQ(wait_exit(p), 0);
  EXPECT_EQ(actions.value(), 3);
  EXPECT_EQ(index_sum.value(), 3 * 10);
  EXPECT_EQ(after_action.value(), 15) << "the action ran before anyone was released";
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, TimeoutBreaksItForEveryProcess) {
  mp::Barrier b(3);
  mp::Value<int> broken_seen(0);
  const pid_t pid = fork_child([&] {
    try {
      (void)b.wait(10s);
    } catch (const concur::threading::BrokenBarrierError&) {
      broken_seen.fetch_add(1);
      return 0;
    }
    return 1;
  });
  while (b.n_waiting() < 1) std::this_thread::sleep_for(1ms);
  EXPECT_THROW((void)b.wait(50ms), concur::threading::BrokenBarrierError);
  EXPECT_EQ(wait_exit(pid), 0);
  EXPECT_EQ(broken_seen.value(), 1);
  EXPECT_TRUE(b.broken());
  b.reset();
  EXPECT_FALSE(b.broken());
  b.abort();
  EXPECT_THROW(b.wait(), concur::threading::BrokenBarrierError);
}

}  // namespace
