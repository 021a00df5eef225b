// The notes' daemon worker (seeds/004, under "Priority Queue"): one daemon thread serves 30
// task requests from a Queue; the main thread waits with q.join() and exits without joining
// the daemon (it is abandoned at exit, as in Python).
//
// Python:
//   def worker():
//       while True:
//           item = q.get()
//           print(f'Working on {item}')
//           print(f'Finished {item}')
//           q.task_done()
//   threading.Thread(target=worker, daemon=True).start()
//   for item in range(30): q.put(item)
//   print('All task requests sent\n', end='')
//   q.join()
//   print('All work completed')
#include <concur/queue.hpp>
#include <concur/threading.hpp>
#include <iostream>
#include <string>

namespace queue = concur::queue;
namespace threading = concur::threading;

int main() {
  // The daemon thread is still blocked in q.get() when main returns, so the queue must outlive
  // main: it is allocated once and deliberately never destroyed (Python's garbage collector
  // keeps it alive for the same reason).
  auto& q = *new queue::Queue<int>;
  threading::Thread t({.daemon = true}, [&q] {
    for (;;) {
      const int item = q.get();
      // Each line is built first and written with one call: the main thread's "All task
      // requests sent" can then only fall between lines, never inside one.
      std::cout << ("Working on " + std::to_string(item) + "\n") << std::flush;
      std::cout << ("Finished " + std::to_string(item) + "\n") << std::flush;
      q.task_done();
    }
  });
  t.start();

  for (int item = 0; item < 30; ++item) q.put(item);
  std::cout << "All task requests sent\n" << std::flush;

  q.join();
  std::cout << "All work completed\n";
  // The daemon thread still blocks in q.get(); the process exits without waiting for it.
}
