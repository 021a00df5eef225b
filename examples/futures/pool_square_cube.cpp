// The notes' square and cube (seeds/002), on a process pool: square() and cube() go to a
// ProcessPoolExecutor(2) as two tasks, then the same numbers go through
// multiprocessing::Pool(2).map. Each number "waits for I/O" (50 ms here, 1 s in the notes),
// so the two functions overlap in two worker processes: ~0.5 s instead of ~1.0 s.
//
// Python:
//   with ProcessPoolExecutor(2) as ex:
//       ex.submit(square, numbers); ex.submit(cube, numbers)
//   with Pool(2) as p: print(p.map(lambda n: n * n, numbers))   # (a def, in Python)
#include <unistd.h>

#include <chrono>
#include <concur/futures.hpp>
#include <concur/multiprocessing.hpp>
#include <cstdio>
#include <thread>
#include <vector>

namespace futures = concur::futures;
namespace mp = concur::multiprocessing;
using namespace std::chrono_literals;

constexpr int num = 11;

int square(std::vector<int> numbers) {
  int last = 0;
  for (int n : numbers) {
    std::this_thread::sleep_for(50ms);
    if (n == num - 1) std::printf("square %d %d  (in worker pid %d)\n", n, n * n, ::getpid());
    last = n * n;
  }
  std::fflush(stdout);
  return last;
}

int cube(std::vector<int> numbers) {
  int last = 0;
  for (int n : numbers) {
    std::this_thread::sleep_for(50ms);
    if (n == num - 1) std::printf("cube %d %d  (in worker pid %d)\n", n, n * n * n, ::getpid());
    last = n * n * n;
  }
  std::fflush(stdout);
  return last;
}

int main() {
  std::vector<int> numbers;
  for (int n = 1; n < num; ++n) numbers.push_back(n);
  std::printf("parent pid %d\n", ::getpid());
  std::fflush(stdout);

  auto start = std::chrono::steady_clock::now();
  {
    futures::ProcessPoolExecutor ex(2);
    auto s = ex.submit(square, numbers);
    auto c = ex.submit(cube, numbers);
    std::printf("results: %d %d\n", s.result(), c.result());
  }
  std::printf("ProcessPoolExecutor(2): %.2f s\n\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

  mp::Pool pool(2);
  auto squares = pool.map([](int n) { return n * n; }, numbers);
  auto cubes = pool.map([](int n) { return n * n * n; }, numbers);
  std::printf("Pool(2).map squares:");
  for (int v : squares) std::printf(" %d", v);
  std::printf("\nPool(2).map cubes:  ");
  for (int v : cubes) std::printf(" %d", v);
  std::printf("\n");
}
