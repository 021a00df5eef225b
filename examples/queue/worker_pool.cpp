// The notes' worker-thread pool over a queue (seeds/002, seeds/004): 5 workers take items
// from one Queue, mark each task_done(); the main thread join()s the queue, then sends one
// "None" sentinel per worker (std::nullopt here) and joins the threads.
//
// Python:
//   q = queue.Queue()
//   def worker(num):
//       while True:
//           item = q.get()
//           if item is None: break
//           print("스레드 {0}: 처리 완료 {1}".format(num+1, item))
//           q.task_done()
#include <concur/queue.hpp>
#include <concur/threading.hpp>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace queue = concur::queue;
namespace threading = concur::threading;

int main() {
  queue::Queue<std::optional<int>> q;
  // One std::cout line per item, built first and written at once so lines never interleave.
  auto worker = [&q](int num) {
    for (;;) {
      std::optional<int> item = q.get();
      if (!item) break;  // the None sentinel
      std::cout << ("스레드 " + std::to_string(num + 1) + ": 처리 완료 " + std::to_string(*item) +
                    "\n")
                << std::flush;
      q.task_done();
    }
  };

  const int num_worker_threads = 5;
  std::vector<std::unique_ptr<threading::Thread>> threads;
  for (int i = 0; i < num_worker_threads; ++i) {
    threads.push_back(std::make_unique<threading::Thread>(worker, i));
    threads.back()->start();
  }
  for (int item = 0; item < 20; ++item) q.put(item);

  q.join();  // every item has been marked task_done()
  std::cout << "q.join() returned: all 20 items processed, unfinished_tasks = "
            << q.unfinished_tasks() << "\n";

  for (int i = 0; i < num_worker_threads; ++i) q.put(std::nullopt);
  for (auto& t : threads) t->join();
  std::cout << "all " << num_worker_threads << " workers joined\n";
}
