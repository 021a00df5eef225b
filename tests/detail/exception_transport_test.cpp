// The exception transport: describe() -> codec -> rethrow() recreates std:: and concur::
// exceptions of the same type with the same what() (and errno, return code, output...),
// anything else as RemoteError carrying the original type name; the demangler.
#include "concur/detail/exception_transport.hpp"

#include <gtest/gtest.h>

#include <any>
#include <cerrno>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <variant>

#include "concur/detail/codec.hpp"
#include "concur/errors.hpp"

namespace {
namespace codec = concur::detail::codec;
using concur::detail::describe;
using concur::detail::ExceptionInfo;
using concur::detail::rethrow;

template <class E>
std::exception_ptr ptr(E e) {
  return std::make_exception_ptr(std::move(e));
}

// describe, send through the codec, decode, rethrow: returns what arrived.
std::exception_ptr transport(const std::exception_ptr& e) {
  std::vector<std::byte> wire;
  codec::encode(describe(e), wire);
  const auto info = codec::decode<ExceptionInfo>(wire);
  try {
    rethrow(info);
  } catch (...) {
    return std::current_exception();
  }
}

// The transported exception has exactly type E and the same what().
template <class E>
void expect_same(E original) {
  const std::string what = original.what();
  const std::exception_ptr got = transport(ptr(std::move(original)));
  try {
    std::rethrow_exception(got);
  } catch (const std::exception& x) {
    EXPECT_EQ(typeid(x), typeid(E)) << concur::detail::type_name(typeid(x));
    EXPECT_EQ(std::string(x.what()), what);
  }
}

TEST(ExceptionTransport, DescribeGivesQualifiedTypeAndWhat) {
  const ExceptionInfo v = describe(ptr(concur::ValueError("bad value")));
  EXPECT_EQ(v.type, "concur::ValueError");
  EXPECT_EQ(v.what, "bad value");
  EXPECT_EQ(describe(ptr(std::out_of_range("oor"))).type, "std::out_of_range");
  EXPECT_EQ(describe(ptr(concur::queue::Empty())).type, "concur::queue::Empty");
  EXPECT_EQ(describe(ptr(42)).type, "int");
  EXPECT_EQ(describe(ptr(42)).what, "");
  EXPECT_EQ(describe(nullptr), ExceptionInfo{});
}

TEST(ExceptionTransport, StdExceptionsKeepTheirType) {
  expect_same(std::logic_error("l"));
  expect_same(std::invalid_argument("ia"));
  expect_same(std::domain_error("d"));
  expect_same(std::length_error("le"));
  expect_same(std::out_of_range("oor"));
  expect_same(std::runtime_error("rt"));
  expect_same(std::range_error("re"));
  expect_same(std::overflow_error("o"));
  expect_same(std::underflow_error("u"));
  expect_same(std::exception());
  expect_same(std::bad_alloc());
  expect_same(std::bad_cast());
  expect_same(std::bad_variant_access());
  expect_same(std::bad_optional_access());
  expect_same(std::bad_function_call());
  expect_same(std::bad_any_cast());
}

TEST(ExceptionTransport, ConcurErrorsKeepTheirType) {
  expect_same(concur::Error("e"));
  expect_same(concur::ValueError("v"));
  expect_same(concur::RuntimeError("r"));
  expect_same(concur::TimeoutError("t"));
  expect_same(concur::EOFError("eof"));
  expect_same(concur::TypeError("ty"));
  expect_same(concur::KeyError("k"));
  expect_same(concur::IndexError("i"));
  expect_same(concur::threading::BrokenBarrierError());
  expect_same(concur::queue::Empty());
  expect_same(concur::queue::Full());
  expect_same(concur::queue::ShutDown());
  expect_same(concur::futures::CancelledError());
  expect_same(concur::futures::InvalidStateError("st"));
  expect_same(concur::futures::BrokenExecutor("be"));
  expect_same(concur::futures::BrokenThreadPool("btp"));
  expect_same(concur::futures::BrokenProcessPool("bpp"));
  expect_same(concur::subprocess::SubprocessError("se"));
  expect_same(concur::multiprocessing::ProcessError("pe"));
  expect_same(concur::multiprocessing::AuthenticationError("ae"));
  expect_same(codec::DecodeError("de"));
}

TEST(ExceptionTransport, OSErrorsKeepErrnoAndContext) {
  expect_same(concur::OSError(EPIPE, "write"));
  expect_same(concur::OSError(EBADF, ""));
  expect_same(concur::OSError(EINVAL, "it's 'quoted'"));
  expect_same(concur::FileNotFoundError("/no/such"));
  expect_same(concur::FileExistsError("/tmp"));
  try {
    std::rethrow_exception(transport(ptr(concur::OSError(EACCES, "x"))));
  } catch (const concur::OSError& e) {
    EXPECT_EQ(e.code(), EACCES);
  }
}

TEST(ExceptionTransport, SubprocessErrorsKeepTheirArguments) {
  expect_same(concur::subprocess::CalledProcessError(3, {"false", "it's"}, "out", "err"));
  expect_same(concur::subprocess::CalledProcessError(-9, {"sleep", "9"}));
  try {
    std::rethrow_exception(
        transport(ptr(concur::subprocess::CalledProcessError(2, {"ls", "x"}, "o", "e"))));
  } catch (const concur::subprocess::CalledProcessError& e) {
    EXPECT_EQ(e.returncode(), 2);
    EXPECT_EQ(e.cmd(), (std::vector<std::string>{"ls", "x"}));
    EXPECT_EQ(e.output(), "o");
    EXPECT_EQ(e.err(), "e");
  }
  using namespace std::chrono_literals;
  expect_same(concur::subprocess::TimeoutExpired({"sleep", "5"}, 300ms, "part", ""));
  try {
    std::rethrow_exception(
        transport(ptr(concur::subprocess::TimeoutExpired({"sleep"}, 1250ms, "p", "q"))));
  } catch (const concur::subprocess::TimeoutExpired& e) {
    EXPECT_EQ(e.timeout(), 1250ms);
    EXPECT_EQ(e.output(), "p");
  }
}

TEST(ExceptionTransport, BufferTooShortKeepsTheMessage) {
  const std::vector<std::byte> m{std::byte{1}, std::byte{0}, std::byte{255}};
  try {
    std::rethrow_exception(transport(ptr(concur::multiprocessing::BufferTooShort(m))));
  } catch (const concur::multiprocessing::BufferTooShort& e) {
    EXPECT_EQ(e.message(), m);
  }
}

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST(ExceptionTransport, UnknownTypesArriveAsRemoteError) {
  try {
    std::rethrow_exception(transport(ptr(UserError("mine"))));
  } catch (const concur::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "(anonymous namespace)::UserError");
    EXPECT_EQ(std::string(e.what()), "(anonymous namespace)::UserError: mine");
  } catch (...) {
    ADD_FAILURE() << "not a RemoteError: " << describe(std::current_exception()).type;
  }
  try {
    std::rethrow_exception(transport(ptr(42)));
  } catch (const concur::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "int");
  }
}

