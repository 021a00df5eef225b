// concur/detail/codec.hpp — the one codec of every cross-process path (Pipe/Connection, the
// shared-memory Queue, pools, managers, MPI).
//
// A message is an 8-byte type tag followed by the body:
//   message := tag:u64 body(T)
// Bodies, by type family (integers in native byte order: both ends are the same program,
// or two programs from the same compiler, on the same kind of machine):
//   raw (is_raw_v)        the object's bytes (sizeof(T)), memcpy'd
//   bool                  one byte, 0 or 1 (anything else is a DecodeError)
//   basic_string<C>       count:u64 then count*sizeof(C) bytes
//   vector/deque/list     count:u64 then the elements (a vector of raw elements: one memcpy)
//   vector<bool>          count:u64 then one byte per element
//   array<E,N>            the N elements (raw E: one memcpy of the whole array)
//   pair / tuple          the members in order
//   optional<E>           engaged:u8 (0/1) then, if engaged, the value
//   variant<A...>         index:u32 then the alternative
//   map/set (ordered, unordered, multi)  count:u64 then the elements (keys then values)
//   user type             what its cereal-style serialize (or save/load) writes, in order
// In a counted sequence, an element whose encoding is empty (an empty user type, a tuple<>)
// is written as one 0 byte, so every element costs at least one byte and a count can always
// be checked against the bytes left.
//
// What can be sent: `Sendable<T>`. A type that cannot be sent is a compile-time error with a
// static_assert that says why (raw pointers, std::function, string_view...).
//
// User types opt in with cereal's convention, so a type written for cereal works unchanged:
//   template <class Archive> void serialize(Archive& ar) { ar(x, y); }   // or ar & x & y
// as a member or as a free `serialize(Archive&, T&)` found by ADL, or split into
// `save(Archive&) const` / `load(Archive&)` (member or free). The members must be public, or
// the type befriends `concur::detail::codec::access`. A type with such a function is always
// encoded through it, even if it is trivially copyable. Received types are default
// constructed, then loaded.
//
// Hostile input: decode checks every length against the bytes left before it allocates
// or reads; a count is accepted only if count * (the least bytes one element can take) fits
// in what is left, so an 8-byte frame can never make it allocate more than a genuine message
// of that size would. User types nest at most kMaxDepth deep (recursion through a user type
// is the only way to nest without bound). A message larger than its limit
// (kDefaultMaxMessage unless the caller says otherwise) is refused.
//
// Type tags: type_tag<T>() is the 64-bit FNV-1a hash of "concur.codec.v1 <name> <sizeof>"
// where <name> is the compiler's spelling of the type in __PRETTY_FUNCTION__, computed at
// compile time. It depends only on the type's fully qualified name (its namespaces, template
// arguments) and size, never on addresses, so it is the same in every process and in any two
// programs built by the same compiler from the same definitions. Two distinct types can only
// share a tag if they share a spelled name: types in anonymous namespaces of different
// translation units, or (with clang) local classes of the same name in different functions.
// g++ and clang++ spell some names differently, so their tags differ.
//
// Thread-safety: everything here is a pure function of its arguments.
// Allocation: encode_to and encoded_size never allocate; decode allocates only what the
// decoded value owns.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "concur/errors.hpp"

