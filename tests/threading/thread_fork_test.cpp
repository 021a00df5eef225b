// The thread registry in a forked child (Python's threading._after_fork): only the forking
// thread survives and becomes the main thread; other threads read as stopped and joins on
// them return at once; new threads work; concur's own fork hook is idempotent.
// no_tsan: these tests fork from a multi-threaded parent on purpose, which ThreadSanitizer
// cannot follow.
// concur-test: timeout=60 labels=no_tsan
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "concur/detail/runtime.hpp"
#include "concur/threading.hpp"

namespace {

// The no_tsan label keeps these out of `ctest --preset tsan`; when run by hand (or by a
// label filter that misses it) under TSan, skip rather than report TSan's own limitation.
#if defined(__SANITIZE_THREAD__)
#define SKIP_UNDER_TSAN() GTEST_SKIP() << "fork from a multi-threaded parent: TSan cannot follow"
#else
#define SKIP_UNDER_TSAN() (void)0
#endif
using namespace std::chrono_literals;
namespace th = concur::threading;
using Event = concur::detail::BasicEvent<concur::detail::Scope::Private>;

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "child check failed: %s\n", what);
  }
}
#define CHILD_CHECK(cond) check((cond), #cond)

int wait_status(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void check_child_registry(th::Thread& other) {
  CHILD_CHECK(&th::current_thread() == &th::main_thread());
  CHILD_CHECK(th::active_count() == 1);
  CHILD_CHECK(th::enumerate().size() == 1);
  CHILD_CHECK(!other.is_alive());
  CHILD_CHECK(other.join(0ms));
  other.join();
  CHILD_CHECK(th::get_native_id() == ::getpid());
  CHILD_CHECK(th::main_thread().native_id() == ::getpid());
  std::atomic<int> ran{0};
  th::Thread fresh([&] { ++ran; });
  fresh.start();
  fresh.join();
  CHILD_CHECK(ran.load() == 1);
  CHILD_CHECK(th::active_count() == 1);
}

TEST(ThreadFork, ForkFromMainThread) {
  SKIP_UNDER_TSAN();
  Event go;
  th::Thread t({.name = "blocked"}, [&] { go.wait(); });
  t.start();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    CHILD_CHECK(th::main_thread().name() == "MainThread");
    check_child_registry(t);
    ::_exit(failures ? 1 : 0);
  }
  EXPECT_EQ(wait_status(pid), 0);
  EXPECT_TRUE(t.is_alive());  // the parent is untouched
  go.set();
  t.join();
}

TEST(ThreadFork, ForkFromAConcurThreadMakesItMain) {
  SKIP_UNDER_TSAN();
  Event go;
  th::Thread blocked([&] { go.wait(); });
  blocked.start();
  int status = -1;
  th::Thread forker({.name = "forker"}, [&] {
    const pid_t pid = ::fork();
    if (pid == 0) {
      CHILD_CHECK(th::current_thread().name() == "forker");
      CHILD_CHECK(th::main_thread().name() == "forker");
      check_child_registry(blocked);
      ::_exit(failures ? 1 : 0);
    }
    status = wait_status(pid);
  });
  forker.start();
  forker.join();
  EXPECT_EQ(status, 0);
  go.set();
  blocked.join();
  EXPECT_EQ(th::main_thread().name(), "MainThread");
}

TEST(ThreadFork, ForkFromForeignThreadGivesNamedMain) {
  SKIP_UNDER_TSAN();
  int status = -1;
  std::thread s([&] {
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Never called current_thread() before the fork: it becomes "MainThread".
      CHILD_CHECK(th::current_thread().name() == "MainThread");
      CHILD_CHECK(&th::current_thread() == &th::main_thread());
      CHILD_CHECK(th::active_count() == 1);
      ::_exit(failures ? 1 : 0);
    }
    status = wait_status(pid);
  });
  s.join();
  EXPECT_EQ(status, 0);
}

}  // namespace
