// Seed 001, the clock counter, over a Queue instead of a shared Value: the counting process
// sends each tick through an mp::Queue, the printing process prints what it receives, so
// no tick is read twice or missed (the shared-Value version prints whatever the counter
// holds when it looks). The notes tick once a second up to 20; here every 50 ms.
#include <chrono>
#include <iostream>
#include <thread>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

int main() {
  mp::Queue<int> ticks;

  auto count_time = [](mp::Queue<int> q) {
    for (int t = 1;; ++t) {
      std::cout << "Clock activated ...\n" << std::flush;
      q.put(t);
      std::this_thread::sleep_for(50ms);
    }
  };
  auto print_time = [](mp::Queue<int> q) {
    for (int t = q.get(); t < 20; t = q.get()) std::cout << "Time: " << t << "\n" << std::flush;
  };

  mp::Process process_count_time(count_time, ticks);
  mp::Process process_print_time(print_time, ticks);
  process_count_time.start();
  process_print_time.start();
  process_print_time.join();
  // The counting process loops forever, as in the notes; end it once the printer is done.
  process_count_time.terminate();
  process_count_time.join();
}
