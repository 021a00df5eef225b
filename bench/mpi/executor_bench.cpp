// MpiPoolExecutor over 3 ranks against a raw MPI_Send/MPI_Recv ping-pong in the same run
// (bench/mpi/run.sh starts it under mpirun -np 3). Prints one line per measure:
//   raw ping-pong (8 B round trip; the third rank asleep meanwhile), one-task latency
//   (sequential submit(f).result()),
//   tasks/s (N submits then wait), map items/s (chunksize 1 and 64), each with the default
//   back-off and with busy polling; and the CPU idle ranks burn per second of wall time:
//   Open MPI's blocking MPI_Recv, our workers with the default back-off, busy polling.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "concur/futures/mpi.hpp"

namespace futures = concur::futures;
using Clock = std::chrono::steady_clock;

static int inc(int x) {
  return x + 1;
}
CONCUR_REMOTE(inc);

static double secs(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// utime + stime of a process on this node, in seconds.
static double cpu_of(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto p = s.rfind(')');
  std::istringstream in(s.substr(p + 2));
  std::string tok;
  unsigned long long ut = 0, st = 0;
  for (int i = 3; i <= 15 && in >> tok; ++i) {
    if (i == 14) ut = std::stoull(tok);
    if (i == 15) st = std::stoull(tok);
  }
  return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

static double idle_cpu(const std::vector<int>& pids, double seconds) {
  double before = 0, after = 0;
  for (std::size_t i = 1; i < pids.size(); ++i) before += cpu_of(pids[i]);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  for (std::size_t i = 1; i < pids.size(); ++i) after += cpu_of(pids[i]);
  return (after - before) / seconds / static_cast<double>(pids.size() - 1);  // cores per rank
}

static void bench_executor(const char* label, futures::MpiPoolExecutor& ex, int n_lat, int n_tp,
                           const std::vector<int>& pids) {
  for (int i = 0; i < 200; ++i) (void)ex.submit(inc, i).result();  // warm up
  std::vector<double> each(static_cast<std::size_t>(n_lat));
  auto t0 = Clock::now();
  for (int i = 0; i < n_lat; ++i) {
    const auto t1 = Clock::now();
    if (ex.submit(inc, i).result() != i + 1) std::abort();
    each[static_cast<std::size_t>(i)] = secs(t1) * 1e6;
  }
  const double lat = secs(t0) / n_lat * 1e6;
  std::sort(each.begin(), each.end());
  const auto pct = [&](double p) { return each[static_cast<std::size_t>(p * (n_lat - 1))]; };
  std::printf("%-10s one-task latency          %8.2f us (median %.2f, p10 %.2f, p90 %.2f)\n",
              label, lat, pct(0.5), pct(0.1), pct(0.9));

  t0 = Clock::now();
  std::vector<futures::Future<int>> fs;
  fs.reserve(static_cast<std::size_t>(n_tp));
  for (int i = 0; i < n_tp; ++i) fs.push_back(ex.submit(inc, i));
  long sum = 0;
  for (auto& f : fs) sum += f.result();
  const double tps = n_tp / secs(t0);
  std::printf("%-10s submit+result tasks/s     %8.0f /s (%.2f us/task)\n", label, tps, 1e6 / tps);

  std::vector<int> items(static_cast<std::size_t>(n_tp));
  for (std::size_t chunk : {std::size_t{1}, std::size_t{64}}) {
    t0 = Clock::now();
    long s = 0;
    for (int r : ex.map(inc, items, {.chunksize = chunk})) s += r;
    if (s != n_tp) std::abort();
    std::printf("%-10s map chunksize=%-3zu items/s %8.0f /s\n", label, chunk, n_tp / secs(t0));
  }
  std::printf("%-10s idle worker CPU           %8.3f cores per rank\n", label, idle_cpu(pids, 1.0));
  (void)sum;
}

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int n_lat = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int n_tp = argc > 2 ? std::atoi(argv[2]) : 20000;
  int pid = static_cast<int>(getpid());
  std::vector<int> pids(static_cast<std::size_t>(size));
  MPI_Gather(&pid, 1, MPI_INT, pids.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);

  // 1. Raw ping-pong rank 0 <-> 1 (8 bytes), rank 2 idle in a barrier.
  const int n_pp = n_lat * 4;
  long long msg = 0;
  if (rank == 0) {
    for (int warm = 0; warm < 2; ++warm) {
      std::vector<double> each(static_cast<std::size_t>(n_pp));
      auto t0 = Clock::now();
      for (int i = 0; i < n_pp; ++i) {
        const auto t1 = Clock::now();
        MPI_Send(&msg, 1, MPI_LONG_LONG, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(&msg, 1, MPI_LONG_LONG, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        each[static_cast<std::size_t>(i)] = secs(t1) * 1e6;
      }
      std::sort(each.begin(), each.end());
      if (warm)
        std::printf("raw        MPI_Send/MPI_Recv round trip %6.2f us (median %.2f, p90 %.2f)\n",
                    secs(t0) / n_pp * 1e6, each[each.size() / 2], each[each.size() * 9 / 10]);
    }
  } else if (rank == 1) {
    for (int i = 0; i < 2 * n_pp; ++i) {
      MPI_Recv(&msg, 1, MPI_LONG_LONG, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(&msg, 1, MPI_LONG_LONG, 0, 0, MPI_COMM_WORLD);
    }
  }
  {
    // Rank 2 waits out the ping-pong asleep (a blocking barrier would busy-poll and take
    // CPU from the two ranks measured, with 3 ranks on 2 cores).
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    for (int done = 0; !done;) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (!done && rank == 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // 2. What Open MPI's own blocking receive costs an idle rank.
  if (rank == 0) {
    std::printf("raw        idle in MPI_Recv CPU     %8.3f cores per rank\n", idle_cpu(pids, 1.0));
    for (int r = 1; r < size; ++r) MPI_Send(&msg, 1, MPI_LONG_LONG, r, 1, MPI_COMM_WORLD);
  } else {
    MPI_Recv(&msg, 1, MPI_LONG_LONG, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  // 3. The executor, default back-off, then busy polling.
  {
    futures::MpiCommExecutor mce(MPI_COMM_WORLD, 0);
    if (auto* ex = mce.executor()) bench_executor("backoff", *ex, n_lat, n_tp, pids);
  }
  {
    futures::MpiOptions busy{.idle_spin = std::chrono::nanoseconds(0),
                             .max_backoff = std::chrono::nanoseconds(0)};
    futures::MpiCommExecutor mce(MPI_COMM_WORLD, 0, busy);
    if (auto* ex = mce.executor()) bench_executor("busy-poll", *ex, n_lat, n_tp, pids);
  }
  MPI_Finalize();
}
