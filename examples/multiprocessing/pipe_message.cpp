// Seed 003, "Process Communication" (pipe): a child sends "Hello World" through a Pipe and
// the parent prints what it received.
//
//   def child(pipe):
//       p = multiprocessing.current_process()
//       msg = "Hello World"
//       pipe.send(msg)
//       print("[%s] send a message to pipe : %s" % (p.name, msg))
//   parent_pipe, child_pipe = multiprocessing.Pipe()
//   p = multiprocessing.Process(name="child", target=child, args=(child_pipe,))
//   p.start()
//   print("Received message : %s" % parent_pipe.recv())
//   p.join()
//
// The two lines come from two processes, in either order (as in Python).
#include <iostream>
#include <string>

#include "concur/multiprocessing.hpp"

namespace mp = concur::multiprocessing;

void child(mp::Connection& pipe) {
  const std::string msg = "Hello World";
  pipe.send(msg);
  std::cout << "[" << mp::current_process().name() << "] send a message to pipe : " << msg << "\n"
            << std::flush;
}

int main() {
  auto [parent_pipe, child_pipe] = mp::Pipe();
  // The child works on its inherited copy of child_pipe (std::ref: no copy of a Connection).
  mp::Process p({.name = "child"}, child, std::ref(child_pipe));
  p.start();
  std::cout << "Received message : " << parent_pipe.recv<std::string>() << "\n";
  p.join();
}
