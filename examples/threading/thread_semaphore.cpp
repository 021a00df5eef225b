// Seed 000 "Lock, Mutex, Semaphore": a Semaphore(3) lets at most three of five workers into
// a resource pool at a time; a Lock protects the pool's list. Python:
//   with semaphore: pool.use(name); sleep(1); pool.unuse(name)
// sleep(1) is scaled down to 100 ms. The list printed never holds more than 3 names.
#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;
using namespace std::chrono_literals;

// Python's repr of a list of strings: ['thread-0', 'thread-4']
std::string repr(const std::vector<std::string>& v) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", '" : "'") << v[i] << '\'';
  os << ']';
  return os.str();
}

class ResourcePool {
 public:
  void use(const std::string& name) {
    std::lock_guard g(lock_);
    active_.push_back(name);
    logging::debug("List of threads in resource pool : {}", repr(active_));
  }
  void unuse(const std::string& name) {
    std::lock_guard g(lock_);
    active_.erase(std::find(active_.begin(), active_.end(), name));
    logging::debug("List of threads in resource pool : {}", repr(active_));
  }

 private:
  std::vector<std::string> active_;
  th::Lock lock_;
};

void worker(th::Semaphore& semaphore, ResourcePool& pool) {
  logging::debug("Waiting to enter the pool");
  std::lock_guard g(semaphore);  // Python: with semaphore: (acquire one permit)
  logging::debug("Enter the pool");
  const std::string name = th::current_thread().name();
  pool.use(name);
  std::this_thread::sleep_for(100ms);
  pool.unuse(name);
}

int main() {
  logging::basic_config({.level = logging::Level::DEBUG, .format = "({thread}) {message}"});
  ResourcePool pool;
  th::Semaphore semaphore(3);
  std::deque<th::Thread> ts;  // Thread is not movable: a deque never relocates
  for (int i = 0; i < 5; ++i)
    ts.emplace_back(th::ThreadOptions{.name = "thread-" + std::to_string(i)}, worker,
                    std::ref(semaphore), std::ref(pool));
  for (auto& t : ts) t.start();
  for (auto& t : ts) t.join();  // pool and semaphore live on main's stack
}
