// lock_bench — threading's synchronization primitives against the OS limit.
//
// 1. Uncontended acquire+release: concur Lock / RLock / Semaphore / Condition(lock) vs
//    pthread_mutex (the limit from bench/limits/l05_locks.cpp) and std::mutex.
//    Target: Lock ≤ 1.3× pthread_mutex. Python peer: bench/python/b07_locks.py.
// 2. Wake-up round trip between two threads: Event pair and Condition ping-pong vs a raw
//    futex ping-pong (the limit, bench/limits/l01_pingpong.cpp's futex_rt turned into two
//    threads with FUTEX_PRIVATE_FLAG) and a busy-spin ping-pong on one cache line (the
//    floor, no sleeping at all), plus std::condition_variable as the C++ peer.
// Ratios are written up in docs/benchmarks.md ("## threading: synchronization").
#include <benchmark/benchmark.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "concur/threading/barrier.hpp"
#include "concur/threading/condition.hpp"
#include "concur/threading/event.hpp"
#include "concur/threading/lock.hpp"
#include "concur/threading/semaphore.hpp"

namespace th = concur::threading;

// ---------------------------------------------------------------- uncontended pairs
// glibc (>= 2.35) skips the atomic instructions of pthread_mutex_lock while the process
// has never started a second thread, so the limit is measured twice: in the still
// single-threaded process (first, 4-5 ns here) and once a thread has existed (the case a
// threading library lives in, ~11 ns here). concur's locks always use atomics.
static void BM_limit_pthread_mutex_single_threaded_process(benchmark::State& st) {
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  for (auto _ : st) {
    pthread_mutex_lock(&m);
    asm volatile("" ::: "memory");
    pthread_mutex_unlock(&m);
  }
}
BENCHMARK(BM_limit_pthread_mutex_single_threaded_process);

static void BM_limit_pthread_mutex(benchmark::State& st) {
  std::thread([] {}).join();  // from now on the process is multi-threaded for glibc
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  for (auto _ : st) {
    pthread_mutex_lock(&m);
    asm volatile("" ::: "memory");
    pthread_mutex_unlock(&m);
  }
}
BENCHMARK(BM_limit_pthread_mutex);

static void BM_std_mutex(benchmark::State& st) {
  static std::mutex m;
  for (auto _ : st) {
    m.lock();
    asm volatile("" ::: "memory");
    m.unlock();
  }
}
BENCHMARK(BM_std_mutex);

static void BM_Lock_acquire_release(benchmark::State& st) {
  static th::Lock l;
  for (auto _ : st) {
    l.acquire();
    asm volatile("" ::: "memory");
    l.release();
  }
}
BENCHMARK(BM_Lock_acquire_release);

static void BM_Lock_lock_guard(benchmark::State& st) {
  static th::Lock l;
  for (auto _ : st) {
    std::lock_guard g(l);
    asm volatile("" ::: "memory");
  }
}
BENCHMARK(BM_Lock_lock_guard);

static void BM_RLock_acquire_release(benchmark::State& st) {
  static th::RLock l;
  for (auto _ : st) {
    l.acquire();
    asm volatile("" ::: "memory");
    l.release();
  }
}
BENCHMARK(BM_RLock_acquire_release);

static void BM_RLock_nested_level(benchmark::State& st) {  // one more level while held
  static th::RLock l;
  l.acquire();
  for (auto _ : st) {
    l.acquire();
    asm volatile("" ::: "memory");
    l.release();
  }
  l.release();
}
BENCHMARK(BM_RLock_nested_level);

static void BM_Semaphore_acquire_release(benchmark::State& st) {
  static th::Semaphore s(1);
  for (auto _ : st) {
    s.acquire();
    asm volatile("" ::: "memory");
    s.release();
  }
}
BENCHMARK(BM_Semaphore_acquire_release);

static void BM_Condition_acquire_release(benchmark::State& st) {  // default: its own RLock
  static th::Condition c;
  for (auto _ : st) {
    c.acquire();
    asm volatile("" ::: "memory");
    c.release();
  }
}
BENCHMARK(BM_Condition_acquire_release);

static void BM_Condition_notify_no_waiter(benchmark::State& st) {
  static th::Condition c;
  std::lock_guard g(c);
  for (auto _ : st) c.notify();
}
BENCHMARK(BM_Condition_notify_no_waiter);

static void BM_Event_is_set(benchmark::State& st) {
  static th::Event e;
  for (auto _ : st) benchmark::DoNotOptimize(e.is_set());
}
BENCHMARK(BM_Event_is_set);

// ---------------------------------------------------------------- contended (2 threads)
// Both threads hammer one lock; time per acquire+release pair per thread.
static void BM_limit_pthread_mutex_contended(benchmark::State& st) {
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  static long counter;
  for (auto _ : st) {
    pthread_mutex_lock(&m);
    ++counter;
    pthread_mutex_unlock(&m);
  }
}
BENCHMARK(BM_limit_pthread_mutex_contended)->Threads(2)->UseRealTime();

static void BM_Lock_contended(benchmark::State& st) {
  static th::Lock l;
  static long counter;
  for (auto _ : st) {
    l.acquire();
    ++counter;
    l.release();
  }
}
BENCHMARK(BM_Lock_contended)->Threads(2)->UseRealTime();

