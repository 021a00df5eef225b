// concur-test: timeout=90
// The robust list's soundness (issue 9, design change 4):
//  (a) a lock released by another thread and then destroyed never leaves a dangling node
//      in its acquirer's robust list: the block is not reused while listed, so a later
//      SIGKILL still recovers every other lock that thread held (owner_died());
//  (b) a holder that ENDS normally (thread return, concur child's normal exit) keeps the
//      lock held — Python's hand-off: acquire(100ms) elsewhere fails, release works; only a
//      death hands it over with owner_died();
//  the kernel walk limit (ROBUST_LIST_LIMIT = 2048 entries per dying thread);
//  (c) a brief hold (try_lock_brief: announced in list_op_pending, not listed) is handed
//      over like a listed one when its holder is SIGKILLed, also beside listed holds, and
//      leaves the pending slot clear after its unlock.
// Every fork here happens from a single-threaded test process (each case runs in its own
// process under CTest).
#include "concur/detail/robust_lock.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "concur/detail/arena.hpp"
#include "concur/detail/deadline.hpp"
#include "concur/multiprocessing/process.hpp"
#include "concur/multiprocessing/synchronize.hpp"
#include "../multiprocessing/fork_util.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

namespace {

using concur_test::fork_child;  // raw _exit: no concur epilogue (a death, for the list)
using concur_test::wait_exit;

// (a) In a child: hold `outer`, take `inner` (a lock the child allocates, so its block is
// reusable), have another thread release it, destroy it, allocate locks until the arena
// hands out blocks again (and write into them), then die by SIGKILL holding `outer`.
// Before the fix the destroyed lock's block was reused while its node sat at the head of
// the list: the new object's zeroed links ended the kernel walk before `outer`.
void release_destroy_reuse_then_kill(bool drain_first, std::uint64_t seed) {
  mp::Lock outer;
  mp::Event ready;
  const pid_t child = fork_child([&] {
    outer.acquire();
    std::vector<mp::Lock> keep;
    std::mt19937_64 rng(seed);
    for (int round = 0; round < 3; ++round) {
      auto inner = std::make_unique<mp::Lock>();
      inner->acquire();                               // node at the head of our list
      std::thread([&] { inner->release(); }).join();  // a non-owner release
      const void* const addr = &inner->native();
      // Destroyed while listed: by the lister itself (unlinked at once) or by another
      // thread (posted to the lister).
      const bool by_other = round % 2 == 0;
      if (by_other)
        std::thread([&] { inner.reset(); }).join();
      else
        inner.reset();
      if (drain_first) {
        mp::Lock other;  // our next list operation frees the posted block
        other.acquire();
        other.release();
      }
      // Reuse: the arena's free list hands out a freed block to the next allocation.
      // Without a list operation in between, the posted block must not be among them.
      for (int i = 0; i < 4; ++i) {
        keep.emplace_back();
        if (&keep.back().native() == addr && by_other && !drain_first)
          return 20;  // reused while listed
      }
      // Random list operations (each may free the posted block) and more reuse.
      for (int i = 0; i < 4; ++i) {
        keep.emplace_back();
        if (rng() % 2) {
          keep.back().acquire();
          keep.back().release();
        }
      }
    }
    ready.set();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait(10s)) << "child exit code " << wait_exit(child);
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), -SIGKILL);
  ASSERT_TRUE(outer.acquire(10s)) << "the kernel walk did not reach the outer lock";
  EXPECT_TRUE(outer.owner_died());
  outer.consistent();
  outer.release();
}

TEST(RobustList, ReleasedByAnotherThreadDestroyedThenReusedKeepsTheWalkIntact) {
  release_destroy_reuse_then_kill(false, 1);
}

TEST(RobustList, PostedBlockIsFreedAtTheOwnersNextOperationAndReusedSafely) {
  release_destroy_reuse_then_kill(true, 2);
}

TEST(RobustList, PostedBlockIsFreedWhenTheOwnerThreadEnds) {
  const auto before = concur::detail::arena_stats().free_blocks;
  mp::Event held, destroyed;
  auto lock = std::make_unique<mp::Lock>();
  std::thread t([&] {
    lock->acquire();
    held.set();
    (void)destroyed.wait(10s);
  });
  ASSERT_TRUE(held.wait(10s));
  lock->release();  // node still in t's list
  lock.reset();     // posted to t: not on the free list yet
  EXPECT_EQ(concur::detail::arena_stats().free_blocks, before);
  destroyed.set();
  t.join();  // t's end unlinks and frees it
  EXPECT_EQ(concur::detail::arena_stats().free_blocks, before + 1);
}

