// concur-test: timeout=120
// run() and the helpers built on it: options, redirects, errors and their messages,
// timeouts (partial output, grandchild holding the pipes, process groups).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "concur/subprocess.hpp"

namespace sp = concur::subprocess;
using namespace std::chrono_literals;
using sp::Redirect;

namespace {
const std::string kChild = CONCUR_CHILD_PATH;

std::filesystem::path temp_dir() {
  char tmpl[] = "/tmp/concur_sp_XXXXXX";
  const char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

TEST(Run, EchoReturnsCompletedProcess) {
  auto cp = sp::run({"echo", "이것은 subprocess입니다."});
  EXPECT_EQ(cp.returncode, 0);
  EXPECT_EQ(cp.args, (std::vector<std::string>{"echo", "이것은 subprocess입니다."}));
  EXPECT_EQ(cp.out, "");
  EXPECT_EQ(sp::to_string(cp), "CompletedProcess(args=['echo', '이것은 subprocess입니다.'], returncode=0)");
}

TEST(Run, CaptureOutputSeparatesStreams) {
  auto cp = sp::run({kChild, "out-err"}, {.capture_output = true});
  EXPECT_EQ(cp.returncode, 0);
  EXPECT_EQ(cp.out, "out");
  EXPECT_EQ(cp.err, "err");
  EXPECT_EQ(sp::to_string(cp), "CompletedProcess(args=['" + kChild +
                                   "', 'out-err'], returncode=0, stdout='out', stderr='err')");
}

TEST(Run, ReturncodeAndCheck) {
  EXPECT_EQ(sp::run({kChild, "exit", "3"}).returncode, 3);
  try {
    (void)sp::run({kChild, "exit", "3"}, {.check = true});
    FAIL() << "no throw";
  } catch (const sp::CalledProcessError& e) {
    EXPECT_EQ(e.returncode(), 3);
    EXPECT_EQ(e.cmd(), (std::vector<std::string>{kChild, "exit", "3"}));
    EXPECT_EQ(std::string(e.what()),
              "Command '['" + kChild + "', 'exit', '3']' returned non-zero exit status 3.");
  }
  EXPECT_NO_THROW((void)sp::run({kChild, "exit", "0"}, {.check = true}));
}

TEST(Run, CheckCarriesCapturedOutput) {
  try {
    (void)sp::run({"sh", "-c", "echo o; echo e >&2; exit 47"}, {.capture_output = true, .check = true});
    FAIL();
  } catch (const sp::CalledProcessError& e) {
    EXPECT_EQ(e.returncode(), 47);
    EXPECT_EQ(e.output(), "o\n");
    EXPECT_EQ(e.err(), "e\n");
  }
}

TEST(Run, SignalDeathIsNegativeAndNamed) {
  auto cp = sp::run({kChild, "crash", "9"});
  EXPECT_EQ(cp.returncode, -9);
  try {
    cp.check_returncode();
    FAIL();
  } catch (const sp::CalledProcessError& e) {
    EXPECT_EQ(e.returncode(), -9);
    EXPECT_NE(std::string(e.what()).find("died with <Signals.SIGKILL: 9>."), std::string::npos);
  }
  EXPECT_EQ(sp::run({kChild, "crash", "15"}).returncode, -15);
}

TEST(Run, InputGoesToStdin) {
  auto cp = sp::run({kChild, "echo"}, {.input = "hello\nworld", .capture_output = true});
  EXPECT_EQ(cp.out, "hello\nworld");
  auto e = sp::run({kChild, "echo-err"}, {.input = "to err", .capture_output = true});
  EXPECT_EQ(e.err, "to err");
  EXPECT_EQ(e.out, "");
  // An empty input still gives a pipe, closed at once: the child sees EOF.
  EXPECT_EQ(sp::run({kChild, "echo"}, {.input = "", .capture_output = true}).out, "");
}

TEST(Run, ArgumentErrorsAreValueErrors) {
  EXPECT_THROW((void)sp::run({"cat"}, {.in = Redirect::DevNull, .input = "x"}), concur::ValueError);
  try {
    (void)sp::run({"cat"}, {.in = Redirect::Pipe, .input = "x"});
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "stdin and input arguments may not both be used.");
  }
  try {
    (void)sp::run({"true"}, {.out = Redirect::Pipe, .capture_output = true});
    FAIL();
  } catch (const concur::ValueError& e) {
    EXPECT_STREQ(e.what(), "stdout and stderr arguments may not be used with capture_output.");
  }
  EXPECT_THROW((void)sp::run({"true"}, {.err = Redirect::DevNull, .capture_output = true}),
               concur::ValueError);
  EXPECT_THROW((void)sp::run({}), concur::ValueError);
  EXPECT_THROW((void)sp::run({std::string("a\0b", 3)}), concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.out = Redirect::Stdout}), concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.in = Redirect::Stdout}), concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.out = -1}), concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.env = sp::Environment{{"A=B", "c"}}}), concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.env = sp::Environment{{"", "c"}}}), concur::ValueError);
  EXPECT_THROW((void)sp::check_output({"true"}, {.out = Redirect::DevNull}), concur::ValueError);
}

