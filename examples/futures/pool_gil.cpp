// The GIL lesson (seeds/000), measured live: the same CPU-bound loop done by one thread, split
// over threads, and split over a ProcessPoolExecutor with one worker per core. In C++ both
// threads and processes scale (no GIL); the point is that the process pool does too, at
// process cost. If python3 is installed, the same loop is timed in Python beside it (threads
// do not speed up there; processes do).
//
// Python:
//   def work(n): s = 0; for i in range(n): s += i & 7; return s
//   with ProcessPoolExecutor(cpus) as ex: sum(ex.map(work, [N // cpus] * cpus))
#include <chrono>
#include <concur/futures.hpp>
#include <concur/multiprocessing.hpp>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace futures = concur::futures;
namespace mp = concur::multiprocessing;

constexpr long kTotal = 400'000'000;

long work(long n) {
  volatile long s = 0;  // keep the loop a loop
  for (long i = 0; i < n; ++i) s = s + (i & 7);
  return s;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main() {
  const int cpus = static_cast<int>(mp::cpu_count());
  std::vector<long> parts(static_cast<std::size_t>(cpus), kTotal / cpus);

  auto t0 = std::chrono::steady_clock::now();
  long one = work(kTotal);
  const double t_one = since(t0);

  t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  std::vector<long> out(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i)
    ts.emplace_back([&, i] { out[i] = work(parts[i]); });
  for (auto& t : ts) t.join();
  const double t_threads = since(t0);

  futures::ProcessPoolExecutor ex(cpus);
  (void)ex.submit(work, 1L).result();  // workers are up
  t0 = std::chrono::steady_clock::now();
  long sum = 0;
  for (long r : ex.map(work, parts)) sum += r;
  const double t_procs = since(t0);

  std::printf("C++ loop of %ld iterations on %d cores (checksums %ld %ld)\n", kTotal, cpus, one,
              sum);
  std::printf("  1 thread:                    %.2f s\n", t_one);
  std::printf("  %d threads:                   %.2f s  speed-up %.2fx\n", cpus, t_threads,
              t_one / t_threads);
  std::printf("  ProcessPoolExecutor(%d):      %.2f s  speed-up %.2fx\n", cpus, t_procs,
              t_one / t_procs);
  std::fflush(stdout);

  if (std::system("command -v python3 >/dev/null 2>&1") != 0) {
    std::printf("(python3 not found: no Python numbers)\n");
    return 0;
  }
  std::printf("Python, the same loop at 1/100 the size (it is ~100x slower per iteration):\n");
  std::fflush(stdout);
  const char* py = R"PYSRC(python3 - <<'PY'
import time, threading, os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
import multiprocessing as mp
N = 4_000_000
def work(n):
    s = 0
    for i in range(n):
        s += i & 7
    return s
c = os.cpu_count()
t0 = time.perf_counter(); work(N); t1 = time.perf_counter() - t0
with ThreadPoolExecutor(c) as ex:
    t0 = time.perf_counter(); sum(ex.map(work, [N // c] * c)); tt = time.perf_counter() - t0
with ProcessPoolExecutor(c, mp_context=mp.get_context("fork")) as ex:
    ex.submit(work, 1).result()
    t0 = time.perf_counter(); sum(ex.map(work, [N // c] * c)); tp = time.perf_counter() - t0
print(f"  1 thread:                    {t1:.2f} s")
print(f"  {c} threads:                   {tt:.2f} s  speed-up {t1/tt:.2f}x  (the GIL)")
print(f"  ProcessPoolExecutor({c}):      {tp:.2f} s  speed-up {t1/tp:.2f}x")
PY)PYSRC";
  return std::system(py) == 0 ? 0 : 1;
}
