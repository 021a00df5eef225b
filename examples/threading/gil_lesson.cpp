// Seed 000/002's GIL discussion: in CPython a CPU-bound loop split over 2 threads is no
// faster than 1 thread (bench/python/b11_gil.py measures 0.93x here) because only the
// thread holding the GIL runs Python code. C++ has no GIL: the same split over 2 concur
// threads runs on both cores (~2x on this 2-core machine, when the machine is idle).
//
// The loop is b11_gil.py's `s += i & 7`, kept scalar (an empty asm stops the compiler from
// vectorizing or folding it) so that it is the same work per iteration in both runs.
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "concur/threading.hpp"

namespace th = concur::threading;
using Clock = std::chrono::steady_clock;

std::uint64_t work(std::uint64_t begin, std::uint64_t end) {
  std::uint64_t s = 0;
  for (std::uint64_t i = begin; i < end; ++i) {
    s += i & 7;
    asm volatile("" : "+r"(s));  // one real add per iteration, like the Python loop
  }
  return s;
}

int main() {
  constexpr std::uint64_t kTotal = 400'000'000;
  double best1 = 1e9, best2 = 1e9;
  std::uint64_t r1 = 0, r2a = 0, r2b = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    r1 = work(0, kTotal);
    best1 = std::min(best1, std::chrono::duration<double>(Clock::now() - t0).count());

    t0 = Clock::now();
    th::Thread a([&] { r2a = work(0, kTotal / 2); });
    th::Thread b([&] { r2b = work(kTotal / 2, kTotal); });
    a.start();
    b.start();
    a.join();
    b.join();
    best2 = std::min(best2, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::printf("loop of %llu iterations, 1 thread : %.3f s (sum %llu)\n",
              static_cast<unsigned long long>(kTotal), best1, static_cast<unsigned long long>(r1));
  std::printf("same loop split over 2 threads    : %.3f s (sum %llu)\n", best2,
              static_cast<unsigned long long>(r2a + r2b));
  std::printf("speed-up: %.2fx  (CPython with the GIL: ~0.93x)\n", best1 / best2);
  return r1 == r2a + r2b ? 0 : 1;
}
