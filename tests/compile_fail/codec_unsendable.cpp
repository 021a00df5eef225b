// Must NOT compile: every function below asks the codec to send a type it cannot send, and
// each must fail with the codec's own static_assert text (checked by check.cmake, which
// looks for each `// expect:` line's text in the compiler's output).
#include <functional>
#include <string_view>
#include <vector>

#include "concur/detail/codec.hpp"

namespace codec = concur::detail::codec;

// expect: a raw pointer cannot be sent
void pointer(int* const& p, std::vector<std::byte>& out) {
  codec::encode(p, out);
}

// expect: a view (string_view, span) cannot be sent
void view(std::span<const std::byte> m) {
  (void)codec::decode<std::string_view>(m);
}

// expect: it is not trivially copyable and has no cereal-style serialize
void function(const std::vector<std::function<void()>>& f) {
  (void)codec::encoded_size(f);
}

struct HoldsPointer {
  const char* text;
  int n;
  template <class A>
  void serialize(A& ar) {
    ar(n, text);
  }
};
// (a pointer member named in serialize: the same pointer message, from inside serialize)
void member(const HoldsPointer& h, std::byte* out) {
  codec::encode_to(h, out);
}

struct NoDefault {
  explicit NoDefault(int) {}
  template <class A>
  void serialize(A&) {}
};
// expect: give it a default constructor
void no_default(std::span<const std::byte> m) {
  (void)codec::decode<NoDefault>(m);
}

struct ConstMember {
  const int x = 1;
  template <class A>
  void serialize(A& ar) {
    ar(x);
  }
};
// expect: a const member cannot be loaded
void const_member(std::span<const std::byte> m) {
  (void)codec::decode<ConstMember>(m);
}

// expect: name the value type, without const, volatile or &
void const_type(std::span<const std::byte> m) {
  (void)codec::decode<const int>(m);
}
