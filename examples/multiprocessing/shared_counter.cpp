// Seed 001, §1-1 "Shared Memory, basic use": one process counts, another prints the
// shared counter, both through one mp::Value<int> created before the processes start.
// The notes tick once a second up to 20 (20 s); here a tick is 50 ms, so it takes ~1 s.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "concur/multiprocessing/sharedctypes.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

template <class F>
pid_t start(F target) {  // fork + run target + _exit: what mp::Process does for us
  std::cout.flush();
  const pid_t pid = fork();
  if (pid == 0) {
    target();
    std::cout.flush();
    _exit(0);
  }
  return pid;
}

int main() {
  mp::Value<int> int_time_counter(0);

  auto count_time = [&] {
    for (;;) {
      int_time_counter.set(int_time_counter.value() + 1);
      std::cout << "Clock activated ...\n" << std::flush;
      std::this_thread::sleep_for(50ms);
    }
  };
  auto print_time = [&] {
    while (int_time_counter.value() < 20) {
      std::cout << "Time: " << int_time_counter.value() << "\n" << std::flush;
      std::this_thread::sleep_for(50ms);
    }
  };

  const pid_t counting = start(count_time);
  const pid_t printing = start(print_time);
  waitpid(printing, nullptr, 0);
  // The counting process loops forever, as in the notes; end it once the printer is done.
  kill(counting, SIGTERM);
  waitpid(counting, nullptr, 0);
  std::cout << "final value: " << int_time_counter.value() << "\n";
}
