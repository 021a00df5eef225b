// The exception transport: describe() and rethrow() with its registry of known types, and
// the one demangler (see concur/detail/exception_transport.hpp).
#include "concur/detail/exception_transport.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <any>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <variant>

#include "concur/detail/codec.hpp"
#include "concur/detail/thread_annotations.hpp"
#include "concur/errors.hpp"

namespace concur::detail {

std::string demangle(const char* mangled) {
  if (mangled == nullptr) return "unknown exception";
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = (status == 0 && d != nullptr) ? d : mangled;
  std::free(d);
  return out;
}

std::string type_name(const std::type_info& t) {
  return demangle(t.name());
}

std::string unqualified(std::string_view qualified) {
  const std::size_t colon = qualified.rfind("::", qualified.find('<'));
  return std::string(colon == std::string_view::npos ? qualified : qualified.substr(colon + 2));
}

namespace {

template <class... S>
std::vector<std::string> with_cmd(const std::vector<std::string>& cmd, S&&... first) {
  std::vector<std::string> args{std::forward<S>(first)...};
  args.insert(args.end(), cmd.begin(), cmd.end());
  return args;
}

}  // namespace

ExceptionInfo describe(const std::exception_ptr& e) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const RemoteError& r) {
    // Keep the original type: what() is "<type>: <message>".
    std::string_view w = r.what();
    const std::string prefix = r.type_name() + ": ";
    if (w.substr(0, prefix.size()) == prefix) w.remove_prefix(prefix.size());
    return {r.type_name(), std::string(w), {}};
  } catch (const subprocess::CalledProcessError& c) {
    return {type_name(typeid(c)), c.what(),
            with_cmd(c.cmd(), std::to_string(c.returncode()), c.output(), c.err())};
  } catch (const subprocess::TimeoutExpired& t) {
    return {type_name(typeid(t)), t.what(),
            with_cmd(t.cmd(), std::to_string(t.timeout().count()), t.output(), t.err())};
  } catch (const multiprocessing::BufferTooShort& b) {
    const auto& m = b.message();
    return {type_name(typeid(b)),
            b.what(),
            {std::string(reinterpret_cast<const char*>(m.data()), m.size())}};
  } catch (const std::exception& x) {
    return {type_name(typeid(x)), x.what(), {}};
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    return {demangle(t != nullptr ? t->name() : nullptr), "", {}};
  }
}

