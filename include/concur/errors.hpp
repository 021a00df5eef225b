// concur/errors.hpp — every exception concur throws, named as Python names them.
//
// All derive from concur::Error (a std::runtime_error), so `catch (const concur::Error&)`
// catches everything the library reports. Module-specific errors live in the namespace of
// their module (concur::queue::Empty, concur::subprocess::TimeoutExpired, ...), as Python
// keeps them in their modules. OS failures carry their errno (OSError::code()).
//
// Thread-safety: exception objects are immutable after construction.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace concur {

// Root of everything concur throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ValueError : public Error {
 public:
  using Error::Error;
};
class RuntimeError : public Error {
 public:
  using Error::Error;
};
class TimeoutError : public Error {
 public:
  using Error::Error;
};
class EOFError : public Error {
 public:
  using Error::Error;
};
// A received message is not of the type the receiver asked for.
class TypeError : public Error {
 public:
  using Error::Error;
};
class KeyError : public Error {
 public:
  using Error::Error;
};
class IndexError : public Error {
 public:
  using Error::Error;
};
// A proxy method or Namespace field that does not exist (Python's AttributeError).
class AttributeError : public Error {
 public:
  using Error::Error;
};

// The file name of an OSError: unlike a plain context it is shown even when empty, as
// Python's OSError shows filename='' ("[Errno 2] No such file or directory: ''").
struct Filename {
  std::string name;
};

// An OS call failed. what() reads like Python's: "[Errno 2] No such file or directory: 'x'"
// (the context or file name in Python's repr: "it's" is shown in double quotes).
class OSError : public Error {
 public:
  // `context` is what failed (a path, a call); may be empty (then no ": ..." is shown).
  OSError(int err, const std::string& context);
  OSError(int err, const Filename& filename);
  // An OSError without an errno, as Python's OSError("handle is closed"): what() is
  // `message`, code() is 0.
  explicit OSError(const std::string& message);
  // errno value of the failure.
  int code() const noexcept { return code_; }

 private:
  int code_;
};
class FileNotFoundError : public OSError {
 public:
  explicit FileNotFoundError(const std::string& context) : OSError(ENOENT, context) {}
  explicit FileNotFoundError(const Filename& filename) : OSError(ENOENT, filename) {}
};
class FileExistsError : public OSError {
 public:
  explicit FileExistsError(const std::string& context) : OSError(EEXIST, context) {}
  explicit FileExistsError(const Filename& filename) : OSError(EEXIST, filename) {}
};

// Throws the OSError subclass that matches `err` (FileNotFoundError for ENOENT,
// FileExistsError for EEXIST, OSError otherwise).
[[noreturn]] void throw_os_error(int err, const std::string& context);
[[noreturn]] void throw_os_error(int err, const Filename& filename);

// An exception raised in another process whose type is not known here.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, const std::string& message);
  // The original exception's type name (demangled when possible).
  const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

namespace threading {
class BrokenBarrierError : public RuntimeError {
 public:
  BrokenBarrierError() : RuntimeError("Barrier is broken") {}
  using RuntimeError::RuntimeError;
};
}  // namespace threading

namespace queue {
class Empty : public Error {
 public:
  Empty() : Error("queue is empty") {}
  using Error::Error;
};
class Full : public Error {
 public:
  Full() : Error("queue is full") {}
  using Error::Error;
};
// Raised by put/get on a queue after shutdown() (Python 3.13).
class ShutDown : public Error {
 public:
  ShutDown() : Error("queue is shut down") {}
  using Error::Error;
};
}  // namespace queue

namespace futures {
class CancelledError : public Error {
 public:
  CancelledError() : Error("future was cancelled") {}
  using Error::Error;
};
// Python 3.11+: concurrent.futures.TimeoutError is the builtin TimeoutError.
using TimeoutError = concur::TimeoutError;
// set_result/set_exception on a future that is already done.
class InvalidStateError : public Error {
 public:
  using Error::Error;
};
class BrokenExecutor : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};
class BrokenThreadPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};
class BrokenProcessPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};
}  // namespace futures

namespace subprocess {
class SubprocessError : public Error {
 public:
  using Error::Error;
};

// A checked command exited non-zero (or died by a signal: returncode() == -SIG).
// what(): "Command '['false']' returned non-zero exit status 1." /
//         "Command '['x']' died with <Signals.SIGKILL: 9>."
class CalledProcessError : public SubprocessError {
 public:
  CalledProcessError(int returncode, std::vector<std::string> cmd, std::string output = {},
                     std::string err = {});
  int returncode() const noexcept { return returncode_; }
  const std::vector<std::string>& cmd() const noexcept { return cmd_; }
  const std::string& output() const noexcept { return output_; }
  const std::string& err() const noexcept { return err_; }

 private:
  int returncode_;
  std::vector<std::string> cmd_;
  std::string output_, err_;
};

// A timeout expired. Carries what was read before it: output() / err().
// what(): "Command '['sleep', '5']' timed out after 0.3 seconds"
class TimeoutExpired : public SubprocessError {
 public:
  TimeoutExpired(std::vector<std::string> cmd, std::chrono::nanoseconds timeout,
                 std::string output = {}, std::string err = {});
  const std::vector<std::string>& cmd() const noexcept { return cmd_; }
  std::chrono::nanoseconds timeout() const noexcept { return timeout_; }
  const std::string& output() const noexcept { return output_; }
  const std::string& err() const noexcept { return err_; }

 private:
  std::vector<std::string> cmd_;
  std::chrono::nanoseconds timeout_;
  std::string output_, err_;
};

// Python's repr of an argument list: ['echo', 'hi'].
std::string format_args(const std::vector<std::string>& args);
}  // namespace subprocess

namespace multiprocessing {
class ProcessError : public Error {
 public:
  using Error::Error;
};
// recv_bytes_into() got a message larger than the buffer; the message is kept here.
class BufferTooShort : public ProcessError {
 public:
  explicit BufferTooShort(std::vector<std::byte> message);
  const std::vector<std::byte>& message() const noexcept { return message_; }

 private:
  std::vector<std::byte> message_;
};
class AuthenticationError : public ProcessError {
 public:
  using ProcessError::ProcessError;
};
using TimeoutError = concur::TimeoutError;
}  // namespace multiprocessing

}  // namespace concur