TEST(ExceptionTransport, RemoteErrorRelaysUnchanged) {
  const std::exception_ptr first = transport(ptr(UserError("deep")));
  const ExceptionInfo once = describe(first);
  EXPECT_EQ(once, describe(ptr(UserError("deep"))));
  const std::exception_ptr second = transport(first);
  EXPECT_EQ(describe(second), once);
}

TEST(ExceptionTransport, RegisteredTypesAreRecreated) {
  struct Registered : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  concur::detail::register_exception<Registered>();
  EXPECT_THROW(std::rethrow_exception(transport(ptr(Registered("r")))), Registered);
}

TEST(ExceptionTransport, AWhatThatCannotBeRecreatedFallsBackToRemoteError) {
  // An OSError whose text is not OSError's own format cannot be rebuilt faithfully.
  EXPECT_THROW(rethrow({"concur::OSError", "not an errno text", {}}), concur::RemoteError);
  EXPECT_THROW(rethrow({"concur::subprocess::CalledProcessError", "x", {}}), concur::RemoteError);
  EXPECT_THROW(rethrow({"concur::subprocess::CalledProcessError", "x", {"1", "", ""}}),
               concur::RemoteError);
}

// Every exception class declared in errors.hpp is known to rethrow() (RemoteError is how
// unknown ones arrive). Fails when an error is added there and not to the registry.
TEST(ExceptionTransport, EveryErrorOfErrorsHppIsRegistered) {
  std::ifstream in(std::string(CONCUR_TEST_SOURCE_DIR) + "/../include/concur/errors.hpp");
  ASSERT_TRUE(in) << "errors.hpp not found";
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::set<std::string> known;
  for (const std::string& q : concur::detail::registered_exception_types())
    known.insert(concur::detail::unqualified(q));
  const std::regex decl(R"(class\s+(\w+)\s*:\s*public)");
  int declared = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), decl); it != std::sregex_iterator();
       ++it) {
    const std::string name = (*it)[1];
    ++declared;
    if (name == "RemoteError") continue;
    EXPECT_TRUE(known.count(name)) << name << " is not in the rethrow registry";
  }
  EXPECT_GE(declared, 25);
}

TEST(ExceptionTransport, Demangle) {
  EXPECT_EQ(concur::detail::demangle(typeid(std::vector<int>).name()),
            "std::vector<int, std::allocator<int> >");
  EXPECT_EQ(concur::detail::demangle(nullptr), "unknown exception");
  EXPECT_EQ(concur::detail::demangle("not-mangled"), "not-mangled");
  EXPECT_EQ(concur::detail::unqualified("concur::queue::Empty"), "Empty");
  EXPECT_EQ(concur::detail::unqualified("a::B<c::D>"), "B<c::D>");
  EXPECT_EQ(concur::detail::unqualified("Plain"), "Plain");
}

TEST(ExceptionTransport, ExceptionInfoIsSendable) {
  static_assert(codec::Sendable<ExceptionInfo>);
  const ExceptionInfo i{"t", "w", {"a", "b"}};
  std::vector<std::byte> wire;
  codec::encode(i, wire);
  EXPECT_EQ(codec::decode<ExceptionInfo>(wire), i);
}

}  // namespace
