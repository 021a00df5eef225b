// Must NOT compile: callables and arguments a process pool cannot send to a worker, each
// refused with the pool's own static_assert text (checked by check.cmake).
#include <string>
#include <vector>

#include "concur/futures/process_pool.hpp"

namespace fut = concur::futures;

// expect: this callable cannot travel to a worker process
void string_capture(fut::ProcessPoolExecutor& ex) {
  std::string s = "captured";
  (void)ex.submit([s](int x) { return s.size() + static_cast<std::size_t>(x); }, 1);
}

// expect: an argument or result cannot travel between processes
void pointer_argument(fut::ProcessPoolExecutor& ex, int* p) {
  (void)ex.submit([](int* q) { return *q; }, p);
}
