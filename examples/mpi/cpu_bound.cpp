// The notes' CPU-bound loop (the GIL lesson, examples/threading/gil_lesson.cpp) submitted
// unchanged to a futures::ThreadPoolExecutor, a futures::ProcessPoolExecutor and an
// MpiPoolExecutor over 3 ranks (rank 0 submits, ranks 1 and 2 compute): the same two halves, the same sums, and the times. In
// CPython the thread pool would gain nothing (the GIL); here both spread the work over the
// two cores, and the MPI version would spread it over machines with a hostfile.
// Run: mpirun -np 3 examples/mpi/cpu_bound   (make demo does, when mpirun is installed)
//
// Python (mpi4py):
//   with ThreadPoolExecutor(2) as ex:  print(sum(ex.map(work, halves)))
//   with ProcessPoolExecutor(2) as ex: print(sum(ex.map(work, halves)))
//   with MPIPoolExecutor() as ex:     print(sum(ex.map(work, halves)))
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "concur/futures.hpp"
#include "concur/futures/mpi.hpp"
#include "concur/futures/process_pool.hpp"

namespace futures = concur::futures;
using Clock = std::chrono::steady_clock;

// b11_gil.py's `s += i & 7`, kept scalar (the empty asm stops vectorizing and folding).
std::uint64_t work(std::uint64_t begin, std::uint64_t end) {
  std::uint64_t s = 0;
  for (std::uint64_t i = begin; i < end; ++i) {
    s += i & 7;
    asm volatile("" : "+r"(s));
  }
  return s;
}
CONCUR_REMOTE(work);

// The same code for either executor: submit the two halves, add the results.
template <class Executor>
std::uint64_t split_sum(Executor& ex, std::uint64_t total) {
  std::vector<futures::Future<std::uint64_t>> parts;
  parts.push_back(ex.submit(work, std::uint64_t{0}, total / 2));
  parts.push_back(ex.submit(work, total / 2, total));
  std::uint64_t s = 0;
  for (auto& f : parts) s += f.result();
  return s;
}

int user_main(int, char**) {
  constexpr std::uint64_t kTotal = 400'000'000;
  auto t0 = Clock::now();
  const std::uint64_t one = work(0, kTotal);
  const double t_one = std::chrono::duration<double>(Clock::now() - t0).count();

  futures::ThreadPoolExecutor threads(2);
  t0 = Clock::now();
  const std::uint64_t via_threads = split_sum(threads, kTotal);
  const double t_threads = std::chrono::duration<double>(Clock::now() - t0).count();

  std::uint64_t via_processes = 0;
  double t_processes = 0;
  {
    futures::ProcessPoolExecutor processes(2);
    t0 = Clock::now();
    via_processes = split_sum(processes, kTotal);
    t_processes = std::chrono::duration<double>(Clock::now() - t0).count();
  }

  futures::MpiPoolExecutor ranks;
  t0 = Clock::now();
  const std::uint64_t via_mpi = split_sum(ranks, kTotal);
  const double t_mpi = std::chrono::duration<double>(Clock::now() - t0).count();

  std::printf("one thread, no executor          : %.3f s (sum %llu)\n", t_one,
              static_cast<unsigned long long>(one));
  std::printf("ThreadPoolExecutor(2), 2 halves  : %.3f s (sum %llu)\n", t_threads,
              static_cast<unsigned long long>(via_threads));
  std::printf("ProcessPoolExecutor(2), 2 halves : %.3f s (sum %llu)\n", t_processes,
              static_cast<unsigned long long>(via_processes));
  std::printf("MpiPoolExecutor, %d ranks serving : %.3f s (sum %llu)\n", ranks.max_workers(), t_mpi,
              static_cast<unsigned long long>(via_mpi));
  const bool same = one == via_threads && one == via_processes && one == via_mpi;
  std::printf("same results: %s\n", same ? "yes" : "NO");
  return same ? 0 : 1;
}

int main(int argc, char** argv) {
  return futures::mpi::main(argc, argv, user_main);
}
