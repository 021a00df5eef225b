// Seed 000 "Thread Event": two threads talk through two Events. Python:
//   e1, e2 = threading.Event(), threading.Event()
//   first:  while not e1.is_set(): event = e1.wait(1); log status; if event: sleep(1); e2.set()
//   second: while not e2.is_set(): event = e2.wait(1); log status
//   main:   sleep(5); e1.set(); sleep(5)
// Times are scaled down 10x (wait(1) -> 100 ms, sleep(5) -> 0.5 s, sleep(1) -> 100 ms), so
// each waiter logs "(false)" about 5 times before main sets e1; then first sets e2 and both
// threads exit. wait(timeout) returns the flag, false only on timeout.
#include <chrono>
#include <functional>
#include <thread>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;
using namespace std::chrono_literals;

void first_wait(th::Event& e1, th::Event& e2) {
  while (!e1.is_set()) {
    const bool event = e1.wait(100ms);
    logging::debug("Event status : ({})", event);
    if (event) {
      logging::debug("e1 is set.");
      std::this_thread::sleep_for(100ms);
      logging::debug("set e2");
      e2.set();
    }
  }
  logging::debug("first exit");
}

void second_wait(th::Event& e2) {
  while (!e2.is_set()) {
    const bool event = e2.wait(100ms);
    logging::debug("event status : ({})", event);
    if (event) logging::debug("e2 is set");
  }
  logging::debug("second exit");
}

int main() {
  logging::basic_config({.level = logging::Level::DEBUG, .format = "({thread}) {message}"});
  th::Event e1, e2;
  th::Thread t1({.name = "first"}, first_wait, std::ref(e1), std::ref(e2));
  t1.start();
  th::Thread t2({.name = "second"}, second_wait, std::ref(e2));
  t2.start();

  logging::debug("Wait ...");
  std::this_thread::sleep_for(500ms);
  logging::debug("end fo sleep(5)");
  logging::debug("Set e1");
  e1.set();
  // Python sleeps 5 s here and the threads end on their own; joining says the same
  // deterministically (the events live on main's stack, so they must outlive the threads).
  t1.join();
  t2.join();
  logging::debug("Exit");
}