// (b) threads: the hand-off survives the acquirer's normal end.
TEST(RobustList, LockHeldByAThreadThatEndsStaysHeld) {
  mp::Lock lock;
  std::thread([&] { ASSERT_TRUE(lock.acquire(false)); }).join();
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(100ms)) << "Python: acquire(timeout=0.1) returns False";
  lock.release();  // any thread may release a Lock
  EXPECT_FALSE(lock.owner_died());
  ASSERT_TRUE(lock.acquire(false));
  lock.release();
}

TEST(RobustList, RLockHeldByAThreadThatEndsStaysHeldAndUnowned) {
  mp::RLock rl;
  std::thread([&] {
    rl.acquire();
    rl.acquire();
  }).join();
  EXPECT_TRUE(rl.locked());
  EXPECT_FALSE(rl.is_owned());
  EXPECT_FALSE(rl.acquire(100ms));
  EXPECT_THROW(rl.release(), concur::RuntimeError);
}

// (b) processes: a concur child that acquires and exits normally.
TEST(RobustList, LockHeldByAChildThatExitsNormallyStaysHeld) {
  mp::Lock lock;
  mp::Process p([&] { lock.acquire(); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.acquire(100ms));
  EXPECT_FALSE(lock.owner_died());
  lock.release();
  ASSERT_TRUE(lock.acquire(1s));
  EXPECT_FALSE(lock.owner_died());
  lock.release();
}

// The same child ending through mp::exit() from its target, and a thread of the child.
TEST(RobustList, HandOffSurvivesExitRequestAndChildThreads) {
  mp::Lock a, b;
  mp::Process p([&] {
    std::thread([&] { b.acquire(); }).join();
    a.acquire();
    mp::exit(3);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 3);
  EXPECT_FALSE(a.acquire(100ms));
  EXPECT_FALSE(b.acquire(100ms));
  a.release();
  b.release();
  EXPECT_FALSE(a.owner_died());
  EXPECT_FALSE(b.owner_died());
}

// Death still hands over: seeded kill points in a holder that loops acquire/release.
TEST(RobustList, SeededKillsOfAHolderAlwaysRecover) {
  mp::Lock lock;
  std::mt19937 rng(9);
  int died = 0;
  for (int round = 0; round < 6; ++round) {
    mp::Event go;
    const pid_t child = fork_child([&] {
      go.set();
      for (;;) {
        lock.acquire();
        lock.release();
      }
      return 0;
    });
    ASSERT_TRUE(go.wait(10s));
    ::usleep(static_cast<useconds_t>(rng() % 20000));
    ::kill(child, SIGKILL);
    EXPECT_EQ(wait_exit(child), -SIGKILL);
    ASSERT_TRUE(lock.acquire(10s)) << "round " << round;
    if (lock.owner_died()) ++died;
    lock.consistent();
    lock.release();
  }
  GTEST_LOG_(INFO) << died << " of 6 kills hit the holder";
}

// The walk limit: a thread that dies holding 2100 locks. The kernel follows at most 2048
// entries from the head (the newest), so exactly the 2048 taken last are recovered.
TEST(RobustList, WalkLimitRecoversTheNewest2048) {
  constexpr int kLocks = 2100;
  std::vector<mp::Lock> locks(kLocks);
  mp::Event ready;
  const pid_t child = fork_child([&] {
    for (auto& l : locks) l.acquire();
    ready.set();
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait(10s));
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), -SIGKILL);
  int recovered = 0, first_recovered = -1;
  for (int i = 0; i < kLocks; ++i) {
    if (!locks[static_cast<std::size_t>(i)].acquire(false)) continue;
    EXPECT_TRUE(locks[static_cast<std::size_t>(i)].owner_died());
    if (first_recovered < 0) first_recovered = i;
    ++recovered;
  }
  EXPECT_EQ(recovered, 2048);
  EXPECT_EQ(first_recovered, kLocks - 2048);
}

// (c) Brief holds. Two RobustLocks and a flag in a MAP_SHARED page, as the queue's ring has.
struct BriefShared {
  concur::detail::RobustLock a;  // taken as a brief hold
  concur::detail::RobustLock b;  // taken the ordinary (listed) way
  std::atomic<int> ready{0};
};
BriefShared* map_brief() {
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(p, MAP_FAILED);
  return ::new (p) BriefShared;
}
void wait_flag(const std::atomic<int>& f) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (f.load() == 0 && std::chrono::steady_clock::now() < until) ::usleep(100);
}

