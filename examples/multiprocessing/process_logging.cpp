// multiprocessing's own logging: log_to_stderr() + get_logger().set_level(DEBUG) shows
// the library's lifecycle records, "[LEVEL/ProcessName] message" (the notes' example).
//
//   multiprocessing.log_to_stderr()
//   logger = multiprocessing.get_logger()
//   logger.setLevel(logging.DEBUG)
//   for i in range(5):
//       multiprocessing.Process(target=worker, args=(i,)).start()
#include <concur/logging.hpp>
#include <concur/multiprocessing.hpp>
#include <deque>
#include <iostream>
#include <string>

namespace mp = concur::multiprocessing;
namespace logging = concur::logging;

void worker(int count) { std::cout << "count: " + std::to_string(count) + "\n" << std::flush; }

int main() {
  mp::log_to_stderr();
  auto& logger = mp::get_logger();
  logger.set_level(logging::Level::DEBUG);

  std::deque<mp::Process> procs;
  for (int i = 0; i < 5; ++i) {
    procs.emplace_back(worker, i);
    procs.back().start();
  }
  // At exit: "[INFO/MainProcess] process shutting down", then a join of each child.
}
