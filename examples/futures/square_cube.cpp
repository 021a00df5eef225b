// The notes' I/O-bound square and cube (seeds/004): each function "waits for I/O" once per
// number; done one after the other, then in two threads, then on a ThreadPoolExecutor.
// Timings are printed. The notes sleep 1 s per number; here 50 ms (x 1/20) so the whole
// program takes about 2 s: sequential ~1.0 s, two threads ~0.5 s (+ the notes' extra
// cube() call after the joins, ~0.5 s), pool ~0.5 s.
//
// Python:
//   def square(numbers):
//       for n in numbers:
//           time.sleep(1)
//           if n == num-1: print('square', n, n*n)
//   t1 = threading.Thread(target=square, args=(numbers,)); t2 = ...(target=cube ...)
#include <chrono>
#include <concur/futures.hpp>
#include <concur/threading.hpp>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace threading = concur::threading;
namespace futures = concur::futures;
using namespace std::chrono_literals;

constexpr int num = 11;
constexpr auto kIoWait = 50ms;  // the notes' time.sleep(1), scaled down

std::vector<int> numbers() {
  std::vector<int> v;
  for (int n = 1; n < num; ++n) v.push_back(n);
  return v;
}

void square(const std::vector<int>& ns) {
  for (int n : ns) {
    std::this_thread::sleep_for(kIoWait);
    if (n == num - 1) std::printf("square %d %d\n", n, n * n);
  }
}

void cube(const std::vector<int>& ns) {
  for (int n : ns) {
    std::this_thread::sleep_for(kIoWait);
    if (n == num - 1) std::printf("cube %d %d\n", n, n * n * n);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main() {
  const auto ns = numbers();

  auto start = std::chrono::steady_clock::now();
  square(ns);
  cube(ns);
  std::printf("sequential: %.2f s\n\n", seconds_since(start));

  start = std::chrono::steady_clock::now();
  threading::Thread t1(square, ns);
  threading::Thread t2(cube, ns);
  t1.start();
  t2.start();
  t1.join();
  t2.join();
  const double threads_only = seconds_since(start);
  cube(ns);  // the notes call cube() once more after the joins
  std::printf("two threads: %.2f s (threads alone %.2f s)\n\n", seconds_since(start), threads_only);

  start = std::chrono::steady_clock::now();
  {
    futures::ThreadPoolExecutor ex(2);
    auto a = ex.submit(square, ns);
    auto b = ex.submit(cube, ns);
    a.result();
    b.result();
  }
  std::printf("ThreadPoolExecutor(2): %.2f s\n", seconds_since(start));
}
