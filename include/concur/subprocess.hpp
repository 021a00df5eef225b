// concur/subprocess.hpp — Python's subprocess: run programs, talk to them through pipes.
//
// Defines run / call / check_call / check_output / getoutput / getstatusoutput, the
// CompletedProcess result, and Popen, the handle of one running child. Errors are those of
// <concur/errors.hpp>: CalledProcessError, TimeoutExpired, FileNotFoundError / OSError
// (a program that could not be executed), ValueError (contradicting options).
//
// Spawning: clone(CLONE_VM | CLONE_VFORK) + execve (concur/detail/spawn.hpp), so starting a
// program costs what vfork+exec costs whatever the size of this process. The child gets
// only fds 0–2 (+ pass_fds) unless close_fds = false. An exec failure in the child is
// thrown in the parent by run/Popen. Children are waited for through a pidfd: concur
// installs no SIGCHLD handler and never calls waitpid(-1), so it coexists with other code
// that starts processes.
//
// Lifetime: a Popen owns its child's pidfd and the parent's ends of the pipes. Destroying
// a Popen closes those pipe ends and never blocks: a child that has ended is reaped at
// once; one that still runs is put on a process-wide list and reaped (without blocking)
// each time a Popen is constructed afterwards — Python's `_active` list. So no zombie is
// ever left behind for long, and none outlives the process.
//
// SIGPIPE: writing to a child that has gone away never kills this process: writes to the
// child's stdin run with SIGPIPE blocked in the writing thread, a pending SIGPIPE they
// caused is consumed, and communicate() ignores the broken pipe as Python does.
//
// Thread-safety: the free functions may be called from any number of threads at once.
// A Popen is used by one thread at a time (like a std::fstream); distinct Popen objects
// are independent.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "concur/detail/deadline.hpp"
#include "concur/detail/fd.hpp"
#include "concur/errors.hpp"

namespace concur::detail {
// Output captured from a child pipe (internal to Popen). `data` is zero-filled ahead of
// `len` in whole read chunks and never shrunk while reading, so each byte is zeroed once
// however the reads split (C++20's std::string has no uninitialised resize).
struct CapturedOutput {
  std::string data;
  std::size_t len = 0;
  bool empty() const noexcept { return len == 0; }
  std::string copy() const { return data.substr(0, len); }
  std::string take();                        // the first len bytes; leaves this empty
  std::string take_front(std::size_t max);   // up to max bytes from the front
};
}  // namespace concur::detail

