// How cost grows with work (issue 13's cost-growth series; bench/report.py charts them):
//   BM_growth_mp_Queue_bytes/<size>   multiprocessing::Queue<std::string>, a child process puts
//                                     N messages of <size> bytes, the parent gets them all
//                                     (8 B .. 1 MiB; N shrinks with the size, see count()).
//   BM_growth_limit_memcpy2/<size>    the floor of any copying queue: the two copies a
//                                     message costs (into a shared buffer and out of it),
//                                     in one process, no synchronization.
// Process start against the parent's resident memory is process_bench's
// BM_concur_Process_start_join/<MiB>; the process pool against task size is the pool
// bench's BM_growth_ProcessPool_bytes/<size> (bench/report.py lists it; the pool brings it).
// Python's peers of the same series: bench/python/b14_growth.py.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;

namespace {

constexpr long kSizes[] = {8, 64, 512, 4096, 32768, 262144, 1048576};

// Messages per iteration: about 64 MiB of payload, between 200 and 100000 messages.
long count(long size) {
  return std::clamp((64L << 20) / size, 200L, 100000L);
}

void BM_growth_mp_Queue_bytes(benchmark::State& state) {
  const long size = state.range(0);
  const long n = count(size);
  mp::Queue<std::string> q;
  for (auto _ : state) {
    mp::Process producer(
        [size, n](mp::Queue<std::string> out) {
          const std::string msg(static_cast<std::size_t>(size), 'x');
          for (long i = 0; i < n; ++i) out.put(msg);
        },
        q);
    producer.start();
    std::size_t got = 0;
    for (long i = 0; i < n; ++i) got += q.get().size();
    producer.join();
    if (got != static_cast<std::size_t>(n * size) || producer.exitcode() != 0)
      state.SkipWithError("lost or short messages");
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * size);
}

void BM_growth_limit_memcpy2(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const long n = count(state.range(0));
  std::vector<char> src(size, 'x'), ring(size), dst(size);
  for (auto _ : state) {
    for (long i = 0; i < n; ++i) {
      std::memcpy(ring.data(), src.data(), size);
      benchmark::ClobberMemory();
      std::memcpy(dst.data(), ring.data(), size);
      benchmark::DoNotOptimize(dst.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * state.range(0));
}

}  // namespace

int main(int argc, char** argv) {
  for (long size : kSizes) {
    benchmark::RegisterBenchmark("BM_growth_mp_Queue_bytes", BM_growth_mp_Queue_bytes)
        ->Arg(size)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_growth_limit_memcpy2", BM_growth_limit_memcpy2)
        ->Arg(size)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
