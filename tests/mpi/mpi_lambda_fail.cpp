// Must NOT compile: MpiPoolExecutor runs only named functions registered with
// CONCUR_REMOTE(fn); a lambda or a function object cannot be found by name on another rank
// (checked by tests/compile_fail/check.cmake against the `// expect:` lines).
#include "concur/futures/mpi.hpp"

namespace futures = concur::futures;

// expect: runs only named functions registered with CONCUR_REMOTE(fn)
void submit_lambda(futures::MpiPoolExecutor& ex) {
  (void)ex.submit([](int x) { return x + 1; }, 1);
}

struct Functor {
  int operator()(int x) const { return x; }
};
void map_functor(futures::MpiPoolExecutor& ex) {
  (void)ex.map(Functor{}, std::vector<int>{1});
}

// expect: CONCUR_REMOTE(fn) takes the name of a function
inline auto lambda = [](int x) { return x; };
CONCUR_REMOTE(lambda);