TEST(RobustList, BriefHoldOfAKilledHolderIsHandedOver) {
  BriefShared* s = map_brief();
  const pid_t child = fork_child([&] {
    s->b.lock();  // a listed hold too: the kernel must walk the list AND the pending slot
    if (!s->a.try_lock_brief()) return 3;
    s->ready.store(1);
    for (;;) ::pause();
    return 0;
  });
  wait_flag(s->ready);
  ASSERT_EQ(s->ready.load(), 1);
  EXPECT_FALSE(s->a.try_lock());  // really held, by the child
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), -SIGKILL);
  ASSERT_TRUE(s->a.lock_until(concur::detail::deadline_after(10s)));
  EXPECT_TRUE(s->a.owner_died());
  s->a.consistent();
  EXPECT_TRUE(s->a.unlock());
  ASSERT_TRUE(s->b.lock_until(concur::detail::deadline_after(10s)));
  EXPECT_TRUE(s->b.owner_died());
  s->b.consistent();
  EXPECT_TRUE(s->b.unlock());
  ::munmap(s, 4096);
}

TEST(RobustList, BriefHoldFallsBackAndLeavesThePendingSlotClear) {
  BriefShared* s = map_brief();
  auto& t = concur::detail::robust_thread();
  ASSERT_NE(t.head, nullptr) << "this glibc has no robust list we can use";
  ASSERT_TRUE(s->a.try_lock_brief());
  EXPECT_EQ(t.head[2], static_cast<void*>(reinterpret_cast<char*>(&s->a) + 32));
  EXPECT_FALSE(s->b.try_lock_brief());  // a pending op of ours already: not nested
  EXPECT_FALSE(s->a.try_lock_brief());  // held
  EXPECT_TRUE(s->a.unlock());
  EXPECT_EQ(t.head[2], nullptr);
  EXPECT_FALSE(s->a.locked());
  ASSERT_TRUE(s->b.try_lock());          // listed
  EXPECT_EQ(t.head[2], nullptr);         // a listed hold leaves the slot clear
  ASSERT_TRUE(s->a.try_lock_brief());    // so a brief hold beside it is possible
  EXPECT_TRUE(s->a.unlock());
  EXPECT_EQ(t.head[2], nullptr);
  EXPECT_TRUE(s->b.unlock());
  ::munmap(s, 4096);
}

// Seeded kill points in a holder that loops brief holds (falling back to a listed lock when
// the brief try fails): the survivor always gets the lock, with owner_died() when the kill
// landed inside a hold.
TEST(RobustList, SeededKillsOfABriefHolderAlwaysRecover) {
  BriefShared* s = map_brief();
  std::mt19937 rng(10);
  int died = 0;
  for (int round = 0; round < 40; ++round) {
    s->ready.store(0);
    const pid_t child = fork_child([&] {
      s->ready.store(1);
      for (std::uint64_t i = 0;; ++i) {
        if (!s->a.try_lock_brief()) s->a.lock();
        if (i % 7 == 0) {  // now and then a listed hold of b between brief holds of a
          s->a.unlock();
          s->b.lock();
          s->b.unlock();
          continue;
        }
        s->a.unlock();
      }
      return 0;
    });
    wait_flag(s->ready);
    ::usleep(static_cast<useconds_t>(rng() % 3000));
    ::kill(child, SIGKILL);
    EXPECT_EQ(wait_exit(child), -SIGKILL);
    for (auto* l : {&s->a, &s->b}) {
      ASSERT_TRUE(l->lock_until(concur::detail::deadline_after(10s))) << "round " << round;
      if (l->owner_died()) ++died;
      l->consistent();
      EXPECT_TRUE(l->unlock());
    }
  }
  GTEST_LOG_(INFO) << died << " of 40 kills hit a holder";
  ::munmap(s, 4096);
}

}  // namespace