TEST(Run, MissingProgramIsFileNotFound) {
  try {
    (void)sp::run({"concur-no-such-program-xyz"});
    FAIL();
  } catch (const concur::FileNotFoundError& e) {
    EXPECT_EQ(e.code(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("concur-no-such-program-xyz"), std::string::npos);
  }
  EXPECT_THROW((void)sp::run({"/nonexistent/dir/prog"}), concur::FileNotFoundError);
  sp::Popen* never = nullptr;
  EXPECT_THROW(never = new sp::Popen({"concur-no-such-program-xyz"}), concur::FileNotFoundError);
  EXPECT_EQ(never, nullptr);
}

TEST(Run, NotExecutableIsOSErrorWithErrno) {
  auto dir = temp_dir();
  auto file = dir / "script";
  std::ofstream(file) << "#!/bin/sh\necho hi\n";
  ::chmod(file.c_str(), 0644);
  try {
    (void)sp::run({file.string()});
    FAIL();
  } catch (const concur::FileNotFoundError&) {
    FAIL() << "wrong type";
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.code(), EACCES);
  }
  // A directory is not executable either.
  try {
    (void)sp::run({dir.string()});
    FAIL();
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.code(), EACCES);
  }
  ::chmod(file.c_str(), 0755);
  EXPECT_EQ(sp::run({file.string()}, {.capture_output = true}).out, "hi\n");
  std::filesystem::remove_all(dir);
}