namespace concur::detail::codec {

inline constexpr std::size_t kDefaultMaxMessage = std::size_t{1} << 30;  // 1 GiB
inline constexpr std::size_t kTagSize = 8;  // every message starts with an 8-byte type tag
// Deepest nesting of user types (serialize calls inside serialize calls) encode and decode
// accept. Only recursive user types (a Node holding a vector<Node>) can reach it.
inline constexpr int kMaxDepth = 1000;

// A message that is truncated, corrupt, hostile or over its size limit.
class DecodeError : public concur::ValueError {
 public:
  using ValueError::ValueError;
};

// Befriend this to keep serialize/save/load private:  friend struct concur::detail::codec::access;
struct access {
  template <class T, class A, class... V>
  static auto serialize(T& t, A& a, V... v) -> decltype(t.serialize(a, v...)) {
    return t.serialize(a, v...);
  }
  template <class T, class A>
  static auto save(const T& t, A& a) -> decltype(t.save(a)) {
    return t.save(a);
  }
  template <class T, class A>
  static auto load(T& t, A& a) -> decltype(t.load(a)) {
    return t.load(a);
  }
};

class SizeArchive;
class WriteArchive;
class ReadArchive;

namespace impl {

template <class>
inline constexpr bool dependent_false = false;

template <class T, template <class...> class Tmpl>
struct is_spec : std::false_type {};
template <template <class...> class Tmpl, class... A>
struct is_spec<Tmpl<A...>, Tmpl> : std::true_type {};
template <class T, template <class...> class Tmpl>
inline constexpr bool is_spec_v = is_spec<T, Tmpl>::value;

template <class T>
struct std_array : std::false_type {};
template <class E, std::size_t N>
struct std_array<std::array<E, N>> : std::true_type {
  using element = E;
  static constexpr std::size_t size = N;
};

template <class T>
struct span_of : std::false_type {};
template <class E, std::size_t N>
struct span_of<std::span<E, N>> : std::true_type {};

// ---- user serialization (cereal's convention) ----
// Poison pills: unqualified calls below find the user's functions by ADL only.
void serialize() = delete;
void save() = delete;
void load() = delete;

// serialize(ar) or cereal's versioned serialize(ar, version), member or free.
template <class T, class A, class... V>
concept member_serialize = requires(T& t, A& a, V... v) {
  access::serialize(t, a, v...);
};
template <class T, class A, class... V>
concept free_serialize = requires(T& t, A& a, V... v) {
  serialize(a, t, v...);
};
template <class T, class A>
concept member_save = requires(const T& t, A& a) {
  access::save(t, a);
};
template <class T, class A>
concept member_load = requires(T& t, A& a) {
  access::load(t, a);
};
template <class T, class A>
concept free_save = requires(const T& t, A& a) {
  save(a, t);
};
template <class T, class A>
concept free_load = requires(T& t, A& a) {
  load(a, t);
};

template <class T, class A>
inline constexpr bool has_serialize_v =
    member_serialize<T, A> || member_serialize<T, A, std::uint32_t> || free_serialize<T, A> ||
    free_serialize<T, A, std::uint32_t>;

// A user type: it has serialize, or both save and load. Probed with the archives it will
// meet (a serialize template accepts all of them).
template <class T>
inline constexpr bool user_v = has_serialize_v<T, SizeArchive> ||
                               ((member_save<T, SizeArchive> ||
                                 free_save<T, SizeArchive>)&&(member_load<T, ReadArchive> ||
                                                              free_load<T, ReadArchive>));

template <class A, class T>
void call_serialize(A& a, T& v) {
  constexpr std::uint32_t kVersion = 0;  // cereal's class version without CEREAL_CLASS_VERSION
  if constexpr (member_serialize<T, A>)
    access::serialize(v, a);
  else if constexpr (member_serialize<T, A, std::uint32_t>)
    access::serialize(v, a, kVersion);
  else if constexpr (free_serialize<T, A>)
    serialize(a, v);
  else
    serialize(a, v, kVersion);
}

// Runs the user's serialize/save (encoding) or serialize/load (decoding) with archive a.
template <class A, class T>
void save_user(A& a, const T& v) {
  if constexpr (has_serialize_v<T, A>)
    call_serialize(a, const_cast<T&>(v));  // cereal's convention: one non-const serialize
  else if constexpr (member_save<T, A>)
    access::save(v, a);
  else
    save(a, v);
}
template <class A, class T>
void load_user(A& a, T& v) {
  if constexpr (has_serialize_v<T, A>)
    call_serialize(a, v);
  else if constexpr (member_load<T, A>)
    access::load(v, a);
  else
    load(a, v);
}

// Trivially copyable std types that hold addresses: never raw, never sendable.
template <class T>
inline constexpr bool address_holder_v =
    std::is_pointer_v<T> || std::is_member_pointer_v<T> || std::is_null_pointer_v<T> ||
    is_spec_v<T, std::basic_string_view> || span_of<T>::value ||
    is_spec_v<T, std::reference_wrapper> || is_spec_v<T, std::initializer_list> ||
    std::is_same_v<T, std::type_index> || std::is_same_v<T, std::error_code> ||
    std::is_same_v<T, std::error_condition>;

template <class T>
constexpr bool raw() {
  if constexpr (std::is_reference_v<T> || std::is_const_v<T> || std::is_volatile_v<T>)
    return false;
  else if constexpr (address_holder_v<T> || std::is_same_v<T, bool>)
    return false;
  else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>)
    return true;
  else if constexpr (std_array<T>::value)
    return raw<typename std_array<T>::element>();
  else if constexpr (std::is_array_v<T>)
    return std::extent_v<T> > 0 && raw<std::remove_extent_t<T>>();
  else if constexpr (is_spec_v<T, std::optional> || is_spec_v<T, std::variant> ||
                     is_spec_v<T, std::pair> || is_spec_v<T, std::tuple> || user_v<T>)
    return false;  // validated (optional/variant) or encoded member by member
  else
    return std::is_trivially_copyable_v<T> && std::is_class_v<T>;
}

template <class T>
constexpr bool string_v() {
  if constexpr (is_spec_v<T, std::basic_string>)
    return raw<typename T::value_type>();
  else
    return false;
}

template <class T>
constexpr bool raw_vector() {
  if constexpr (is_spec_v<T, std::vector>)
    return raw<typename T::value_type>();
  else
    return false;
}
template <class T>
constexpr bool bool_vector() {
  if constexpr (is_spec_v<T, std::vector>)
    return std::is_same_v<typename T::value_type, bool>;
  else
    return false;
}

template <class T>
inline constexpr bool sequence_v =
    is_spec_v<T, std::vector> || is_spec_v<T, std::deque> || is_spec_v<T, std::list>;
template <class T>
inline constexpr bool map_v =
    is_spec_v<T, std::map> || is_spec_v<T, std::multimap> || is_spec_v<T, std::unordered_map> ||
    is_spec_v<T, std::unordered_multimap>;
template <class T>
inline constexpr bool set_v =
    is_spec_v<T, std::set> || is_spec_v<T, std::multiset> || is_spec_v<T, std::unordered_set> ||
    is_spec_v<T, std::unordered_multiset>;
template <class T>
inline constexpr bool multi_v =
    is_spec_v<T, std::multimap> || is_spec_v<T, std::unordered_multimap> ||
    is_spec_v<T, std::multiset> || is_spec_v<T, std::unordered_multiset>;

template <class... E>
constexpr bool all_sendable(std::type_identity<std::tuple<E...>>);
template <class T>
struct variant_tuple;
template <class... A>
struct variant_tuple<std::variant<A...>> {
  using type = std::tuple<A...>;
};

template <class T>
constexpr bool sendable() {
  if constexpr (std::is_reference_v<T> || std::is_const_v<T> || std::is_volatile_v<T> ||
                address_holder_v<T> || std::is_array_v<T>)
    return false;
  else if constexpr (std::is_same_v<T, bool> || raw<T>())
    return true;
  else if constexpr (is_spec_v<T, std::basic_string>)
    return string_v<T>();
  else if constexpr (std_array<T>::value)
    return sendable<typename std_array<T>::element>();
  else if constexpr (sequence_v<T> || set_v<T> || is_spec_v<T, std::optional>)
    return sendable<typename T::value_type>();
  else if constexpr (map_v<T>)
    return sendable<typename T::key_type>() && sendable<typename T::mapped_type>();
  else if constexpr (is_spec_v<T, std::pair>)
    return sendable<typename T::first_type>() && sendable<typename T::second_type>();
  else if constexpr (is_spec_v<T, std::tuple>)
    return all_sendable(std::type_identity<T>{});
  else if constexpr (is_spec_v<T, std::variant>)
    return all_sendable(std::type_identity<typename variant_tuple<T>::type>{});
  else if constexpr (user_v<T>)
    return std::is_default_constructible_v<T>;
  else
    return false;
}

template <class... E>
constexpr bool all_sendable(std::type_identity<std::tuple<E...>>) {
  return (sendable<E>() && ...);
}

}  // namespace impl

