// Seed 001's server process: a clock counter in a manager.Value, one process counting
// ("Clock activated ...") and one printing ("Time: N"), both through proxies to the value
// the manager's server owns.
//   manager_clock mistake  — the notes' first version: count.start(); count.join(); then
//                            print.start(): join blocks until the counter ends, so only the
//                            counter runs (in the notes it counts forever; here it stops
//                            after 8 ticks so the demo ends, and the printer then finds
//                            nothing left to print).
//   manager_clock fixed    — start both, then join both: the lines interleave.
// The notes tick once a second; here every 50 ms.
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

constexpr int kTicks = 8;

int main(int argc, char** argv) {
  const bool mistake = argc > 1 && std::strcmp(argv[1], "mistake") == 0;
  mp::Manager manager;
  auto counter = manager.Value<int>(0);
  std::cout << "Initial value: " << counter.value() << "\n" << std::flush;

  auto count_time = [](mp::ValueProxy<int> c) {
    for (int i = 0; i < kTicks; ++i) {
      c.set(c.value() + 1);
      std::cout << "Clock activated ...\n" << std::flush;
      std::this_thread::sleep_for(50ms);
    }
  };
  auto print_time = [](mp::ValueProxy<int> c) {
    for (int t = c.value(); t < kTicks; t = c.value()) {
      std::cout << "Time: " << t << "\n" << std::flush;
      std::this_thread::sleep_for(50ms);
    }
  };
  mp::Process process_count_time(count_time, counter);
  mp::Process process_print_time(print_time, counter);
  if (mistake) {
    process_count_time.start();
    process_count_time.join();  // blocks until the counter is done: the printer never overlaps
    process_print_time.start();
    process_print_time.join();
  } else {
    process_count_time.start();
    process_print_time.start();
    process_count_time.join();
    process_print_time.join();
  }
  std::cout << "Final value: " << counter.value() << "\n";
}
