// Seed 001, §1-1 "Shared Memory, basic use": one process counts, another prints the
// shared counter, both through one mp::Value<int> created before the processes start.
// The notes tick once a second up to 20 (20 s); here a tick is 50 ms, so it takes ~1 s.
#include <chrono>
#include <iostream>
#include <thread>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

int main() {
  mp::Value<int> int_time_counter(0);

  auto count_time = [](mp::Value<int> counter) {
    for (;;) {
      counter.set(counter.value() + 1);
      std::cout << "Clock activated ...\n" << std::flush;
      std::this_thread::sleep_for(50ms);
    }
  };
  auto print_time = [](mp::Value<int> counter) {
    std::this_thread::sleep_for(25ms);  // read half-way between two ticks
    while (counter.value() < 20) {
      std::cout << "Time: " << counter.value() << "\n" << std::flush;
      std::this_thread::sleep_for(50ms);
    }
  };

  mp::Process process_count_time(count_time, int_time_counter);
  mp::Process process_print_time(print_time, int_time_counter);
  process_count_time.start();
  process_print_time.start();
  process_print_time.join();
  // The counting process loops forever, as in the notes; end it once the printer is done.
  process_count_time.terminate();
  process_count_time.join();
  std::cout << "final value: " << int_time_counter.value() << "\n";
}
