// concur-test: labels=no_tsan
// Regression tests of the spawn layer (issue 9): the exec-error pipe with fds 0-2 closed,
// no wait for EOF on that pipe (a process forked meanwhile by another thread holds it),
// the filename of an exec error, and `executable` with `shell`.
// no_tsan: the ordering test forks from a multi-threaded parent (a thread forks in a loop
// while another spawns); TSan does not support fork() from a multi-threaded process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "concur/errors.hpp"
#include "concur/subprocess.hpp"

namespace sp = concur::subprocess;
using namespace std::chrono_literals;

namespace {

// Runs body in a forked child with fds 0, 1 and 2 closed; returns the child's exit code.
template <class F>
int in_child_without_stdio(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(0);
    ::close(1);
    ::close(2);
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

}  // namespace

TEST(Spawn, MissingProgramWithStdioClosedIsFileNotFound) {
  // Before: pipe2 handed the error pipe fds 0 and 1, the child's stdio setup overwrote it,
  // and the failure read as returncode 127.
  EXPECT_EQ(in_child_without_stdio([] {
              try {
                const auto cp = sp::run({"concur-no-such-program-xyz"});
                return cp.returncode == 127 ? 1 : 2;
              } catch (const concur::FileNotFoundError&) {
                return 0;
              }
            }),
            0);
}

TEST(Spawn, MissingProgramWithStdioClosedAndRedirectsIsFileNotFound) {
  // With 0-2 closed, /dev/null takes fd 0 and the error pipe fds 1 and 2; the child's
  // redirection of its stderr to /dev/null (dup3 onto 2) then destroyed the report.
  const std::vector<sp::RunOptions> variants = [] {
    std::vector<sp::RunOptions> v(4);
    v[0].err = sp::Redirect::DevNull;
    v[1].out = sp::Redirect::DevNull;
    v[2].capture_output = true;
    v[3].out = sp::Redirect::DevNull;
    v[3].err = sp::Redirect::Stdout;
    return v;
  }();
  for (std::size_t i = 0; i < variants.size(); ++i) {
    EXPECT_EQ(in_child_without_stdio([&] {
                try {
                  const auto cp = sp::run({"concur-no-such-program-xyz"}, variants[i]);
                  return cp.returncode == 127 ? 1 : 2;
                } catch (const concur::FileNotFoundError&) {
                  return 0;
                }
              }),
              0)
        << "variant " << i;
  }
}

TEST(Spawn, CaptureWorksWithStdioClosed) {
  EXPECT_EQ(in_child_without_stdio([] {
              const auto cp =
                  sp::run({"/bin/sh", "-c", "echo out; echo err >&2"}, {.capture_output = true});
              return cp.returncode == 0 && cp.out == "out\n" && cp.err == "err\n" ? 0 : 1;
            }),
            0);
}

TEST(Spawn, InternalFdsStayAboveStdio) {
  // A pidfd or pipe concur keeps must never take a free stdio slot: the program's own
  // writes to a closed stdout would land in it.
  EXPECT_EQ(in_child_without_stdio([] {
              sp::Popen p({"/bin/sh", "-c", "read x"}, {.in = sp::Redirect::Pipe});
              const bool ok = p.pidfd() >= 3 && p.stdin_fd() >= 3 && ::fcntl(0, F_GETFD) < 0 &&
                              ::fcntl(1, F_GETFD) < 0 && ::fcntl(2, F_GETFD) < 0;
              p.close_stdin();
              return ok && p.wait() != 0 ? 0 : 1;
            }),
            0);
}

TEST(Spawn, RunDoesNotWaitForProcessesForkedMeanwhile) {
  // Another thread forks children in a loop; each stays alive until `release` is closed,
  // holding whatever fds it inherited — among them, often, the write end of a spawn's error
  // pipe. Every run() must complete while all those children are still alive (before: a run
  // whose pipe was inherited waited for EOF, i.e. for the release).
  int rel[2];
  ASSERT_EQ(::pipe2(rel, O_CLOEXEC), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> forked{0};
  std::vector<pid_t> kids;
  std::thread forker([&] {
    while (!stop.load() && kids.size() < 200) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(rel[1]);
        char c;
        while (::read(rel[0], &c, 1) < 0 && errno == EINTR) {
        }
        ::_exit(0);
      }
      if (pid > 0) {
        kids.push_back(pid);
        forked.fetch_add(1);
      }
      std::this_thread::sleep_for(200us);
    }
  });
  std::atomic<bool> runs_done{false};
  std::atomic<int> runs_ok{0};
  std::thread runner([&] {
    for (int i = 0; i < 100; ++i)
      if (sp::run({"true"}).returncode == 0) runs_ok.fetch_add(1);
    runs_done.store(true);
  });
  // Event ordering, not speed: the runs end before any child is released. The bound only
  // keeps a regression from hanging the test (a stalled run waits for the release).
  const auto limit = std::chrono::steady_clock::now() + 40s;
  while (!runs_done.load() && std::chrono::steady_clock::now() < limit)
    std::this_thread::sleep_for(5ms);
  const bool done_before_release = runs_done.load();
  stop.store(true);
  forker.join();
  ::close(rel[1]);  // releases every child
  runner.join();
  ::close(rel[0]);
  for (pid_t k : kids) {
    int st;
    while (::waitpid(k, &st, 0) < 0 && errno == EINTR) {
    }
  }
  EXPECT_TRUE(done_before_release) << "run() waited for a process forked by another thread";
  EXPECT_EQ(runs_ok.load(), 100);
  EXPECT_GT(forked.load(), 0);
}

TEST(Spawn, EmptyProgramNameIsInTheMessage) {
  // Python: run([""]) -> "[Errno 13] Permission denied: ''" with a PATH of existing
  // directories ("dir/" is a directory), "[Errno 2] No such file or directory: ''" without.
  try {
    (void)sp::run({""});
    FAIL() << "no exception";
  } catch (const concur::OSError& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.substr(w.size() - 4), ": ''") << w;
  }
  try {
    (void)sp::run({""}, {.env = sp::Environment{{"PATH", "/concur-no-such-dir"}}});
    FAIL() << "no exception";
  } catch (const concur::FileNotFoundError& e) {
    EXPECT_STREQ(e.what(), "[Errno 2] No such file or directory: ''");
  }
}

TEST(Spawn, ExecErrorFilenameIsPythonRepr) {
  try {
    (void)sp::run({"/concur-no-such/it's"});
    FAIL() << "no exception";
  } catch (const concur::FileNotFoundError& e) {
    EXPECT_STREQ(e.what(), "[Errno 2] No such file or directory: \"/concur-no-such/it's\"");
  }
}

TEST(Spawn, ShellExecutableReplacesTheShell) {
  // Python: run(["echo $0"], shell=True, executable="/bin/bash") prints /bin/bash.
  if (::access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "no /bin/bash";
  auto cp = sp::run({"echo $0; echo ${BASH_VERSION:+bash}"},
                    {.out = sp::Redirect::Pipe, .shell = true, .executable = "/bin/bash"});
  EXPECT_EQ(cp.out, "/bin/bash\nbash\n");
  sp::Popen p({"echo $0 $1", "a0", "a1"},
              {.out = sp::Redirect::Pipe, .shell = true, .executable = "/bin/bash"});
  EXPECT_EQ(p.communicate().first, "a0 a1\n");
  auto plain = sp::run({"echo $0"}, {.out = sp::Redirect::Pipe, .shell = true});
  EXPECT_EQ(plain.out, "/bin/sh\n");
}