TEST(Run, CwdAndRelativeProgram) {
  auto dir = std::filesystem::canonical(temp_dir());
  auto cp = sp::run({kChild, "print-cwd"}, {.capture_output = true, .cwd = dir});
  EXPECT_EQ(cp.out, dir.string() + "\n");
  // A relative program path is looked up relative to cwd (exec runs after chdir).
  std::filesystem::copy_file(kChild, dir / "kid");
  EXPECT_EQ(sp::run({"./kid", "print-args", "a"}, {.capture_output = true, .cwd = dir}).out, "a\n");
  try {
    (void)sp::run({"true"}, {.cwd = dir / "missing"});
    FAIL();
  } catch (const concur::FileNotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(Run, EnvReplacesEnvironment) {
  ::setenv("CONCUR_PARENT_ONLY", "1", 1);
  auto cp = sp::run({kChild, "print-env", "CONCUR_PARENT_ONLY"}, {.capture_output = true});
  EXPECT_EQ(cp.out, "1\n");
  cp = sp::run({kChild, "print-env", "CONCUR_PARENT_ONLY"},
               {.capture_output = true, .env = sp::Environment{{"X", "y"}}});
  EXPECT_EQ(cp.out, "<unset>\n");
  cp = sp::run({kChild, "print-env", "X"}, {.capture_output = true, .env = sp::Environment{{"X", "y z"}}});
  EXPECT_EQ(cp.out, "y z\n");
  // PATH lookup uses env's PATH, as Python's os.get_exec_path(env) does.
  auto dir = temp_dir();
  std::filesystem::copy_file(kChild, dir / "only-here-kid");
  cp = sp::run({"only-here-kid", "print-args", "found"},
               {.capture_output = true, .env = sp::Environment{{"PATH", "/nope:" + dir.string()}}});
  EXPECT_EQ(cp.out, "found\n");
  EXPECT_THROW((void)sp::run({"only-here-kid"}), concur::FileNotFoundError);
  // Without PATH in env: /bin:/usr/bin.
  EXPECT_EQ(sp::run({"echo", "x"}, {.capture_output = true, .env = sp::Environment{}}).out, "x\n");
  std::filesystem::remove_all(dir);
}

TEST(Run, ShellFormUsesArgs0AsCommandLine) {
  auto cp = sp::run({"echo $0 $1; exit 5", "zero", "one"}, {.capture_output = true, .shell = true});
  EXPECT_EQ(cp.out, "zero one\n");
  EXPECT_EQ(cp.returncode, 5);
  EXPECT_EQ(sp::run({"printf 'b\\na\\n' | sort"}, {.capture_output = true, .shell = true}).out, "a\nb\n");
  // executable replaces the program while argv stays as given.
  cp = sp::run({"argv0", "print-args", "p"}, {.capture_output = true, .executable = kChild});
  EXPECT_EQ(cp.out, "p\n");
}

TEST(Run, RedirectsDevNullFdPathAndMerge) {
  EXPECT_EQ(sp::run({kChild, "echo"}, {.in = Redirect::DevNull, .capture_output = true}).out, "");
  auto dir = temp_dir();
  // file paths: out/err created and truncated; in read.
  std::ofstream(dir / "in.txt") << "from file";
  std::ofstream(dir / "out.txt") << "old content that must vanish";
  auto cp = sp::run({kChild, "echo"}, {.in = dir / "in.txt", .out = dir / "out.txt"});
  EXPECT_EQ(cp.returncode, 0);
  EXPECT_EQ(slurp(dir / "out.txt"), "from file");
  (void)sp::run({kChild, "out-err"}, {.out = Redirect::DevNull, .err = dir / "err.txt"});
  EXPECT_EQ(slurp(dir / "err.txt"), "err");
  // a file descriptor of ours
  const int fd = ::open((dir / "fd.txt").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  (void)sp::run({kChild, "out-err"}, {.out = fd, .err = fd});
  ::close(fd);
  EXPECT_EQ(slurp(dir / "fd.txt"), "outerr");
  // err merged into out
  cp = sp::run({kChild, "out-err"}, {.out = Redirect::Pipe, .err = Redirect::Stdout});
  EXPECT_EQ(cp.out, "outerr");
  EXPECT_EQ(cp.err, "");
  // an unreadable path
  EXPECT_THROW((void)sp::run({"true"}, {.in = dir / "missing.txt"}), concur::FileNotFoundError);
  std::filesystem::remove_all(dir);
}

TEST(Run, StdioSourcesThatSitOnOtherStdSlots) {
  // out = our fd 2 and err = our fd 1: the child swaps them; sources are moved up first.
  auto dir = temp_dir();
  const int saved1 = ::dup(1), saved2 = ::dup(2);
  const int f1 = ::open((dir / "a").c_str(), O_WRONLY | O_CREAT, 0644);
  const int f2 = ::open((dir / "b").c_str(), O_WRONLY | O_CREAT, 0644);
  ::dup2(f1, 1);
  ::dup2(f2, 2);
  (void)sp::run({kChild, "out-err"}, {.out = 2, .err = 1});
  ::dup2(saved1, 1);
  ::dup2(saved2, 2);
  for (int fd : {saved1, saved2, f1, f2}) ::close(fd);
  EXPECT_EQ(slurp(dir / "a"), "err");
  EXPECT_EQ(slurp(dir / "b"), "out");
  std::filesystem::remove_all(dir);
}

TEST(Run, CloseFdsAndPassFds) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // deliberately inheritable (no O_CLOEXEC)
  auto fds = sp::run({kChild, "print-fds"}, {.capture_output = true}).out;
  EXPECT_EQ(fds, "0\n1\n2\n");
  fds = sp::run({kChild, "print-fds"}, {.capture_output = true, .pass_fds = {p[1]}}).out;
  EXPECT_EQ(fds, "0\n1\n2\n" + std::to_string(p[1]) + "\n");
  fds = sp::run({kChild, "print-fds"}, {.capture_output = true, .close_fds = false}).out;
  EXPECT_NE(fds.find("\n" + std::to_string(p[0]) + "\n"), std::string::npos);
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_THROW((void)sp::run({"true"}, {.pass_fds = {p[0]}}), concur::OSError);
  EXPECT_THROW((void)sp::run({"true"}, {.pass_fds = {-3}}), concur::ValueError);
}

TEST(Run, SessionAndProcessGroup) {
  auto ids = sp::run({kChild, "print-ids"}, {.capture_output = true}).out;
  int pid = 0, pgid = 0, sid = 0;
  std::istringstream(ids) >> pid >> pgid >> sid;
  EXPECT_EQ(pgid, ::getpgid(0));
  EXPECT_EQ(sid, ::getsid(0));
  ids = sp::run({kChild, "print-ids"}, {.capture_output = true, .start_new_session = true}).out;
  std::istringstream(ids) >> pid >> pgid >> sid;
  EXPECT_EQ(pgid, pid);
  EXPECT_EQ(sid, pid);
  ids = sp::run({kChild, "print-ids"}, {.capture_output = true, .process_group = 0}).out;
  std::istringstream(ids) >> pid >> pgid >> sid;
  EXPECT_EQ(pgid, pid);
  EXPECT_EQ(sid, ::getsid(0));
}

TEST(Run, ChildGetsDefaultSignalDispositions) {
  struct sigaction sa {}, old_usr1 {}, old_pipe {};
  sa.sa_handler = [](int) {};
  ::sigaction(SIGUSR1, &sa, &old_usr1);
  sa.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &sa, &old_pipe);
  EXPECT_EQ(sp::run({kChild, "print-sig", std::to_string(SIGUSR1)}, {.capture_output = true}).out, "default\n");
  EXPECT_EQ(sp::run({kChild, "print-sig", std::to_string(SIGPIPE)}, {.capture_output = true}).out, "default\n");
  sa.sa_handler = SIG_IGN;
  ::sigaction(SIGUSR2, &sa, nullptr);  // other ignored signals stay ignored (POSIX exec rule)
  EXPECT_EQ(sp::run({kChild, "print-sig", std::to_string(SIGUSR2)}, {.capture_output = true}).out, "ignore\n");
  sa.sa_handler = SIG_DFL;
  ::sigaction(SIGUSR2, &sa, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
}

TEST(Helpers, CheckOutputCallCheckCall) {
  EXPECT_EQ(sp::check_output({kChild, "print-args", "a", "b c"}), "a\nb c\n");
  EXPECT_EQ(sp::check_output({kChild, "out-err"}, {.err = Redirect::Stdout}), "outerr");
  try {
    (void)sp::check_output({"sh", "-c", "echo partial; exit 2"});
    FAIL();
  } catch (const sp::CalledProcessError& e) {
    EXPECT_EQ(e.returncode(), 2);
    EXPECT_EQ(e.output(), "partial\n");
  }
  EXPECT_EQ(sp::call({kChild, "exit", "7"}), 7);
  EXPECT_EQ(sp::call({kChild, "exit", "7"}, {.check = true}), 7);  // call ignores check
  EXPECT_NO_THROW(sp::check_call({"true"}));
  try {
    sp::check_call({kChild, "exit", "47"});
    FAIL();
  } catch (const sp::CalledProcessError& e) {
    EXPECT_EQ(e.returncode(), 47);
  }
}

TEST(Helpers, GetoutputAndGetstatusoutput) {
  EXPECT_EQ(sp::getoutput("echo hello; echo oops >&2"), "hello\noops");
  auto [rc, out] = sp::getstatusoutput("echo a; exit 3");
  EXPECT_EQ(rc, 3);
  EXPECT_EQ(out, "a");
  auto [rc2, out2] = sp::getstatusoutput("concur-no-such-cmd-xyz");
  EXPECT_EQ(rc2, 127);
  EXPECT_NE(out2.find("not found"), std::string::npos);
  EXPECT_EQ(sp::getoutput("printf 'x\\n\\n'"), "x\n");  // only one newline is stripped
}

TEST(Timeout, RunKillsAndCarriesPartialOutput) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)sp::run({kChild, "sleep", "20000"}, {.capture_output = true, .timeout = 300ms});
    FAIL();
  } catch (const sp::TimeoutExpired& e) {
    EXPECT_EQ(e.timeout(), 300ms);
    EXPECT_EQ(std::string(e.what()),
              "Command '['" + kChild + "', 'sleep', '20000']' timed out after 0.3 seconds");
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
  // Partial output (the timeout is generous so a loaded machine still prints first).
  try {
    (void)sp::run({kChild, "partial-then-sleep", "20000"}, {.capture_output = true, .timeout = 2s});
    FAIL();
  } catch (const sp::TimeoutExpired& e) {
    EXPECT_EQ(e.output(), "partial");
    EXPECT_EQ(e.err(), "");
  }
}

