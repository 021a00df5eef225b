// Thread benchmarks: concur::threading::Thread create+start+join against the OS limit
// (raw std::thread, bench/limits/l03_thread.cpp; and bare pthread_create/join), the
// CPU-bound loop of bench/python/b11_gil.py on 1 vs 2 threads (concur and std::thread), and
// the per-call costs of current_thread(), Local<T>::get() and logging.
// Python peer: bench/python/b11_gil.py (1 thread vs 2 threads, speed-up 0.93x with the GIL).
// Targets (issue #2): create+join <= 1.2x std::thread; 2-thread speed-up >= 1.9x.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;

// ---- create + join ----

static void BM_concur_Thread_create_join(benchmark::State& state) {
  for (auto _ : state) {
    th::Thread t([] {});
    t.start();
    t.join();
  }
}
BENCHMARK(BM_concur_Thread_create_join)->UseRealTime();

// The OS limit, as in bench/limits/l03_thread.cpp.
static void BM_limit_std_thread_create_join(benchmark::State& state) {
  for (auto _ : state) {
    std::thread t([] {});
    t.join();
  }
}
BENCHMARK(BM_limit_std_thread_create_join)->UseRealTime();

static void* empty_start(void*) { return nullptr; }
static void BM_limit_pthread_create_join(benchmark::State& state) {
  for (auto _ : state) {
    pthread_t h;
    pthread_create(&h, nullptr, empty_start, nullptr);
    pthread_join(h, nullptr);
  }
}
BENCHMARK(BM_limit_pthread_create_join)->UseRealTime();

// Paired: each iteration does 200 concur create+joins then 200 std::thread ones, so both see
// the same background load; counters give µs per thread for each and their ratio.
static void BM_create_join_paired(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  constexpr int kBatch = 200;
  double best_c = 1e30, best_s = 1e30, sum_c = 0, sum_s = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    for (int i = 0; i < kBatch; ++i) {
      th::Thread t([] {});
      t.start();
      t.join();
    }
    const double dc = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kBatch;
    t0 = Clock::now();
    for (int i = 0; i < kBatch; ++i) {
      std::thread t([] {});
      t.join();
    }
    const double ds = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kBatch;
    best_c = std::min(best_c, dc);
    best_s = std::min(best_s, ds);
    sum_c += dc;
    sum_s += ds;
  }
  state.counters["concur_us_best"] = best_c;
  state.counters["std_us_best"] = best_s;
  state.counters["ratio_best"] = best_c / best_s;
  state.counters["ratio_total"] = sum_c / sum_s;
}
BENCHMARK(BM_create_join_paired)->Iterations(30)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- CPU-bound loop (b11_gil.py's `s += i & 7`, kept scalar) ----

constexpr std::uint64_t kTotal = 200'000'000;

static std::uint64_t work(std::uint64_t begin, std::uint64_t end) {
  std::uint64_t s = 0;
  for (std::uint64_t i = begin; i < end; ++i) {
    s += i & 7;
    asm volatile("" : "+r"(s));
  }
  return s;
}

static void BM_cpu_loop_1_thread(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(work(0, kTotal));
}
BENCHMARK(BM_cpu_loop_1_thread)->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_cpu_loop_2_concur_threads(benchmark::State& state) {
  for (auto _ : state) {
    alignas(64) std::uint64_t a = 0;
    alignas(64) std::uint64_t b = 0;
    th::Thread t1([&] { a = work(0, kTotal / 2); });
    th::Thread t2([&] { b = work(kTotal / 2, kTotal); });
    t1.start();
    t2.start();
    t1.join();
    t2.join();
    benchmark::DoNotOptimize(a + b);
  }
}
BENCHMARK(BM_cpu_loop_2_concur_threads)->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_limit_cpu_loop_2_std_threads(benchmark::State& state) {
  for (auto _ : state) {
    alignas(64) std::uint64_t a = 0;
    alignas(64) std::uint64_t b = 0;
    std::thread t1([&] { a = work(0, kTotal / 2); });
    std::thread t2([&] { b = work(kTotal / 2, kTotal); });
    t1.join();
    t2.join();
    benchmark::DoNotOptimize(a + b);
  }
}
BENCHMARK(BM_limit_cpu_loop_2_std_threads)->UseRealTime()->Unit(benchmark::kMillisecond);

// Paired measurement for a shared, noisy machine: each iteration runs the loop on 1 thread,
// on 2 concur threads and on 2 std::threads back to back, so all three see the same
// background load; the counters give the best-of-N and the total-time speed-ups.
static void BM_cpu_loop_speedup_paired(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  double best1 = 1e30, bestc = 1e30, bests = 1e30, sum1 = 0, sumc = 0, sums = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    benchmark::DoNotOptimize(work(0, kTotal));
    const double d1 = std::chrono::duration<double>(Clock::now() - t0).count();
    alignas(64) std::uint64_t a = 0;
    alignas(64) std::uint64_t b = 0;
    t0 = Clock::now();
    {
      th::Thread t1([&] { a = work(0, kTotal / 2); });
      th::Thread t2([&] { b = work(kTotal / 2, kTotal); });
      t1.start();
      t2.start();
      t1.join();
      t2.join();
    }
    const double dc = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    {
      std::thread t1([&] { a = work(0, kTotal / 2); });
      std::thread t2([&] { b = work(kTotal / 2, kTotal); });
      t1.join();
      t2.join();
    }
    const double ds = std::chrono::duration<double>(Clock::now() - t0).count();
    benchmark::DoNotOptimize(a + b);
    best1 = std::min(best1, d1);
    bestc = std::min(bestc, dc);
    bests = std::min(bests, ds);
    sum1 += d1;
    sumc += dc;
    sums += ds;
  }
  state.counters["speedup_concur_best"] = best1 / bestc;
  state.counters["speedup_std_best"] = best1 / bests;
  state.counters["speedup_concur_total"] = sum1 / sumc;
  state.counters["speedup_std_total"] = sum1 / sums;
}
BENCHMARK(BM_cpu_loop_speedup_paired)->Iterations(20)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- per-call costs ----

static void BM_current_thread(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(&th::current_thread());
}
BENCHMARK(BM_current_thread);

static void BM_Local_get(benchmark::State& state) {
  static th::Local<int> local;
  for (auto _ : state) benchmark::DoNotOptimize(++local.get());
}
BENCHMARK(BM_Local_get);

static void BM_limit_thread_local(benchmark::State& state) {
  static thread_local int v = 0;
  for (auto _ : state) benchmark::DoNotOptimize(++v);
}
BENCHMARK(BM_limit_thread_local);

static void BM_logging_disabled(benchmark::State& state) {
  concur::logging::basic_config({.level = concur::logging::Level::WARNING});
  for (auto _ : state) concur::logging::debug("value {}", 42);
}
BENCHMARK(BM_logging_disabled);

static void BM_logging_record_devnull(benchmark::State& state) {
  const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  concur::logging::basic_config(
      {.level = concur::logging::Level::DEBUG, .format = "({thread}) {level} {message}", .stream = fd});
  for (auto _ : state) concur::logging::debug("value {}", 42);
  concur::logging::basic_config({});
  ::close(fd);
}
BENCHMARK(BM_logging_record_devnull);

static void BM_limit_write_devnull(benchmark::State& state) {
  const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  const char line[] = "(MainThread) DEBUG value 42\n";
  for (auto _ : state) benchmark::DoNotOptimize(::write(fd, line, sizeof line - 1));
  ::close(fd);
}
BENCHMARK(BM_limit_write_devnull);

BENCHMARK_MAIN();
