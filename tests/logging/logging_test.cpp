// concur::logging: levels, patterns and fields, message formatting, per-logger settings,
// one write(2) per record (8 threads on one pipe never interleave).
// concur-test: timeout=60
#include "concur/logging.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "concur/detail/runtime.hpp"
#include "concur/threading.hpp"

namespace {
namespace lg = concur::logging;
namespace th = concur::threading;
using ::testing::HasSubstr;

// A pipe whose read end we drain after the writes (large capacity so writers never block).
struct Capture {
  int r = -1, w = -1;
  Capture() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    r = fds[0];
    w = fds[1];
    ::fcntl(w, F_SETPIPE_SZ, 1 << 20);
  }
  ~Capture() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  std::string drain() {
    ::close(w);
    w = -1;
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(r, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
};

// Every test starts from the documented defaults.
class Logging : public ::testing::Test {
 protected:
  void TearDown() override { lg::basic_config({}); }
};

TEST_F(Logging, DefaultsAreWarningAndPythonsFormat) {
  lg::basic_config({});
  Capture c;
  lg::get_logger().set_stream(c.w);
  lg::debug("hidden {}", 1);
  lg::info("hidden");
  lg::warning("shown {}", 2);
  lg::error("err");
  lg::critical("crit");
  lg::get_logger().set_stream(2);
  EXPECT_EQ(c.drain(), "WARNING:root:shown 2\nERROR:root:err\nCRITICAL:root:crit\n");
}

TEST_F(Logging, BasicConfigLevelFormatStream) {
  Capture c;
  lg::basic_config({.level = lg::Level::DEBUG, .format = "[{level}] ({thread}) {message}", .stream = c.w});
  lg::debug("value : {}", 5);
  lg::info("i");
  EXPECT_EQ(c.drain(), "[DEBUG] (MainThread) value : 5\n[INFO] (MainThread) i\n");
}

TEST_F(Logging, AllFields) {
  Capture c;
  lg::basic_config({.level = lg::Level::INFO,
                    .format = "{process}|{pid}|{tid}|{name}|{level}|{thread}|{asctime}|{message}|{unknown}|{{x}}",
                    .stream = c.w});
  lg::get_logger("app.db").info("hi");
  const std::string out = c.drain();
  const std::string pid = std::to_string(::getpid());
  const std::regex re("MainProcess\\|" + pid + "\\|" + pid +
                      "\\|app\\.db\\|INFO\\|MainThread\\|"
                      "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d,\\d{3}\\|hi\\|\\{unknown\\}\\|\\{x\\}\n");
  EXPECT_TRUE(std::regex_match(out, re)) << out;
}

TEST_F(Logging, ProcessNameFollowsRuntime) {
  Capture c;
  lg::basic_config({.level = lg::Level::INFO, .format = "{process}:{message}", .stream = c.w});
  concur::detail::set_current_process_name("Worker-1");
  lg::info("a");
  concur::detail::set_current_process_name("MainProcess");
  lg::info("b");
  EXPECT_EQ(c.drain(), "Worker-1:a\nMainProcess:b\n");
}

TEST_F(Logging, MessageFormatting) {
  Capture c;
  lg::basic_config({.level = lg::Level::DEBUG, .format = "{message}", .stream = c.w});
  lg::debug("status: ({})", true);
  lg::debug("{} + {} = {}", 1, 2.5, std::string("3.5"));
  lg::debug("braces {{}} and {{{}}}", 'x');
  lg::debug("missing {} {}", 1);
  lg::debug("extra {}", 1, 2);
  lg::debug("no args {}");
  lg::debug("lone { and } stay");
  EXPECT_EQ(c.drain(),
            "status: (true)\n1 + 2.5 = 3.5\nbraces {} and {x}\nmissing 1 {}\nextra 1\n"
            "no args {}\nlone { and } stay\n");
}

TEST_F(Logging, LoggerIdentityLevelsAndInheritance) {
  lg::Logger& a = lg::get_logger("a");
  EXPECT_EQ(&a, &lg::get_logger("a"));
  EXPECT_NE(&a, &lg::get_logger("b"));
  EXPECT_EQ(&lg::get_logger(), &lg::get_logger(""));
  EXPECT_EQ(lg::get_logger().name(), "root");
  EXPECT_EQ(a.name(), "a");
  EXPECT_EQ(a.level(), lg::Level::NOTSET);
  lg::basic_config({.level = lg::Level::ERROR});
  EXPECT_FALSE(a.is_enabled_for(lg::Level::WARNING));  // NOTSET: the root's level
  EXPECT_TRUE(a.is_enabled_for(lg::Level::ERROR));
  a.set_level(lg::Level::DEBUG);
  EXPECT_TRUE(a.is_enabled_for(lg::Level::DEBUG));
  EXPECT_EQ(a.level(), lg::Level::DEBUG);
  EXPECT_FALSE(lg::get_logger().is_enabled_for(lg::Level::DEBUG));
  a.set_level(lg::Level::NOTSET);
  EXPECT_EQ(lg::level_name(lg::Level::WARNING), "WARNING");
  EXPECT_EQ(lg::level_name(static_cast<lg::Level>(15)), "Level 15");
}

TEST_F(Logging, PerLoggerFormatAndStream) {
  Capture root_c, own_c;
  lg::basic_config({.level = lg::Level::INFO, .format = "R {name} {message}", .stream = root_c.w});
  lg::Logger& m = lg::get_logger("multiprocessing");
  m.set_format("[{level}/{process}] {message}");
  m.set_stream(own_c.w);
  m.info("child process calling self.run()");
  lg::get_logger("other").info("x");
  m.set_format("");
  m.set_stream(-1);  // back to the root's
  m.warning("y");
  m.log(lg::Level::ERROR, "raw {} kept");
  EXPECT_EQ(own_c.drain(), "[INFO/MainProcess] child process calling self.run()\n");
  EXPECT_EQ(root_c.drain(), "R other x\nR multiprocessing y\nR multiprocessing raw {} kept\n");
}

TEST_F(Logging, LinesFromEightThreadsNeverInterleave) {
  Capture c;
  lg::basic_config({.level = lg::Level::DEBUG, .format = "({thread}) {message}", .stream = c.w});
  constexpr int kThreads = 8, kLines = 500;
  const std::string pad(200, 'p');  // long records make interleaving likely if writes split
  std::vector<std::unique_ptr<th::Thread>> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.push_back(std::make_unique<th::Thread>(th::ThreadOptions{.name = "w" + std::to_string(t)},
                                              [&pad](int id) {
                                                for (int i = 0; i < kLines; ++i)
                                                  lg::debug("{} {} {}", id, i, pad);
                                              },
                                              t));
  for (auto& t : ts) t->start();
  for (auto& t : ts) t->join();
  std::istringstream in(c.drain());
  std::string line;
  std::map<int, int> next;
  int count = 0;
  const std::regex re("\\(w(\\d)\\) (\\d) (\\d+) p{200}");
  while (std::getline(in, line)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, re)) << line;
    const int name_id = std::stoi(m[1]), id = std::stoi(m[2]), i = std::stoi(m[3]);
    EXPECT_EQ(name_id, id);
    EXPECT_EQ(i, next[id]++);  // per-thread order kept
    ++count;
  }
  EXPECT_EQ(count, kThreads * kLines);
}

TEST_F(Logging, ForeignThreadLogsAsDummy) {
  Capture c;
  lg::basic_config({.level = lg::Level::INFO, .format = "{thread}", .stream = c.w});
  std::thread s([] { lg::info("x"); });
  s.join();
  EXPECT_THAT(c.drain(), ::testing::MatchesRegex("Dummy-[0-9]+\n"));
}

TEST_F(Logging, BadFdIsIgnored) {
  lg::basic_config({.level = lg::Level::INFO, .stream = 1 << 20});
  EXPECT_NO_THROW(lg::info("nowhere"));
}

}  // namespace
