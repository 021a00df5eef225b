// concur::futures Executor.map (issue 9): eager submission by default (CPython's
// test_map_submits_without_iteration), Python 3.14's buffersize window, and results that
// were submitted before a shutdown are still delivered (Python delivers all 100).
// concur-test: timeout=60
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ranges>
#include <thread>
#include <vector>

#include "concur/futures.hpp"
#include "concur/threading.hpp"
#include "tsan_exception_ptr.hpp"

namespace {
using namespace std::chrono_literals;
namespace cf = concur::futures;

// CPython's test_map_submits_without_iteration: every call runs although the result range
// is dropped without being iterated.
TEST(Map, SubmitsEveryItemWithoutIteration) {
  std::atomic<int> ran{0};
  {
    cf::ThreadPoolExecutor ex(1);
    {
      auto r = ex.map([&ran](int) { ++ran; }, std::views::iota(0, 10));
    }
    ex.shutdown(true);
  }
  EXPECT_EQ(ran.load(), 10);
}

// Python delivers all 100 results when the executor is shut down while the caller
// iterates (they were all submitted); we delivered 0.
TEST(Map, ShutdownWhileIteratingDeliversEverySubmittedResult) {
  cf::ThreadPoolExecutor ex(2);
  auto results = ex.map(
      [](int x) {
        std::this_thread::sleep_for(100us);
        return x * 2;
      },
      std::views::iota(0, 100));
  std::vector<int> got;
  for (int v : results) {
    if (got.empty()) ex.shutdown(false);
    got.push_back(v);
  }
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], 2 * i);
}

// With a buffersize window, the items submitted before the shutdown are delivered, in
// order; then the failed submit's RuntimeError is raised once and the range ends.
TEST(Map, ShutdownWithABufferDeliversTheWindowThenRaisesOnce) {
  cf::ThreadPoolExecutor ex(2);
  auto results = ex.map([](int x) { return x; }, std::views::iota(0, 100), {.buffersize = 10});
  std::vector<int> got;
  int errors = 0;
  auto it = results.begin();
  ex.shutdown(false);
  // After an exception the position is consumed: the caller steps on.
  auto step = [&] {
    try {
      ++it;
      return true;
    } catch (const concur::RuntimeError&) {
      ++errors;
      return false;
    }
  };
  while (it != results.end()) {
    got.push_back(*it);
    while (!step()) {
    }
  }
  EXPECT_EQ(errors, 1);
  ASSERT_GE(got.size(), 10u);  // the window submitted by map() (and maybe one more)
  ASSERT_LE(got.size(), 11u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<int>(i));
}

// buffersize bounds the tasks in flight: never more than buffersize + 1 started ahead of
// the consumer (Python submits the next item before it waits for the oldest).
TEST(Map, BuffersizeReadsTheInputLazily) {
  cf::ThreadPoolExecutor ex(2);
  std::atomic<int> started{0};
  auto results = ex.map(
      [&](int x) {
        ++started;
        return x;
      },
      std::views::iota(0, 200), {.buffersize = 4});
  EXPECT_LE(started.load(), 4);
  int consumed = 0;
  for (int v : results) {
    EXPECT_EQ(v, consumed);
    ++consumed;
    EXPECT_LE(started.load() - consumed, 4);
  }
  EXPECT_EQ(consumed, 200);
  EXPECT_THROW((void)ex.map([](int x) { return x; }, std::vector<int>{1}, {.buffersize = 0}),
               concur::ValueError);
}

// map() after shutdown raises at once, as in Python; a range begun and then dropped
// cancels what is still pending.
TEST(Map, AfterShutdownRaisesAndDroppedRangeCancels) {
  cf::ThreadPoolExecutor ex(1);
  concur::threading::Event go;
  std::atomic<int> ran{0};
  {
    auto r = ex.map(
        [&](int x) {
          if (x > 0) (void)go.wait(20s);
          ++ran;
          return x;
        },
        std::views::iota(0, 50));
    EXPECT_EQ(*r.begin(), 0);
  }  // begun, then dropped: items 2.. are cancelled (item 1 may be running)
  go.set();
  ex.shutdown(true);
  EXPECT_LT(ran.load(), 50);
  EXPECT_THROW((void)ex.map([](int x) { return x; }, std::vector<int>{1, 2}), concur::RuntimeError);
}

}  // namespace
