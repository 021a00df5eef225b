// Processes with names and arguments, each printing its name, its argument and its
// parent's and its own pid (the notes' first multiprocessing example, 003/000).
//
//   def worker(count):
//       print("name: %s, argument : %s" % (multiprocessing.current_process().name, count))
//       print("parent pid:%s  pid:%s" % (os.getppid(), os.getpid()))
//   for i in range(5):
//       multiprocessing.Process(target=worker, name="process %i" % i, args=(i,)).start()
//
// The pids differ from run to run; the children may print in any order.
#include <unistd.h>

#include <concur/multiprocessing.hpp>
#include <deque>
#include <iostream>
#include <sstream>
#include <string>

namespace mp = concur::multiprocessing;

void worker(int count) {
  std::ostringstream out;  // one write per child, so lines of different children never mix
  out << "name: " << mp::current_process().name() << ", argument : " << count << "\n"
      << "parent pid:" << ::getppid() << "  pid:" << ::getpid() << "\n\n";
  std::cout << out.str() << std::flush;
}

int main() {
  std::deque<mp::Process> procs;  // Process is not movable: a deque keeps addresses stable
  for (int i = 0; i < 5; ++i) {
    procs.emplace_back(mp::ProcessOptions{.name = "process " + std::to_string(i)}, worker, i);
    procs.back().start();
  }
  // Python joins non-daemon children at exit; concur does too (no join needed here).
}
