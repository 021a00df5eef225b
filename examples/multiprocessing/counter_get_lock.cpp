// Seed 001, §1-2 fixed the Python way: hold the Value's lock (get_lock(), a robust RLock
// shared by every process) around the read-modify-write. Nothing is lost.
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <mutex>
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
      for (int k = 0; k < kCounts; ++k) {
        std::lock_guard guard(int_time_counter.get_lock());  // Python: with v.get_lock():
        int_time_counter.set(int_time_counter.value() + 1);
      }
      _exit(0);
    }
    list_process.push_back(pid);
  }
  for (pid_t pid : list_process) waitpid(pid, nullptr, 0);
  const int expected = kProcesses * kCounts;
  std::cout << "with get_lock(): expected " << expected << ", counted "
            << int_time_counter.value() << ", lost " << expected - int_time_counter.value()
            << " updates\n";
}