namespace concur::subprocess {

// Where a standard stream of the child goes. Stdout is valid for `err` only: stderr is
// merged into whatever stdout became (Python's STDOUT).
enum class Redirect { Inherit, Pipe, DevNull, Stdout };
// Python's module constants.
inline constexpr Redirect PIPE = Redirect::Pipe;
inline constexpr Redirect DEVNULL = Redirect::DevNull;
inline constexpr Redirect STDOUT = Redirect::Stdout;

// A redirect, a file descriptor of this process (dup'ed into the child, not closed here),
// or a file path (opened by the parent: read-only for `in`, created/truncated for out/err).
using Stream = std::variant<Redirect, int /*fd*/, std::filesystem::path>;

using Environment = std::map<std::string, std::string>;

// Keyword arguments of run() and friends. The order of the first ten members is part of
// the API (designated initializers); later additions go at the end.
struct RunOptions {
  Stream in = Redirect::Inherit, out = Redirect::Inherit, err = Redirect::Inherit;
  std::optional<std::string> input{};  // written to stdin (which becomes a pipe), then closed
  bool capture_output = false;       // out = err = Pipe
  std::optional<std::chrono::nanoseconds> timeout{};  // for the whole run; child gets SIGKILL
  bool check = false;                // throw CalledProcessError on a non-zero returncode
  std::optional<std::filesystem::path> cwd{};
  std::optional<Environment> env{};    // replaces the environment (PATH lookup uses env's PATH)
  bool shell = false;                // args[0] is a /bin/sh -c command line; args[1..] $0, $1...
  // --- additions beyond DESIGN's list ---
  bool start_new_session = false;    // setsid() in the child; a timeout kills the whole group
  std::optional<pid_t> process_group{};  // setpgid(0, pg) in the child (0: a new group)
  bool close_fds = true;             // close every fd but 0–2 and pass_fds in the child
  std::vector<int> pass_fds{};         // kept open in the child
  // Program to exec instead of args[0]; with shell, the shell to run instead of /bin/sh (it
  // is then also the shell's argv[0], its $0, as in Python).
  std::optional<std::string> executable{};
};

// Keyword arguments of Popen. The order of the first seven members is part of the API.
struct PopenOptions {
  Stream in = Redirect::Inherit, out = Redirect::Inherit, err = Redirect::Inherit;
  std::optional<std::filesystem::path> cwd{};
  std::optional<Environment> env{};
  bool shell = false;
  bool start_new_session = false;
  // --- additions ---
  std::optional<pid_t> process_group{};
  bool close_fds = true;
  std::vector<int> pass_fds{};
  std::optional<std::string> executable{};
};

// What run() returns. `out`/`err` hold what was captured (empty if not a pipe).
struct CompletedProcess {
  std::vector<std::string> args{};
  int returncode = 0;  // exit status, or -SIG if killed by signal SIG
  std::string out{}, err{};
  // Throws CalledProcessError (with out/err) if returncode != 0.
  void check_returncode() const;
};
// Python's repr: "CompletedProcess(args=['echo', 'hi'], returncode=0, stdout='hi\n')"
// (stdout/stderr shown when not empty).
std::string to_string(const CompletedProcess& cp);
std::ostream& operator<<(std::ostream& os, const CompletedProcess& cp);

// A running (or finished) child process. Move-only.
class Popen {
 public:
  // Starts args (see RunOptions::shell for the shell form). Throws ValueError on bad
  // arguments (empty args — Python happens to raise IndexError there —, NUL bytes,
  // Redirect::Stdout for in/out, env names that are empty or contain '='),
  // FileNotFoundError / OSError if the program (or cwd, or a redirect file) cannot be used.
  explicit Popen(std::vector<std::string> args, PopenOptions options = {});
  Popen(Popen&&) noexcept;
  Popen& operator=(Popen&&) noexcept;
  Popen(const Popen&) = delete;
  Popen& operator=(const Popen&) = delete;
  // Closes the pipe ends; never blocks (see the file comment for who reaps a live child).
  ~Popen();

  // Writes input (if any) to stdin and closes it, reads stdout and stderr to EOF, waits for
  // the child; returns (out, err). Polls all pipes together, so it never deadlocks whatever
  // the sizes. On timeout throws TimeoutExpired with the output so far and keeps it: a
  // later communicate() continues and returns everything. Throws ValueError if input is
  // given after communication started or stdin is not a pipe. Does not kill the child.
  std::pair<std::string, std::string> communicate(
      std::optional<std::string> input = std::nullopt,
      std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  // Same with a timeout of any duration type, saturated (hours::max() is no limit; it does
  // not fit the optional's nanoseconds); ValueError for NaN.
  template <class Rep, class Period>
  std::pair<std::string, std::string> communicate(std::optional<std::string> input,
                                                  std::chrono::duration<Rep, Period> timeout) {
    return communicate(std::move(input), std::optional<std::chrono::nanoseconds>(
                                             concur::detail::saturating_ns(timeout)));
  }

  // The returncode if the child has ended (reaping it), else nullopt. Never blocks.
  std::optional<int> poll();
  // Blocks until the child ends; returns its returncode.
  int wait();
  // Like wait(), but throws TimeoutExpired after `timeout` (the child keeps running).
  // hours::max() waits forever; ValueError for NaN.
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_ns(concur::detail::saturating_ns(timeout));
  }
  // Like wait(timeout) but returns nullopt instead of throwing.
  template <class Rep, class Period>
  [[nodiscard]] std::optional<int> try_wait(std::chrono::duration<Rep, Period> timeout) {
    return try_wait_ns(concur::detail::saturating_ns(timeout));
  }

  // Sends sig (through the pidfd: never hits a recycled pid). Does nothing once reaped.
  void send_signal(int sig);
  void terminate();  // SIGTERM
  void kill();       // SIGKILL

