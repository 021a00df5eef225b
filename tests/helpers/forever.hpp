// Test helpers for "forever" timeouts: a call given hours::max() (or any saturating
// timeout) must block until another thread's action releases it — checked by that action,
// never by waiting long — and a NaN timeout must be ValueError.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <limits>
#include <thread>

namespace concur_test {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline const std::chrono::duration<double> kNaNSeconds{kNaN};

// Runs wait() on a thread; checks it has not returned after a short pause (a broken
// deadline returns at once), then runs release() and expects wait() to return true.
// A slow machine can only make the first check pass more easily, never fail it.
template <class Wait, class Release>
void expect_blocks_until_released(Wait wait, Release release) {
  std::atomic<bool> done{false};
  bool result = false;
  std::thread t([&] {
    try {
      result = static_cast<bool>(wait());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the forever wait threw: " << e.what();
    }
    done.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load()) << "a forever wait returned before it was released";
  release();
  t.join();
  EXPECT_TRUE(result);
}


// Every timed acquire form of a Python-style lock L (threading's and multiprocessing's share
// one surface) given a saturating timeout blocks until the lock is released. The waiter
// takes the lock once the caller releases it, and gives it back (an RLock must be released
// by its owner).
template <class L>
void expect_timed_acquires_block_forever(L& l) {
  using std::chrono::hours;
  using std::chrono::seconds;
  using std::chrono::steady_clock;
  using std::chrono::system_clock;
  using std::chrono::time_point;
  auto check = [&](auto timed_acquire) {
    l.acquire();
    expect_blocks_until_released(
        [&] {
          const bool r = timed_acquire();
          if (r) l.release();
          return r;
        },
        [&] { l.release(); });
    EXPECT_FALSE(l.locked());
  };
  check([&] { return l.acquire(hours::max()); });
  check([&] { return l.acquire(true, hours::max()); });
  check([&] { return l.acquire(std::chrono::duration<double>(kInf)); });
  check([&] { return l.try_lock_for(std::chrono::nanoseconds::max()); });
  check([&] { return l.try_lock_until(time_point<steady_clock, seconds>::max()); });
  check([&] { return l.try_lock_until(system_clock::time_point::max()); });
  check([&] { return l.try_lock_until(time_point<system_clock, seconds>::max()); });
  check([&] { return l.try_lock_until(time_point<system_clock, hours>::max()); });
}

}  // namespace concur_test
