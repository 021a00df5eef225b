// threading::Condition — Python's ConditionTests ported (unacquired wait/notify, wait_for
// timeout), plus what concur promises beyond CPython: notify(n) wakes exactly the n oldest
// waiters in FIFO order, no spurious wake-ups, no lost wake-ups, a timeout racing with a
// notify never loses the notify, RLock levels restored after wait.
// concur-test: timeout=120
#include "concur/threading/condition.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace {
using namespace std::chrono_literals;
using concur::RuntimeError;
using concur::threading::Condition;
using concur::threading::Lock;
using concur::threading::RLock;

// ConditionTests.test_unacquired_wait / test_unacquired_notify
TEST(Condition, UnacquiredWaitAndNotifyThrow) {
  Lock plain;
  RLock rec;
  Condition c0, c1(plain), c2(rec);
  for (Condition* c : {&c0, &c1, &c2}) {
    try {
      c->wait();
      FAIL() << "no exception";
    } catch (const RuntimeError& e) {
      EXPECT_STREQ(e.what(), "cannot wait on un-acquired lock");
    }
    EXPECT_THROW((void)c->wait(10ms), RuntimeError);
    EXPECT_THROW(c->wait_for([] { return false; }), RuntimeError);
    try {
      c->notify();
      FAIL() << "no exception";
    } catch (const RuntimeError& e) {
      EXPECT_STREQ(e.what(), "cannot notify on un-acquired lock");
    }
    EXPECT_THROW(c->notify_all(), RuntimeError);
  }
}

// An RLock held by another thread is not "acquired" for this one.
TEST(Condition, RLockHeldElsewhereIsUnacquired) {
  Condition c;
  std::atomic<bool> held{false}, done{false};
  std::thread t([&] {
    c.acquire();
    held = true;
    while (!done) std::this_thread::sleep_for(1ms);
    c.release();
  });
  while (!held) std::this_thread::sleep_for(1ms);
  EXPECT_THROW(c.notify(), RuntimeError);
  EXPECT_THROW(c.wait(), RuntimeError);
  done = true;
  t.join();
}

TEST(Condition, WaitTimesOutWithLockHeldAgain) {
  Lock lock;
  Condition c(lock);
  std::unique_lock g(c);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.wait(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(c.wait(0s));
  EXPECT_FALSE(c.wait(-1s));  // negative: do not block (Python)
  EXPECT_FALSE(c.wait_until(std::chrono::system_clock::now() + 5ms));
  EXPECT_TRUE(lock.locked());
}

// ConditionTests.test_waitfor_timeout
TEST(Condition, WaitForTimeout) {
  Condition c;
  int state = 0;
  std::atomic<int> success{0};
  std::thread t([&] {
    std::unique_lock g(c);
    const auto t0 = std::chrono::steady_clock::now();
    const bool r = c.wait_for([&] { return state == 4; }, 100ms);
    EXPECT_FALSE(r);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
    ++success;
  });
  // Notify several times while the predicate stays false: the waiter must keep waiting.
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(10ms);
    std::unique_lock g(c);
    state += 1;
    c.notify();
  }
  t.join();
  EXPECT_EQ(success.load(), 1);
}

TEST(Condition, WaitForReturnsPredicateValue) {
  Condition c;
  int state = 0;
  std::thread t([&] {
    std::unique_lock g(c);
    EXPECT_TRUE(c.wait_for([&] { return state == 3; }));
    EXPECT_EQ(state, 3);
    state = 10;
    c.notify();
  });
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(5ms);
    std::unique_lock g(c);
    ++state;
    c.notify();
  }
  {
    std::unique_lock g(c);
    EXPECT_TRUE(c.wait_for([&] { return state == 10; }, 10s));
  }
  t.join();
}

// Starts n waiters one after the other; waiter i is known to be queued before waiter i+1
// starts (the main thread takes the lock only after waiter i released it inside wait()).
struct Waiters {
  Condition& c;
  std::vector<int> woke;  // guarded by c
  int started = 0;        // guarded by c
  std::vector<std::thread> ts;

