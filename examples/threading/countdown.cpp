// Seed 002 "threading": a countdown in its own thread. Python:
//   def countdown(n): while n > 0: print('Count Down', n); n -= 1; time.sleep(3)
//   t = Thread(target=countdown, args=(10,)); t.start()
// Scaled down: sleep(3) -> 0.1 s, so the whole countdown takes about 1 s. main returns at
// once; the program still prints all ten lines because non-daemon threads are joined at exit.
#include <chrono>
#include <cstdio>
#include <thread>

#include "concur/threading.hpp"

using namespace std::chrono_literals;

void countdown(int n) {
  while (n > 0) {
    std::printf("Count Down %d\n", n);
    std::fflush(stdout);
    --n;
    std::this_thread::sleep_for(100ms);
  }
}

int main() {
  concur::threading::Thread t(countdown, 10);
  t.start();
  std::printf("main returns; the countdown thread is joined at exit\n");
  std::fflush(stdout);
}
