// concur/detail/exception_transport.hpp — the one way an exception crosses a process
// boundary (process pools, managers, MPI) and the one demangler.
//
// describe() turns an exception into plain data (its qualified type name, its what(), and
// the constructor arguments what() does not carry); the codec sends that (ExceptionInfo is
// Sendable); rethrow() on the other side throws an exception of the same type again: every
// std:: exception type of <stdexcept>/<new>/<typeinfo>/<variant>/<optional>/<functional>/
// <memory>/<any>, every concur error of concur/errors.hpp (with its errno, return code,
// command, output...), and the types registered with register_exception(). Anything else
// arrives as concur::RemoteError carrying the original type name and what(); a RemoteError
// described again keeps that original name, so relaying through several processes changes
// nothing.
//
// Thread-safety: every function may be called from any thread; register_exception() may run
// concurrently with rethrow().
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace concur::detail {

struct ExceptionInfo {
  // Qualified, demangled dynamic type: "concur::ValueError", "std::out_of_range". For an
  // exception that is not a std::exception: the thrown type ("int"), or "unknown exception".
  std::string type;
  // what(); empty for an exception that is not a std::exception.
  std::string what;
  // Constructor arguments what() does not carry, for the few types that have them
  // (CalledProcessError, TimeoutExpired: returncode/timeout, output, err, cmd;
  // BufferTooShort: the message). Empty for most.
  std::vector<std::string> args;

  template <class A>
  void serialize(A& ar) {
    ar(type, what, args);
  }
  bool operator==(const ExceptionInfo&) const = default;
};

// The demangled form of a mangled type name (the name itself if it does not demangle;
// "unknown exception" for nullptr).
std::string demangle(const char* mangled);
// Qualified, demangled name of a type: type_name(typeid(x)).
std::string type_name(const std::type_info& t);
// The name without its namespaces, as Python's type(x).__name__ ("concur::ValueError" ->
// "ValueError"); namespaces inside template arguments stay ("a::B<c::D>" -> "B<c::D>").
std::string unqualified(std::string_view qualified);

// The exception held in e as data. describe(nullptr) is {"", "", {}}.
ExceptionInfo describe(const std::exception_ptr& e);

// Throws an exception of info.type carrying info.what (see the banner); concur::RemoteError
// for a type not known here.
[[noreturn]] void rethrow(const ExceptionInfo& info);

// Makes rethrow() recreate E (constructible from std::string) for its type name.
using Rethrower = void (*)(const ExceptionInfo&);
void register_exception(std::string type, Rethrower thrower);
// The type names rethrow() recreates (built-in and registered), sorted.
std::vector<std::string> registered_exception_types();
template <class E>
void register_exception() {
  register_exception(type_name(typeid(E)), [](const ExceptionInfo& i) { throw E(i.what); });
}

}  // namespace concur::detail