// What can be sent: see the banner.
template <class T>
concept Sendable = impl::sendable<T>();

// T travels as its bytes: trivially copyable, holds no address, not bool (validated), not
// an optional/variant (validated), and has no serialize of its own.
template <class T>
inline constexpr bool is_raw_v = impl::raw<T>();

// ---- type tags ----
namespace impl {
template <class T>
constexpr auto pretty() {
  return std::string_view(__PRETTY_FUNCTION__);
}
// The type's spelling inside __PRETTY_FUNCTION__: g++ "... [with T = X]", clang "... [T = X]".
template <class T>
constexpr std::string_view spelled_name() {
  constexpr std::string_view p = pretty<T>();
  constexpr std::size_t start = p.find("T = ") + 4;
  constexpr std::size_t stop = p.rfind(']');
  static_assert(
      p.find("T = ") != std::string_view::npos && stop != std::string_view::npos && stop > start,
      "concur codec: unrecognised __PRETTY_FUNCTION__ layout on this compiler");
  return p.substr(start, stop - start);
}
constexpr std::uint64_t fnv1a(std::uint64_t h, std::string_view s) noexcept {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}
constexpr std::string_view decimal(std::size_t v, char (&buf)[24]) noexcept {
  std::size_t i = sizeof buf;
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return std::string_view(buf + i, sizeof buf - i);
}
template <class T>
constexpr std::uint64_t compute_tag() noexcept {
  char buf[24] = {};
  std::uint64_t h = fnv1a(0xcbf29ce484222325ull, "concur.codec.v1 ");
  h = fnv1a(h, spelled_name<T>());
  h = fnv1a(h, " ");
  return fnv1a(h, decimal(sizeof(T), buf));
}
}  // namespace impl

