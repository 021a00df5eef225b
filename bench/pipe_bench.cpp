// Pipe / Connection benchmarks, each beside its OS limit in the same run:
//  * round trip of a small value between two processes: mp::Pipe (send/recv of an int64
//    through the codec, and send_bytes/recv_bytes_into of 8 bytes) against a raw
//    socketpair and a raw pipe pair ping-pong (write/read of 8 bytes, bench/limits/l01),
//    and two Pipe(false) (the pipe path, SIGPIPE guard included) against the raw pipe pair;
//  * 64 MiB through a Pipe (recv_bytes into a new vector, and recv_bytes_into a buffer)
//    in GB/s, against a plain memcpy of 64 MiB and a raw socketpair write/read loop.
// Python peer: bench/python/b02_mp_pipe_pingpong.py (mp.Pipe round trip ≈ 50 µs here),
// run by bench/run.sh. Targets (issue #10): Pipe round trip <= 1.2x the raw socketpair
// ping-pong and >= 3x faster than Python; one system call per frame on each side.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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

bool full_read(int fd, void* p, std::size_t n) {
  auto* c = static_cast<char*>(p);
  while (n) {
    const ssize_t r = ::read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}
bool full_write(int fd, const void* p, std::size_t n) {
  const auto* c = static_cast<const char*>(p);
  while (n) {
    const ssize_t r = ::write(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// --- round trips ---------------------------------------------------------------------

void BM_Pipe_roundtrip_bytes(benchmark::State& state) {
  auto [a, b] = mp::Pipe();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    a.close();
    std::byte buf[64];
    try {
      for (;;) {
        const std::size_t n = b.recv_bytes_into(buf);
        b.send_bytes(std::span<const std::byte>(buf, n));
      }
    } catch (...) {
    }
    ::_exit(0);
  }
  b.close();
  std::uint64_t x = 0;
  std::byte buf[64];
  for (auto _ : state) {
    ++x;
    a.send_bytes(std::as_bytes(std::span(&x, 1)));
    benchmark::DoNotOptimize(a.recv_bytes_into(buf));
  }
  a.close();
  reap(pid);
}

// Python's benchmark: send(i) / recv() of a small integer, echoed by the child.
void BM_Pipe_roundtrip_send_recv_int64(benchmark::State& state) {
  auto [a, b] = mp::Pipe();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    a.close();
    try {
      for (;;) b.send(b.recv<std::int64_t>());
    } catch (...) {
    }
    ::_exit(0);
  }
  b.close();
  std::int64_t x = 0;
  for (auto _ : state) {
    a.send(++x);
    if (a.recv<std::int64_t>() != x) state.SkipWithError("wrong echo");
  }
  a.close();
  reap(pid);
}

// Two one-way Pipes (Pipe(false) each way): the pipe path, SIGPIPE guard included, against
// BM_raw_pipe_pingpong.
void BM_Pipe_oneway_pair_roundtrip_int64(benchmark::State& state) {
  auto [r1, w1] = mp::Pipe(false);
  auto [r2, w2] = mp::Pipe(false);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    w1.close();
    r2.close();
    try {
      for (;;) w2.send(r1.recv<std::int64_t>());
    } catch (...) {
    }
    ::_exit(0);
  }
  r1.close();
  w2.close();
  std::int64_t x = 0;
  for (auto _ : state) {
    w1.send(++x);
    if (r2.recv<std::int64_t>() != x) state.SkipWithError("wrong echo");
  }
  w1.close();
  r2.close();
  reap(pid);
}

// The OS limit: 8 bytes each way over a socketpair, write/read.
void BM_raw_socketpair_pingpong(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sv[0]);
    std::uint64_t v;
    while (full_read(sv[1], &v, 8) && full_write(sv[1], &v, 8)) {
    }
    ::_exit(0);
  }
  ::close(sv[1]);
  std::uint64_t x = 0;
  for (auto _ : state) {
    ++x;
    if (!full_write(sv[0], &x, 8) || !full_read(sv[0], &x, 8)) state.SkipWithError("io");
  }
  ::close(sv[0]);
  reap(pid);
}

