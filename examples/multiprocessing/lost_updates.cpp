// Seed 001, §1-2 "the limit of shared memory": ten processes increment one shared counter
// with `value = value + 1`. Each read and each write is atomic, but the pair is not, so two
// processes that read the same value both write value + 1 and one increment is lost.
// The notes count once a second and watch the printed value grow by less than 10 per
// second; here each process counts 1000000 times as fast as it can and we print how many
// updates were lost. All ten wait for one Event before counting, so they really run at
// the same time (a process alone finishes its loop in about a millisecond, before the next
// one has even been forked). Fixes: counter_get_lock.cpp, counter_fetch_add.cpp.
#include <iostream>
#include <deque>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;

constexpr int kProcesses = 10;
constexpr int kCounts = 1000000;

int main() {
  mp::Value<int> int_time_counter(0);
  mp::Event go;
  auto count_time = [](mp::Value<int> counter, mp::Event start) {
    start.wait();
    for (int k = 0; k < kCounts; ++k) counter.set(counter.value() + 1);
  };
  std::deque<mp::Process> list_process;  // a Process is not movable: deque keeps it in place
  for (int i = 0; i < kProcesses; ++i) list_process.emplace_back(count_time, int_time_counter, go);
  for (auto& p : list_process) p.start();
  go.set();
  for (auto& p : list_process) p.join();
  const int expected = kProcesses * kCounts;
  std::cout << "expected " << expected << ", counted " << int_time_counter.value()
            << ", lost " << expected - int_time_counter.value() << " updates\n";
  if (int_time_counter.value() == expected)
    std::cout << "(no loss this time: the scheduler ran the processes one after another;"
                 " run it again on an idle machine)\n";
}
