// mp::log_to_stderr / mp::get_logger: the lifecycle records in Python's
// "[LEVEL/ProcessName] message" form, from the parent and from the child.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <concur/logging.hpp>
#include <concur/multiprocessing.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "process_util.hpp"

namespace mp = concur::multiprocessing;
namespace logging = concur::logging;
using ptest::Pipe;

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::size_t index_of(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<std::size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

TEST(ProcessLogging, LifecycleRecords) {
  Pipe pipe;
  logging::Logger& lg = mp::log_to_stderr(logging::Level::DEBUG);
  EXPECT_EQ(&lg, &mp::get_logger());
  EXPECT_EQ(&lg, &logging::get_logger("multiprocessing"));
  lg.set_stream(pipe.w);
  mp::Process p({.name = "worker"}, [] { mp::exit(3); });
  p.start();
  const std::string pid = std::to_string(*p.pid());
  p.join();
  mp::Process q({.name = "victim"}, [] {
    for (;;) ::pause();
  });
  q.start();
  q.terminate();
  q.join();
  lg.set_stream(2);
  lg.set_level(logging::Level::NOTSET);
  const auto got = lines(pipe.read_all());
  const std::vector<std::string> want = {
      "[DEBUG/MainProcess] started process worker (pid " + pid + ")",
      "[INFO/worker] child process calling self.run()",
      "[INFO/worker] process shutting down",
      "[INFO/worker] process exiting with exitcode 3",
      "[DEBUG/MainProcess] process worker (pid " + pid + ") ended with exitcode 3",
      "[DEBUG/MainProcess] calling terminate() for process victim",
      "[DEBUG/MainProcess] process victim (pid " + std::to_string(*q.pid()) +
          ") ended with exitcode -15",
  };
  for (const auto& w : want) EXPECT_LT(index_of(got, w), got.size()) << "missing: " << w;
  // The child's own records come in order, and the parent reaps only after the child ended.
  EXPECT_LT(index_of(got, want[1]), index_of(got, want[2]));
  EXPECT_LT(index_of(got, want[2]), index_of(got, want[3]));
  EXPECT_LT(index_of(got, want[3]), index_of(got, want[4]));
}

TEST(ProcessLogging, QuietByDefault) {
  Pipe pipe;
  logging::Logger& lg = mp::get_logger();
  lg.set_stream(pipe.w);
  mp::Process p([] {});
  p.start();
  p.join();
  lg.set_stream(2);
  EXPECT_EQ(pipe.read_all(), "");  // NOTSET: the root's WARNING level hides lifecycle records
}

// Python's multiprocessing logger has propagate = 0 and no handler until log_to_stderr():
// the root's basicConfig(level=DEBUG) alone prints no lifecycle record (before: five per
// child). Warnings still reach the root's stream (Python's last-resort handler).
TEST(ProcessLogging, RootLevelDoesNotTurnLifecycleRecordsOn) {
  Pipe pipe;
  mp::get_logger().set_stream(-1);  // undo other tests' log_to_stderr(): the root's fd,
  mp::get_logger().set_format("");  // the root's pattern, no level of its own
  mp::get_logger().set_level(logging::Level::NOTSET);
  logging::basic_config(
      {.level = logging::Level::DEBUG, .format = "{name}:{message}", .stream = pipe.w});
  mp::Process p([] {});
  p.start();
  p.join();
  logging::Logger& lg = mp::get_logger();
  EXPECT_FALSE(lg.propagate());
  EXPECT_FALSE(lg.is_enabled_for(logging::Level::INFO));
  lg.warning("a warning");
  logging::get_logger("other").debug("other logger follows the root");
  // A level set on the multiprocessing logger itself turns the records on.
  lg.set_level(logging::Level::DEBUG);
  mp::Process q({.name = "q"}, [] {});
  q.start();
  q.join();
  lg.set_level(logging::Level::NOTSET);
  logging::basic_config({});
  const auto got = lines(pipe.read_all());
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got[0], "multiprocessing:a warning");
  EXPECT_EQ(got[1], "other:other logger follows the root");
  EXPECT_EQ(got[2].rfind("multiprocessing:started process q", 0), 0u) << got[2];
}

// Python 3: basicConfig(level=DEBUG); log_to_stderr() prints the lifecycle records: the
// multiprocessing logger's effective level is the root's (propagate does not change that),
// and log_to_stderr() gives it a handler of its own. Before: nothing was printed.
TEST(ProcessLogging, LogToStderrWithoutLevelFollowsTheRootLevel) {
  Pipe pipe;
  mp::get_logger().set_level(logging::Level::NOTSET);
  logging::basic_config({.level = logging::Level::DEBUG, .stream = pipe.w});
  logging::Logger& lg = mp::log_to_stderr();
  lg.set_stream(pipe.w);
  EXPECT_TRUE(lg.is_enabled_for(logging::Level::DEBUG));
  mp::Process p({.name = "r"}, [] {});
  p.start();
  p.join();
  lg.set_stream(-1);
  lg.set_format("");
  logging::basic_config({});
  const std::string got = pipe.read_all();
  EXPECT_NE(got.find("[INFO/r] child process calling self.run()"), std::string::npos) << got;
  EXPECT_NE(got.find("[INFO/r] process exiting with exitcode 0"), std::string::npos) << got;
}

// At exit: Python's util._exit_function records, daemons terminated before the joins.
TEST(ProcessLogging, AtExitRecords) {
  Pipe pipe;
  const int status = ptest::run_copy([w = pipe.w] {
    mp::log_to_stderr(logging::Level::INFO).set_stream(w);
    Pipe ready;
    mp::Process d({.name = "d", .daemon = true}, [w = ready.w] {
      ptest::put(w, "x");  // after its first record
      for (;;) ::pause();
    });
    mp::Process n({.name = "n"}, [] {});
    d.start();
    n.start();
    char c;
    (void)!::read(ready.r, &c, 1);
    (void)n.join(std::chrono::seconds(30));  // so only the daemon is left at exit
    mp::get_logger().set_level(logging::Level::INFO);
  });
  ASSERT_TRUE(WIFEXITED(status));
  const auto got = lines(pipe.read_all());
  const std::vector<std::string> want = {
      "[INFO/MainProcess] process shutting down",
      "[INFO/MainProcess] calling terminate() for daemon d",
      "[INFO/MainProcess] calling join() for process d",
  };
  ASSERT_EQ(got.size(), 7u) << pipe.read_all();  // + n's three records and d's first one
  EXPECT_EQ(std::vector<std::string>(got.end() - 3, got.end()), want);
  EXPECT_LT(index_of(got, "[INFO/n] process exiting with exitcode 0"), 4u);
  EXPECT_LT(index_of(got, "[INFO/d] child process calling self.run()"), 4u);
}

}  // namespace