// ---------------------------------------------------------------- two-thread round trips
namespace {
long sys_futex(std::atomic<std::uint32_t>* a, int op, std::uint32_t v) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), op, v, nullptr, nullptr, 0);
}
// l01's futex_wait_change, private: waits until *a != seen.
std::uint32_t futex_wait_change(std::atomic<std::uint32_t>* a, std::uint32_t seen) {
  std::uint32_t v;
  while ((v = a->load(std::memory_order_acquire)) == seen) sys_futex(a, FUTEX_WAIT_PRIVATE, seen);
  return v;
}
}  // namespace

// The limit: l01's futex ping-pong (every hop is a FUTEX_WAKE + a FUTEX_WAIT sleep).
static void BM_limit_futex_pingpong(benchmark::State& st) {
  alignas(64) static std::atomic<std::uint32_t> ping{0};
  alignas(64) static std::atomic<std::uint32_t> pong{0};
  ping = 0;
  pong = 0;
  std::thread partner([] {
    std::uint32_t seen = 0;
    for (;;) {
      seen = futex_wait_change(&ping, seen);
      pong.store(seen, std::memory_order_release);
      sys_futex(&pong, FUTEX_WAKE_PRIVATE, 1);
      if (seen == UINT32_MAX) return;
    }
  });
  std::uint32_t seq = 0;
  for (auto _ : st) {
    const std::uint32_t prev = seq++;
    ping.store(seq, std::memory_order_release);
    sys_futex(&ping, FUTEX_WAKE_PRIVATE, 1);
    futex_wait_change(&pong, prev);
  }
  ping.store(UINT32_MAX, std::memory_order_release);
  sys_futex(&ping, FUTEX_WAKE_PRIVATE, 1);
  partner.join();
}
BENCHMARK(BM_limit_futex_pingpong)->UseRealTime();

// The floor: busy-spin hand-off on one cache line (no sleeping; burns both CPUs).
static void BM_floor_spin_pingpong(benchmark::State& st) {
  alignas(64) static std::atomic<std::uint64_t> x{0};
  x = 0;
  std::thread partner([] {
    for (std::uint64_t i = 0;; ++i) {
      std::uint64_t v;
      while (((v = x.load(std::memory_order_acquire)) & 1) == 0) {
      }
      if (v == UINT64_MAX) return;
      x.store(v + 1, std::memory_order_release);
    }
  });
  std::uint64_t v = 0;
  for (auto _ : st) {
    x.store(v + 1, std::memory_order_release);
    while (x.load(std::memory_order_acquire) != v + 2) {
    }
    v += 2;
  }
  x.store(UINT64_MAX, std::memory_order_release);
  partner.join();
}
BENCHMARK(BM_floor_spin_pingpong)->UseRealTime();

static void BM_Event_pingpong(benchmark::State& st) {
  static th::Event ping, pong;
  static std::atomic<bool> stop;
  stop = false;
  ping.clear();
  pong.clear();
  std::thread partner([] {
    for (;;) {
      ping.wait();
      ping.clear();
      if (stop.load(std::memory_order_relaxed)) return;
      pong.set();
    }
  });
  for (auto _ : st) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  stop = true;
  ping.set();
  partner.join();
}
BENCHMARK(BM_Event_pingpong)->UseRealTime();

static void BM_Condition_pingpong(benchmark::State& st) {
  static th::Lock lock;
  static th::Condition c(lock);
  static int turn;  // 0: main's turn, 1: partner's, 2: stop
  turn = 0;
  std::thread partner([] {
    std::unique_lock g(c);
    for (;;) {
      c.wait_for([] { return turn != 0; });
      if (turn == 2) return;
      turn = 0;
      c.notify();
    }
  });
  for (auto _ : st) {
    std::unique_lock g(c);
    turn = 1;
    c.notify();
    c.wait_for([] { return turn == 0; });
  }
  {
    std::unique_lock g(c);
    turn = 2;
    c.notify();
  }
  partner.join();
}
BENCHMARK(BM_Condition_pingpong)->UseRealTime();

static void BM_std_condvar_pingpong(benchmark::State& st) {
  static std::mutex m;
  static std::condition_variable cv;
  static int turn;
  turn = 0;
  std::thread partner([] {
    std::unique_lock g(m);
    for (;;) {
      cv.wait(g, [] { return turn != 0; });
      if (turn == 2) return;
      turn = 0;
      cv.notify_one();
    }
  });
  for (auto _ : st) {
    std::unique_lock g(m);
    turn = 1;
    cv.notify_one();
    cv.wait(g, [] { return turn == 0; });
  }
  {
    std::unique_lock g(m);
    turn = 2;
    cv.notify_one();
  }
  partner.join();
}
BENCHMARK(BM_std_condvar_pingpong)->UseRealTime();

// Two threads meeting at a Barrier(2): one cycle per iteration.
static void BM_Barrier2_cycle(benchmark::State& st) {
  static th::Barrier b(2);
  const auto rounds = st.max_iterations;  // the partner meets every one of them
  std::thread partner([rounds] {
    for (benchmark::IterationCount i = 0; i < rounds; ++i) b.wait();
  });
  for (auto _ : st) b.wait();
  partner.join();
}
BENCHMARK(BM_Barrier2_cycle)->UseRealTime();

// What the spin budget costs: kSpinLimit rounds of cpu_relax() (`pause`), the time a
// contended Lock / a Condition waiter spins before it sleeps on the futex.
static void BM_spin_budget(benchmark::State& st) {
  for (auto _ : st)
    for (int i = 0; i < concur::detail::kSpinLimit; ++i) concur::detail::cpu_relax();
}
BENCHMARK(BM_spin_budget);

BENCHMARK_MAIN();
