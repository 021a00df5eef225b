// subprocess timeouts: Popen::wait/try_wait/communicate and run with hours::max() or
// nanoseconds::max() block "forever" — until the test closes the child's stdin, from
// another thread — and NaN is ValueError. Regressions: Popen::wait(hours::max()) threw
// "timed out after -3600.0 seconds"; run/communicate with nanoseconds::max() computed
// now() + timeout with signed overflow (UBSan).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "../helpers/forever.hpp"
#include "concur/errors.hpp"
#include "concur/subprocess.hpp"

namespace {
namespace sp = concur::subprocess;
using concur::ValueError;
using concur_test::expect_blocks_until_released;
using concur_test::kNaNSeconds;
using std::chrono::hours;
using std::chrono::nanoseconds;

// A pipe whose read end becomes `cat`'s stdin: cat ends when the test closes the write end.
struct Feed {
  int fd[2] = {-1, -1};
  Feed() { EXPECT_EQ(::pipe2(fd, O_CLOEXEC), 0); }
  ~Feed() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void finish(const std::string& data = "") {
    if (!data.empty()) {
      EXPECT_EQ(::write(fd[1], data.data(), data.size()), ssize_t(data.size()));
    }
    ::close(fd[1]);
    fd[1] = -1;
  }
};

TEST(SubprocessTimeouts, PopenWaitWithMaxTimeoutWaitsForTheChild) {
  {
    Feed feed;
    sp::Popen p({"cat"}, {.in = feed.fd[0], .out = sp::DEVNULL});
    expect_blocks_until_released([&] { return p.wait(hours::max()) == 0; }, [&] { feed.finish(); });
  }
  {
    Feed feed;
    sp::Popen p({"cat"}, {.in = feed.fd[0], .out = sp::DEVNULL});
    expect_blocks_until_released([&] { return p.try_wait(nanoseconds::max()) == 0; },
                                 [&] { feed.finish(); });
  }
  {
    Feed feed;
    sp::Popen p({"cat"}, {.in = feed.fd[0], .out = sp::DEVNULL});
    expect_blocks_until_released(
        [&] { return p.wait(std::chrono::duration<double>(concur_test::kInf)) == 0; },
        [&] { feed.finish(); });
  }
}

TEST(SubprocessTimeouts, CommunicateWithMaxTimeoutWaitsForTheChild) {
  for (int form = 0; form < 2; ++form) {
    Feed feed;
    sp::Popen p({"cat"}, {.in = feed.fd[0], .out = sp::PIPE});
    expect_blocks_until_released(
        [&] {
          const auto r = form == 0 ? p.communicate(std::nullopt, nanoseconds::max())
                                   : p.communicate(std::nullopt, hours::max());
          return r.first == "hello" && p.returncode() == 0;
        },
        [&] { feed.finish("hello"); });
  }
}

TEST(SubprocessTimeouts, RunWithMaxTimeoutWaitsForTheChild) {
  Feed feed;
  expect_blocks_until_released(
      [&] {
        const auto r = sp::run(
            {"cat"}, {.in = feed.fd[0], .capture_output = true, .timeout = nanoseconds::max()});
        return r.out == "ok" && r.returncode == 0;
      },
      [&] { feed.finish("ok"); });
}

TEST(SubprocessTimeouts, NaNIsValueErrorNegativeIsZero) {
  Feed feed;
  sp::Popen p({"cat"}, {.in = feed.fd[0], .out = sp::PIPE});
  EXPECT_THROW((void)p.wait(kNaNSeconds), ValueError);
  EXPECT_THROW((void)p.try_wait(kNaNSeconds), ValueError);
  EXPECT_THROW((void)p.communicate(std::nullopt, kNaNSeconds), ValueError);
  EXPECT_THROW((void)p.wait(hours::min()), sp::TimeoutExpired);
  EXPECT_EQ(p.try_wait(hours::min()), std::nullopt);
  feed.finish();
  EXPECT_EQ(p.wait(), 0);
}

}  // namespace
