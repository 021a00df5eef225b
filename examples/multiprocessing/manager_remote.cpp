// A remote manager: a BaseManager serves a queue over TCP on 127.0.0.1 with an authkey
// (Python's BaseManager(address=('127.0.0.1', 0), authkey=b'...')); a client process
// connects with the key and puts a message; a client with the wrong key is refused.
#include <chrono>
#include <iostream>

#include "concur/multiprocessing.hpp"
#include "concur/queue.hpp"

namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

int main() {
  concur::queue::Queue<std::string> jobs;
  mp::BaseManager server({.address = "127.0.0.1:0", .authkey = "abracadabra"});
  server.register_object("jobs", jobs);
  server.start();
  const std::string address = server.address();
  std::cout << "server listening on 127.0.0.1 (port chosen by the kernel)\n" << std::flush;

  mp::Process client([address] {
    mp::BaseManager m({.address = address, .authkey = "abracadabra"});
    m.connect();
    m.get<mp::QueueProxy<std::string>>("jobs").put("hello from the client process");
  });
  client.start();
  client.join();
  std::cout << "server got: " << server.get<mp::QueueProxy<std::string>>("jobs").get(10s) << "\n";

  mp::BaseManager intruder({.address = address, .authkey = "wrong key"});
  try {
    intruder.connect();
    std::cout << "intruder connected (this is a bug)\n";
  } catch (const mp::AuthenticationError& e) {
    std::cout << "client with the wrong key refused: AuthenticationError: " << e.what() << "\n";
  }
  server.shutdown();
}