// The type's name as the compiler spells it (used in TypeError messages).
template <class T>
constexpr std::string_view type_name() noexcept {
  return impl::spelled_name<T>();
}

// The 64-bit tag every message of type T starts with (see the banner).
template <class T>
constexpr std::uint64_t type_tag() noexcept {
  constexpr std::uint64_t tag = impl::compute_tag<T>();
  return tag;
}

// ---- error reporting (out of line: kept off the hot paths) ----
namespace impl {
[[noreturn]] void throw_truncated(std::size_t need, std::size_t left);
[[noreturn]] void throw_count(std::uint64_t count, std::size_t min_each, std::size_t left);
[[noreturn]] void throw_bad_byte(const char* what, unsigned value);
[[noreturn]] void throw_bad_index(std::uint64_t index, std::size_t alternatives);
[[noreturn]] void throw_duplicate();
[[noreturn]] void throw_trailing(std::size_t left, std::string_view type);
[[noreturn]] void throw_too_large(std::size_t size, std::size_t limit);
[[noreturn]] void throw_mismatch(std::uint64_t got, std::uint64_t want, std::string_view type);
[[noreturn]] void throw_too_deep(bool decoding);
[[noreturn]] void throw_valueless();

// The least number of bytes an encoding of T can take (0: unknown, e.g. a user type).
template <class T>
constexpr std::size_t min_size() {
  if constexpr (raw<T>())
    return sizeof(T);
  else if constexpr (std::is_same_v<T, bool> || is_spec_v<T, std::optional>)
    return 1;
  else if constexpr (is_spec_v<T, std::variant>)
    return 4;
  else if constexpr (std_array<T>::value)
    return std_array<T>::size * min_size<typename std_array<T>::element>();
  else if constexpr (std::is_array_v<T>)
    return std::extent_v<T> * min_size<std::remove_extent_t<T>>();
  else if constexpr (is_spec_v<T, std::pair>)
    return min_size<typename T::first_type>() + min_size<typename T::second_type>();
  else if constexpr (is_spec_v<T, std::tuple>)
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (std::size_t{0} + ... + min_size<std::tuple_element_t<I, T>>());
    }
  (std::make_index_sequence<std::tuple_size_v<T>>{});
  else if constexpr (user_v<T>) return 0;
  else return 8;  // strings, sequences, maps, sets: their count
}

// Element of a counted sequence: a map's element is its (key, value) pair.
template <class C>
constexpr std::size_t element_min_size() {
  if constexpr (map_v<C>)
    return min_size<typename C::key_type>() + min_size<typename C::mapped_type>();
  else
    return min_size<typename C::value_type>();
}
}  // namespace impl

