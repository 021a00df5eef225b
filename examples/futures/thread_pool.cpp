// concurrent.futures in C++: ThreadPoolExecutor.submit / map / as_completed / wait, a failing
// task, and a task that waits on its own pool (which deadlocks a naive C++ pool; concur's
// workers run queued tasks while they wait). Sleeps are 20-60 ms so the run takes ~0.3 s.
//
// Python:
//   with ThreadPoolExecutor(max_workers=3) as ex:
//       fs = [ex.submit(fetch, url) for url in urls]
//       for f in as_completed(fs): print(f.result())
//       print(list(ex.map(len, urls)))
#include <chrono>
#include <concur/futures.hpp>
#include <concur/logging.hpp>
#include <concur/threading.hpp>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace futures = concur::futures;
namespace logging = concur::logging;
using namespace std::chrono_literals;

// Pretends to download a page: waits, then returns its "size".
std::size_t fetch(const std::string& url, std::chrono::milliseconds latency) {
  std::this_thread::sleep_for(latency);
  logging::info("fetched {} in {} ms", url, latency.count());
  return url.size() * 100;
}

int main() {
  // Log records and std::cout share stdout; unitbuf keeps them in program order, and each
  // std::cout line is built first and written with one << so a record of a worker thread
  // can only fall between lines, never inside one.
  std::cout << std::unitbuf;
  logging::basic_config(
      {.level = logging::Level::INFO, .format = "({thread}) {message}", .stream = 1});
  const std::vector<std::string> urls{"http://a.example", "http://bb.example",
                                      "http://ccc.example"};
  const std::vector<std::chrono::milliseconds> latency{60ms, 20ms, 40ms};

  futures::ThreadPoolExecutor ex(3);

  // submit + as_completed: results in completion order.
  std::vector<futures::Future<std::size_t>> fs;
  for (std::size_t i = 0; i < urls.size(); ++i) fs.push_back(ex.submit(fetch, urls[i], latency[i]));
  for (auto& f : futures::as_completed(fs, 5s))
    std::cout << ("as_completed: " + std::to_string(f.result()) + "\n");

  // map: results in input order, lazily, a bounded window in flight.
  std::string line = "map:";
  for (std::size_t n : ex.map([](const std::string& u) { return u.size(); }, urls))
    line += " " + std::to_string(n);
  std::cout << line + "\n";

  // A task that raises: the exception comes back through result().
  auto bad = ex.submit([]() -> int { throw std::runtime_error("connection refused"); });
  try {
    bad.result();
  } catch (const std::exception& e) {
    std::cout << "task raised: " << e.what() << "\n";
  }

  // wait(FIRST_COMPLETED) with a timeout.
  std::vector<futures::Future<std::size_t>> race{ex.submit(fetch, "slow", 50ms),
                                                 ex.submit(fetch, "fast", 10ms)};
  auto [done, not_done] = futures::wait(race, 5s, futures::ReturnWhen::FIRST_COMPLETED);
  std::cout << ("wait(FIRST_COMPLETED): " + std::to_string(done.size()) + " done, " +
                std::to_string(not_done.size()) + " not done\n");

  // A task that submits to its own pool and waits: with one worker a naive pool deadlocks.
  futures::ThreadPoolExecutor one(1);
  auto outer = one.submit([&one] {
    auto inner = one.submit([] { return 41; });
    return inner.result() + 1;  // the only worker runs `inner` itself while it waits
  });
  std::cout << "nested submit on a 1-worker pool: " << outer.result() << "\n";
}
