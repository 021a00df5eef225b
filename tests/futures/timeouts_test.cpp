// concur::futures timeouts: hours::max()/nanoseconds::max()/inf block "forever" (until
// another thread finishes the future) in Future::result/exception/wait, futures::wait,
// as_completed and Executor.map; NaN is ValueError.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "../helpers/forever.hpp"
#include "concur/errors.hpp"
#include "concur/futures.hpp"
#include "concur/threading/event.hpp"

namespace {
using namespace std::chrono_literals;
namespace cf = concur::futures;
using concur::ValueError;
using concur_test::expect_blocks_until_released;
using concur_test::kInf;
using concur_test::kNaNSeconds;
using std::chrono::hours;

TEST(FutureTimeouts, ResultExceptionWaitBlockUntilFinished) {
  {
    cf::Future<int> f;
    expect_blocks_until_released([&] { return f.result(hours::max()) == 1; },
                                 [&] { f.set_result(1); });
  }
  {
    cf::Future<int> f;
    expect_blocks_until_released([&] { return f.exception(hours::max()) == nullptr; },
                                 [&] { f.set_result(2); });
  }
  {
    cf::Future<int> f;
    expect_blocks_until_released([&] { return f.wait(std::chrono::duration<double>(kInf)); },
                                 [&] { f.set_result(3); });
  }
  {
    cf::Future<int> f;
    expect_blocks_until_released([&] { return f.result(std::chrono::nanoseconds::max()) == 4; },
                                 [&] { f.set_result(4); });
  }
}

TEST(FutureTimeouts, WaitAndAsCompletedBlockUntilFinished) {
  for (auto when : {cf::ReturnWhen::ALL_COMPLETED, cf::ReturnWhen::FIRST_COMPLETED}) {
    std::vector<cf::Future<int>> fs(2);
    // FIRST_COMPLETED may return after the first of the two: it needs one done.
    expect_blocks_until_released(
        [&] {
          const auto r = cf::wait(fs, hours::max(), when);
          return when == cf::ReturnWhen::ALL_COMPLETED ? r.not_done.empty() : !r.done.empty();
        },
        [&] {
          fs[0].set_result(1);
          fs[1].set_result(2);
        });
  }
  std::vector<cf::Future<int>> fs(1);
  expect_blocks_until_released(
      [&] {
        int n = 0;
        for (auto& f : cf::as_completed(fs, hours::max())) n += f.result();
        return n == 5;
      },
      [&] { fs[0].set_result(5); });
  std::vector<cf::Future<int>> gs(1);
  expect_blocks_until_released(
      [&] {
        int n = 0;
        for (auto& f : cf::as_completed(gs, std::chrono::nanoseconds::max())) n += f.result();
        return n == 6;
      },
      [&] { gs[0].set_result(6); });
}

TEST(FutureTimeouts, MapWithMaxTimeoutBlocksUntilTheTaskEnds) {
  cf::ThreadPoolExecutor ex(1);
  concur::threading::Event go;
  std::vector<int> in{7};
  expect_blocks_until_released(
      [&] {
        int n = 0;
        for (int r : ex.map(
                 [&](int x) {
                   go.wait();
                   return x;
                 },
                 in, {.timeout = std::chrono::nanoseconds::max()}))
          n += r;
        return n == 7;
      },
      [&] { go.set(); });
}

TEST(FutureTimeouts, NaNIsValueError) {
  cf::Future<int> f;
  std::vector<cf::Future<int>> fs(1);
  EXPECT_THROW((void)f.result(kNaNSeconds), ValueError);
  EXPECT_THROW((void)f.exception(kNaNSeconds), ValueError);
  EXPECT_THROW((void)f.wait(kNaNSeconds), ValueError);
  EXPECT_THROW((void)cf::wait(fs, kNaNSeconds), ValueError);
  EXPECT_THROW((void)cf::as_completed(fs, kNaNSeconds), ValueError);
  // Negative: do not wait (as Python).
  EXPECT_THROW((void)f.result(hours::min()), concur::TimeoutError);
  EXPECT_FALSE(f.wait(hours::min()));
  EXPECT_EQ(cf::wait(fs, hours::min()).not_done.size(), 1u);
  f.set_result(0);
  fs[0].set_result(0);
}

}  // namespace