// ---- why a type cannot be sent: one readable static_assert for the first culprit ----
namespace impl {
template <class T>
constexpr void diagnose() {
  if constexpr (std::is_reference_v<T> || std::is_const_v<T> || std::is_volatile_v<T>) {
    static_assert(dependent_false<T>,
                  "concur codec: name the value type, without const, volatile or &: "
                  "decode<T>, not decode<const T>.");
  } else if constexpr (std::is_pointer_v<T> || std::is_null_pointer_v<T>) {
    static_assert(dependent_false<T>,
                  "concur codec: a raw pointer cannot be sent: its address means nothing in "
                  "another process. Send the pointee, an index, or a std::string for C text.");
  } else if constexpr (std::is_member_pointer_v<T>) {
    static_assert(dependent_false<T>, "concur codec: a member pointer cannot be sent.");
  } else if constexpr (is_spec_v<T, std::basic_string_view> || span_of<T>::value) {
    static_assert(dependent_false<T>,
                  "concur codec: a view (string_view, span) cannot be sent: it points into "
                  "memory of this process. Send a std::string or a std::vector.");
  } else if constexpr (address_holder_v<T>) {
    static_assert(dependent_false<T>,
                  "concur codec: this type holds an address (reference_wrapper, "
                  "initializer_list, type_index, error_code) and cannot be sent.");
  } else if constexpr (std::is_array_v<T>) {
    static_assert(dependent_false<T>,
                  "concur codec: send a C array as std::array (a C array can be a member "
                  "of a sent type, but not a whole message).");
  } else if constexpr (is_spec_v<T, std::basic_string>) {
    diagnose<typename T::value_type>();
  } else if constexpr (std_array<T>::value) {
    diagnose<typename std_array<T>::element>();
  } else if constexpr (sequence_v<T> || set_v<T> || is_spec_v<T, std::optional>) {
    diagnose<typename T::value_type>();
  } else if constexpr (map_v<T>) {
    diagnose<typename T::key_type>();
    diagnose<typename T::mapped_type>();
  } else if constexpr (is_spec_v<T, std::pair>) {
    diagnose<typename T::first_type>();
    diagnose<typename T::second_type>();
  } else if constexpr (is_spec_v<T, std::tuple>) {
    []<std::size_t... I>(std::index_sequence<I...>) {
      (diagnose<std::tuple_element_t<I, T>>(), ...);
    }
    (std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (is_spec_v<T, std::variant>) {
    []<std::size_t... I>(std::index_sequence<I...>) {
      (diagnose<std::variant_alternative_t<I, T>>(), ...);
    }
    (std::make_index_sequence<std::variant_size_v<T>>{});
  } else if constexpr (user_v<T>) {
    static_assert(std::is_default_constructible_v<T>,
                  "concur codec: a user type is received by default-constructing it and then "
                  "loading it: give it a default constructor.");
  } else if constexpr (!sendable<T>()) {
    static_assert(dependent_false<T>,
                  "concur codec: this type cannot be sent: it is not trivially copyable and "
                  "has no cereal-style serialize. Give it a public member "
                  "`template <class A> void serialize(A& ar) { ar(x, y); }` (or a free "
                  "serialize(A&, T&), or save/load), listing its members.");
  }
}
}  // namespace impl

// ---- archives: the objects user serialize functions receive ----

// Encodes values; Derived supplies the primitives: bytes(src, n), scalar(u), byte(b) and
// mark() (an integer that grows with every byte written). SizeArchive only counts them,
// WriteArchive writes them, so both walk the value in exactly the same way.
template <class Derived>
class SaveArchive {
 public:
  static constexpr bool is_loading = false;
  static constexpr bool is_saving = true;

  template <class... Ts>
  Derived& operator()(Ts&&... v) {
    (put(std::as_const(v)), ...);
    return self();
  }
  template <class T>
  Derived& operator&(T&& v) {
    put(std::as_const(v));
    return self();
  }

  template <class T>
  void put(const T& v);

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
  void flag(bool b) noexcept { self().byte(b ? std::byte{1} : std::byte{0}); }
  // One element of a counted sequence: an empty encoding gets a 0 pad byte.
  template <class... E>
  void put_element(const E&... e) {
    if constexpr ((impl::min_size<E>() + ... + 0) == 0) {
      const auto before = self().mark();
      (put(e), ...);
      if (self().mark() == before) self().byte(std::byte{0});
    } else {
      (put(e), ...);
    }
  }
  int depth_ = 0;
};

// Counts the bytes of an encoding. Never allocates.
class SizeArchive : public SaveArchive<SizeArchive> {
 public:
  std::size_t size() const noexcept { return n_; }

 private:
  friend class SaveArchive<SizeArchive>;
  static constexpr bool kCounting = true;
  void bytes(const void*, std::size_t n) noexcept { n_ += n; }
  template <class U>
  void scalar(U) noexcept {
    n_ += sizeof(U);
  }
  void byte(std::byte) noexcept { ++n_; }
  std::size_t mark() const noexcept { return n_; }
  std::size_t n_ = 0;
};

// Writes an encoding into memory the caller sized with SizeArchive. Never allocates.
class WriteArchive : public SaveArchive<WriteArchive> {
 public:
  explicit WriteArchive(std::byte* out) noexcept : p_(out) {}
  std::byte* position() const noexcept { return p_; }

 private:
  friend class SaveArchive<WriteArchive>;
  static constexpr bool kCounting = false;
  void bytes(const void* src, std::size_t n) noexcept {
    if (n != 0) std::memcpy(p_, src, n);
    p_ += n;
  }
  template <class U>
  void scalar(U v) noexcept {
    std::memcpy(p_, &v, sizeof v);
    p_ += sizeof v;
  }
  void byte(std::byte b) noexcept { *p_++ = b; }
  std::byte* mark() const noexcept { return p_; }
  std::byte* p_;
};

// Reads an encoding, bounds-checked: every failure is a DecodeError.
class ReadArchive {
 public:
  static constexpr bool is_loading = true;
  static constexpr bool is_saving = false;

  ReadArchive(const std::byte* begin, const std::byte* end) noexcept : p_(begin), end_(end) {}

  template <class... Ts>
  ReadArchive& operator()(Ts&&... v) {
    (get(v), ...);
    return *this;
  }
  template <class T>
  ReadArchive& operator&(T&& v) {
    get(v);
    return *this;
  }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  const std::byte* position() const noexcept { return p_; }

  // Loads into an existing object (replacing its value).
  template <class T>
  void get(T& v);
  // Loads a new object.
  template <class T>
  T make();

 private:
  void need(std::size_t n) const {
    if (remaining() < n) impl::throw_truncated(n, remaining());
  }
  template <class U>
  U scalar() {
    need(sizeof(U));
    U v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  bool boolean(const char* what) {
    need(1);
    const auto b = static_cast<unsigned>(*p_++);
    if (b > 1) impl::throw_bad_byte(what, b);
    return b == 1;
  }
  // Reads a count of elements of at least min_each bytes each and checks it against the
  // bytes left (an element of unknown minimum takes at least its pad byte).
  std::size_t count(std::size_t min_each) {
    const auto n = scalar<std::uint64_t>();
    const std::size_t each = min_each == 0 ? 1 : min_each;
    if (n > remaining() / each) impl::throw_count(n, each, remaining());
    return static_cast<std::size_t>(n);
  }
  // Decodes one element of a counted sequence (whose encodings take at least kMin bytes)
  // with decode_one(); an empty encoding is followed by a 0 pad byte.
  template <std::size_t kMin, class F>
  void element(F&& decode_one) {
    if constexpr (kMin == 0) {
      const std::byte* before = p_;
      decode_one();
      if (p_ == before) {
        need(1);
        if (*p_ != std::byte{0}) impl::throw_bad_byte("pad", static_cast<unsigned>(*p_));
        ++p_;
      }
    } else {
      decode_one();
    }
  }
  const std::byte* p_;
  const std::byte* end_;
  int depth_ = 0;
};

// ---- the type families ----

template <class Derived>
template <class T>
void SaveArchive<Derived>::put(const T& v) {
  using namespace impl;
  Derived& out = self();
  if constexpr (raw<T>()) {
    out.bytes(&v, sizeof(T));
  } else if constexpr (std::is_same_v<T, bool>) {
    flag(v);
  } else if constexpr (is_spec_v<T, std::basic_string> || raw_vector<T>()) {
    out.scalar(static_cast<std::uint64_t>(v.size()));
    out.bytes(v.data(), v.size() * sizeof(typename T::value_type));
  } else if constexpr (bool_vector<T>()) {
    out.scalar(static_cast<std::uint64_t>(v.size()));
    if constexpr (Derived::kCounting)
      out.bytes(nullptr, v.size());
    else
      for (bool b : v) flag(b);
  } else if constexpr (sequence_v<T> || set_v<T>) {
    out.scalar(static_cast<std::uint64_t>(v.size()));
    for (const auto& e : v) put_element(e);
  } else if constexpr (map_v<T>) {
    out.scalar(static_cast<std::uint64_t>(v.size()));
    for (const auto& [k, m] : v) put_element(k, m);
  } else if constexpr (std_array<T>::value || std::is_array_v<T>) {
    for (const auto& e : v) put(e);
  } else if constexpr (is_spec_v<T, std::pair>) {
    put(v.first);
    put(v.second);
  } else if constexpr (is_spec_v<T, std::tuple>) {
    std::apply([&](const auto&... e) { (put(e), ...); }, v);
  } else if constexpr (is_spec_v<T, std::optional>) {
    flag(v.has_value());
    if (v) put(*v);
  } else if constexpr (is_spec_v<T, std::variant>) {
    if (v.valueless_by_exception()) throw_valueless();
    out.scalar(static_cast<std::uint32_t>(v.index()));
    std::visit([&](const auto& a) { put(a); }, v);
  } else if constexpr (user_v<T>) {
    if (++depth_ > kMaxDepth) throw_too_deep(false);
    save_user(out, v);
    --depth_;
  } else {
    diagnose<T>();
  }
}

template <class T>
T ReadArchive::make() {
  using namespace impl;
  if constexpr (raw<T>()) {
    need(sizeof(T));
    if constexpr (std::is_default_constructible_v<T>) {
      T v;
      std::memcpy(static_cast<void*>(&v), p_, sizeof(T));
      p_ += sizeof(T);
      return v;
    } else {
      std::array<std::byte, sizeof(T)> b;
      std::memcpy(b.data(), p_, sizeof(T));
      p_ += sizeof(T);
      return std::bit_cast<T>(b);
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    const std::size_t n = count(1);
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  } else if constexpr (raw_vector<T>()) {
    using E = typename T::value_type;
    const std::size_t n = count(sizeof(E));
    const std::byte* src = p_;
    p_ += n * sizeof(E);
    if (reinterpret_cast<std::uintptr_t>(src) % alignof(E) == 0) {
      const E* first = reinterpret_cast<const E*>(src);
      return T(first, first + n);  // one allocation, one memmove, no zeroing
    }
    T v(n);
    if (n != 0) std::memcpy(static_cast<void*>(v.data()), src, n * sizeof(E));
    return v;
  } else {
    T v{};
    get(v);
    return v;
  }
}

template <class T>
void ReadArchive::get(T& v) {
  using namespace impl;
  static_assert(!std::is_const_v<T>,
                "concur codec: serialize loads into every member it names: a const member "
                "cannot be loaded (make it non-const, or split serialize into save/load)");
  if constexpr (raw<T>()) {
    need(sizeof(T));
    std::memcpy(static_cast<void*>(&v), p_, sizeof(T));
    p_ += sizeof(T);
  } else if constexpr (std::is_same_v<T, bool>) {
    v = boolean("bool");
  } else if constexpr (is_spec_v<T, std::basic_string>) {
    using C = typename T::value_type;
    const std::size_t n = count(sizeof(C));
    v.resize(n);
    if (n != 0) std::memcpy(static_cast<void*>(v.data()), p_, n * sizeof(C));
    p_ += n * sizeof(C);
  } else if constexpr (bool_vector<T>()) {
    const std::size_t n = count(1);
    v.assign(n, false);
    for (std::size_t i = 0; i < n; ++i) v[i] = boolean("bool");
  } else if constexpr (raw_vector<T>()) {
    using E = typename T::value_type;
    const std::size_t n = count(sizeof(E));
    v.resize(n);  // keeps the capacity the caller's vector already has
    if (n != 0) std::memcpy(static_cast<void*>(v.data()), p_, n * sizeof(E));
    p_ += n * sizeof(E);
  } else if constexpr (sequence_v<T>) {
    using E = typename T::value_type;
    const std::size_t n = count(min_size<E>());
    v.clear();
    if constexpr (is_spec_v<T, std::vector>) v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) element<min_size<E>()>([&] { v.push_back(make<E>()); });
  } else if constexpr (set_v<T>) {
    using E = typename T::value_type;
    const std::size_t n = count(min_size<E>());
    v.clear();
    if constexpr (requires { v.reserve(n); }) v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t before = v.size();
      element<min_size<E>()>([&] { v.insert(make<E>()); });
      if constexpr (!multi_v<T>)
        if (v.size() == before) throw_duplicate();
    }
  } else if constexpr (map_v<T>) {
    using K = typename T::key_type;
    using M = typename T::mapped_type;
    const std::size_t n = count(element_min_size<T>());
    v.clear();
    if constexpr (requires { v.reserve(n); }) v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t before = v.size();
      element<element_min_size<T>()>([&] {
        K k = make<K>();
        v.emplace(std::move(k), make<M>());  // key first: arguments have no order
      });
      if constexpr (!multi_v<T>)
        if (v.size() == before) throw_duplicate();
    }
  } else if constexpr (std_array<T>::value || std::is_array_v<T>) {
    for (auto& e : v) get(e);
  } else if constexpr (is_spec_v<T, std::pair>) {
    get(v.first);
    get(v.second);
  } else if constexpr (is_spec_v<T, std::tuple>) {
    std::apply([&](auto&... e) { (get(e), ...); }, v);
  } else if constexpr (is_spec_v<T, std::optional>) {
    if (boolean("optional flag")) {
      v.emplace(make<typename T::value_type>());
    } else {
      v.reset();
    }
  } else if constexpr (is_spec_v<T, std::variant>) {
    const auto index = scalar<std::uint32_t>();
    constexpr std::size_t kAlternatives = std::variant_size_v<T>;
    if (index >= kAlternatives) throw_bad_index(index, kAlternatives);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((index == I ? (void)v.template emplace<I>(make<std::variant_alternative_t<I, T>>())
                   : void()),
       ...);
    }
    (std::make_index_sequence<kAlternatives>{});
  } else if constexpr (user_v<T>) {
    if (++depth_ > kMaxDepth) throw_too_deep(true);
    load_user(*this, v);
    --depth_;
  } else {
    diagnose<T>();
  }
}

