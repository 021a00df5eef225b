// Seed 000 "Thread Condition": 5 receivers wait on one Condition; notify(1) wakes exactly
// one of them (the one that has waited longest), later notify_all() wakes the rest.
// Python: receivers: with condition: "Waiting..."; condition.wait(); sleep(1); "End"
//         main: sleep(1); with condition: condition.notify(1); sleep(3); send.start()
//         sender: with condition: "Send notify"; condition.notifyAll(); "End"
// Times scaled down 10x (1 s -> 100 ms, 3 s -> 300 ms). Receivers are started one after
// the other here so the FIFO order is visible: notify(1) wakes "receiver 0".
#include <chrono>
#include <deque>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;
using namespace std::chrono_literals;

th::Condition condition;  // shared by every thread, outlives main (threads join at exit)

void receiver() {
  logging::debug("Start receiver");
  std::unique_lock g(condition);  // Python: with condition:
  logging::debug("Waiting...");
  condition.wait();
  std::this_thread::sleep_for(100ms);
  logging::debug("End");
}

void sender() {
  logging::debug("Start sender");
  std::unique_lock g(condition);
  logging::debug("Send notify");
  condition.notify_all();
  logging::debug("End");
}

int main() {
  logging::basic_config({.level = logging::Level::DEBUG, .format = "({thread}) {message}"});
  std::deque<th::Thread> receivers;  // Thread is not movable: a deque never relocates
  for (int i = 0; i < 5; ++i) {
    auto& t = receivers.emplace_back(th::ThreadOptions{.name = "receiver " + std::to_string(i)},
                                     receiver);
    t.start();
    std::this_thread::sleep_for(10ms);  // let each one reach wait() in turn
  }
  th::Thread send({.name = "sender"}, sender);

  std::this_thread::sleep_for(100ms);
  {
    std::unique_lock g(condition);
    condition.notify(1);
  }
  std::this_thread::sleep_for(300ms);
  std::printf("start send\n");
  std::fflush(stdout);
  send.start();
  for (auto& t : receivers) t.join();
  send.join();
}
