// Seed 000 "Daemon Thread": a daemon thread runs in the background and is NOT waited for
// when main ends. Python: t = threading.Thread(name="daemon", target=daemon);
// t.setDaemon(True); t.start(); print('end of main')
// The notes' sleep(5) is scaled down to 0.5 s. Output: "(daemon) Start", "end of main" —
// the process ends without "(daemon) Exit": daemon threads are abandoned at exit.
// (The notes saw "Exit" only because their `if __name__=="_main__"` typo meant main() never
// ran as intended; with a real daemon thread Python prints what this program prints.)
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
  th::Thread t({.name = "daemon"}, daemon_work);
  t.set_daemon(true);
  t.start();
  std::this_thread::sleep_for(50ms);  // let "Start" print before main ends
  std::printf("end of main\n");
}
