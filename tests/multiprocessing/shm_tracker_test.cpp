// concur-test: timeout=120
// The shared-memory resource tracker (concur/detail/shm_tracker.hpp). Each "program" here
// is a re-exec of this test binary (tests/helpers/run_self.hpp) running one ShmChild.Body
// mode, so its top process and its tracker are really separate from the test's own: the
// test then kills that program's top process or lets it end, and checks /dev/shm. The
// self-run program's output pipe is also the tracker's stderr, so run_self() returning
// (EOF) means the tracker has exited: no wall-clock wait is needed to know it is done.
// The programs fork only while single-threaded (Process::start), so TSan can follow them.
#include "concur/detail/shm_tracker.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <concur/multiprocessing.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "../helpers/run_self.hpp"
#include "concur/errors.hpp"
#include "gtest/gtest.h"

namespace mp = concur::multiprocessing;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

void say(const std::string& s) {
  (void)!::write(1, s.data(), s.size());
}

// "key=value" from the child's output ("" if missing).
std::string field(const std::string& out, const std::string& key) {
  const auto at = out.find(key + "=");
  if (at == std::string::npos) return "";
  const auto b = at + key.size() + 1;
  return out.substr(b, out.find('\n', b) - b);
}

bool shm_exists(const std::string& name) {
  return fs::exists("/dev/shm/" + name);
}

// The state letter of /proc/PID/stat ('\0' if there is no such process).
char proc_state(pid_t pid) {
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(st, line)) return '\0';
  const auto rp = line.rfind(')');
  return rp == std::string::npos || rp + 2 >= line.size() ? '\0' : line[rp + 2];
}

// After its program's top process was killed, the tracker must have ended: gone, or a
// zombie waiting for init (it was re-parented; init's reaping pace is init's business).
bool ended(pid_t pid) {
  for (int i = 0; i < 2000; ++i) {  // bounded: the tracker ends microseconds after EOF
    const char s = proc_state(pid);
    if (s == '\0' || s == 'Z') return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Starts a Process that creates a segment and ends without unlinking it; returns its name
// once the child has been joined (empty on failure).
std::string segment_made_by_a_child() {
  int p[2];
  if (::pipe(p) != 0) return "";
  mp::Process c([w = p[1]] {
    mp::SharedMemory s(std::nullopt, true, 64);
    (void)!::write(w, s.name().data(), s.name().size());
  });
  c.start();
  ::close(p[1]);
  char buf[64] = {};
  const ssize_t n = ::read(p[0], buf, sizeof buf - 1);
  ::close(p[0]);
  c.join();
  return n > 0 && c.exitcode() == 0 ? std::string(buf) : std::string();
}

}  // namespace

TEST(ShmChild, Body) {
  const char* m = std::getenv("CONCUR_SHM_CHILD");
  if (m == nullptr) GTEST_SKIP() << "only runs as a program started by the tracker tests";
  const std::string mode = m;
  if (mode == "sigterm" || mode == "sigkill" || mode == "leftover") {
    mp::SharedMemory s(std::nullopt, true, 4096);
    say("name=" + s.name() + "\ntracker=" + std::to_string(concur::detail::shm_tracker_pid()) +
        "\n");
    if (mode == "sigterm") ::raise(SIGTERM);
    if (mode == "sigkill") ::raise(SIGKILL);
    return;  // leftover: the program ends normally without unlink()
  }
  if (mode == "child_creates") {
    const std::string name = segment_made_by_a_child();
    say("name=" + name + "\nafter_child=" + (shm_exists(name) ? "1" : "0") +
        "\ntracker=" + std::to_string(concur::detail::shm_tracker_pid()) + "\n");
  }
}

TEST(ShmTracker, CreatorKilledBySigtermLeavesNoSegment) {
  const auto r = concur_test::run_self("ShmChild.Body", "CONCUR_SHM_CHILD=sigterm");
  EXPECT_EQ(WTERMSIG(r.status), SIGTERM) << r.output;
  const std::string name = field(r.output, "name");
  ASSERT_FALSE(name.empty()) << r.output;
  EXPECT_FALSE(shm_exists(name)) << r.output;
  EXPECT_NE(r.output.find("leaked shared_memory objects"), std::string::npos) << r.output;
  EXPECT_TRUE(ended(std::stoi(field(r.output, "tracker"))));
}

TEST(ShmTracker, CreatorKilledBySigkillLeavesNoSegment) {
  const auto r = concur_test::run_self("ShmChild.Body", "CONCUR_SHM_CHILD=sigkill");
  EXPECT_EQ(WTERMSIG(r.status), SIGKILL) << r.output;
  const std::string name = field(r.output, "name");
  ASSERT_FALSE(name.empty()) << r.output;
  EXPECT_FALSE(shm_exists(name)) << r.output;
  EXPECT_NE(r.output.find("'/" + name + "'"), std::string::npos) << r.output;
  EXPECT_TRUE(ended(std::stoi(field(r.output, "tracker"))));
}

TEST(ShmTracker, LeftoverIsUnlinkedAtNormalExitAndTrackerReaped) {
  const auto r = concur_test::run_self("ShmChild.Body", "CONCUR_SHM_CHILD=leftover");
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  const std::string name = field(r.output, "name");
  ASSERT_FALSE(name.empty()) << r.output;
  EXPECT_FALSE(shm_exists(name));
  EXPECT_NE(r.output.find("There appear to be 1 leaked shared_memory objects to clean up at "
                          "shutdown: ['/" +
                          name + "']"),
            std::string::npos)
      << r.output;
  // The top process reaped it before it ended: not even a zombie is left for init.
  EXPECT_EQ(proc_state(std::stoi(field(r.output, "tracker"))), '\0');
}

TEST(ShmTracker, SegmentCreatedInAChildOutlivesItUntilTheTopProcessEnds) {
  const auto r = concur_test::run_self("ShmChild.Body", "CONCUR_SHM_CHILD=child_creates");
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  const std::string name = field(r.output, "name");
  ASSERT_FALSE(name.empty()) << r.output;
  EXPECT_EQ(field(r.output, "after_child"), "1") << r.output;  // before: unlinked at its exit
  EXPECT_FALSE(shm_exists(name)) << r.output;                  // gone with the top process
  EXPECT_NE(field(r.output, "tracker"), "-1") << "the top process started the tracker";
}

TEST(ShmTracker, InThisProcessAChildsSegmentSurvivesTheChild) {
  const std::string name = segment_made_by_a_child();
  ASSERT_FALSE(name.empty());
  EXPECT_TRUE(shm_exists(name));  // before: the child's exit unlinked it
  mp::SharedMemory again(name);
  again.unlink();  // and unregisters: the tracker will not warn about it
  EXPECT_FALSE(shm_exists(name));
}

TEST(ShmTracker, NamesAreValidated) {
  EXPECT_THROW(concur::detail::shm_tracker_register(std::string_view("a\0b", 3)),
               concur::ValueError);
  EXPECT_THROW(concur::detail::shm_tracker_register(""), concur::ValueError);
  EXPECT_THROW(concur::detail::shm_tracker_unregister(std::string(2000, 'x')), concur::ValueError);
}
