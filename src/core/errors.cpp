#include "concur/errors.hpp"

#include <csignal>
#include <cstring>
#include <cstdio>
#include <utility>

#include "concur/detail/py_repr.hpp"

namespace concur {

namespace {
std::string os_message(int err) {
  return "[Errno " + std::to_string(err) + "] " + std::strerror(err);
}
std::string os_message(int err, const std::string& context) {
  if (context.empty()) return os_message(err);
  return os_message(err) + ": " + detail::py_repr(context);
}
}  // namespace

OSError::OSError(int err, const std::string& context)
    : Error(os_message(err, context)), code_(err) {}
OSError::OSError(int err, const Filename& filename)
    : Error(os_message(err) + ": " + detail::py_repr(filename.name)), code_(err) {}

OSError::OSError(const std::string& message) : Error(message), code_(0) {}

void throw_os_error(int err, const std::string& context) {
  if (err == ENOENT) throw FileNotFoundError(context);
  if (err == EEXIST) throw FileExistsError(context);
  throw OSError(err, context);
}
void throw_os_error(int err, const Filename& filename) {
  if (err == ENOENT) throw FileNotFoundError(filename);
  if (err == EEXIST) throw FileExistsError(filename);
  throw OSError(err, filename);
}

RemoteError::RemoteError(std::string type_name, const std::string& message)
    : Error(type_name + ": " + message), type_name_(std::move(type_name)) {}

namespace subprocess {

std::string format_args(const std::vector<std::string>& args) { return detail::py_repr(args); }

namespace {
std::string called_message(int rc, const std::vector<std::string>& cmd) {
  std::string m = "Command '" + format_args(cmd) + "' ";
  if (rc < 0) {
    const char* abbrev = sigabbrev_np(-rc);
    if (abbrev) return m + "died with <Signals.SIG" + abbrev + ": " + std::to_string(-rc) + ">.";
    return m + "died with unknown signal " + std::to_string(-rc) + ".";
  }
  return m + "returned non-zero exit status " + std::to_string(rc) + ".";
}

std::string seconds_text(std::chrono::nanoseconds t) {
  // Python prints the float it was given: 0.3, 5.0, 1.25.
  char buf[64];
  double s = std::chrono::duration<double>(t).count();
  std::snprintf(buf, sizeof buf, "%.9g", s);
  std::string r = buf;
  if (r.find_first_of(".e") == std::string::npos) r += ".0";
  return r;
}
}  // namespace

CalledProcessError::CalledProcessError(int returncode, std::vector<std::string> cmd,
                                       std::string output, std::string err)
    : SubprocessError(called_message(returncode, cmd)),
      returncode_(returncode),
      cmd_(std::move(cmd)),
      output_(std::move(output)),
      err_(std::move(err)) {}

TimeoutExpired::TimeoutExpired(std::vector<std::string> cmd, std::chrono::nanoseconds timeout,
                               std::string output, std::string err)
    : SubprocessError("Command '" + format_args(cmd) + "' timed out after " +
                      seconds_text(timeout) + " seconds"),
      cmd_(std::move(cmd)),
      timeout_(timeout),
      output_(std::move(output)),
      err_(std::move(err)) {}

}  // namespace subprocess

namespace multiprocessing {
BufferTooShort::BufferTooShort(std::vector<std::byte> message)
    : ProcessError("message of " + std::to_string(message.size()) +
                   " bytes does not fit the buffer"),
      message_(std::move(message)) {}
}  // namespace multiprocessing

}  // namespace concur
