// A daemon process, with and without join (the notes' "Daemon Process").
//
//   def daemon():
//       print("Start"); time.sleep(5); print("Exit")
//   d = multiprocessing.Process(name="daemon", target=daemon)
//   d.daemon = True
//   d.start()
//   time.sleep(3)            # or: d.join()
//   print("Main process terminated")
//
// Sleeps scaled down 10x (5 s -> 0.5 s, 3 s -> 0.3 s). Without join the daemon is
// terminated when main returns, so "Exit" never prints; `daemon_process join` waits for it.
#include <chrono>
#include <concur/multiprocessing.hpp>
#include <iostream>
#include <string>
#include <thread>

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

void daemon_target() {  // Python calls it daemon(); ::daemon(3) owns that name in C
  std::cout << "Start" << std::endl;
  std::this_thread::sleep_for(500ms);
  std::cout << "Exit" << std::endl;
}

int main(int argc, char** argv) {
  const bool join = argc > 1 && std::string(argv[1]) == "join";
  mp::Process d({.name = "daemon"}, daemon_target);
  d.set_daemon(true);
  d.start();
  if (join) {
    d.join();
  } else {
    std::this_thread::sleep_for(300ms);
  }
  std::cout << "Main process terminated" << std::endl;
  // Returning from main terminates daemon children (SIGTERM), as Python does at exit.
}
