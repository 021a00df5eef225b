// multiprocessing::Queue between processes (issue #10), side by side in one run with its
// peers: Boost.Interprocess message_queue (Debian libboost-dev, as
// ../shared/bench/peers/boost_mq.cpp: 1024 slots) and the SPSC lock-free ring limit of
// bench/limits/l04_mem_ring.cpp (one release store per message, no lock, one producer and one
// consumer only), plus a plain memcpy for the 64 MiB case. Python's multiprocessing.Queue
// peer: bench/python/b01_mp_queue.py (run by bench/run.sh).
//
// Each iteration forks the producer(s), releases them together, and times until the
// consumer(s) have taken every message (checked by sum); items/s = messages per second,
// bytes/s = payload bytes per second. BM_kill_trial_* runs boost_mq.cpp's kill trial on both
// queues: a child hammers the queue (try_put, else try_get) and is SIGKILLed after 1-21 ms;
// a survivor must then drain it and put one message within 1 s — "wedged" counts the trials
// where it could not. A trailing /1 in a case's name: producer and consumer pinned to
// different CPUs (see pin_to); /0: placed by the scheduler.
#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "concur/multiprocessing/queues.hpp"

namespace mp = concur::multiprocessing;
namespace bip = boost::interprocess;

namespace {

using Clock = std::chrono::steady_clock;

// A start flag and result words shared with the children.
struct Shared {
  std::atomic<int> go{0};
  std::atomic<std::uint64_t> sum{0};
};
Shared* shared() {
  static Shared* s = [] {
    void* p =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return ::new (p) Shared;
  }();
  return s;
}
void wait_go() {
  while (!shared()->go.load(std::memory_order_acquire)) ::usleep(50);
}

// CPU seconds (user + system) of this process and of its waited-for children: run_procs adds
// each run's share to g_cpu, so a case can report CPU time per message beside wall time (the
// machine is shared: wall time also counts the time the peers waited for a core).
double cpu_seconds() {
  double t = 0;
  for (const int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    ::getrusage(who, &u);
    t += static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  }
  return t;
}
double g_cpu = 0;
void report_cpu(benchmark::State& state, std::uint64_t msgs) {
  state.counters["cpu_ns_per_msg"] = msgs ? g_cpu * 1e9 / static_cast<double>(msgs) : 0;
  g_cpu = 0;
}

// Pinning (the cases with a trailing /1): producer k runs on CPU (1 + k) mod ncpu and
// consumer k on CPU k mod ncpu, so on 2 CPUs a 1 -> 1 pair always sits on two different
// CPUs; unpinned (/0) the scheduler places them, and on a loaded 2-CPU machine it often
// puts both on one CPU for a while, which is most of the run-to-run spread.
bool g_pin = false;
void pin_to(int cpu) {
  if (!g_pin) return;
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpu % (n > 0 ? n : 1)), &set);
  (void)::sched_setaffinity(0, sizeof set, &set);
}
void unpin() {
  if (!g_pin) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
  (void)::sched_setaffinity(0, sizeof set, &set);
}

// Forks `producers` children running produce(k) and `consumers - 1` children running
// consume(k); this process is consumer 0. Returns the seconds from "go" until every child
// has ended and consumer 0 has returned.
template <class P, class C>
double run_procs(int producers, int consumers, P produce, C consume) {
  shared()->go.store(0);
  shared()->sum.store(0);
  std::vector<pid_t> kids;
  for (int k = 0; k < producers; ++k)
    if (const pid_t pid = ::fork(); pid == 0) {
      pin_to(1 + k);
      wait_go();
      produce(k);
      ::_exit(0);
    } else {
      kids.push_back(pid);
    }
  for (int k = 1; k < consumers; ++k)
    if (const pid_t pid = ::fork(); pid == 0) {
      pin_to(k);
      wait_go();
      consume(k);
      ::_exit(0);
    } else {
      kids.push_back(pid);
    }
  pin_to(0);
  ::usleep(20000);
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  shared()->go.store(1, std::memory_order_release);
  consume(0);
  for (pid_t k : kids) ::waitpid(k, nullptr, 0);
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  unpin();
  g_cpu += cpu_seconds() - c0;
  return dt;
}

