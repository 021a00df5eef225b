// The Shared-scope synchronization algorithms (BasicRLock, BasicCondition, BasicBarrier)
// in MAP_SHARED|MAP_ANONYMOUS memory across forked processes — what the multiprocessing
// primitives build on — plus the Shared condition's out-of-slots fallback.
// Every fork here happens from a single-threaded test process (each test case runs in its
// own process under CTest), so ThreadSanitizer can follow it.
// concur-test: timeout=120
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <new>
#include <thread>
#include <vector>

#include "concur/detail/barrier.hpp"
#include "concur/detail/condition.hpp"
#include "concur/detail/rlock.hpp"

namespace {
using namespace std::chrono_literals;
using concur::detail::BasicBarrier;
using concur::detail::BasicCondition;
using concur::detail::BasicEvent;
using concur::detail::BasicLock;
using concur::detail::BasicRLock;
using concur::detail::Clock;
using concur::detail::deadline_after;
using concur::detail::Scope;
constexpr Scope SH = Scope::Shared;

// A zero-filled shared mapping holding one T built in place.
template <class T>
struct ShmBox {
  T* p = nullptr;
  template <class... A>
  explicit ShmBox(A&&... a) {
    void* m = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    p = new (m) T(std::forward<A>(a)...);
  }
  ~ShmBox() { munmap(p, sizeof(T)); }
  T* operator->() { return p; }
};

// Runs f in a forked child; the child's exit code is f's return value.
template <class F>
pid_t fork_child(F f) {
  const pid_t pid = fork();
  if (pid == 0) _exit(f());
  return pid;
}
int exit_code(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(SharedRLock, OwnerIsPerProcessThread) {
  struct S {
    BasicRLock<SH> lock;
    BasicEvent<SH> held, done;
  };
  ShmBox<S> s;
  // The parent uses the lock first, so its thread id is cached before the (plain) fork:
  // the child must still see itself as a different owner.
  ASSERT_TRUE(s->lock.try_lock());
  ASSERT_TRUE(s->lock.unlock());
  const pid_t pid = fork_child([&] {
    if (s->lock.is_owned()) return 6;
    s->lock.lock();
    s->lock.lock();  // reentrant in the child
    if (s->lock.level() != 2) return 2;
    s->held.set();
    const auto d = deadline_after(10s);
    if (!s->done.wait(&d)) return 3;
    if (!s->lock.unlock() || !s->lock.unlock()) return 4;
    return s->lock.unlock() ? 5 : 0;  // a third release is refused
  });
  const auto d = deadline_after(10s);
  ASSERT_TRUE(s->held.wait(&d));
  EXPECT_TRUE(s->lock.locked());
  EXPECT_FALSE(s->lock.is_owned());
  EXPECT_FALSE(s->lock.try_lock());
  EXPECT_FALSE(s->lock.unlock());  // not the owner: refused, nothing changes
  EXPECT_FALSE(s->lock.lock_until(deadline_after(20ms)));
  s->done.set();
  EXPECT_EQ(exit_code(pid), 0);
  EXPECT_FALSE(s->lock.locked());
  EXPECT_TRUE(s->lock.try_lock());
  EXPECT_TRUE(s->lock.unlock());
}

// Three child processes wait in turn; notify(1) wakes them one at a time, oldest first.
template <class L>
void fifo_across_processes() {
  struct S {
    L lock;
    BasicCondition<SH> cond;
    int started = 0;     // guarded by lock
    int order[3] = {-1, -1, -1};
    int woken = 0;       // guarded by lock
  };
  ShmBox<S> s;
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) {
    kids.push_back(fork_child([&, i] {
      s->lock.lock();
      ++s->started;
      const auto d = deadline_after(20s);
      const bool ok = s->cond.wait(s->lock, &d);
      s->order[s->woken++] = i;
      s->lock.unlock();
      return ok ? 0 : 1;
    }));
    for (;;) {  // child i is queued once it has released the lock inside wait()
      s->lock.lock();
      const bool queued = s->started == i + 1;
      s->lock.unlock();
      if (queued) break;
      std::this_thread::sleep_for(1ms);
    }
  }
  for (int k = 1; k <= 3; ++k) {
    s->lock.lock();
    s->cond.notify(1);
    s->lock.unlock();
    for (;;) {
      s->lock.lock();
      const int w = s->woken;
      s->lock.unlock();
      if (w >= k) break;
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(20ms);
    s->lock.lock();
    EXPECT_EQ(s->woken, k);  // exactly one per notify(1)
    s->lock.unlock();
  }
  for (pid_t p : kids) EXPECT_EQ(exit_code(p), 0);
  EXPECT_EQ(s->order[0], 0);
  EXPECT_EQ(s->order[1], 1);
  EXPECT_EQ(s->order[2], 2);
  EXPECT_TRUE(s->cond.empty());
}

TEST(SharedCondition, NotifyOneFifoAcrossProcessesWithLock) { fifo_across_processes<BasicLock<SH>>(); }
TEST(SharedCondition, NotifyOneFifoAcrossProcessesWithRLock) {
  fifo_across_processes<BasicRLock<SH>>();
}

// Ping-pong between two processes through one condition: no lost wake-ups.
TEST(SharedCondition, PingPongAcrossProcesses) {
  struct S {
    BasicLock<SH> lock;
    BasicCondition<SH> cond;
    int turn = 0;
  };
  ShmBox<S> s;
  const int kRounds = 5000;
  const pid_t pid = fork_child([&] {
    for (int i = 0; i < kRounds; ++i) {
      s->lock.lock();
      while (s->turn != 1) s->cond.wait(s->lock);
      s->turn = 0;
      s->cond.notify();
      s->lock.unlock();
    }
    return 0;
  });
  for (int i = 0; i < kRounds; ++i) {
    s->lock.lock();
    while (s->turn != 0) s->cond.wait(s->lock);
    s->turn = 1;
    s->cond.notify();
    s->lock.unlock();
  }
  EXPECT_EQ(exit_code(pid), 0);
  EXPECT_EQ(s->turn, 0);  // the child's last round handed the turn back
}

TEST(SharedCondition, TimedWaitAcrossProcesses) {
  struct S {
    BasicLock<SH> lock;
    BasicCondition<SH> cond;
  };
  ShmBox<S> s;
  const pid_t pid = fork_child([&] {
    s->lock.lock();
    const auto d = deadline_after(30ms);
    const bool r = s->cond.wait(s->lock, &d);
    const bool still_held = s->lock.locked();
    s->lock.unlock();
    return !r && still_held ? 0 : 1;
  });
  EXPECT_EQ(exit_code(pid), 0);
  EXPECT_TRUE(s->cond.empty());  // the timed-out waiter removed itself and freed its slot
}

// More waiters than slots: the extra ones take the generation-word path. notify_all wakes
// everybody; a predicate loop with notify(1) still delivers every item.
TEST(SharedCondition, OverflowBeyondSlots) {
  constexpr int kThreads = 80;  // > WaiterStore<Shared>::kSlots (64)
  static_assert(kThreads > static_cast<int>(concur::detail::WaiterStore<SH>::kSlots));
  BasicLock<SH> lock;
  BasicCondition<SH> cond;
  int waiting = 0, released = 0;
  bool go = false;
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i)
    ts.emplace_back([&] {
      lock.lock();
      ++waiting;
      while (!go) cond.wait(lock);
      ++released;
      lock.unlock();
    });
  for (;;) {
    lock.lock();
    const int w = waiting;
    lock.unlock();
    if (w == kThreads) break;
    std::this_thread::sleep_for(1ms);
  }
  lock.lock();
  go = true;
  cond.notify_all();
  lock.unlock();
  for (auto& t : ts) t.join();
  EXPECT_EQ(released, kThreads);
  EXPECT_TRUE(cond.empty());

  // Items handed out one notify(1) at a time to 80 consumers.
  int items = 0, consumed = 0;
  bool done = false;
  ts.clear();
  for (int i = 0; i < kThreads; ++i)
    ts.emplace_back([&] {
      lock.lock();
      for (;;) {
        while (items == 0 && !done) cond.wait(lock);
        if (items == 0) break;
        --items;
        ++consumed;
      }
      lock.unlock();
    });
  for (int i = 0; i < 2000; ++i) {
    lock.lock();
    ++items;
    cond.notify(1);
    lock.unlock();
  }
  lock.lock();
  done = true;
  cond.notify_all();
  lock.unlock();
  for (auto& t : ts) t.join();
  EXPECT_EQ(consumed, 2000);
  EXPECT_EQ(items, 0);
}

TEST(SharedBarrier, CyclesAcrossProcesses) {
  struct S {
    BasicBarrier<SH> barrier{3};
    std::atomic<int> actions{0};
    std::atomic<int> index_sum{0};
  };
  ShmBox<S> s;
  const int kCycles = 300;
  auto body = [&] {
    for (int i = 0; i < kCycles; ++i) {
      const auto idx = s->barrier.wait([&] { s->actions.fetch_add(1); });
      s->index_sum.fetch_add(static_cast<int>(idx));
    }
    return 0;
  };
  const pid_t a = fork_child(body);
  const pid_t b = fork_child(body);
  body();
  EXPECT_EQ(exit_code(a), 0);
  EXPECT_EQ(exit_code(b), 0);
  EXPECT_EQ(s->actions.load(), kCycles);
  EXPECT_EQ(s->index_sum.load(), 3 * kCycles);
  EXPECT_FALSE(s->barrier.broken());
}

TEST(SharedBarrier, AbortFromAnotherProcess) {
  struct S {
    BasicBarrier<SH> barrier{2};
  };
  ShmBox<S> s;
  const pid_t pid = fork_child([&] {
    try {
      const auto d = deadline_after(20s);
      s->barrier.wait_until(&d, [] {});
    } catch (const concur::threading::BrokenBarrierError&) {
      return 0;
    } catch (...) {
      return 2;
    }
    return 1;
  });
  while (s->barrier.n_waiting() < 1) std::this_thread::sleep_for(1ms);
  s->barrier.abort();
  EXPECT_EQ(exit_code(pid), 0);
  EXPECT_TRUE(s->barrier.broken());
  s->barrier.reset();
  EXPECT_FALSE(s->barrier.broken());
}

TEST(SharedScope, ZeroMemoryIsAValidState) {
  // The shm helper may map zero-filled memory: all-zero lock/rlock/condition are valid.
  // The condition goes at the first offset after the rlock that its alignment allows.
  constexpr std::size_t kCondAt = (sizeof(BasicRLock<SH>) + alignof(BasicCondition<SH>) - 1) /
                                  alignof(BasicCondition<SH>) * alignof(BasicCondition<SH>);
  ShmBox<std::array<unsigned char, kCondAt + sizeof(BasicCondition<SH>)>> raw;
  auto* rl = reinterpret_cast<BasicRLock<SH>*>(raw.p->data());
  EXPECT_FALSE(rl->locked());
  EXPECT_TRUE(rl->try_lock());
  EXPECT_TRUE(rl->unlock());
  auto* c = reinterpret_cast<BasicCondition<SH>*>(raw.p->data() + kCondAt);
  EXPECT_TRUE(c->empty());
  rl->lock();
  const auto d = deadline_after(1ms);
  EXPECT_FALSE(c->wait(*rl, &d));
  rl->unlock();
}

}  // namespace
