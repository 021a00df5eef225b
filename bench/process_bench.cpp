// Process benchmarks: mp::Process start+join of an empty target against the OS limit
// (fork()+_exit(0)+waitpid, bench/limits/l02_spawn.cpp), as the parent's resident memory
// grows (the argument: MiB of heap the parent has touched before the loop; fork copies
// the page tables, so both grow with it).
// Python peer: bench/python/b03_mp_process_start.py (fork context, 2.8 ms here).
// Targets (issue #4): <= 1.3x the fork limit (0.235 ms), >= 8x faster than Python.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;

namespace {

// CPU seconds used so far by this process and its reaped children (user + system): the
// work a start+join costs, which a loaded machine does not inflate the way it does wall time.
double cpu_seconds() {
  auto sec = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
  };
  rusage self{}, kids{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &kids);
  return sec(self) + sec(kids);
}

void report_cpu(benchmark::State& state, double cpu0) {
  state.counters["cpu_us_per_proc"] =
      (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(state.iterations());
  state.counters["rss_MiB"] = static_cast<double>(state.range(0));
}

// A heap of `mib` MiB, every page touched, kept alive while the benchmark runs.
struct Ballast {
  explicit Ballast(std::size_t mib) : size(mib << 20) {
    if (size) {
      data.reset(static_cast<char*>(std::malloc(size)));
      std::memset(data.get(), 1, size);
    }
  }
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::size_t size;
  std::unique_ptr<char, Free> data;
};

void BM_concur_Process_start_join(benchmark::State& state) {
  Ballast ballast(static_cast<std::size_t>(state.range(0)));
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    mp::Process p([] {});
    p.start();
    p.join();
    if (p.exitcode() != 0) state.SkipWithError("child failed");
  }
  report_cpu(state, cpu0);
}

// The OS limit, as in bench/limits/l02_spawn.cpp.
void BM_limit_fork_exit_waitpid(benchmark::State& state) {
  Ballast ballast(static_cast<std::size_t>(state.range(0)));
  const double cpu0 = cpu_seconds();
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) state.SkipWithError("child failed");
  }
  report_cpu(state, cpu0);
}
}  // namespace

// concur and the limit alternate per heap size, so both see the same machine load.
int main(int argc, char** argv) {
  for (long mib : {0L, 16L, 64L, 256L}) {
    benchmark::RegisterBenchmark("BM_concur_Process_start_join", BM_concur_Process_start_join)
        ->Arg(mib)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_limit_fork_exit_waitpid", BM_limit_fork_exit_waitpid)
        ->Arg(mib)->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
