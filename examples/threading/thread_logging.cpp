// Seed 000 "Thread Logging": logging is the thread-safe way to print from threads; the
// record carries the thread's name. Python:
//   logging.basicConfig(level=logging.DEBUG, format="name: %(threadName)s, argument : %(message)s")
//   logging.debug(count)
// Each record is one write(2): lines from several threads never mix.
#include <cstdio>
#include <string>

#include "concur/logging.hpp"
#include "concur/threading.hpp"

namespace th = concur::threading;
namespace logging = concur::logging;

void worker(int count) { logging::debug("{}", count); }

int main() {
  logging::basic_config({.level = logging::Level::DEBUG,
                         .format = "name: {thread}, argument : {message}"});
  std::printf("called main\n");
  std::fflush(stdout);
  for (int i = 0; i < 5; ++i) {
    th::Thread t({.name = "thread " + std::to_string(i)}, worker, i);
    t.start();
  }
}
