// subprocess: concur::subprocess::run beside the OS limits of bench/limits/l02_spawn.cpp
// (vfork+execve+waitpid, posix_spawn+waitpid) and l07_spawn_cat.cpp (posix_spawnp cat with
// a poll loop pushing 50 MiB through). Python's peer is bench/python/b10_subprocess.py.
// All timings are wall time (UseRealTime): the work happens in the child and the kernel.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "concur/subprocess.hpp"

extern char** environ;
namespace sp = concur::subprocess;

namespace {

constexpr std::size_t kCatBytes = 50u << 20;

const std::string& cat_input() {
  static const std::string in = [] {
    std::string s(kCatBytes, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i & 0xff);
    return s;
  }();
  return in;
}

void wait_ok(pid_t pid) {
  int st;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    std::fprintf(stderr, "child failed\n");
    std::exit(1);
  }
}

// ---- run(["true"]) -----------------------------------------------------------------------

void BM_concur_run_true(benchmark::State& state) {
  for (auto _ : state) {
    auto cp = sp::run({"true"}, {.check = true});
    benchmark::DoNotOptimize(cp.returncode);
  }
}
BENCHMARK(BM_concur_run_true)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// The same with 256 MiB of touched heap in this process: clone(CLONE_VM) copies no page
// tables, so the cost must not grow (fork would: 2.4 ms at 64 MiB in bench/limits).
void BM_concur_run_true_256MiB_parent(benchmark::State& state) {
  std::string heap(256u << 20, 'h');
  benchmark::DoNotOptimize(heap.data());
  for (auto _ : state) {
    auto cp = sp::run({"true"}, {.check = true});
    benchmark::DoNotOptimize(cp.returncode);
  }
}
BENCHMARK(BM_concur_run_true_256MiB_parent)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// l02: vfork + execve("/bin/true") + waitpid — the floor (no PATH search, no pipes).
void BM_limit_vfork_exec_wait(benchmark::State& state) {
  static char* const argv[] = {const_cast<char*>("true"), nullptr};
  for (auto _ : state) {
    pid_t p = vfork();
    if (p == 0) {
      execve("/bin/true", argv, environ);
      _exit(127);
    }
    wait_ok(p);
  }
}
BENCHMARK(BM_limit_vfork_exec_wait)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// l02: posix_spawn("/bin/true") + waitpid.
void BM_limit_posix_spawn_wait(benchmark::State& state) {
  static char* const argv[] = {const_cast<char*>("true"), nullptr};
  for (auto _ : state) {
    pid_t p;
    if (posix_spawn(&p, "/bin/true", nullptr, nullptr, argv, environ) != 0) std::abort();
    wait_ok(p);
  }
}
BENCHMARK(BM_limit_posix_spawn_wait)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// ---- run(["cat"], input = 50 MiB, capture_output) ----------------------------------------

void BM_concur_run_cat_50MiB(benchmark::State& state) {
  const std::string& in = cat_input();
  for (auto _ : state) {
    state.PauseTiming();
    std::string copy = in;  // run() consumes its input; the copy is not timed
    state.ResumeTiming();
    auto cp = sp::run({"cat"}, {.input = std::move(copy), .capture_output = true, .check = true});
    if (cp.out.size() != kCatBytes) std::abort();
    benchmark::DoNotOptimize(cp.out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kCatBytes));
}
BENCHMARK(BM_concur_run_cat_50MiB)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

// l07's loop: posix_spawnp cat with stdin/stdout pipes, poll, non-blocking writes.
void spawn_cat_poll(const char* in, char* out) {
  int ip[2], op[2];
  if (pipe2(ip, O_CLOEXEC) || pipe2(op, O_CLOEXEC)) std::abort();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, ip[0], 0);
  posix_spawn_file_actions_adddup2(&fa, op[1], 1);
  char* const argv[] = {const_cast<char*>("cat"), nullptr};
  pid_t pid;
  if (posix_spawnp(&pid, "cat", &fa, nullptr, argv, environ)) std::abort();
  close(ip[0]);
  close(op[1]);
  fcntl(ip[1], F_SETFL, O_NONBLOCK);
  std::size_t w = 0, r = 0;
  int wfd = ip[1];
  while (r < kCatBytes) {
    pollfd p[2] = {{op[0], POLLIN, 0}, {wfd, POLLOUT, 0}};
    poll(p, wfd >= 0 ? 2 : 1, -1);
    if (wfd >= 0 && (p[1].revents & (POLLOUT | POLLERR))) {
      ssize_t k = write(wfd, in + w, kCatBytes - w);
      if (k > 0) w += static_cast<std::size_t>(k);
      if (w == kCatBytes) {
        close(wfd);
        wfd = -1;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP)) {
      ssize_t k = read(op[0], out + r, kCatBytes - r);
      if (k > 0)
        r += static_cast<std::size_t>(k);
      else if (k == 0)
        break;
    }
  }
  wait_ok(pid);
  close(op[0]);
  posix_spawn_file_actions_destroy(&fa);
  if (r != kCatBytes) std::abort();
}

// l07 as written: output into a preallocated buffer reused by every iteration (the limit
// knows the size in advance and never touches fresh memory; run() cannot do that).
void BM_limit_spawn_cat_poll_50MiB(benchmark::State& state) {
  const std::string& in = cat_input();
  std::string out(kCatBytes, '\0');
  for (auto _ : state) spawn_cat_poll(in.data(), out.data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kCatBytes));
}
BENCHMARK(BM_limit_spawn_cat_poll_50MiB)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

// The same loop doing the memory duties run() has: the input is a copy made (untimed) for
// this call and freed after it, the output a fresh 50 MiB std::string.
void BM_limit_spawn_cat_poll_50MiB_fresh_buffers(benchmark::State& state) {
  const std::string& in = cat_input();
  for (auto _ : state) {
    state.PauseTiming();
    auto copy = std::make_unique<std::string>(in);
    state.ResumeTiming();
    std::string out(kCatBytes, '\0');
    spawn_cat_poll(copy->data(), out.data());
    copy.reset();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kCatBytes));
}
BENCHMARK(BM_limit_spawn_cat_poll_50MiB_fresh_buffers)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