template <std::size_t N>
struct Blob {
  std::array<char, N> b;
};

// ---- concur ---------------------------------------------------------------------------

template <std::size_t Bytes>
void BM_concur_Queue(benchmark::State& state) {
  const auto producers = static_cast<int>(state.range(0));
  const auto consumers = static_cast<int>(state.range(1));
  g_pin = state.range(2) != 0;
  const std::uint64_t n = Bytes == 8 ? 2000000 : 300000;
  const std::uint64_t per = n / static_cast<std::uint64_t>(producers);
  using T = std::conditional_t<Bytes == 8, std::uint64_t, Blob<Bytes>>;
  mp::Queue<T> q;
  for (auto _ : state) {
    const double dt = run_procs(
        producers, consumers,
        [&](int k) {
          T v{};
          for (std::uint64_t i = 0; i < per; ++i) {
            if constexpr (Bytes == 8) {
              v = i;
            } else {
              std::memcpy(v.b.data(), &i, 8);
            }
            q.put(v);
          }
          (void)k;
        },
        [&](int k) {
          // Each consumer takes its share; the total is checked by sum.
          const std::uint64_t share =
              per * static_cast<std::uint64_t>(producers) / static_cast<std::uint64_t>(consumers);
          std::uint64_t s = 0;
          for (std::uint64_t i = 0; i < share; ++i) {
            const T v = q.get();
            if constexpr (Bytes == 8) {
              s += v;
            } else {
              std::uint64_t x;
              std::memcpy(&x, v.b.data(), 8);
              s += x;
            }
          }
          shared()->sum.fetch_add(s);
          (void)k;
        });
    state.SetIterationTime(dt);
    const std::uint64_t expect = static_cast<std::uint64_t>(producers) * (per * (per - 1) / 2);
    if (shared()->sum.load() != expect) state.SkipWithError("checksum mismatch");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per) * producers);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * per * Bytes) * producers);
  report_cpu(state, state.iterations() * per * static_cast<std::uint64_t>(producers));
}
BENCHMARK(BM_concur_Queue<8>)
    ->Args({1, 1, 0})
    ->Args({1, 1, 1})
    ->Args({4, 4, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_concur_Queue<4096>)
    ->Args({1, 1, 0})
    ->Args({1, 1, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---- Boost.Interprocess message_queue ------------------------------------------------------

template <std::size_t Bytes>
void BM_boost_message_queue(benchmark::State& state) {
  const std::uint64_t n = Bytes == 8 ? 2000000 : 300000;
  const char* name = "concur_bench_boost_mq";
  g_pin = state.range(0) != 0;
  for (auto _ : state) {
    bip::message_queue::remove(name);
    bip::message_queue mq(bip::create_only, name, 1024, Bytes);
    const double dt = run_procs(
        1, 1,
        [&](int) {
          bip::message_queue p(bip::open_only, name);
          std::vector<char> buf(Bytes, 'x');
          for (std::uint64_t i = 0; i < n; ++i) {
            std::memcpy(buf.data(), &i, 8);
            p.send(buf.data(), Bytes, 0);
          }
        },
        [&](int) {
          std::vector<char> buf(Bytes);
          std::size_t got;
          unsigned prio;
          std::uint64_t s = 0;
          for (std::uint64_t i = 0; i < n; ++i) {
            mq.receive(buf.data(), Bytes, got, prio);
            std::uint64_t x;
            std::memcpy(&x, buf.data(), 8);
            s += x;
          }
          shared()->sum.store(s);
        });
    bip::message_queue::remove(name);
    state.SetIterationTime(dt);
    if (shared()->sum.load() != n * (n - 1) / 2) state.SkipWithError("checksum mismatch");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * Bytes));
  report_cpu(state, state.iterations() * n);
}
BENCHMARK(BM_boost_message_queue<8>)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_boost_message_queue<4096>)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---- one process, one thread: the instruction cost of a put + get ------------------------
// No peer, no cross-core transfer, no scheduling: what each queue's own code costs per
// message (puts 256, then gets them), a figure the machine's load barely moves.

void BM_concur_Queue_one_process_8(benchmark::State& state) {
  mp::Queue<std::uint64_t> q;
  std::uint64_t s = 0;
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < 256; ++i) q.put(i);
    for (int i = 0; i < 256; ++i) s += q.get();
  }
  benchmark::DoNotOptimize(s);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 256);
}
BENCHMARK(BM_concur_Queue_one_process_8);