// The OS limit with two pipes (what Python's duplex=False pair would cost).
void BM_raw_pipe_pingpong(benchmark::State& state) {
  int p1[2], p2[2];
  if (::pipe2(p1, O_CLOEXEC) != 0 || ::pipe2(p2, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe");
    return;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p1[1]);
    ::close(p2[0]);
    std::uint64_t v;
    while (full_read(p1[0], &v, 8) && full_write(p2[1], &v, 8)) {
    }
    ::_exit(0);
  }
  ::close(p1[0]);
  ::close(p2[1]);
  std::uint64_t x = 0;
  for (auto _ : state) {
    ++x;
    if (!full_write(p1[1], &x, 8) || !full_read(p2[0], &x, 8)) state.SkipWithError("io");
  }
  ::close(p1[1]);
  ::close(p2[0]);
  reap(pid);
}

// --- 64 MiB ----------------------------------------------------------------------------

constexpr std::size_t kBig = std::size_t{64} << 20;

// The child receives each 64 MiB message (into a new vector, or into one buffer) and
// answers one byte; the parent measures send + ack.
void pipe_big(benchmark::State& state, bool into) {
  auto [a, b] = mp::Pipe();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    a.close();
    std::vector<std::byte> buf(into ? kBig : 0);
    try {
      for (;;) {
        if (into) {
          benchmark::DoNotOptimize(b.recv_bytes_into(buf));
        } else {
          auto m = b.recv_bytes();
          benchmark::DoNotOptimize(m.data());
        }
        b.send_bytes(std::span<const std::byte>(buf.data(), 0));
      }
    } catch (...) {
    }
    ::_exit(0);
  }
  b.close();
  std::vector<std::byte> msg(kBig, std::byte{7});
  std::byte ack[8];
  for (auto _ : state) {
    a.send_bytes(msg);
    benchmark::DoNotOptimize(a.recv_bytes_into(ack));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBig));
  a.close();
  reap(pid);
}
void BM_Pipe_64MiB_recv_bytes(benchmark::State& state) {
  pipe_big(state, false);
}
void BM_Pipe_64MiB_recv_bytes_into(benchmark::State& state) {
  pipe_big(state, true);
}

// The OS limit: 64 MiB over a raw socketpair (write loop / read loop into one buffer).
void BM_raw_socketpair_64MiB(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sv[0]);
    std::vector<char> buf(kBig);
    while (full_read(sv[1], buf.data(), kBig) && full_write(sv[1], buf.data(), 1)) {
    }
    ::_exit(0);
  }
  ::close(sv[1]);
  std::vector<char> msg(kBig, 7);
  char ack;
  for (auto _ : state) {
    if (!full_write(sv[0], msg.data(), kBig) || !full_read(sv[0], &ack, 1))
      state.SkipWithError("io");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBig));
  ::close(sv[0]);
  reap(pid);
}

void BM_memcpy_64MiB(benchmark::State& state) {
  std::vector<char> src(kBig, 7), dst(kBig, 0);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), kBig);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBig));
}

}  // namespace

BENCHMARK(BM_Pipe_roundtrip_send_recv_int64)->UseRealTime();
BENCHMARK(BM_Pipe_roundtrip_bytes)->UseRealTime();
BENCHMARK(BM_Pipe_oneway_pair_roundtrip_int64)->UseRealTime();
BENCHMARK(BM_raw_socketpair_pingpong)->UseRealTime();
BENCHMARK(BM_raw_pipe_pingpong)->UseRealTime();
BENCHMARK(BM_Pipe_64MiB_recv_bytes)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipe_64MiB_recv_bytes_into)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_socketpair_64MiB)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_memcpy_64MiB)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