// ---- the API ----

// Exact size of the whole message (tag + body). Never allocates.
template <Sendable T>
std::size_t encoded_size(const T& v) {
  SizeArchive a;
  a.put(v);
  return kTagSize + a.size();
}

// Writes the whole message (exactly encoded_size(v) bytes) at out. Never allocates.
template <Sendable T>
void encode_to(const T& v, std::byte* out) {
  constexpr std::uint64_t tag = type_tag<T>();
  std::memcpy(out, &tag, kTagSize);
  WriteArchive a(out + kTagSize);
  a.put(v);
}

// Appends the whole message to out.
template <Sendable T>
void encode(const T& v, std::vector<std::byte>& out) {
  const std::size_t n = encoded_size(v);
  const std::size_t at = out.size();
  out.resize(at + n);
  encode_to(v, out.data() + at);
}

// The tag of a message; DecodeError if it is shorter than a tag.
inline std::uint64_t message_tag(std::span<const std::byte> message) {
  if (message.size() < kTagSize) impl::throw_truncated(kTagSize, message.size());
  std::uint64_t tag;
  std::memcpy(&tag, message.data(), kTagSize);
  return tag;
}

// Decodes a whole message as a T. TypeError if it carries another type's tag (the caller
// treats the message as consumed); DecodeError if it is larger than max_message, truncated,
// has trailing bytes, or is corrupt.
namespace impl {
// The body of a message of type T, after the tag and size checks decode makes.
template <class T>
ReadArchive open_message(std::span<const std::byte> message, std::size_t max_message) {
  const std::uint64_t tag = message_tag(message);
  if (tag != type_tag<T>()) throw_mismatch(tag, type_tag<T>(), type_name<T>());
  if (message.size() > max_message) throw_too_large(message.size(), max_message);
  return ReadArchive(message.data() + kTagSize, message.data() + message.size());
}
template <class T>
void close_message(const ReadArchive& a) {
  if (a.remaining() != 0) throw_trailing(a.remaining(), type_name<T>());
}
}  // namespace impl

