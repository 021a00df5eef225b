// Saturating deadlines across threading: hours::max(), nanoseconds::max(), +inf and the
// max() time_points of every clock and precision block "forever" (until another thread
// releases them) in every timed call; a NaN timeout is ValueError everywhere.
// Regressions: Timer(hours::max(), f) fired at once; try_lock_until of a seconds-precision
// time_point::max() returned false at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../helpers/forever.hpp"
#include "concur/errors.hpp"
#include "concur/threading/barrier.hpp"
#include "concur/threading/condition.hpp"
#include "concur/threading/event.hpp"
#include "concur/threading/lock.hpp"
#include "concur/threading/semaphore.hpp"
#include "concur/threading/thread.hpp"
#include "concur/threading/timer.hpp"

namespace {
using namespace std::chrono_literals;
namespace th = concur::threading;
using concur::ValueError;
using concur_test::expect_blocks_until_released;
using concur_test::kInf;
using concur_test::kNaNSeconds;
using std::chrono::hours;
using std::chrono::seconds;
using std::chrono::steady_clock;
using std::chrono::system_clock;
using std::chrono::time_point;

template <class L>
void lock_forms_block_forever() {
  L l;
  concur_test::expect_timed_acquires_block_forever(l);
}

TEST(Timeouts, LockWaitsForeverOnMaxTimeouts) {
  lock_forms_block_forever<th::Lock>();
}
TEST(Timeouts, RLockWaitsForeverOnMaxTimeouts) {
  lock_forms_block_forever<th::RLock>();
}

TEST(Timeouts, LockNaNIsValueErrorNegativeToo) {
  th::Lock l;
  EXPECT_THROW((void)l.acquire(kNaNSeconds), ValueError);
  EXPECT_THROW((void)l.acquire(true, kNaNSeconds), ValueError);
  EXPECT_THROW((void)l.try_lock_for(kNaNSeconds), ValueError);
  EXPECT_THROW((void)l.acquire(hours::min()), ValueError);
  EXPECT_THROW((void)l.acquire(std::chrono::duration<double>(-kInf)), ValueError);
  EXPECT_FALSE(l.locked());
  th::RLock r;
  EXPECT_THROW((void)r.acquire(kNaNSeconds), ValueError);
  EXPECT_FALSE(r.locked());
  // TimedLockable's try_lock_for follows the standard: a negative duration tries once.
  EXPECT_TRUE(l.try_lock_for(hours::min()));
  l.release();
}

TEST(Timeouts, ConditionWaitsForever) {
  th::Condition c;
  std::atomic<bool> flag{false};
  auto notify = [&] {
    c.acquire();
    flag = true;
    c.notify_all();
    c.release();
  };
  expect_blocks_until_released(
      [&] {
        c.acquire();
        const bool r = c.wait_for([&] { return flag.load(); }, hours::max());
        c.release();
        return r;
      },
      notify);
  flag = false;
  expect_blocks_until_released(
      [&] {
        c.acquire();
        bool r = true;
        while (!flag) r = c.wait(hours::max()) && r;
        c.release();
        return r;
      },
      notify);
  flag = false;
  expect_blocks_until_released(
      [&] {
        c.acquire();
        bool r = true;
        while (!flag) r = c.wait_until(time_point<steady_clock, seconds>::max()) && r;
        c.release();
        return r;
      },
      notify);
  c.acquire();
  EXPECT_THROW((void)c.wait(kNaNSeconds), ValueError);
  EXPECT_THROW((void)c.wait_for([] { return false; }, kNaNSeconds), ValueError);
  EXPECT_FALSE(c.wait(hours::min()));  // negative: do not block
  c.release();
}

TEST(Timeouts, EventWaitsForever) {
  th::Event e;
  expect_blocks_until_released([&] { return e.wait(hours::max()); }, [&] { e.set(); });
  e.clear();
  expect_blocks_until_released([&] { return e.wait_until(system_clock::time_point::max()); },
                               [&] { e.set(); });
  e.clear();
  expect_blocks_until_released([&] { return e.wait_until(time_point<steady_clock, hours>::max()); },
                               [&] { e.set(); });
  e.clear();
  EXPECT_THROW((void)e.wait(kNaNSeconds), ValueError);
  EXPECT_FALSE(e.wait(hours::min()));
}

TEST(Timeouts, SemaphoreWaitsForever) {
  th::Semaphore s(0);
  expect_blocks_until_released([&] { return s.acquire(hours::max()); }, [&] { s.release(); });
  expect_blocks_until_released(
      [&] { return s.try_lock_until(time_point<steady_clock, seconds>::max()); },
      [&] { s.release(); });
  expect_blocks_until_released([&] { return s.try_lock_for(std::chrono::nanoseconds::max()); },
                               [&] { s.release(); });
  EXPECT_THROW((void)s.acquire(kNaNSeconds), ValueError);
  EXPECT_FALSE(s.acquire(hours::min()));
}

TEST(Timeouts, BarrierWaitsForever) {
  th::Barrier b(2);
  expect_blocks_until_released([&] { return b.wait(hours::max()) >= 0; }, [&] { (void)b.wait(); });
  // A default timeout of hours::max() is no timeout (it used to overflow on conversion).
  th::Barrier d(2, {}, hours::max());
  expect_blocks_until_released([&] { return d.wait() >= 0; }, [&] { (void)d.wait(); });
  EXPECT_THROW((void)b.wait(kNaNSeconds), ValueError);
  EXPECT_FALSE(b.broken());  // NaN is rejected before the barrier is touched
  EXPECT_THROW(th::Barrier(2, {}, kNaNSeconds), ValueError);
}

TEST(Timeouts, ThreadJoinWaitsForever) {
  th::Event go;
  th::Thread t([&] { go.wait(); });
  t.start();
  expect_blocks_until_released([&] { return t.join(hours::max()); }, [&] { go.set(); });
  EXPECT_THROW((void)t.join(kNaNSeconds), ValueError);
}

// Regression: the interval was cast to nanoseconds with overflow, so the timer fired at once.
TEST(Timeouts, TimerWithMaxIntervalWaitsUntilCancelled) {
  for (const auto interval : {hours::max(), hours(24 * 365 * 1000)}) {
    std::atomic<int> calls{0};
    th::Timer t(interval, [&] { ++calls; });
    t.start();
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(calls.load(), 0) << "the timer fired";
    EXPECT_FALSE(t.finished());
    t.cancel();
    t.join();
    EXPECT_EQ(calls.load(), 0);
  }
  std::atomic<int> calls{0};
  th::Timer inf(std::chrono::duration<double>(kInf), [&] { ++calls; });
  inf.start();
  std::this_thread::sleep_for(20ms);
  inf.cancel();
  inf.join();
  EXPECT_EQ(calls.load(), 0);
  EXPECT_THROW(th::Timer(kNaNSeconds, [] {}), ValueError);
}

}  // namespace
