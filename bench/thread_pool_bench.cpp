// concur::futures::ThreadPoolExecutor (issue #3), side by side with the OS-limit peer (a
// minimal mutex + condvar pool returning std::future, bench/limits/l06_queue_pool.cpp),
// oneTBB's task_group, and a raw futex ping-pong between two threads (the floor for one
// submit().result() round trip). Python peer: bench/python/b05_threadpool.py.
//  * throughput: 100k no-op submits, then wait for all (items/s = tasks/s).
//  * latency: sequential submit().result() (time per task).
//  * as_completed: 200k submitted no-op tasks iterated with futures::as_completed (issue 9:
//    it was quadratic, 5.3 s; Python 1.35 s), and 100k items through Executor.map (eager).
#include <benchmark/benchmark.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <tbb/global_control.h>
#include <tbb/task_group.h>
#include <unistd.h>

#include <atomic>
#include <concur/futures.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <ranges>
#include <thread>
#include <vector>

namespace {

constexpr int kTasks = 100000;
constexpr int kLatencyTasks = 20000;

// ---- the OS-limit peer, as in bench/limits/l06_queue_pool.cpp
struct Pool {
  explicit Pool(int n) {
    for (int i = 0; i < n; ++i) workers.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard lk(m);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : workers) t.join();
  }
  template <class F>
  std::future<void> submit(F f) {
    auto task = std::make_shared<std::packaged_task<void()>>(std::move(f));
    auto fut = task->get_future();
    {
      std::lock_guard lk(m);
      q.emplace_back([task] { (*task)(); });
    }
    cv.notify_one();
    return fut;
  }
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(m);
        cv.wait(lk, [&] { return stop || !q.empty(); });
        if (q.empty()) return;
        job = std::move(q.front());
        q.pop_front();
      }
      job();
    }
  }
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::function<void()>> q;
  bool stop = false;
  std::vector<std::thread> workers;
};

