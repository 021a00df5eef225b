// threading::Barrier — Python's BarrierTests ported (barrier passes, wait_return, action,
// abort, reset, abort_and_reset, timeout, default_timeout, single thread) plus an action
// that throws and many reuse cycles.
// concur-test: timeout=120
#include "concur/threading/barrier.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using concur::ValueError;
using concur::threading::Barrier;
using concur::threading::BrokenBarrierError;

constexpr int N = 5;

// Runs f in n threads that start together (a latch), so slow thread creation on a loaded
// machine does not eat into the barrier timeouts under test.
void run_n(int n, const std::function<void()>& f) {
  std::latch start(n);
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&] {
      start.arrive_and_wait();
      f();
    });
  for (auto& t : ts) t.join();
}

TEST(Barrier, Constructor) {
  EXPECT_THROW(Barrier(0), ValueError);
  EXPECT_THROW(Barrier(-1), ValueError);
  Barrier b(3);
  EXPECT_EQ(b.parties(), 3);
  EXPECT_EQ(b.n_waiting(), 0);
  EXPECT_FALSE(b.broken());
}

// BarrierTests.test_barrier / test_barrier_10: every party of pass i sees all N results of
// pass i.
TEST(Barrier, Passes) {
  for (int passes : {1, 10}) {
    Barrier b(N);
    std::mutex mu;
    std::vector<std::vector<int>> results(static_cast<std::size_t>(passes));
    std::atomic<int> bad{0};
    run_n(N, [&] {
      for (int i = 0; i < passes; ++i) {
        {
          std::lock_guard g(mu);
          results[static_cast<std::size_t>(i)].push_back(1);
        }
        b.wait();
        std::lock_guard g(mu);
        if (results[static_cast<std::size_t>(i)].size() != N) ++bad;
      }
    });
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(b.n_waiting(), 0);
    EXPECT_FALSE(b.broken());
  }
}

// test_wait_return: the indices are 0..N-1, summing to 10 for N = 5.
TEST(Barrier, WaitReturnsDistinctIndices) {
  Barrier b(N);
  std::mutex mu;
  std::vector<int> idx;
  run_n(N, [&] {
    const int r = b.wait();
    std::lock_guard g(mu);
    idx.push_back(r);
  });
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(idx, (std::vector<int>{0, 1, 2, 3, 4}));
}

