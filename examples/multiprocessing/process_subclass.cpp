// The Process subclass style: override run() (the notes' class Worker(multiprocessing.Process)).
//
//   class Worker(multiprocessing.Process):
//       def __init__(self, name, args): ...
//       def run(self):
//           print("name: %s, argument: %s " % (self.name, self.args[0]))
//           print("parent pid: %s, pid: %s" % (os.getppid(), os.getpid()))
#include <unistd.h>

#include <concur/multiprocessing.hpp>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace mp = concur::multiprocessing;

class Worker : public mp::Process {
 public:
  Worker(std::string name, int arg) : mp::Process({.name = std::move(name)}), arg_(arg) {}

 protected:
  void run() override {
    std::ostringstream out;
    out << "name: " << name() << ", argument: " << arg_ << "\n"
        << "parent pid: " << ::getppid() << ", pid: " << ::getpid() << "\n";
    std::cout << out.str() << std::flush;
  }

 private:
  int arg_;
};

int main() {
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < 5; ++i) {
    workers.push_back(std::make_unique<Worker>("process " + std::to_string(i), i));
    workers.back()->start();
  }
  for (auto& w : workers) w->join();
  std::cout << "repr after join: " << *workers.front() << "\n";
}