namespace {

template <class Int>
std::optional<Int> parse_int(std::string_view s) {
  Int v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Throws e if it reads exactly as the original; otherwise the caller falls back.
template <class E>
void throw_if_same(E&& e, const ExceptionInfo& info) {
  if (info.what == e.what()) throw std::forward<E>(e);
}

// The text a py_repr() literal stands for ('...' or "..." with \\ \' \" \n \r \t \xNN
// escapes); nullopt for anything else. Only a candidate: the caller rebuilds the error and
// compares its what() with the original, so an escape this does not know costs a fallback
// to RemoteError, never a wrong message.
std::optional<std::string> py_unrepr(std::string_view r) {
  if (r.size() < 2 || (r.front() != '\'' && r.front() != '"') || r.back() != r.front())
    return std::nullopt;
  r = r.substr(1, r.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (r[i] != '\\') {
      out += r[i];
      continue;
    }
    if (++i == r.size()) return std::nullopt;
    switch (r[i]) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case '\\': case '\'': case '"': out += r[i]; break;
      case 'x': {
        if (i + 2 >= r.size()) return std::nullopt;
        unsigned v = 0;
        const char* first = r.data() + i + 1;
        const auto [end, ec] = std::from_chars(first, first + 2, v, 16);
        if (ec != std::errc() || end != first + 2) return std::nullopt;
        out += static_cast<char>(v);
        i += 2;
        break;
      }
      default: return std::nullopt;
    }
  }
  return out;
}

// OSError's what() is "[Errno N] <strerror(N)>" with ": '<context>'" when there is one.
template <class E>
void rethrow_os_error(const ExceptionInfo& info) {
  std::string_view w = info.what;
  if (w.substr(0, 7) != "[Errno ") return;
  const std::size_t close = w.find(']');
  if (close == std::string_view::npos) return;
  const auto err = parse_int<int>(w.substr(7, close - 7));
  if (!err) return;
  const std::string head = std::string(w.substr(0, close + 1)) + " " + std::strerror(*err);
  std::string context;
  if (w.size() > head.size()) {
    if (w.substr(0, head.size() + 2) != head + ": ") return;
    const auto ctx = py_unrepr(w.substr(head.size() + 2));
    if (!ctx) return;
    context = *ctx;
  }
  if constexpr (std::is_same_v<E, OSError>)
    throw_if_same(OSError(*err, context), info);
  else
    throw_if_same(E(context), info);
}

template <class E>
void rethrow_subprocess_error(const ExceptionInfo& info) {
  if (info.args.size() < 3) return;
  const std::vector<std::string> cmd(info.args.begin() + 3, info.args.end());
  if constexpr (std::is_same_v<E, subprocess::CalledProcessError>) {
    if (const auto rc = parse_int<int>(info.args[0]))
      throw_if_same(E(*rc, cmd, info.args[1], info.args[2]), info);
  } else {
    if (const auto ns = parse_int<std::chrono::nanoseconds::rep>(info.args[0]))
      throw_if_same(E(cmd, std::chrono::nanoseconds(*ns), info.args[1], info.args[2]), info);
  }
}

void rethrow_buffer_too_short(const ExceptionInfo& info) {
  if (info.args.size() != 1) return;
  const auto* p = reinterpret_cast<const std::byte*>(info.args[0].data());
  throw_if_same(multiprocessing::BufferTooShort(std::vector<std::byte>(p, p + info.args[0].size())),
                info);
}

class Registry {
 public:
  Registry() {
    MutexLock g(mu_);
    // <stdexcept>: constructed from what().
    add_what<std::logic_error, std::invalid_argument, std::domain_error, std::length_error,
             std::out_of_range, std::runtime_error, std::range_error, std::overflow_error,
             std::underflow_error>();
    // Their what() is fixed by the library.
    add_default<std::exception, std::bad_exception, std::bad_alloc, std::bad_array_new_length,
                std::bad_cast, std::bad_typeid, std::bad_variant_access, std::bad_optional_access,
                std::bad_function_call, std::bad_weak_ptr, std::bad_any_cast>();
    // concur/errors.hpp (and the codec's DecodeError).
    add_what<Error, ValueError, RuntimeError, TimeoutError, EOFError, TypeError, KeyError,
             IndexError, AttributeError, threading::BrokenBarrierError, queue::Empty, queue::Full, queue::ShutDown,
             futures::CancelledError, futures::InvalidStateError, futures::BrokenExecutor,
             futures::BrokenThreadPool, futures::BrokenProcessPool, subprocess::SubprocessError,
             multiprocessing::ProcessError, multiprocessing::AuthenticationError,
             codec::DecodeError>();
    add<OSError>(&rethrow_os_error<OSError>);
    add<FileNotFoundError>(&rethrow_os_error<FileNotFoundError>);
    add<FileExistsError>(&rethrow_os_error<FileExistsError>);
    add<subprocess::CalledProcessError>(&rethrow_subprocess_error<subprocess::CalledProcessError>);
    add<subprocess::TimeoutExpired>(&rethrow_subprocess_error<subprocess::TimeoutExpired>);
    add<multiprocessing::BufferTooShort>(&rethrow_buffer_too_short);
  }

  Rethrower find(const std::string& type) {
    MutexLock g(mu_);
    const auto it = table_.find(type);
    return it == table_.end() ? nullptr : it->second;
  }
  std::vector<std::string> names() {
    MutexLock g(mu_);
    std::vector<std::string> out;
    for (const auto& [name, f] : table_) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
  }
  void set(std::string type, Rethrower f) {
    MutexLock g(mu_);
    table_[std::move(type)] = f;
  }

 private:
  template <class E>
  void add(Rethrower f) CONCUR_REQUIRES(mu_) {
    table_.emplace(type_name(typeid(E)), f);
  }
  template <class... E>
  void add_what() CONCUR_REQUIRES(mu_) {
    (add<E>([](const ExceptionInfo& i) { throw E(i.what); }), ...);
  }
  template <class... E>
  void add_default() CONCUR_REQUIRES(mu_) {
    (add<E>([](const ExceptionInfo&) { throw E(); }), ...);
  }

  Mutex mu_;
  std::unordered_map<std::string, Rethrower> table_ CONCUR_GUARDED_BY(mu_);
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: usable from atexit handlers
  return *r;
}

}  // namespace

void register_exception(std::string type, Rethrower thrower) {
  registry().set(std::move(type), thrower);
}

std::vector<std::string> registered_exception_types() {
  return registry().names();
}

void rethrow(const ExceptionInfo& info) {
  if (const Rethrower f = registry().find(info.type)) f(info);
  // Not known here, or its what() could not be recreated exactly.
  throw RemoteError(info.type, info.what);
}

}  // namespace concur::detail
