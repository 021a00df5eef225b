// Seed 000 "Thread Lock": a blocking and a non-blocking user of one Lock. Python:
//   blocking (daemon): forever { sleep(1); lock.acquire(); "Grab it"; sleep(0.5); "Release" }
//   nonblocking: until 3 grabs { sleep(1); "Attempt"; ok = lock.acquire(False); ... }
// acquire() waits for the lock; acquire(false) returns false at once if it is taken.
// Times are scaled down 10x (1 s -> 100 ms, 0.5 s -> 50 ms). The exact interleaving depends
// on timing, as in Python; the last line is "Attempt: N, grab: 3" with N >= 3.
#include <chrono>
#include <functional>
#include <thread>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;
using namespace std::chrono_literals;

[[noreturn]] void blocking_lock(th::Lock& lock) {
  logging::debug("start blocking lock");
  for (;;) {
    std::this_thread::sleep_for(100ms);
    lock.acquire();
    logging::debug("Grab it");
    std::this_thread::sleep_for(50ms);
    logging::debug("Release");
    lock.release();
  }
}

void nonblocking_lock(th::Lock& lock) {
  logging::debug("start nonblocking lock");
  int attempt = 0, grab = 0;
  while (grab < 3) {
    std::this_thread::sleep_for(100ms);
    logging::debug("Attempt");
    const bool success = lock.acquire(false);
    ++attempt;
    if (success) {
      logging::debug("Grab it");
      ++grab;
      logging::debug("Release");
      lock.release();
    }
  }
  logging::debug("Attempt: {}, grab: {}", attempt, grab);
}

int main() {
  logging::basic_config({.level = logging::Level::DEBUG, .format = "({thread}) {message}"});
  // static: the daemon thread still uses the lock after main returns (Python keeps it alive
  // by reference counting); Lock is trivially destructible, so exit never tears it down.
  static th::Lock lock;
  th::Thread blocking({.name = "blocking"}, blocking_lock, std::ref(lock));
  blocking.set_daemon(true);
  blocking.start();
  th::Thread nonblocking({.name = "nonblocking"}, nonblocking_lock, std::ref(lock));
  nonblocking.start();
  // main returns here; the non-daemon "nonblocking" thread is joined at exit, as in Python.
}