  void start(int n) {
    for (int i = 0; i < n; ++i) {
      ts.emplace_back([this, i] {
        std::unique_lock g(c);
        ++started;
        c.wait();
        woke.push_back(i);
      });
      for (;;) {
        std::unique_lock g(c);
        if (started == i + 1) break;
        g.unlock();
        std::this_thread::sleep_for(1ms);
      }
    }
  }
  std::size_t woken() {
    std::unique_lock g(c);
    return woke.size();
  }
  void wait_woken(std::size_t k) {
    while (woken() < k) std::this_thread::sleep_for(1ms);
  }
  void join() {
    for (auto& t : ts) t.join();
  }
};

TEST(Condition, NotifyOneWakesExactlyOneInFifoOrder) {
  Condition c;
  Waiters w{c, {}, 0, {}};
  w.start(5);
  {
    std::unique_lock g(c);
    c.notify(1);
  }
  w.wait_woken(1);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(w.woken(), 1u);  // exactly one: no spurious or extra wake-ups
  for (std::size_t k = 2; k <= 5; ++k) {
    {
      std::unique_lock g(c);
      c.notify(1);
    }
    w.wait_woken(k);
  }
  w.join();
  EXPECT_EQ(w.woke, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Condition, NotifyNWakesTheNOldest) {
  Lock lock;
  Condition c(lock);
  Waiters w{c, {}, 0, {}};
  w.start(6);
  {
    std::unique_lock g(c);
    c.notify(0);   // nothing
    c.notify(-3);  // nothing
    c.notify(2);
  }
  w.wait_woken(2);
  std::this_thread::sleep_for(50ms);
  {
    std::unique_lock g(c);
    ASSERT_EQ(w.woke.size(), 2u);
    std::vector<int> first(w.woke.begin(), w.woke.end());
    std::sort(first.begin(), first.end());
    EXPECT_EQ(first, (std::vector<int>{0, 1}));
    c.notify(3);
  }
  w.wait_woken(5);
  std::this_thread::sleep_for(50ms);
  {
    std::unique_lock g(c);
    ASSERT_EQ(w.woke.size(), 5u);
    std::vector<int> next(w.woke.begin() + 2, w.woke.end());
    std::sort(next.begin(), next.end());
    EXPECT_EQ(next, (std::vector<int>{2, 3, 4}));
    c.notify_all();
  }
  w.join();
  EXPECT_EQ(w.woke.back(), 5);
}

TEST(Condition, RLockLevelsReleasedAndRestored) {
  RLock rl;
  Condition c(rl);
  std::atomic<bool> waiting{false};
  unsigned level_after = 0;
  std::thread t([&] {
    rl.acquire();
    rl.acquire();
    rl.acquire();
    waiting = true;
    c.wait();
    level_after = rl.level();
    rl.release();
    rl.release();
    rl.release();
  });
  while (!waiting) std::this_thread::sleep_for(1ms);
  // The waiter holds 3 levels; taking the lock here proves wait() released all of them.
  c.acquire();
  EXPECT_TRUE(rl.is_owned());
  c.notify();
  c.release();
  t.join();
  EXPECT_EQ(level_after, 3u);
  EXPECT_FALSE(rl.locked());
}

// Every notify that picks a waiter is delivered: a waiter whose timeout expires at the
// moment it is notified returns true (CPython can return False and lose the notify).
TEST(Condition, TimeoutRacingNotifyIsNeverLost) {
  Condition c;
  int waiting = 0;       // threads inside wait(), guarded by c
  int outstanding = 0;   // notified but not yet returned, guarded by c
  long notifies = 0, trues = 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int k = 0; k < 3; ++k)
    ts.emplace_back([&, k] {
      std::mt19937 rng(static_cast<unsigned>(k));
      while (!stop) {
        std::unique_lock g(c);
        ++waiting;
        const bool r = c.wait(std::chrono::microseconds(rng() % 200));
        --waiting;
        if (r) {
          --outstanding;
          ++trues;
        }
      }
    });
  const auto end = std::chrono::steady_clock::now() + 500ms;
  while (std::chrono::steady_clock::now() < end) {
    std::unique_lock g(c);
    if (waiting > outstanding) {  // somebody is queued: this notify picks exactly one
      c.notify();
      ++outstanding;
      ++notifies;
    }
  }
  {
    std::unique_lock g(c);
    stop = true;
    notifies += waiting - outstanding;  // notify_all picks every queued waiter
    outstanding = waiting;
    c.notify_all();
  }
  for (auto& t : ts) t.join();
  EXPECT_GT(notifies, 0);
  EXPECT_EQ(outstanding, 0);
  EXPECT_EQ(trues, notifies);
}