template <Sendable T>
T decode(std::span<const std::byte> message, std::size_t max_message) {
  ReadArchive a = impl::open_message<T>(message, max_message);
  T v = a.make<T>();
  impl::close_message<T>(a);
  return v;
}
template <Sendable T>
T decode(std::span<const std::byte> message) {
  return decode<T>(message, kDefaultMaxMessage);
}

// decode() into an existing value, reusing what it owns (a vector's capacity, a string's
// buffer). On an exception out holds an unspecified valid value.
template <Sendable T>
void decode_into(std::span<const std::byte> message, T& out,
                 std::size_t max_message = kDefaultMaxMessage) {
  ReadArchive a = impl::open_message<T>(message, max_message);
  a.get(out);
  impl::close_message<T>(a);
}

// The same calls for a type that cannot be sent: a readable compile-time error.
template <class T>
requires(!Sendable<T>) std::size_t encoded_size(const T&) {
  impl::diagnose<T>();
  return 0;
}
template <class T>
requires(!Sendable<T>) void encode_to(const T&, std::byte*) {
  impl::diagnose<T>();
}
template <class T>
requires(!Sendable<T>) void encode(const T&, std::vector<std::byte>&) {
  impl::diagnose<T>();
}
template <class T>
requires(!Sendable<T> && !std::is_array_v<T>) T decode(std::span<const std::byte>) {
  impl::diagnose<T>();
  throw DecodeError("unreachable");
}

}  // namespace concur::detail::codec
