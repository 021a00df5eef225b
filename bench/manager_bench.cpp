// Manager benchmarks, each beside its limit in the same run:
//  * proxy Value increments (value() then set(): two round trips) while a second process
//    hammers the same Value, against one raw Unix-socket round trip (16 bytes through a
//    socketpair to an echoing process, bench/limits/l01's shape);
//  * over TCP on 127.0.0.1: a new client connection with its HMAC handshake (connect()),
//    and creating a dict proxy (and dropping it: its decref);
//  * over the default Unix socket: creating and dropping a dict proxy, and a proxy sent
//    through a Pipe and decoded (its incref) then dropped;
//  * bulk: extend + to_vector of 10k ints (one round trip each) against 10k appends;
//  * 1 and 4 client processes at once: aggregate calls/s.
// Python peer: bench/python/b09_manager.py (Value += 1 from 2 processes; TCP connect and
// dict proxy creation). Targets (issue #12): a proxy call within 1.3x a raw round trip,
// >= 2x Python; connect+handshake <= 1 ms; proxy creation <= 1 ms.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;

namespace {

void reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

// A child that keeps calling v.value() until killed: the second process of the pair.
pid_t hammer(mp::ValueProxy<long> v) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (;;) (void)v.value();
  }
  return pid;
}

void BM_Proxy_Value_increment_2procs(benchmark::State& state) {
  mp::Manager m;
  auto v = m.Value<long>(0);
  const pid_t other = hammer(v);
  for (auto _ : state) v.set(v.value() + 1);
  ::kill(other, SIGKILL);
  reap(other);
  state.SetItemsProcessed(state.iterations());
  state.counters["us_per_call"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Proxy_Value_increment_2procs)->UseRealTime()->MinTime(1.0);

void BM_Raw_unix_socket_roundtrip(benchmark::State& state) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sv[0]);
    char b[16];
    while (::read(sv[1], b, sizeof b) == static_cast<ssize_t>(sizeof b))
      if (::write(sv[1], b, sizeof b) != static_cast<ssize_t>(sizeof b)) break;
    ::_exit(0);
  }
  ::close(sv[1]);
  char b[16] = {};
  for (auto _ : state) {
    if (::write(sv[0], b, sizeof b) != static_cast<ssize_t>(sizeof b)) state.SkipWithError("write");
    if (::read(sv[0], b, sizeof b) != static_cast<ssize_t>(sizeof b)) state.SkipWithError("read");
  }
  ::close(sv[0]);
  reap(pid);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Raw_unix_socket_roundtrip)->UseRealTime()->MinTime(1.0);

void BM_Tcp_connect_handshake(benchmark::State& state) {
  mp::Manager m({"127.0.0.1:0", "bench-key"});
  const std::string addr = m.address();
  for (auto _ : state) {
    mp::BaseManager c({addr, "bench-key"});
    c.connect();  // connect, HMAC both ways, one ping
  }
}
BENCHMARK(BM_Tcp_connect_handshake)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_Tcp_create_dict_proxy(benchmark::State& state) {
  mp::Manager m({"127.0.0.1:0", "bench-key"});
  for (auto _ : state) benchmark::DoNotOptimize(m.dict<std::string, int>());
}
BENCHMARK(BM_Tcp_create_dict_proxy)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Over the default (abstract Unix) socket: make a dict and drop its proxy — the create
// round trip and the decref round trip (the reference counting of issue 12).
void BM_Unix_create_and_drop_dict_proxy(benchmark::State& state) {
  mp::Manager m;
  for (auto _ : state) benchmark::DoNotOptimize(m.dict<std::string, int>());
  if (m.number_of_objects() != 0) state.SkipWithError("objects left in the server");
}
BENCHMARK(BM_Unix_create_and_drop_dict_proxy)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A proxy sent through a Pipe and decoded in this process (the receiver takes its own
// reference: one round trip), then dropped (one more).
void BM_Send_proxy_through_pipe(benchmark::State& state) {
  mp::Manager m;
  auto d = m.dict<std::string, int>();
  auto [a, b] = mp::Pipe(true);
  for (auto _ : state) {
    a.send(d);
    benchmark::DoNotOptimize(b.recv<mp::DictProxy<std::string, int>>());
  }
}
BENCHMARK(BM_Send_proxy_through_pipe)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_Bulk_extend_to_vector_10k(benchmark::State& state) {
  mp::Manager m;
  auto l = m.list<int>();
  std::vector<int> items(10000, 7);
  for (auto _ : state) {
    l.extend(items);
    benchmark::DoNotOptimize(l.to_vector());
    l.clear();
  }
}
BENCHMARK(BM_Bulk_extend_to_vector_10k)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_Append_one_by_one_10k(benchmark::State& state) {
  mp::Manager m;
  auto l = m.list<int>();
  for (auto _ : state) {
    for (int i = 0; i < 10000; ++i) l.append(i);
    l.clear();
  }
}
BENCHMARK(BM_Append_one_by_one_10k)->UseRealTime()->Unit(benchmark::kMillisecond);

// n client processes, 5000 value() calls each; the time of the whole batch.
void BM_Clients_aggregate(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  constexpr int kCalls = 5000;
  mp::Manager m;
  auto v = m.Value<long>(0);
  for (auto _ : state) {
    std::vector<pid_t> kids;
    std::fflush(nullptr);
    for (int i = 0; i < n; ++i) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        for (int k = 0; k < kCalls; ++k) (void)v.value();
        ::_exit(0);
      }
      kids.push_back(pid);
    }
    for (pid_t k : kids) reap(k);
  }
  state.SetItemsProcessed(state.iterations() * n * kCalls);
}
BENCHMARK(BM_Clients_aggregate)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
