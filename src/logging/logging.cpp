// src/logging/logging.cpp — loggers, record composition, one write(2) per record.
//
// Global state: one lock guarding the name -> Logger map and every logger's pattern. Levels
// and fds are atomics, so a disabled call takes no lock. Everything is leaked on purpose:
// daemon threads may log while static destructors run.
#include "concur/logging.hpp"

#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>

#include "concur/detail/fd.hpp"
#include "concur/detail/fork.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/detail/runtime.hpp"
#include "concur/threading/thread.hpp"

namespace concur::logging {

namespace {

struct State {
  concur::detail::Mutex mu;
  std::map<std::string, Logger*, std::less<>> loggers CONCUR_GUARDED_BY(mu);
};

State& state() {
  static State* s = new State;
  return *s;
}

// Fork protocol (rank kLogging): the lock is held across fork, released on both sides.
[[maybe_unused]] const bool g_fork_registered =
    (concur::detail::register_fork_handler(concur::detail::ForkRank::kLogging,
                                           {.prepare = []() noexcept { state().mu.fork_lock(); },
                                            .parent = []() noexcept { state().mu.fork_unlock(); },
                                            .child = []() noexcept { state().mu.fork_unlock(); }}),
     true);

void append_asctime(std::string& out) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  ::localtime_r(&ts.tv_sec, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  out.append(buf, n);
  char ms[8];
  std::snprintf(ms, sizeof ms, ",%03d", static_cast<int>(ts.tv_nsec / 1000000));
  out += ms;
}

}  // namespace

std::string level_name(Level level) {
  switch (level) {
    case Level::NOTSET: return "NOTSET";
    case Level::DEBUG: return "DEBUG";
    case Level::INFO: return "INFO";
    case Level::WARNING: return "WARNING";
    case Level::ERROR: return "ERROR";
    case Level::CRITICAL: return "CRITICAL";
  }
  return "Level " + std::to_string(static_cast<int>(level));
}

}  // namespace concur::logging

namespace concur::detail {

std::size_t copy_until_placeholder(std::string_view fmt, std::size_t pos, std::string& out) {
  while (pos < fmt.size()) {
    const char c = fmt[pos];
    if (c == '{' && pos + 1 < fmt.size()) {
      if (fmt[pos + 1] == '{') { out += '{'; pos += 2; continue; }
      if (fmt[pos + 1] == '}') return pos + 2;
    } else if (c == '}' && pos + 1 < fmt.size() && fmt[pos + 1] == '}') {
      out += '}';
      pos += 2;
      continue;
    }
    out += c;
    ++pos;
  }
  return std::string_view::npos;
}

}  // namespace concur::detail

namespace concur::logging {

Logger::Logger(std::string name, bool root)
    : name_(std::move(name)),
      root_(root),
      level_(static_cast<int>(root ? Level::WARNING : Level::NOTSET)),
      stream_(root ? 2 : -1),
      format_(root ? "{level}:{name}:{message}" : "") {}

Logger& get_logger(std::string_view name) {
  // The root: a function-local static, so logging::debug() and NOTSET loggers take no lock.
  static Logger* const root = new Logger("root", true);
  if (name.empty()) return *root;
  State& s = state();
  concur::detail::MutexLock g(s.mu);
  auto it = s.loggers.find(name);
  if (it != s.loggers.end()) return *it->second;
  auto* lg = new Logger(std::string(name), false);
  s.loggers.emplace(std::string(name), lg);
  return *lg;
}

void basic_config(Config config) {
  Logger& root = get_logger();
  root.set_level(config.level);
  root.set_stream(config.stream);
  root.set_format(std::move(config.format));
}

Level Logger::effective_level() const noexcept {
  const int own = level_.load(std::memory_order_relaxed);
  if (own != 0 || root_) return static_cast<Level>(own);
  const Level root = get_logger().level();
  // Python: the effective level of a NOTSET logger is its parent's, whatever `propagate`
  // says. A non-propagating logger with no handler of its own (no stream set) reaches only
  // Python's lastResort handler, whose level is WARNING; once it has a stream (e.g.
  // multiprocessing's after log_to_stderr()) it emits at the root's level.
  if (!propagate_.load(std::memory_order_relaxed) && stream_.load(std::memory_order_relaxed) < 0 &&
      static_cast<int>(root) < static_cast<int>(Level::WARNING))
    return Level::WARNING;
  return root;
}

void Logger::set_format(std::string pattern) {
  State& s = state();
  concur::detail::MutexLock g(s.mu);
  format_ = std::move(pattern);
}

void Logger::log(Level level, std::string_view message) {
  if (!is_enabled_for(level)) return;
  write_record(level, message);
}

void Logger::write_record(Level level, std::string_view message) {
  Logger& root = root_ ? *this : get_logger();
  std::string pattern;
  {
    State& s = state();
    concur::detail::MutexLock g(s.mu);
    pattern = format_.empty() ? root.format_ : format_;
  }
  int fd = stream_.load(std::memory_order_relaxed);
  if (fd < 0) fd = root.stream_.load(std::memory_order_relaxed);

  std::string out;
  out.reserve(pattern.size() + message.size() + 48);
  std::size_t i = 0;
  while (i < pattern.size()) {
    const char c = pattern[i];
    if (c == '{' && i + 1 < pattern.size() && pattern[i + 1] == '{') { out += '{'; i += 2; continue; }
    if (c == '}' && i + 1 < pattern.size() && pattern[i + 1] == '}') { out += '}'; i += 2; continue; }
    if (c == '{') {
      const std::size_t close = pattern.find('}', i + 1);
      if (close != std::string::npos) {
        const std::string_view field(pattern.data() + i + 1, close - i - 1);
        bool known = true;
        if (field == "message") out += message;
        else if (field == "level") out += level_name(level);
        else if (field == "name") out += name_;
        else if (field == "thread") out += concur::threading::current_thread().name();
        else if (field == "process") out += concur::detail::current_process_name();
        else if (field == "pid") out += std::to_string(concur::detail::this_process_pid());
        else if (field == "tid") out += std::to_string(concur::threading::get_native_id());
        else if (field == "asctime") append_asctime(out);
        else known = false;
        if (known) { i = close + 1; continue; }
      }
    }
    out += c;
    ++i;
  }
  out += '\n';
  (void)concur::detail::write_all(fd, out.data(), out.size());  // logging never throws
}

}  // namespace concur::logging