void BM_concur_ThreadPoolExecutor_throughput(benchmark::State& state) {
  concur::futures::ThreadPoolExecutor ex(static_cast<int>(state.range(0)));
  ex.submit([] {}).result();  // start the workers
  std::vector<concur::futures::Future<void>> fs;
  fs.reserve(kTasks);
  for (auto _ : state) {
    fs.clear();
    for (int i = 0; i < kTasks; ++i) fs.push_back(ex.submit([] {}));
    (void)concur::futures::wait(fs);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

// The same, waiting with Future::wait() one by one instead of futures::wait(fs) (which
// also builds the done/not_done vectors, a reference-count increment per future).
void BM_concur_ThreadPoolExecutor_throughput_each(benchmark::State& state) {
  concur::futures::ThreadPoolExecutor ex(2);
  ex.submit([] {}).result();
  std::vector<concur::futures::Future<void>> fs;
  fs.reserve(kTasks);
  for (auto _ : state) {
    fs.clear();
    for (int i = 0; i < kTasks; ++i) fs.push_back(ex.submit([] {}));
    for (auto& f : fs) f.wait();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

void BM_limit_minimal_pool_throughput(benchmark::State& state) {
  Pool pool(2);
  pool.submit([] {}).get();
  std::vector<std::future<void>> fs;
  fs.reserve(kTasks);
  for (auto _ : state) {
    fs.clear();
    for (int i = 0; i < kTasks; ++i) fs.push_back(pool.submit([] {}));
    for (auto& f : fs) f.wait();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

// oneTBB task_group with 2 worker threads besides the submitting thread (the same thread
// count as ThreadPoolExecutor(2) + the caller); the caller joins in at wait().
void BM_tbb_task_group_throughput(benchmark::State& state) {
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 3);
  for (auto _ : state) {
    tbb::task_group tg;
    for (int i = 0; i < kTasks; ++i) tg.run([] {});
    tg.wait();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

void BM_concur_submit_result_latency(benchmark::State& state) {
  concur::futures::ThreadPoolExecutor ex(2);
  ex.submit([] {}).result();
  for (auto _ : state) {
    for (int i = 0; i < kLatencyTasks; ++i) ex.submit([] {}).result();
  }
  state.SetItemsProcessed(state.iterations() * kLatencyTasks);
}

constexpr int kAsCompleted = 200000;

// The futures are pending when as_completed() registers (the tasks wait for a gate opened
// after it), as in the 200k case; otherwise most would be done already and take
// the "done first" path.
void BM_concur_as_completed_200k(benchmark::State& state) {
  concur::futures::ThreadPoolExecutor ex(2);
  ex.submit([] {}).result();
  std::vector<concur::futures::Future<int>> fs;
  fs.reserve(kAsCompleted);
  for (auto _ : state) {
    std::atomic<bool> go{false};
    fs.clear();
    for (int i = 0; i < kAsCompleted; ++i)
      fs.push_back(ex.submit([i, &go] {
        go.wait(false);
        return i;
      }));
    long sum = 0;
    auto range = concur::futures::as_completed(fs);
    go = true;
    go.notify_all();
    for (auto& f : range) sum += f.result();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kAsCompleted);
}

void BM_concur_map_100k(benchmark::State& state) {
  concur::futures::ThreadPoolExecutor ex(2);
  ex.submit([] {}).result();
  for (auto _ : state) {
    long sum = 0;
    for (int v : ex.map([](int x) { return x; }, std::views::iota(0, kTasks))) sum += v;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

void BM_limit_minimal_pool_latency(benchmark::State& state) {
  Pool pool(2);
  pool.submit([] {}).get();
  for (auto _ : state) {
    for (int i = 0; i < kLatencyTasks; ++i) pool.submit([] {}).get();
  }
  state.SetItemsProcessed(state.iterations() * kLatencyTasks);
}

// ---- raw futex ping-pong between two threads (l01_pingpong's futex_rt, private futexes,
// threads instead of processes): one round trip = the floor of submit().result() when the
// worker sleeps.
long futex(std::atomic<uint32_t>* addr, int op, uint32_t val) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op | FUTEX_PRIVATE_FLAG, val,
                 nullptr, nullptr, 0);
}
uint32_t futex_wait_change(std::atomic<uint32_t>* a, uint32_t seen) {
  uint32_t v;
  while ((v = a->load(std::memory_order_acquire)) == seen) futex(a, FUTEX_WAIT, seen);
  return v;
}

void BM_limit_futex_pingpong(benchmark::State& state) {
  alignas(64) std::atomic<uint32_t> ping{0};
  alignas(64) std::atomic<uint32_t> pong{0};
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    uint32_t seen = 0;
    for (;;) {
      seen = futex_wait_change(&ping, seen);
      if (stop.load()) return;
      pong.store(seen, std::memory_order_release);
      futex(&pong, FUTEX_WAKE, 1);
    }
  });
  uint32_t seq = 0;
  for (auto _ : state) {
    for (int i = 0; i < kLatencyTasks; ++i) {
      const uint32_t prev = pong.load(std::memory_order_acquire);
      ping.store(++seq, std::memory_order_release);
      futex(&ping, FUTEX_WAKE, 1);
      futex_wait_change(&pong, prev);
    }
  }
  stop = true;
  ping.store(++seq, std::memory_order_release);
  futex(&ping, FUTEX_WAKE, 1);
  echo.join();
  state.SetItemsProcessed(state.iterations() * kLatencyTasks);
}

}  // namespace

BENCHMARK(BM_concur_ThreadPoolExecutor_throughput)
    ->Arg(2)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_concur_ThreadPoolExecutor_throughput_each)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_limit_minimal_pool_throughput)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tbb_task_group_throughput)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_concur_submit_result_latency)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_concur_as_completed_200k)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_concur_map_100k)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_limit_minimal_pool_latency)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_limit_futex_pingpong)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
