// Seed 003, "process queue": one process puts "Hello world" into a multiprocessing Queue,
// another (started right after, sleeping a moment first) takes it out. The Queue is made
// before the processes start, so both children share it. The notes sleep 1 s; here 100 ms.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

void set_data(mp::Queue<std::string> q) {
  const auto p = mp::current_process();
  const std::string msg = "Hello world";
  q.put(msg);
  std::cout << "[" << p.name() << "] set queue data : " << msg << std::endl;
}

void get_data(mp::Queue<std::string> q) {
  std::this_thread::sleep_for(100ms);
  const auto p = mp::current_process();
  std::cout << "[" << p.name() << "] get queue data : " << q.get() << std::endl;
}

int main() {
  mp::Queue<std::string> queue;

  mp::Process p1({.name = "set_data"}, set_data, queue);
  p1.start();

  mp::Process p2({.name = "get_data"}, get_data, queue);
  p2.start();

  p1.join();
  p2.join();
}
