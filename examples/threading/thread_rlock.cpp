// Seed 000 "Thread Reentrant Lock": an RLock may be taken again by the thread that holds
// it, so set_reverse() can call set_one()/set_zero() — which take the same lock — while
// holding it. With a plain Lock that inner acquire would deadlock.
// Python: zero/one (daemons) loop { with lock: set RESOURCE; sleep(0.5) ; sleep(1) };
// after sleep(6) main starts "reverse", which holds the lock and calls set_one(lock, True).
// Times scaled down 10x (0.5 s -> 50 ms, 1 s -> 100 ms, 6 s -> 600 ms). (The notes' Python
// assigns a local RESOURCE by mistake; here it is the shared global the text describes.)
#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;
using namespace std::chrono_literals;

std::atomic<int> RESOURCE{0};

void set_zero(th::RLock& lock, bool end = false) {
  logging::debug("Start set zero");
  for (;;) {
    {
      std::lock_guard g(lock);  // Python: with lock:
      logging::debug("grab lock and set RESOURCE to 0");
      RESOURCE = 0;
      std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(100ms);
    if (end) break;
  }
}

void set_one(th::RLock& lock, bool end = false) {
  logging::debug("Start set one");
  for (;;) {
    {
      std::lock_guard g(lock);
      logging::debug("grab lock and set RESOURCE to 1");
      RESOURCE = 1;
      std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(100ms);
    if (end) break;
  }
}

void set_reverse(th::RLock& lock) {
  logging::debug("Start batch");
  {
    std::lock_guard g(lock);
    logging::debug("Grab lock");
    if (RESOURCE == 0)
      set_one(lock, true);   // takes the RLock a second time: fine for its owner
    else
      set_zero(lock, true);
  }
  logging::debug("Reversed");
}

int main() {
  logging::basic_config({.level = logging::Level::DEBUG, .format = "({thread}) {message}"});
  static th::RLock lock;  // outlives main: the daemon threads keep using it
  th::Thread zero({.name = "zero"}, [] { set_zero(lock); });
  zero.set_daemon(true);
  zero.start();
  th::Thread one({.name = "one"}, [] { set_one(lock); });
  one.set_daemon(true);
  one.start();

  std::this_thread::sleep_for(600ms);

  th::Thread reverse({.name = "reverse"}, set_reverse, std::ref(lock));
  reverse.start();
  // "reverse" is joined at exit; the daemons are abandoned, as in Python.
}
