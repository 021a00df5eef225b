// concur-test: timeout=60
// Robust recovery: a process (or thread) that dies holding a Lock, an RLock (with a
// recursion count) or a Value's lock hands it to the next acquirer, which sees
// owner_died() until consistent(). Also: release by a non-owner keeps every robust list
// intact (glibc's robust mutexes in the same list keep working).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "../helpers/blocked.hpp"
#include "concur/multiprocessing/process.hpp"
#include "concur/multiprocessing/sharedctypes.hpp"
#include "concur/multiprocessing/synchronize.hpp"
#include "fork_util.hpp"

namespace mp = concur::multiprocessing;
using concur_test::fork_child;
using concur_test::wait_exit;
using namespace std::chrono_literals;

namespace {

// Child: acquire `acq`, report, then sleep until killed.
template <class L>
pid_t holder(L& lock, mp::Event& ready, int depth = 1) {
  return fork_child([&] {
    for (int i = 0; i < depth; ++i) lock.acquire();
    ready.set();
    for (;;) ::pause();
    return 0;
  });
}

TEST(Robust, LockHolderKilledNextAcquirerRecovers) {
  mp::Lock lock;
  mp::Event ready;
  const pid_t pid = holder(lock, ready);
  ASSERT_TRUE(ready.wait(10s));
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(false));
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), -SIGKILL);
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.owner_died());
  lock.release();
  EXPECT_TRUE(lock.owner_died()) << "stays set until consistent()";
  lock.consistent();
  EXPECT_FALSE(lock.owner_died());
  // Usable afterwards.
  EXPECT_TRUE(lock.acquire(false));
  EXPECT_FALSE(lock.owner_died());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

TEST(Robust, BlockedWaiterIsWokenWhenHolderDies) {
  mp::Lock lock;
  mp::Event ready;
  const pid_t pid = holder(lock, ready);
  ASSERT_TRUE(ready.wait(10s));
  mp::Event waiting;
  // A second child blocks in acquire(); it reports whether it saw owner_died().
  const pid_t waiter = fork_child([&] {
    waiting.set();
    lock.acquire();
    const bool died = lock.owner_died();
    lock.consistent();
    lock.release();
    return died ? 7 : 1;
  });
  ASSERT_TRUE(waiting.wait(10s));
  ::usleep(50000);  // let it reach the futex wait (not required for correctness)
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), -SIGKILL);
  EXPECT_EQ(wait_exit(waiter), 7);
  EXPECT_FALSE(lock.locked());
}

TEST(Robust, RLockWithRecursionCountRecovers) {
  mp::RLock rlock;
  mp::Event ready;
  const pid_t pid = holder(rlock, ready, 3);
  ASSERT_TRUE(ready.wait(10s));
  EXPECT_FALSE(rlock.acquire(false));
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), -SIGKILL);
  ASSERT_TRUE(rlock.acquire(10s));
  EXPECT_TRUE(rlock.owner_died());
  EXPECT_EQ(rlock.recursion_count(), 1u) << "the dead owner's depth is not inherited";
  rlock.consistent();
  rlock.release();
  EXPECT_FALSE(rlock.locked());
  EXPECT_THROW(rlock.release(), concur::RuntimeError);
}

TEST(Robust, ValueLockRecovers) {
  mp::Value<int> v(0);
  mp::Event ready;
  const pid_t pid = fork_child([&] {
    v.get_lock().acquire();
    v.set(41);
    ready.set();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait(10s));
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), -SIGKILL);
  {
    std::lock_guard g(v.get_lock());
    EXPECT_TRUE(v.get_lock().owner_died());
    v.set(v.value() + 1);
    v.get_lock().consistent();
  }
  EXPECT_EQ(v.value(), 42);
  EXPECT_FALSE(v.get_lock().locked());
}

TEST(Robust, ExitingWithoutReleaseAlsoCounts) {
  // A raw _exit (exit_group without concur's exit hooks) while holding is a death too;
  // a concur child's normal exit keeps the lock held (tests/detail/robust_lock_test.cpp).
  mp::Lock lock;
  const pid_t pid = fork_child([&] {
    lock.acquire();
    return 3;
  });
  EXPECT_EQ(wait_exit(pid), 3);
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.owner_died());
  lock.consistent();
  lock.release();
}

