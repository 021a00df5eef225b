// Seed 001, §1-2 fixed beyond Python: Value<int>::fetch_add is one atomic instruction on
// the shared int — no lock, no lost update, several times faster than the locked version.
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <vector>

#include "concur/multiprocessing/sharedctypes.hpp"

namespace mp = concur::multiprocessing;

constexpr int kProcesses = 10;
constexpr int kCounts = 100000;

int main() {
  mp::Value<int> int_time_counter(0);
  std::vector<pid_t> list_process;
  for (int i = 0; i < kProcesses; ++i) {
    std::cout.flush();
    const pid_t pid = fork();
    if (pid == 0) {
      for (int k = 0; k < kCounts; ++k) int_time_counter.fetch_add(1);
      _exit(0);
    }
    list_process.push_back(pid);
  }
  for (pid_t pid : list_process) waitpid(pid, nullptr, 0);
  const int expected = kProcesses * kCounts;
  std::cout << "with fetch_add(): expected " << expected << ", counted "
            << int_time_counter.value() << ", lost " << expected - int_time_counter.value()
            << " updates\n";
}
