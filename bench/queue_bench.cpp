// concur::queue::Queue between two threads, small items (issue #3), side by side with the OS
// limit peer (a mutex + condition_variable deque, bench/limits/l06_queue_pool.cpp) and
// oneTBB's concurrent_bounded_queue. Python's queue.Queue peer: bench/python/b06_queue_threads.py
// (run by bench/run.sh). Each iteration moves kN longs from a producer thread to the
// consumer (this thread) and checks the sum; items/s = put+get pairs per second.
#include <benchmark/benchmark.h>
#include <tbb/concurrent_queue.h>

#include <concur/queue.hpp>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

namespace {

constexpr long kN = 500000;

// The OS-limit peer, as in bench/limits/l06_queue_pool.cpp.
template <class T>
struct BlockingQueue {
  explicit BlockingQueue(size_t maxsize = 0) : maxsize(maxsize) {}
  void put(T v) {
    std::unique_lock lk(m);
    if (maxsize) not_full.wait(lk, [&] { return q.size() < maxsize; });
    q.push_back(std::move(v));
    lk.unlock();
    not_empty.notify_one();
  }
  T get() {
    std::unique_lock lk(m);
    not_empty.wait(lk, [&] { return !q.empty(); });
    T v = std::move(q.front());
    q.pop_front();
    lk.unlock();
    if (maxsize) not_full.notify_one();
    return v;
  }
  size_t maxsize;
  std::mutex m;
  std::condition_variable not_empty, not_full;
  std::deque<T> q;
};

template <class Q, class Put, class Get>
void run_pairs(benchmark::State& state, Q& q, Put put, Get get) {
  for (auto _ : state) {
    std::thread producer([&] {
      for (long i = 0; i < kN; ++i) put(q, i);
    });
    long sum = 0;
    for (long i = 0; i < kN; ++i) sum += get(q);
    producer.join();
    if (sum != kN * (kN - 1) / 2) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

void BM_concur_Queue(benchmark::State& state) {
  concur::queue::Queue<long> q(static_cast<std::size_t>(state.range(0)));
  run_pairs(
      state, q, [](auto& qq, long v) { qq.put(v); }, [](auto& qq) { return qq.get(); });
}

void BM_concur_SimpleQueue(benchmark::State& state) {
  concur::queue::SimpleQueue<long> q;
  run_pairs(
      state, q, [](auto& qq, long v) { qq.put(v); }, [](auto& qq) { return qq.get(); });
}

void BM_limit_mutex_condvar(benchmark::State& state) {
  BlockingQueue<long> q(static_cast<std::size_t>(state.range(0)));
  run_pairs(
      state, q, [](auto& qq, long v) { qq.put(v); }, [](auto& qq) { return qq.get(); });
}

void BM_tbb_concurrent_bounded_queue(benchmark::State& state) {
  tbb::concurrent_bounded_queue<long> q;
  if (state.range(0) > 0) q.set_capacity(state.range(0));
  run_pairs(
      state, q, [](auto& qq, long v) { qq.push(v); },
      [](auto& qq) {
        long v;
        qq.pop(v);
        return v;
      });
}

}  // namespace

// Arg: maxsize (0 = unbounded), as Python's queue.Queue() and queue.Queue(1024).
BENCHMARK(BM_concur_Queue)->Arg(0)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_concur_SimpleQueue)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_limit_mutex_condvar)->Arg(0)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tbb_concurrent_bounded_queue)
    ->Arg(0)
    ->Arg(1024)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
