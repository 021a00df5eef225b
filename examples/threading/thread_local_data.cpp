// Seed 000 "Thread Local Data": threading.local() gives each thread its own attributes.
// Local<T> is the typed version: get() / operator-> create this thread's T on first use and
// has_value() tells whether this thread has set one (Python: AttributeError -> "Value not
// set yet."). Each thread sees only its own value. Lines from different threads interleave
// differently from run to run, as in the notes.
#include <functional>
#include <memory>
#include <vector>
#include <string>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;

void print_local_data(th::Local<int>& local_data) {
  if (!local_data.has_value())
    logging::debug("Value not set yet.");
  else
    logging::debug("value : {}", local_data.get());
}

void set_local_data(th::Local<int>& local_data, int index) {
  print_local_data(local_data);
  local_data.get() = index;
  print_local_data(local_data);
}

int main() {
  logging::basic_config({.level = logging::Level::DEBUG, .format = "({thread}) {message}"});
  th::Local<int> local_data;
  print_local_data(local_data);
  local_data.get() = 0;
  print_local_data(local_data);
  std::vector<std::unique_ptr<th::Thread>> threads;
  for (int i = 0; i < 5; ++i) {
    threads.push_back(std::make_unique<th::Thread>(
        th::ThreadOptions{.name = "thread-" + std::to_string(i)}, set_local_data,
        std::ref(local_data), i + 1));
    threads.back()->start();
  }
  // The threads use local_data, a local of main: join them before it goes out of scope
  // (Python keeps the object alive through the reference; C++ needs the join).
  for (auto& t : threads) t->join();
}