// Many rounds of hand-off in both directions: a lost wake-up deadlocks (test timeout).
TEST(Condition, NoLostWakeupsUnderStress) {
  Condition c;
  int turn = 0;
  const int kRounds = 20000;
  std::thread t([&] {
    for (int i = 0; i < kRounds; ++i) {
      std::unique_lock g(c);
      c.wait_for([&] { return turn == 1; });
      turn = 0;
      c.notify();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    std::unique_lock g(c);
    c.wait_for([&] { return turn == 0; });
    turn = 1;
    c.notify();
  }
  t.join();
  EXPECT_EQ(turn, 0);  // the partner's last round handed the turn back
}

// Producers and consumers with notify(1): every item is consumed exactly once.
TEST(Condition, ProducersConsumersCountExact) {
  Lock lock;
  Condition c(lock);
  long items = 0, consumed = 0;
  bool done = false;
  const int kPerProducer = 5000;
  std::vector<std::thread> ts;
  for (int k = 0; k < 3; ++k)
    ts.emplace_back([&] {
      for (;;) {
        std::unique_lock g(c);
        c.wait_for([&] { return items > 0 || done; });
        if (items == 0) return;
        --items;
        ++consumed;
      }
    });
  std::vector<std::thread> ps;
  for (int k = 0; k < 2; ++k)
    ps.emplace_back([&] {
      for (int i = 0; i < kPerProducer; ++i) {
        std::unique_lock g(c);
        ++items;
        c.notify();
      }
    });
  for (auto& p : ps) p.join();
  {
    std::unique_lock g(c);
    done = true;
    c.notify_all();
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(consumed, 2L * kPerProducer);
  EXPECT_EQ(items, 0);
}

// Signals interrupt FUTEX_WAIT with EINTR; a waiter must neither return early nor lose its
// place (no spurious wake-ups, even then).
TEST(Condition, SignalsDoNotWakeWaiters) {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the futex wait really fails with EINTR
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  Condition c;
  std::atomic<int> returned{0};
  bool timed_result = true;
  std::atomic<bool> ready{false};
  std::thread untimed([&] {
    std::unique_lock g(c);
    ready = true;
    c.wait();
    ++returned;
  });
  while (!ready) std::this_thread::sleep_for(1ms);
  std::thread timed([&] {
    std::unique_lock g(c);
    timed_result = c.wait(300ms);
  });
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(5ms);
    pthread_kill(untimed.native_handle(), SIGUSR1);
    pthread_kill(timed.native_handle(), SIGUSR1);
  }
  timed.join();
  EXPECT_FALSE(timed_result);       // it timed out, not woke on a signal
  EXPECT_EQ(returned.load(), 0);    // still waiting
  {
    std::unique_lock g(c);
    c.notify();
  }
  untimed.join();
  EXPECT_EQ(returned.load(), 1);
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(Condition, IsLockable) {
  Lock lock;
  Condition c(lock);
  {
    std::scoped_lock g(c);
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(c.try_lock());
  }
  EXPECT_FALSE(lock.locked());
  EXPECT_TRUE(c.acquire(false));
  EXPECT_FALSE(c.acquire(false));
  c.release();
  EXPECT_THROW(c.release(), RuntimeError);
  EXPECT_TRUE(c.try_lock_for(1ms));
  c.unlock();
  EXPECT_THROW((void)c.acquire(false, 1s), concur::ValueError);  // the lock's own errors
  EXPECT_THROW((void)c.acquire(-1s), concur::ValueError);
  Condition dflt;  // its own RLock: release by a non-owner is refused
  std::thread other([&] { EXPECT_THROW(dflt.release(), RuntimeError); });
  dflt.acquire();
  other.join();
  dflt.release();
  // and usable by std::condition_variable_any
  std::condition_variable_any cv;
  bool flag = false;
  std::thread t([&] {
    std::unique_lock g(c);
    cv.wait(g, [&] { return flag; });
  });
  {
    std::unique_lock g(c);
    flag = true;
  }
  cv.notify_all();
  t.join();
}

}  // namespace