void BM_boost_message_queue_one_process_8(benchmark::State& state) {
  const char* name = "concur_bench_boost_mq1";
  bip::message_queue::remove(name);
  {
    bip::message_queue mq(bip::create_only, name, 1024, 8);
    std::uint64_t s = 0, x = 0;
    std::size_t got;
    unsigned prio;
    for (auto _ : state) {
      for (std::uint64_t i = 0; i < 256; ++i) mq.send(&i, 8, 0);
      for (int i = 0; i < 256; ++i) {
        mq.receive(&x, 8, got, prio);
        s += x;
      }
    }
    benchmark::DoNotOptimize(s);
  }
  bip::message_queue::remove(name);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 256);
}
BENCHMARK(BM_boost_message_queue_one_process_8);

// ---- the limit: SPSC lock-free ring (bench/limits/l04_mem_ring.cpp) ------------------------

template <std::size_t Slot, std::size_t Cap>
void BM_limit_spsc_ring(benchmark::State& state) {
  const std::uint64_t n = Slot == 8 ? 2000000 : 300000;
  g_pin = state.range(0) != 0;
  struct Hdr {
    alignas(64) std::atomic<std::uint64_t> head;
    alignas(64) std::atomic<std::uint64_t> tail;
  };
  const std::size_t bytes = sizeof(Hdr) + Slot * Cap;
  char* mem = static_cast<char*>(
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  auto* h = ::new (mem) Hdr{};
  char* data = mem + sizeof(Hdr);
  for (auto _ : state) {
    h->head.store(0);
    h->tail.store(0);
    const double dt = run_procs(
        1, 1,
        [&](int) {
          alignas(64) char src[Slot];
          std::memset(src, 7, Slot);
          std::uint64_t head = 0, tail_cache = 0;
          for (std::uint64_t i = 0; i < n; ++i) {
            while (head - tail_cache == Cap) tail_cache = h->tail.load(std::memory_order_acquire);
            char* slot = data + (head % Cap) * Slot;
            std::memcpy(src, &i, 8);
            std::memcpy(slot, src, Slot);
            h->head.store(++head, std::memory_order_release);
          }
        },
        [&](int) {
          alignas(64) static char dst[Slot];
          std::uint64_t tail = 0, head_cache = 0, s = 0;
          for (std::uint64_t i = 0; i < n; ++i) {
            while (tail == head_cache) head_cache = h->head.load(std::memory_order_acquire);
            std::memcpy(dst, data + (tail % Cap) * Slot, Slot);
            std::uint64_t x;
            std::memcpy(&x, dst, 8);
            s += x;
            h->tail.store(++tail, std::memory_order_release);
          }
          shared()->sum.store(s);
        });
    state.SetIterationTime(dt);
    if (shared()->sum.load() != n * (n - 1) / 2) state.SkipWithError("checksum mismatch");
  }
  ::munmap(mem, bytes);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * Slot));
  report_cpu(state, state.iterations() * n);
}
BENCHMARK(BM_limit_spsc_ring<8, 65536>)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_limit_spsc_ring<4096, 1024>)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---- 64 MiB through a default queue, against a plain memcpy --------------------------------