TEST(Timeout, GrandchildHoldingPipesCannotHangRun) {
  // cpython#81605: the child exits at once, a grandchild keeps stdout/stderr for 10 s.
  for (bool session : {false, true}) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW((void)sp::run({kChild, "grandchild", "10000"},
                               {.capture_output = true, .timeout = 300ms, .start_new_session = session}),
                 sp::TimeoutExpired);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "session=" << session;
  }
  // Same through the shell.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW((void)sp::run({"sleep 10 & echo started"},
                             {.capture_output = true, .timeout = 300ms, .shell = true}),
               sp::TimeoutExpired);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(Timeout, NewSessionKillsTheWholeGroup) {
  // The shell starts a grandchild that writes its pid, then both sleep; a timeout must kill
  // the grandchild too when the child leads its own session.
  std::string out;
  try {
    (void)sp::run({"sleep 30 & echo $!; wait"},
                  {.capture_output = true, .timeout = 2s, .shell = true, .start_new_session = true});
    FAIL();
  } catch (const sp::TimeoutExpired& e) {
    out = e.output();
  }
  const int gpid = std::atoi(out.c_str());
  ASSERT_GT(gpid, 0) << out;
  // It was our grandchild, reparented to init (or a subreaper) when the shell died; give the
  // kernel a moment to finish the SIGKILL, then it must be gone (or a zombie being reaped).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    std::ifstream st("/proc/" + std::to_string(gpid) + "/stat");
    std::string line;
    if (!std::getline(st, line)) {
      gone = true;
      break;
    }
    const auto rp = line.rfind(')');
    if (rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'Z') gone = true;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone);
}