  pid_t pid() const noexcept { return pid_; }
  std::optional<int> returncode() const noexcept { return returncode_; }
  const std::vector<std::string>& args() const noexcept { return args_; }

  // --- Streaming access to the pipe ends (each a no-op / -1 / "" when not a pipe) ---
  // Writes all of data to the child's stdin (blocking). Throws OSError(EPIPE) if the child
  // has closed its end, OSError otherwise; never raises SIGPIPE.
  void write_stdin(std::string_view data);
  // Closes the child's stdin (it sees EOF).
  void close_stdin() noexcept;
  // Blocks until some output is available; returns up to max bytes, "" at EOF.
  std::string read_stdout(std::size_t max = 64 * 1024);
  std::string read_stderr(std::size_t max = 64 * 1024);
  // Reads to EOF.
  std::string read_stdout_all();
  std::string read_stderr_all();
  void close_stdout() noexcept;
  void close_stderr() noexcept;
  // The parent's pipe ends (e.g. to feed one Popen's stdout to another's `in`); -1 if none.
  int stdin_fd() const noexcept { return stdin_.get(); }
  int stdout_fd() const noexcept { return stdout_.get(); }
  int stderr_fd() const noexcept { return stderr_.get(); }
  // The child's pidfd (pollable: readable once the child has ended); -1 once reaped.
  int pidfd() const noexcept { return pidfd_.get(); }

 private:
  friend CompletedProcess run(std::vector<std::string> args, struct RunOptions options);
  using TimePoint = std::chrono::steady_clock::time_point;

  int wait_ns(std::chrono::nanoseconds timeout);
  std::optional<int> try_wait_ns(std::chrono::nanoseconds timeout);
  std::pair<std::string, std::string> communicate_until(std::optional<std::string> input,
                                                        const TimePoint* deadline,
                                                        std::chrono::nanoseconds timeout);
  // Polls stdin/stdout/stderr until all are closed or the deadline passes; false on timeout.
  bool pump(const TimePoint* deadline);
  void kill_after_timeout() noexcept;
  void abandon() noexcept;

  std::vector<std::string> args_;
  pid_t pid_ = -1;
  detail::UniqueFd pidfd_;
  std::optional<int> returncode_;
  detail::UniqueFd stdin_, stdout_, stderr_;
  bool kill_group_ = false;  // the child leads its own process group
  // communicate() state, kept across a TimeoutExpired so a retry loses nothing.
  bool communication_started_ = false;
  std::string input_;
  std::size_t input_offset_ = 0;
  detail::CapturedOutput out_buf_, err_buf_;
  std::size_t read_chunk_ = 64 * 1024;  // the stdout pipe's capacity
};

// Python's repr: "<Popen: returncode: None args: ['sleep', '5']>" ("returncode: -9" once reaped).
std::string to_string(const Popen& p);
std::ostream& operator<<(std::ostream& os, const Popen& p);

// Runs args, waits for it; returns its returncode and what was captured. With a timeout the
// child (its whole group with start_new_session / process_group = 0) is killed with SIGKILL
// when it expires, reaped, its pipes drained for at most 250 ms (a grandchild holding them
// cannot hang us, cpython#81605), and TimeoutExpired is thrown with the output read.
// ValueError: input with an `in` redirect; capture_output with out/err redirects.
CompletedProcess run(std::vector<std::string> args, RunOptions options = {});
// run(args, {..., .out = Pipe, .check = true}).out. ValueError if options.out is set.
std::string check_output(std::vector<std::string> args, RunOptions options = {});
// run(args, options).returncode (check is ignored).
int call(std::vector<std::string> args, RunOptions options = {});
// run(args, {..., .check = true}); throws CalledProcessError on a non-zero returncode.
void check_call(std::vector<std::string> args, RunOptions options = {});
// Runs cmd with /bin/sh, stderr merged into stdout; returns (returncode, output without one
// trailing newline). Never throws CalledProcessError.
std::pair<int, std::string> getstatusoutput(const std::string& cmd);
// getstatusoutput(cmd).second.
std::string getoutput(const std::string& cmd);

}  // namespace concur::subprocess