TEST(Robust, ReleaseByAnotherProcessKeepsListsIntact) {
  mp::Lock lock;
  mp::Event held, released, again, done;
  const pid_t child = fork_child([&] {
    // A glibc robust mutex shares this thread's robust list with our lock.
    pthread_mutexattr_t a;
    pthread_mutex_t m;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &a);
    pthread_mutex_lock(&m);
    lock.acquire();
    held.set();
    if (!released.wait(10s)) return 10;
    // The parent released our hold: our list still holds the node. Exercise the list.
    pthread_mutex_unlock(&m);
    for (int i = 0; i < 1000; ++i) {
      if (pthread_mutex_lock(&m) != 0) return 11;
      lock.acquire();
      lock.release();
      pthread_mutex_unlock(&m);
    }
    // Hold it once more, then die holding it: must still be robust.
    lock.acquire();
    again.set();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  lock.release();  // Python's rule: any process may release a Lock
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(lock.release(), concur::ValueError);
  ASSERT_TRUE(lock.acquire(10s));  // unprotected hold (node still in the child's list)
  lock.release();
  released.set();
  ASSERT_TRUE(again.wait(10s));
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), -SIGKILL);
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.owner_died());
  lock.consistent();
  lock.release();
}

TEST(Robust, NodeOfADeadListerIsReclaimed) {
  mp::Lock lock;
  mp::Event held, released;
  const pid_t child = fork_child([&] {
    lock.acquire();
    held.set();
    (void)released.wait(10s);
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  lock.release();
  released.set();
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), -SIGKILL);
  EXPECT_FALSE(lock.owner_died()) << "it was not held when the child died";
  // A thread takes the lock (reclaiming the dead child's node) and ends normally holding
  // it: the lock stays held (Python's hand-off; tests/detail/robust_lock_test.cpp).
  std::thread([&] { ASSERT_TRUE(lock.acquire(false)); }).join();
  EXPECT_FALSE(lock.acquire(100ms));
  lock.release();
  // The node is usable again: a holder that dies is recovered.
  mp::Event again;
  const pid_t second = fork_child([&] {
    lock.acquire();
    again.set();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(again.wait(10s));
  ::kill(second, SIGKILL);
  EXPECT_EQ(wait_exit(second), -SIGKILL);
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.owner_died());
  lock.consistent();
  lock.release();
}

TEST(Robust, ConditionWaiterDoesNotHangOnADeadLockHolder) {
  mp::Lock lock;
  mp::Condition cond(lock);
  mp::Event waiting, notified;
  // W waits on the condition.
  const pid_t w = fork_child([&] {
    std::unique_lock g(cond);
    waiting.set();
    if (!cond.wait(20s)) return 1;
    const bool died = cond.owner_died();
    cond.consistent();
    return died ? 7 : 2;  // g releases
  });
  ASSERT_TRUE(waiting.wait(10s));
  // N takes the lock (possible only once W sleeps in wait), notifies, and dies holding it.
  const pid_t n = fork_child([&] {
    cond.acquire();
    cond.notify();
    notified.set();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(notified.wait(10s));
  ::kill(n, SIGKILL);
  EXPECT_EQ(wait_exit(n), -SIGKILL);
  EXPECT_EQ(wait_exit(w), 7) << "the notified waiter re-took the dead holder's lock";
  EXPECT_FALSE(lock.locked());
}

TEST(Robust, ConditionOverRLockRecovers) {
  mp::Condition cond;  // own RLock
  mp::Event ready;
  const pid_t pid = fork_child([&] {
    cond.acquire();
    cond.acquire();
    ready.set();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait(10s));
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), -SIGKILL);
  std::unique_lock g(cond);
  EXPECT_TRUE(cond.owner_died());
  cond.consistent();
  EXPECT_FALSE(cond.wait(10ms));  // usable: waits and times out normally
  cond.notify_all();
}

TEST(Robust, RepeatedKillsUnderContentionNeverWedgeTheLock) {
  // Workers hammer one Value under its lock; the parent kills them one by one at random
  // moments (often while one holds the lock). The lock must stay acquirable throughout,
  // and the count stays consistent with what owner_died() reports.
  mp::Value<long> counter(0);
  mp::Value<int> started(0);
  std::vector<pid_t> workers;
  for (int w = 0; w < 4; ++w)
    workers.push_back(fork_child([&] {
      started.fetch_add(1);
      for (;;) {
        std::lock_guard g(counter.get_lock());
        counter.set(counter.value() + 1);
      }
      return 0;
    }));
  while (started.value() < 4) ::usleep(1000);
  int recoveries = 0;
  for (pid_t w : workers) {
    ::usleep(20000);
    ::kill(w, SIGKILL);
    EXPECT_EQ(wait_exit(w), -SIGKILL);
    ASSERT_TRUE(counter.get_lock().acquire(10s)) << "lock wedged after a kill";
    if (counter.get_lock().owner_died()) {
      ++recoveries;
      counter.get_lock().consistent();
    }
    counter.get_lock().release();
  }
  EXPECT_GT(counter.value(), 0);
  EXPECT_FALSE(counter.get_lock().locked());
  GTEST_LOG_(INFO) << recoveries << " of 4 kills hit a holder";
}

TEST(Robust, WorksWithProcessKill) {
  mp::Lock lock;
  mp::Event holding;
  mp::Process p(
      [](mp::Lock l, mp::Event e) {
        l.acquire();
        e.set();
        ::pause();
      },
      lock, holding);
  p.start();
  ASSERT_TRUE(holding.wait(10s));
  p.kill();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.owner_died());
  lock.consistent();
  lock.release();
}

// ---- Barrier: a party killed in wait() or in the action (issue 9) -----------------------

using concur::threading::BrokenBarrierError;

// Live parties in children: each reports 0 (BrokenBarrierError), 1 (released), 2 (other).
pid_t barrier_party(mp::Barrier& b, std::chrono::milliseconds timeout) {
  return fork_child([&b, timeout] {
    try {
      if (timeout.count() > 0)
        (void)b.wait(timeout);
      else
        (void)b.wait();
      return 1;
    } catch (const BrokenBarrierError&) {
      return 0;
    } catch (...) {
      return 2;
    }
  });
}

TEST(RobustBarrier, PartyKilledInWaitBreaksItForTheLiveOnes) {
  // 3 parties: one dies inside wait(); then the 2 live ones arrive. Before: the dead
  // party's count let the 2 live ones "complete" the cycle. Now: BrokenBarrierError.
  mp::Barrier b(3);
  const pid_t dead = fork_child([&] {
    (void)b.wait();
    return 5;
  });
  ASSERT_TRUE(concur_test::wait_blocked_in(dead, dead));
  ::kill(dead, SIGKILL);
  EXPECT_EQ(wait_exit(dead), -SIGKILL);
  const pid_t a = barrier_party(b, 0ms);  // no timeout: must still not hang
  const pid_t c = barrier_party(b, 10s);
  EXPECT_EQ(wait_exit(a), 0);
  EXPECT_EQ(wait_exit(c), 0);
  EXPECT_TRUE(b.broken());
  // After reset() the live parties work again.
  b.reset();
  EXPECT_FALSE(b.broken());
  std::vector<pid_t> live;
  for (int i = 0; i < 2; ++i) live.push_back(barrier_party(b, 10s));
  EXPECT_NO_THROW((void)b.wait(10s));
  for (pid_t p : live) EXPECT_EQ(wait_exit(p), 1);
}

TEST(RobustBarrier, PartyKilledWhileOthersSleepWakesThemWithBrokenBarrier) {
  mp::Barrier b(3);
  const pid_t a = barrier_party(b, 0ms);  // no timeout at all
  const pid_t dead = fork_child([&] {
    (void)b.wait();
    return 5;
  });
  ASSERT_TRUE(concur_test::wait_blocked_in(a, a));
  ASSERT_TRUE(concur_test::wait_blocked_in(dead, dead));
  ::kill(dead, SIGKILL);
  EXPECT_EQ(wait_exit(dead), -SIGKILL);
  EXPECT_EQ(wait_exit(a), 0) << "the sleeping party saw the death";
  EXPECT_TRUE(b.broken());
}

TEST(RobustBarrier, PartyKilledInTheActionBreaksIt) {
  mp::Value<int> in_action(0);
  mp::Barrier b(3, [&] {
    in_action.set(static_cast<int>(::getpid()));
    for (;;) ::pause();  // the last arriver runs the action; it is killed there
  });
  const pid_t a = barrier_party(b, 0ms);
  const pid_t c = barrier_party(b, 10s);
  ASSERT_TRUE(concur_test::wait_blocked_in(a, a));
  ASSERT_TRUE(concur_test::wait_blocked_in(c, c));
  const pid_t runner = barrier_party(b, 0ms);
  while (in_action.value() == 0) std::this_thread::sleep_for(1ms);
  ::kill(in_action.value(), SIGKILL);
  int codes = 0;
  for (pid_t p : {a, c, runner}) {
    const int rc = wait_exit(p);
    if (p == in_action.value()) {
      EXPECT_EQ(rc, -SIGKILL);
    } else {
      EXPECT_EQ(rc, 0);
      ++codes;
    }
  }
  EXPECT_EQ(codes, 2);
  EXPECT_TRUE(b.broken());
  b.reset();
  EXPECT_FALSE(b.broken());
}

TEST(RobustBarrier, SeededKillRoundsNeverWedge) {
  mp::Barrier b(3);
  std::mt19937 rng(20269);
  for (int round = 0; round < 4; ++round) {
    std::vector<pid_t> ps;
    for (int i = 0; i < 3; ++i)
      ps.push_back(fork_child([&b] {
        try {
          for (;;) (void)b.wait(2s);  // a victim killed between waits never arrives
        } catch (const BrokenBarrierError&) {
          return 0;
        }
        return 1;
      }));
    ::usleep(static_cast<useconds_t>(rng() % 30000));
    const std::size_t victim = rng() % ps.size();
    ::kill(ps[victim], SIGKILL);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const int rc = wait_exit(ps[i]);
      if (i == victim)
        EXPECT_TRUE(rc == -SIGKILL || rc == 0) << rc;  // 0: broken before the kill landed
      else
        EXPECT_EQ(rc, 0) << "round " << round;
    }
    b.reset();
    EXPECT_FALSE(b.broken());
    EXPECT_EQ(b.n_waiting(), 0);
  }
}

