// concur/logging.hpp — the thread- and process-aware part of Python's logging.
//
// Records carry the thread name, process name and pid, so output from many threads and
// processes stays readable: basic_config({.level = Level::DEBUG, .format = "({thread})
// {message}"}), then logging::debug("value : {}", x).
//
// Pattern fields: {thread} (current_thread().name()), {process} (detail::current_process_name(),
// "MainProcess" unless multiprocessing renamed it), {pid}, {tid} (kernel thread id), {level}
// (DEBUG, INFO, WARNING, ERROR, CRITICAL, "Level N" otherwise), {name} (logger name; the root
// is "root"), {message}, {asctime} ("2026-11-22 00:21:13,123", local time, Python's format).
// {{ and }} are literal braces; an unknown {field} is copied as written.
//
// Message formatting: each {} in fmt is replaced by the next argument written with
// operator<< (bool as true/false); {{ and }} are literal braces. A {} with no argument left is
// kept as "{}"; arguments beyond the last {} are ignored (Python's logging would report the
// mismatch; a log call must never throw).
//
// Output: each record is composed in memory and written with ONE write(2) (retried on EINTR
// and continued after a partial write), so lines from many threads and processes sharing a
// fd never interleave (for pipes: records up to PIPE_BUF = 4096 bytes are atomic). A failed
// write is ignored: logging never throws into the caller.
//
// Level: a logger whose level is NOTSET uses the root's level (concur does not walk dotted
// parents; set levels on the loggers you care about). A logger with set_propagate(false)
// (Python's propagate = 0) does not reach the root's handler: with NOTSET and no stream of
// its own it emits only WARNING and above (Python's last-resort handler), whatever the
// root's level; once a stream is set on it (its own handler) it follows the root's level,
// as Python's effective level does (multiprocessing's logger is such a logger:
// basic_config({.level = DEBUG}) alone does not turn its lifecycle records on; a
// log_to_stderr() after it does, as in Python 3). Decision:
// basic_config() always applies (Python's basicConfig(force=True)); the root's defaults (WARNING,
// "{level}:{name}:{message}", fd 2) equal what Python's first logging.warning() sets up.
//
// Lifetime: loggers are created on first get_logger(name) and never destroyed (references
// stay valid, also in daemon threads during exit). Thread-safety: everything here may be
// called from any thread; configuration changes take one global lock; a disabled log call
// is two relaxed atomic loads. Fork-safe: the lock is held across fork (detail/fork.hpp).
#pragma once

#include <atomic>
#include <charconv>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

namespace concur::logging {

enum class Level : int { NOTSET = 0, DEBUG = 10, INFO = 20, WARNING = 30, ERROR = 40, CRITICAL = 50 };

// basic_config({.level, .format, .stream}) — this member order.
struct Config {
  Level level = Level::WARNING;
  std::string format = "{level}:{name}:{message}";
  int stream = 2;  // fd the records go to
};

// Configures the root logger: level, pattern and fd. Always applies (see the banner).
void basic_config(Config config);

// "DEBUG", "INFO", ... ("Level 15" for others).
std::string level_name(Level level);

}  // namespace concur::logging

namespace concur::detail {

// Appends one argument as operator<< would print it. Strings, characters, bools and
// integers are appended directly (an ostringstream costs ~200 ns to construct); everything
// else goes through operator<<.
template <class T>
void append_arg(std::string& out, const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    out += value ? "true" : "false";
  } else if constexpr (std::is_same_v<T, char>) {
    out += value;
  } else if constexpr (std::is_integral_v<T>) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, res.ptr);
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    out += std::string_view(value);
  } else {
    std::ostringstream os;
    os << value;
    out += os.str();
  }
}

// Copies fmt[pos..] up to the next {} into out (turning {{ }} into braces). Returns the
// position after the {} (npos if none left).
std::size_t copy_until_placeholder(std::string_view fmt, std::size_t pos, std::string& out);