void BM_concur_Queue_64MiB(benchmark::State& state) {
  g_pin = false;
  constexpr std::size_t kBig = std::size_t{64} << 20;
  constexpr int kMsgs = 4;
  mp::Queue<std::string> q;
  for (auto _ : state) {
    const double dt = run_procs(
        1, 1,
        [&](int) {
          std::string s(kBig, 'x');
          for (int i = 0; i < kMsgs; ++i) q.put(s);
        },
        [&](int) {
          std::uint64_t total = 0;
          for (int i = 0; i < kMsgs; ++i) total += q.get().size();
          shared()->sum.store(total);
        });
    state.SetIterationTime(dt);
    if (shared()->sum.load() != kBig * kMsgs) state.SkipWithError("size mismatch");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBig * kMsgs));
  report_cpu(state, state.iterations() * kMsgs);
}
BENCHMARK(BM_concur_Queue_64MiB)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_limit_memcpy_64MiB(benchmark::State& state) {
  constexpr std::size_t kBig = std::size_t{64} << 20;
  std::vector<char> a(kBig, 1), b(kBig, 2);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), kBig);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBig));
}
BENCHMARK(BM_limit_memcpy_64MiB)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- the kill trial (../shared/bench/peers/boost_mq.cpp) ------------------------------------

// One trial: true if a survivor could not drain the queue and put one message within 1 s
// after the hammering child was SIGKILLed.
template <class Hammer, class Check>
bool wedged_after_kill(std::mt19937& rng, Hammer hammer, Check check) {
  const pid_t victim = ::fork();
  if (victim == 0) {
    hammer();
    ::_exit(0);
  }
  ::usleep(1000 + rng() % 20000);
  ::kill(victim, SIGKILL);
  ::waitpid(victim, nullptr, 0);
  const pid_t checker = ::fork();
  if (checker == 0) {
    ::alarm(1);
    check();
    ::_exit(0);
  }
  int st = 0;
  ::waitpid(checker, &st, 0);
  return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

constexpr int kTrials = 30;

void BM_kill_trial_concur(benchmark::State& state) {
  int wedged = 0;
  std::mt19937 rng(42);
  for (auto _ : state) {
    for (int t = 0; t < kTrials; ++t) {
      mp::Queue<std::uint64_t> q(64);
      wedged += wedged_after_kill(
          rng,
          [&] {
            for (std::uint64_t i = 0;; ++i)
              if (!q.try_put(i)) (void)q.try_get();
          },
          [&] {
            while (q.try_get()) {
            }
            q.put(1);
          });
    }
  }
  state.counters["trials"] = static_cast<double>(kTrials * state.iterations());
  state.counters["wedged"] = static_cast<double>(wedged);
}
BENCHMARK(BM_kill_trial_concur)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_kill_trial_boost(benchmark::State& state) {
  const char* name = "concur_bench_boost_mq_kill";
  int wedged = 0;
  std::mt19937 rng(42);
  for (auto _ : state) {
    for (int t = 0; t < kTrials; ++t) {
      bip::message_queue::remove(name);
      { bip::message_queue mq(bip::create_only, name, 64, 8); }
      wedged += wedged_after_kill(
          rng,
          [&] {
            bip::message_queue mq(bip::open_only, name);
            char b[8] = {};
            std::size_t got;
            unsigned prio;
            for (;;)
              if (!mq.try_send(b, 8, 0)) (void)mq.try_receive(b, 8, got, prio);
          },
          [&] {
            bip::message_queue mq(bip::open_only, name);
            char b[8];
            std::size_t got;
            unsigned prio;
            while (mq.try_receive(b, 8, got, prio)) {
            }
            mq.send(b, 8, 0);
          });
    }
    bip::message_queue::remove(name);
  }
  state.counters["trials"] = static_cast<double>(kTrials * state.iterations());
  state.counters["wedged"] = static_cast<double>(wedged);
}
BENCHMARK(BM_kill_trial_boost)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