// ---- Condition: a waiter killed inside wait() keeps no notification (issue 9) -----------

TEST(RobustCondition, KilledWaiterDoesNotSwallowNotifyOne) {
  for (int round = 0; round < 3; ++round) {
    mp::Condition cond;
    mp::Value<int> woke(0);
    // The oldest waiter is killed; a live one waits behind it.
    const pid_t dead = fork_child([&] {
      cond.acquire();
      cond.wait();
      cond.release();
      return 5;
    });
    ASSERT_TRUE(concur_test::wait_blocked_in(dead, dead));
    const pid_t live = fork_child([&] {
      cond.acquire();
      const bool ok = cond.wait(20s);
      if (ok) woke.fetch_add(1);
      cond.release();
      return ok ? 0 : 1;
    });
    ASSERT_TRUE(concur_test::wait_blocked_in(live, live));
    ::kill(dead, SIGKILL);
    EXPECT_EQ(wait_exit(dead), -SIGKILL);
    cond.acquire();
    cond.notify(1);
    cond.release();
    EXPECT_EQ(wait_exit(live), 0) << "round " << round;
    EXPECT_EQ(woke.value(), 1);
  }
}

TEST(RobustCondition, DeadWaitersSlotsAreReclaimed) {
  // More dead waiters than the 64 slots: the live one still gets a slot and notify(1).
  mp::Condition cond;
  std::vector<pid_t> dead;
  for (int i = 0; i < 70; ++i) {
    dead.push_back(fork_child([&] {
      cond.acquire();
      cond.wait();
      return 5;
    }));
    ASSERT_TRUE(concur_test::wait_blocked_in(dead.back(), dead.back()));
  }
  for (pid_t p : dead) ::kill(p, SIGKILL);
  for (pid_t p : dead) EXPECT_EQ(wait_exit(p), -SIGKILL);
  const pid_t live = fork_child([&] {
    cond.acquire();
    const bool ok = cond.wait(20s);
    cond.release();
    return ok ? 0 : 1;
  });
  ASSERT_TRUE(concur_test::wait_blocked_in(live, live));
  cond.acquire();
  cond.notify(1);
  cond.release();
  EXPECT_EQ(wait_exit(live), 0);
}

}  // namespace