template <class... A>
std::string format_message(std::string_view fmt, const A&... args) {
  std::string out;
  out.reserve(fmt.size() + 16 * sizeof...(A));
  std::size_t pos = 0;
  auto one = [&](const auto& arg) {
    if (pos == std::string_view::npos) return;
    pos = copy_until_placeholder(fmt, pos, out);
    if (pos == std::string_view::npos) return;
    append_arg(out, arg);
  };
  (one(args), ...);
  (void)one;  // no arguments: the fold above is empty
  if (pos != std::string_view::npos) {
    // The rest: literal text, with any {} left as written.
    while (pos != std::string_view::npos) {
      pos = copy_until_placeholder(fmt, pos, out);
      if (pos != std::string_view::npos) out += "{}";
    }
  }
  return out;
}

}  // namespace concur::detail

namespace concur::logging {

class Logger {  // obtained from get_logger(); never destroyed
 public:
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // The name given to get_logger(); "root" for the root logger.
  const std::string& name() const { return name_; }
  void set_level(Level level) noexcept { level_.store(static_cast<int>(level), std::memory_order_relaxed); }
  Level level() const noexcept { return static_cast<Level>(level_.load(std::memory_order_relaxed)); }
  // The level in force: this logger's, or the root's when this one is NOTSET (for a
  // non-propagating logger: at least WARNING, see the banner).
  Level effective_level() const noexcept;
  // Python's logger.propagate (default true). false: the root's level does not apply.
  void set_propagate(bool on) noexcept { propagate_.store(on, std::memory_order_relaxed); }
  bool propagate() const noexcept { return propagate_.load(std::memory_order_relaxed); }
  // Whether a record of `level` would be emitted. Two relaxed loads, no lock.
  bool is_enabled_for(Level level) const noexcept {
    return static_cast<int>(level) >= static_cast<int>(effective_level());
  }
  // Per-logger pattern; "" = the root's.
  void set_format(std::string pattern);
  // Per-logger fd; -1 = the root's.
  void set_stream(int fd) noexcept { stream_.store(fd, std::memory_order_relaxed); }
  // Emits `message` as is (no {} substitution) if the level is enabled. One write(2).
  void log(Level level, std::string_view message);

  template <class... A> void debug(std::string_view fmt, const A&... args) { emit(Level::DEBUG, fmt, args...); }
  template <class... A> void info(std::string_view fmt, const A&... args) { emit(Level::INFO, fmt, args...); }
  template <class... A> void warning(std::string_view fmt, const A&... args) { emit(Level::WARNING, fmt, args...); }
  template <class... A> void error(std::string_view fmt, const A&... args) { emit(Level::ERROR, fmt, args...); }
  template <class... A> void critical(std::string_view fmt, const A&... args) { emit(Level::CRITICAL, fmt, args...); }

 private:
  friend Logger& get_logger(std::string_view name);
  friend void basic_config(Config config);
  explicit Logger(std::string name, bool root);

  template <class... A>
  void emit(Level level, std::string_view fmt, const A&... args) {
    if (!is_enabled_for(level)) return;
    write_record(level, detail::format_message(fmt, args...));
  }
  void write_record(Level level, std::string_view message);

  std::string name_;
  bool root_;
  std::atomic<int> level_;
  std::atomic<int> stream_;
  std::atomic<bool> propagate_{true};
  std::string format_;  // guarded by the global logging lock; "" = the root's
};

// The logger called `name` ("" = the root); the same object for the same name. Thread-safe.
Logger& get_logger(std::string_view name = "");

template <class... A> void debug(std::string_view fmt, const A&... args) { get_logger().debug(fmt, args...); }
template <class... A> void info(std::string_view fmt, const A&... args) { get_logger().info(fmt, args...); }
template <class... A> void warning(std::string_view fmt, const A&... args) { get_logger().warning(fmt, args...); }
template <class... A> void error(std::string_view fmt, const A&... args) { get_logger().error(fmt, args...); }
template <class... A> void critical(std::string_view fmt, const A&... args) { get_logger().critical(fmt, args...); }

}  // namespace concur::logging