// test_action: the action runs once, before any waiter is released, in the thread that
// gets index N-1.
TEST(Barrier, ActionRunsOnceBeforeRelease) {
  std::atomic<int> calls{0};
  std::thread::id action_thread;
  Barrier b(N, [&] {
    ++calls;
    action_thread = std::this_thread::get_id();
  });
  std::atomic<int> bad{0};
  std::mutex mu;
  std::thread::id last_index_thread;
  run_n(N, [&] {
    const int r = b.wait();
    if (calls.load() != 1) ++bad;
    if (r == N - 1) {
      std::lock_guard g(mu);
      last_index_thread = std::this_thread::get_id();
    }
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(action_thread, last_index_thread);
}

// An action that throws breaks the barrier; its thread gets the action's exception, the
// others BrokenBarrierError.
TEST(Barrier, ThrowingActionBreaksBarrier) {
  Barrier b(N, [] { throw std::logic_error("action failed"); });
  std::atomic<int> broken{0}, action_errors{0}, passed{0};
  run_n(N, [&] {
    try {
      b.wait();
      ++passed;
    } catch (const BrokenBarrierError&) {
      ++broken;
    } catch (const std::logic_error& e) {
      if (std::string(e.what()) == "action failed") ++action_errors;
    }
  });
  EXPECT_EQ(passed.load(), 0);
  EXPECT_EQ(action_errors.load(), 1);
  EXPECT_EQ(broken.load(), N - 1);
  EXPECT_TRUE(b.broken());
  EXPECT_THROW(b.wait(), BrokenBarrierError);
}

// test_abort
TEST(Barrier, Abort) {
  Barrier b(N);
  std::atomic<int> results1{0}, results2{0};
  run_n(N, [&] {
    try {
      const int i = b.wait();
      if (i == N / 2) throw std::runtime_error("boom");
      b.wait();
      ++results1;
    } catch (const BrokenBarrierError&) {
      ++results2;
    } catch (const std::runtime_error&) {
      b.abort();
    }
  });
  EXPECT_EQ(results1.load(), 0);
  EXPECT_EQ(results2.load(), N - 1);
  EXPECT_TRUE(b.broken());
  try {
    b.wait();
    FAIL() << "no exception";
  } catch (const BrokenBarrierError& e) {
    EXPECT_STREQ(e.what(), "Barrier is broken");
  }
}

// test_reset: reset() while N-1 threads wait makes them raise; the barrier is reusable.
TEST(Barrier, Reset) {
  Barrier b(N);
  std::atomic<int> results1{0}, results2{0}, results3{0};
  run_n(N, [&] {
    const int i = b.wait();
    if (i == N / 2) {
      while (b.n_waiting() < N - 1) std::this_thread::sleep_for(1ms);
      b.reset();
    } else {
      try {
        b.wait();
        ++results1;
      } catch (const BrokenBarrierError&) {
        ++results2;
      }
    }
    b.wait();
    ++results3;
  });
  EXPECT_EQ(results1.load(), 0);
  EXPECT_EQ(results2.load(), N - 1);
  EXPECT_EQ(results3.load(), N);
  EXPECT_FALSE(b.broken());
}

// test_abort_and_reset
TEST(Barrier, AbortAndReset) {
  Barrier b(N), b2(N);
  std::atomic<int> results1{0}, results2{0}, results3{0};
  run_n(N, [&] {
    try {
      const int i = b.wait();
      if (i == N / 2) throw std::runtime_error("boom");
      b.wait();
      ++results1;
    } catch (const BrokenBarrierError&) {
      ++results2;
    } catch (const std::runtime_error&) {
      b.abort();
    }
    if (b2.wait() == N / 2) b.reset();
    b2.wait();
    b.wait();
    ++results3;
  });
  EXPECT_EQ(results1.load(), 0);
  EXPECT_EQ(results2.load(), N - 1);
  EXPECT_EQ(results3.load(), N);
}

// test_timeout: one late thread; the others' wait(timeout) breaks the barrier for all.
TEST(Barrier, Timeout) {
  Barrier b(N, {}, 2s);
  std::atomic<int> raised{0};
  run_n(N, [&] {
    const int i = b.wait();
    if (i == N / 2) std::this_thread::sleep_for(300ms);  // late (CPython: 1.0 s)
    try {
      b.wait(100ms);  // CPython: 0.5 s
    } catch (const BrokenBarrierError&) {
      ++raised;
    }
  });
  EXPECT_EQ(raised.load(), N);
  EXPECT_TRUE(b.broken());
}

// test_default_timeout
TEST(Barrier, DefaultTimeout) {
  Barrier b(N, {}, 300ms);  // as CPython; its late thread sleeps 1.0 s
  std::atomic<int> raised{0};
  run_n(N, [&] {
    const int i = b.wait();
    if (i == N / 2) std::this_thread::sleep_for(600ms);
    try {
      b.wait();
    } catch (const BrokenBarrierError&) {
      ++raised;
    }
  });
  EXPECT_EQ(raised.load(), N);
  EXPECT_TRUE(b.broken());
  b.reset();
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, SingleThread) {
  Barrier b(1);
  EXPECT_EQ(b.wait(), 0);
  EXPECT_EQ(b.wait(), 0);
  EXPECT_EQ(b.wait(0s), 0);  // the last party never waits, so no timeout applies
}

TEST(Barrier, ZeroTimeoutBreaksWhenAlone) {
  Barrier b(2);
  EXPECT_THROW(b.wait(0s), BrokenBarrierError);
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0);
  b.reset();
  Barrier neg(2, {}, std::chrono::nanoseconds(-5));  // negative default → zero
  EXPECT_THROW(neg.wait(), BrokenBarrierError);
}

TEST(Barrier, NWaiting) {
  Barrier b(3);
  std::thread t1([&] { b.wait(); });
  std::thread t2([&] { b.wait(); });
  while (b.n_waiting() < 2) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(b.n_waiting(), 2);
  b.wait();
  t1.join();
  t2.join();
  EXPECT_EQ(b.n_waiting(), 0);
}

// Many cycles with a counting action: every cycle completes and indices are always a
// permutation (a lost wake-up or a cycle mix-up deadlocks or miscounts).
TEST(Barrier, ManyCycles) {
  const int kCycles = 2000;
  int actions = 0;  // written by the action only, under the barrier's lock
  Barrier b(3, [&] { ++actions; });
  std::atomic<long> index_sum{0};
  run_n(3, [&] {
    for (int i = 0; i < kCycles; ++i) index_sum += b.wait();
  });
  EXPECT_EQ(actions, kCycles);
  EXPECT_EQ(index_sum.load(), 3L * kCycles);  // 0+1+2 per cycle
}

}  // namespace
