// Seed 001, §1-2 fixed the Python way: hold the Value's lock (get_lock(), a robust RLock
// shared by every process) around the read-modify-write. Nothing is lost.
#include <iostream>
#include <mutex>
#include <deque>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;

constexpr int kProcesses = 10;
constexpr int kCounts = 100000;

int main() {
  mp::Value<int> int_time_counter(0);
  auto count_time = [](mp::Value<int> counter) {
    for (int k = 0; k < kCounts; ++k) {
      std::lock_guard guard(counter.get_lock());  // Python: with v.get_lock():
      counter.set(counter.value() + 1);
    }
  };
  std::deque<mp::Process> list_process;  // a Process is not movable: deque keeps it in place
  for (int i = 0; i < kProcesses; ++i) list_process.emplace_back(count_time, int_time_counter);
  for (auto& p : list_process) p.start();
  for (auto& p : list_process) p.join();
  const int expected = kProcesses * kCounts;
  std::cout << "with get_lock(): expected " << expected << ", counted "
            << int_time_counter.value() << ", lost " << expected - int_time_counter.value()
            << " updates\n";
}
