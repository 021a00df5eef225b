// The tour's live table (scripts/versus.sh): one workload of concur, timed now on this
// machine, printed as "<operations per second>" on one line. examples/tour/versus.py does
// the same work with Python's standard library. Each workload runs for about 0.3 s (three
// slices of 0.1 s; the best slice counts, so a burst of load elsewhere does not decide it).
//
//   versus lock | queue | pool | process | pipe | mpqueue
#include <chrono>
#include <concur/futures.hpp>
#include <concur/multiprocessing.hpp>
#include <concur/queue.hpp>
#include <concur/threading.hpp>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace th = concur::threading;
namespace mp = concur::multiprocessing;
namespace futures = concur::futures;
namespace queue = concur::queue;
using Clock = std::chrono::steady_clock;

namespace {

// Runs batch(n) with a growing n until one call takes >= 0.1 s, then three slices of that n;
// returns the best operations per second.
double measure(const std::function<void(long)>& batch) {
  long n = 1;
  double dt = 0;
  for (;;) {
    auto t0 = Clock::now();
    batch(n);
    dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dt >= 0.1) break;
    n *= dt < 0.01 ? 10 : 2;
  }
  double best = static_cast<double>(n) / dt;
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    batch(n);
    dt = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n) / dt);
  }
  return best;
}

void lock_batch(long n) {  // threading.Lock acquire + release, uncontended
  static th::Lock lock;
  for (long i = 0; i < n; ++i) {
    lock.acquire();
    lock.release();
  }
}

void queue_batch(long n) {  // queue.Queue: one thread puts n items, another gets them
  queue::Queue<long> q;
  th::Thread consumer([&] {
    for (long i = 0; i < n; ++i) (void)q.get();
  });
  consumer.start();
  for (long i = 0; i < n; ++i) q.put(i);
  consumer.join();
}

void pool_batch(long n) {  // ThreadPoolExecutor(2): n no-op submits, then every result
  futures::ThreadPoolExecutor ex(2);
  std::vector<futures::Future<int>> fs;
  fs.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) fs.push_back(ex.submit([] { return 1; }));
  for (auto& f : fs) (void)f.result();
}

void process_batch(long n) {  // Process(target=empty).start(); join()
  for (long i = 0; i < n; ++i) {
    mp::Process p([] {});
    p.start();
    p.join();
  }
}

void pipe_batch(long n) {  // Pipe(): n round trips of a small int with a child process
  auto [a, b] = mp::Pipe();
  mp::Process echo(
      [](mp::Connection& c, long count) {
        for (long i = 0; i < count; ++i) c.send(c.recv<long>());
      },
      std::ref(b), n);
  echo.start();
  b.close();
  for (long i = 0; i < n; ++i) {
    a.send(i);
    (void)a.recv<long>();
  }
  echo.join();
}

void mpqueue_batch(long n) {  // multiprocessing.Queue: a child process puts n ints, we get them
  mp::Queue<long> q;
  mp::Process producer(
      [](mp::Queue<long> out, long count) {
        for (long i = 0; i < count; ++i) out.put(i);
      },
      q, n);
  producer.start();
  for (long i = 0; i < n; ++i) (void)q.get();
  producer.join();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view w = argc > 1 ? argv[1] : "";
  void (*batch)(long) = w == "lock"      ? lock_batch
                        : w == "queue"   ? queue_batch
                        : w == "pool"    ? pool_batch
                        : w == "process" ? process_batch
                        : w == "pipe"    ? pipe_batch
                        : w == "mpqueue" ? mpqueue_batch
                                         : nullptr;
  if (batch == nullptr) {
    std::fprintf(stderr, "usage: versus lock|queue|pool|process|pipe|mpqueue\n");
    return 2;
  }
  std::printf("%.6g\n", measure(batch));
}
