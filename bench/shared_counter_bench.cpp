// Shared counters and cross-process locks: concur next to the OS limit, in one program.
//
//   * uncontended lock+unlock pair: mp::Lock / mp::RLock (robust, RobustLock) vs a
//     PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST pthread_mutex_t in MAP_SHARED memory
//     (bench/limits/l05_locks.cpp's "robust_mutex") and a plain pthread mutex;
//   * N processes (2, 4: the /2 and /4 suffixes) x M increments of a shared int under a lock: mp::Value<int> + get_lock()
//     (Python's pattern) vs the robust pthread mutex (l05 "two_proc_counter" mode 0);
//   * N processes x M lock-free increments: Value<int>::fetch_add vs a raw std::atomic in
//     shared memory (l05 mode 1).
// Python peers: bench/python/b07_locks.py and b08_shared_counter.py (run by bench/run.sh).
// Counts are checked: a run that loses an update aborts.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "concur/multiprocessing/sharedctypes.hpp"
#include "concur/multiprocessing/synchronize.hpp"

namespace mp = concur::multiprocessing;

namespace {

constexpr int kIncrements = 1'000'000;  // per process, as l05

void* shm_alloc(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return p;
}

pthread_mutex_t* make_robust_mutex() {
  auto* m = static_cast<pthread_mutex_t*>(shm_alloc(4096));
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return m;
}

// ---- uncontended pairs -------------------------------------------------------------------

void BM_Lock_concur(benchmark::State& state) {
  mp::Lock l;
  for (auto _ : state) {
    l.lock();
    benchmark::ClobberMemory();
    l.unlock();
  }
}
BENCHMARK(BM_Lock_concur);

void BM_RLock_concur(benchmark::State& state) {
  mp::RLock l;
  for (auto _ : state) {
    l.lock();
    benchmark::ClobberMemory();
    l.unlock();
  }
}
BENCHMARK(BM_RLock_concur);

void BM_Lock_limit_robust_pthread(benchmark::State& state) {
  static pthread_mutex_t* m = make_robust_mutex();
  for (auto _ : state) {
    if (pthread_mutex_lock(m) != 0) std::abort();
    benchmark::ClobberMemory();
    pthread_mutex_unlock(m);
  }
}
BENCHMARK(BM_Lock_limit_robust_pthread);

void BM_Lock_limit_plain_pthread(benchmark::State& state) {
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  for (auto _ : state) {
    pthread_mutex_lock(&m);
    benchmark::ClobberMemory();
    pthread_mutex_unlock(&m);
  }
}
BENCHMARK(BM_Lock_limit_plain_pthread);

// ---- 2-process counters ------------------------------------------------------------------

// Forks `n` workers that wait for `go`, run body(), and exit; returns the seconds from go
// to all exits.
template <class Body>
double n_processes(int n, std::atomic<int>* go, Body body) {
  go->store(0);
  std::vector<pid_t> pids;
  for (int k = 0; k < n; ++k) {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      while (go->load(std::memory_order_acquire) == 0) {
      }
      body();
      _exit(0);
    }
    pids.push_back(pid);
  }
  usleep(20000);
  const auto t0 = std::chrono::steady_clock::now();
  go->store(1, std::memory_order_release);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::atomic<int>* go_flag() {
  static auto* g = new (shm_alloc(4096)) std::atomic<int>(0);
  return g;
}

void BM_LockedCounter_concur_Value_get_lock(benchmark::State& state) {
  const int procs = static_cast<int>(state.range(0));
  for (auto _ : state) {
    mp::Value<int> v(0);
    const double dt = n_processes(procs, go_flag(), [&] {
      auto& lock = v.get_lock();
      for (int i = 0; i < kIncrements; ++i) {
        std::lock_guard g(lock);
        v.set(v.value() + 1);
      }
    });
    if (v.value() != procs * kIncrements) std::abort();
    state.SetIterationTime(dt);
  }
  state.SetItemsProcessed(state.iterations() * procs * kIncrements);
}
BENCHMARK(BM_LockedCounter_concur_Value_get_lock)->Arg(2)->Arg(4)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

void BM_LockedCounter_concur_Lock(benchmark::State& state) {
  const int procs = static_cast<int>(state.range(0));
  for (auto _ : state) {
    mp::Lock lock;
    mp::RawValue<int> v(0);
    const double dt = n_processes(procs, go_flag(), [&] {
      int* p = v.get_obj();
      for (int i = 0; i < kIncrements; ++i) {
        std::lock_guard g(lock);
        *p = *p + 1;
        benchmark::ClobberMemory();
      }
    });
    if (v.value() != procs * kIncrements) std::abort();
    state.SetIterationTime(dt);
  }
  state.SetItemsProcessed(state.iterations() * procs * kIncrements);
}
BENCHMARK(BM_LockedCounter_concur_Lock)->Arg(2)->Arg(4)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

void BM_LockedCounter_limit_robust_pthread(benchmark::State& state) {
  struct Shared {
    pthread_mutex_t m;
    alignas(64) int plain;
  };
  const int procs = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto* s = static_cast<Shared*>(shm_alloc(sizeof(Shared)));
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&s->m, &a);
    s->plain = 0;
    const double dt = n_processes(procs, go_flag(), [&] {
      for (int i = 0; i < kIncrements; ++i) {
        pthread_mutex_lock(&s->m);
        s->plain = s->plain + 1;
        benchmark::ClobberMemory();
        pthread_mutex_unlock(&s->m);
      }
    });
    if (s->plain != procs * kIncrements) std::abort();
    munmap(s, sizeof(Shared));
    state.SetIterationTime(dt);
  }
  state.SetItemsProcessed(state.iterations() * procs * kIncrements);
}
BENCHMARK(BM_LockedCounter_limit_robust_pthread)->Arg(2)->Arg(4)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

void BM_FetchAdd_concur_Value(benchmark::State& state) {
  const int procs = static_cast<int>(state.range(0));
  for (auto _ : state) {
    mp::Value<int> v(0);
    const double dt = n_processes(procs, go_flag(), [&] {
      for (int i = 0; i < kIncrements; ++i) v.fetch_add(1);
    });
    if (v.value() != procs * kIncrements) std::abort();
    state.SetIterationTime(dt);
  }
  state.SetItemsProcessed(state.iterations() * procs * kIncrements);
}
BENCHMARK(BM_FetchAdd_concur_Value)->Arg(2)->Arg(4)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

void BM_FetchAdd_limit_atomic(benchmark::State& state) {
  const int procs = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto* at = new (shm_alloc(4096)) std::atomic<int>(0);
    const double dt = n_processes(procs, go_flag(), [&] {
      for (int i = 0; i < kIncrements; ++i) at->fetch_add(1, std::memory_order_relaxed);
    });
    if (at->load() != procs * kIncrements) std::abort();
    munmap(at, 4096);
    state.SetIterationTime(dt);
  }
  state.SetItemsProcessed(state.iterations() * procs * kIncrements);
}
BENCHMARK(BM_FetchAdd_limit_atomic)->Arg(2)->Arg(4)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
