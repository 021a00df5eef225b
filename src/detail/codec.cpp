// The codec's error paths, kept out of line so the inlined encode/decode stay small.
#include "concur/detail/codec.hpp"

#include <cstdio>
#include <string>

namespace concur::detail::codec::impl {

namespace {
std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

void throw_truncated(std::size_t need, std::size_t left) {
  throw DecodeError("truncated message: " + std::to_string(need) + " more bytes needed, " +
                    std::to_string(left) + " left");
}

void throw_count(std::uint64_t count, std::size_t min_each, std::size_t left) {
  throw DecodeError("corrupt message: a length of " + std::to_string(count) +
                    " elements (of at least " + std::to_string(min_each) +
                    " bytes each) exceeds the " + std::to_string(left) + " bytes left");
}

void throw_bad_byte(const char* what, unsigned value) {
  throw DecodeError(std::string("corrupt message: ") + what + " byte is " + std::to_string(value) +
                    ", not 0 or 1");
}

void throw_bad_index(std::uint64_t index, std::size_t alternatives) {
  throw DecodeError("corrupt message: variant index " + std::to_string(index) +
                    " of a variant of " + std::to_string(alternatives) + " alternatives");
}

void throw_duplicate() {
  throw DecodeError("corrupt message: a duplicate key in a map or set");
}

void throw_trailing(std::size_t left, std::string_view type) {
  throw DecodeError("corrupt message: " + std::to_string(left) + " bytes left over after a " +
                    std::string(type));
}

void throw_too_large(std::size_t size, std::size_t limit) {
  throw DecodeError("message of " + std::to_string(size) + " bytes exceeds the limit of " +
                    std::to_string(limit) + " bytes");
}

void throw_mismatch(std::uint64_t got, std::uint64_t want, std::string_view type) {
  throw TypeError("received a message of another type than " + std::string(type) + " (tag " +
                  hex(got) + ", expected " + hex(want) + ")");
}

void throw_too_deep(bool decoding) {
  const std::string m = "user types nested more than " + std::to_string(kMaxDepth) + " deep";
  if (decoding) throw DecodeError("corrupt message: " + m);
  throw ValueError("cannot send: " + m);
}

void throw_valueless() {
  throw ValueError("cannot send a variant that is valueless_by_exception");
}

}  // namespace concur::detail::codec::impl
