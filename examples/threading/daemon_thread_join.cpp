// Seed 000 "daemon thread with join": join() waits for the daemon thread, so "Exit" prints
// before "end of main". The notes' sleep(5) is scaled down to 0.5 s.
#include <chrono>
#include <cstdio>
#include <thread>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;
using namespace std::chrono_literals;

void daemon_work() {  // "daemon" in the notes; that name is taken by unistd.h
  logging::debug("Start");
  std::this_thread::sleep_for(500ms);
  logging::debug("Exit");
}

int main() {
  logging::basic_config({.level = logging::Level::DEBUG, .format = "({thread}) {message}"});
  th::Thread t({.name = "daemon", .daemon = true}, daemon_work);
  t.start();
  t.join();
  std::printf("end of main\n");
}
