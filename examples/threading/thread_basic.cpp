// Seed 000 "basic threading function": five threads, each with a name and an argument,
// print who they are. Python:
//   t = threading.Thread(target=worker, name='thread %i' % i, args=(i,)); t.start()
// As in the notes, main does not join: concur joins non-daemon threads when main returns,
// exactly as Python waits for them at interpreter exit. The order of the lines varies
// between runs (each line is one printf, so lines do not tear).
#include <cstdio>
#include <string>

#include "concur/threading.hpp"

namespace th = concur::threading;

void worker(int count) {
  std::printf("name: %s, argument: %d\n", th::current_thread().name().c_str(), count);
}

int main() {
  for (int i = 0; i < 5; ++i) {
    th::Thread t({.name = "thread " + std::to_string(i)}, worker, i);
    t.start();
  }  // the Thread object may go: the running thread keeps going (see thread.hpp)
}
