// multiprocessing timeouts: Lock/RLock/Semaphore/Event/Condition/Barrier and
// Process::join with hours::max(), nanoseconds::max(), +inf or a seconds-precision
// time_point::max() block "forever" — until another thread (or the child) releases them —
// and NaN is ValueError. Lock/RLock share threading's acquire surface
// (detail/lock_surface.hpp) with Python's SemLock policy: a negative timeout tries once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../helpers/forever.hpp"
#include "concur/errors.hpp"
#include "concur/multiprocessing/process.hpp"
#include "concur/multiprocessing/synchronize.hpp"

namespace {
namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;
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
  EXPECT_THROW((void)l.acquire(kNaNSeconds), ValueError);
  EXPECT_THROW((void)l.try_lock_for(kNaNSeconds), ValueError);
  EXPECT_FALSE(l.locked());
  // SemLock: a negative timeout tries once (no ValueError, unlike threading.Lock).
  EXPECT_TRUE(l.acquire(hours::min()));
  l.release();
}

TEST(MpTimeouts, LockWaitsForeverOnMaxTimeouts) {
  lock_forms_block_forever<mp::Lock>();
}
TEST(MpTimeouts, RLockWaitsForeverOnMaxTimeouts) {
  lock_forms_block_forever<mp::RLock>();
}

TEST(MpTimeouts, RLockNestsThroughTheSharedSurface) {
  mp::RLock r;
  EXPECT_TRUE(r.acquire());
  EXPECT_TRUE(r.acquire(false));
  EXPECT_TRUE(r.acquire(1s));
  EXPECT_TRUE(r.try_lock_until(system_clock::time_point::max()));
  EXPECT_EQ(r.recursion_count(), 4u);
  for (int i = 0; i < 4; ++i) r.release();
  EXPECT_FALSE(r.locked());
  EXPECT_THROW(r.release(), concur::RuntimeError);
}

TEST(MpTimeouts, SemaphoreEventConditionBarrierWaitForever) {
  mp::Semaphore s(0);
  expect_blocks_until_released([&] { return s.acquire(hours::max()); }, [&] { s.release(); });
  EXPECT_THROW((void)s.acquire(kNaNSeconds), ValueError);

  mp::Event e;
  expect_blocks_until_released([&] { return e.wait(hours::max()); }, [&] { e.set(); });
  EXPECT_THROW((void)e.wait(kNaNSeconds), ValueError);

  mp::Condition c;
  std::atomic<bool> flag{false};
  expect_blocks_until_released(
      [&] {
        c.acquire();
        const bool r = c.wait_for([&] { return flag.load(); }, hours::max());
        c.release();
        return r;
      },
      [&] {
        c.acquire();
        flag = true;
        c.notify_all();
        c.release();
      });
  c.acquire();
  EXPECT_THROW((void)c.wait(kNaNSeconds), ValueError);
  EXPECT_THROW((void)c.wait_until(time_point<system_clock, std::chrono::duration<double>>(
                   std::chrono::duration<double>(concur_test::kNaN))),
               ValueError);
  c.release();

  mp::Barrier b(2);
  expect_blocks_until_released([&] { return b.wait(hours::max()) >= 0; }, [&] { (void)b.wait(); });
  mp::Barrier d(2, {}, hours::max());
  expect_blocks_until_released([&] { return d.wait() >= 0; }, [&] { (void)d.wait(); });
  EXPECT_THROW((void)b.wait(kNaNSeconds), ValueError);
}

TEST(MpTimeouts, ProcessJoinWaitsForever) {
  mp::Event go;
  mp::Process p([go]() mutable { go.wait(); });
  p.start();
  expect_blocks_until_released([&] { return p.join(std::chrono::duration<double>(kInf)); },
                               [&] { go.set(); });
  EXPECT_EQ(p.exitcode(), 0);
  mp::Process q([] {});
  q.start();
  EXPECT_THROW((void)q.join(kNaNSeconds), ValueError);
  q.join();
}

}  // namespace
