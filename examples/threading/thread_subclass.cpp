// Seed 000: the same five workers written as a Thread subclass that overrides run().
// Python: class worker(threading.Thread): def run(self): print(...)
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "concur/threading.hpp"

namespace th = concur::threading;

class Worker : public th::Thread {
 public:
  Worker(int arg, std::string name) : Thread({.name = std::move(name)}), arg_(arg) {}
  // run() reads arg_, so the object must outlive the thread: join before it is destroyed.
  ~Worker() override {
    if (is_alive()) join();
  }

 protected:
  void run() override {
    std::printf("name: %s, argument: %d\n", th::current_thread().name().c_str(), arg_);
  }

 private:
  int arg_;
};

int main() {
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < 5; ++i) {
    workers.push_back(std::make_unique<Worker>(i, "thread " + std::to_string(i)));
    workers.back()->start();
  }
  for (auto& w : workers) w->join();
}