TEST(Timeout, InputLargerThanPipeWithTimeout) {
  // A child that never reads: the write side must not block past the timeout.
  std::string big(4 << 20, 'x');
  EXPECT_THROW((void)sp::run({kChild, "sleep", "20000"},
                             {.input = big, .capture_output = true, .timeout = 200ms}),
               sp::TimeoutExpired);
}

TEST(Timeout, NoTimeoutWhenFastEnough) {
  auto cp = sp::run({kChild, "print-args", "ok"}, {.capture_output = true, .timeout = 30s});
  EXPECT_EQ(cp.out, "ok\n");
  EXPECT_EQ(sp::call({kChild, "exit", "4"}, {.timeout = 30s}), 4);
}

TEST(Run, MoreMisuseIsValueError) {
  EXPECT_THROW((void)sp::run({"true"}, {.process_group = -2}), concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.cwd = std::filesystem::path(std::string("/tm\0p", 5))}),
               concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.env = sp::Environment{{"A", std::string("b\0c", 3)}}}),
               concur::ValueError);
  EXPECT_THROW((void)sp::run({"true"}, {.executable = std::string("/bin/tr\0ue", 10)}), concur::ValueError);
  EXPECT_THROW((void)sp::check_output({"true"}, {.capture_output = true}), concur::ValueError);
}

TEST(Timeout, PartialOutputOnBothStreamsAndCallKills) {
  try {
    (void)sp::run({"printf o; printf e >&2; sleep 10"},
                  {.capture_output = true, .timeout = 2s, .shell = true, .start_new_session = true});
    FAIL();
  } catch (const sp::TimeoutExpired& e) {
    EXPECT_EQ(e.output(), "o");
    EXPECT_EQ(e.err(), "e");
  }
  // call() and check_output() with a timeout kill too (Python's call: wait(timeout), kill).
  EXPECT_THROW((void)sp::call({kChild, "sleep", "20000"}, {.timeout = 100ms}), sp::TimeoutExpired);
  try {
    (void)sp::check_output({kChild, "partial-then-sleep", "20000"}, {.timeout = 2s});
    FAIL();
  } catch (const sp::TimeoutExpired& e) {
    EXPECT_EQ(e.output(), "partial");
  }
}
