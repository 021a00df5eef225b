// libFuzzer target for the codec's decoder (concur/detail/codec.hpp). Built by clang++ with
// -fsanitize=fuzzer,address,undefined and run for a bounded number of inputs by CTest
// (tests/fuzz/CMakeLists.txt); the committed seeds are in tests/fuzz/corpus/codec/.
//
// Input: byte 0 picks one of the types below; the rest is the message body, to which the
// type's tag is prepended (so the fuzzer spends its time past the tag check). The last
// selector instead decodes the rest as a whole message, tag included.
// Properties: decode either returns or throws DecodeError/TypeError, never crashes, reads
// out of bounds or allocates more than the input justifies (libFuzzer's malloc limit is set
// by the test); decode_into agrees with it, even into a value left over from the previous
// input; a value it returns re-encodes to encoded_size() bytes and decodes to an equal value.
//
// Regenerate the seeds: CONCUR_FUZZ_WRITE_CORPUS=tests/fuzz/corpus/codec ./codec_fuzz
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "concur/detail/codec.hpp"

namespace {
namespace codec = concur::detail::codec;

struct Point {
  std::int32_t x = 0, y = 0;
  bool operator==(const Point&) const = default;
};
template <class A>
void serialize(A& ar, Point& p) {
  ar& p.x& p.y;
}

struct Rec {
  std::int64_t id = 0;
  std::string name;
  std::vector<Point> points;
  std::map<std::string, std::uint8_t> tags;
  std::optional<std::variant<std::int32_t, std::string>> extra;
  template <class A>
  void serialize(A& ar) {
    ar(id, name, points, tags, extra);
  }
  bool operator==(const Rec&) const = default;
};

struct Node {
  std::int32_t v = 0;
  std::vector<Node> kids;
  template <class A>
  void serialize(A& ar) {
    ar(v, kids);
  }
  bool operator==(const Node&) const = default;
};

struct Empty {
  template <class A>
  void serialize(A&) {}
  bool operator==(const Empty&) const = default;
};

using Types =
    std::tuple<Rec, std::vector<std::string>, std::map<std::string, std::vector<std::int32_t>>,
               std::tuple<bool, std::optional<std::int64_t>,
                          std::variant<std::monostate, std::string, std::uint16_t>>,
               std::unordered_map<std::int32_t, std::set<std::string>>, Node,
               std::tuple<std::vector<Empty>, std::deque<std::vector<bool>>,
                          std::list<std::pair<std::int32_t, std::string>>>,
               std::array<std::string, 3>, std::multiset<std::int16_t>>;
constexpr std::size_t kTypes = std::tuple_size_v<Types>;

// decode() must return or throw DecodeError/TypeError; decode_into() must agree with it,
// also into a value that still holds whatever the previous input left there.
template <class T>
bool decodes(std::span<const std::byte> message, T& out, bool into) {
  try {
    if (into)
      codec::decode_into(message, out);
    else
      out = codec::decode<T>(message);
    return true;
  } catch (const codec::DecodeError&) {
  } catch (const concur::TypeError&) {
  }
  return false;
}

template <class T>
void check(std::span<const std::byte> message) {
  static T reused{};
  T v{};
  const bool ok = decodes(message, v, false);
  if (decodes(message, reused, true) != ok) std::abort();
  if (!ok) return;
  if (!(reused == v)) std::abort();
  std::vector<std::byte> again;
  codec::encode(v, again);
  if (again.size() != codec::encoded_size(v)) std::abort();
  if (!(codec::decode<T>(again) == v)) std::abort();
}

template <class T>
void check_body(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> m(codec::kTagSize + size);
  const std::uint64_t tag = codec::type_tag<T>();
  std::memcpy(m.data(), &tag, codec::kTagSize);
  if (size != 0) std::memcpy(m.data() + codec::kTagSize, data, size);
  check<T>(m);
}

template <std::size_t... I>
void dispatch(std::size_t which, const std::uint8_t* data, std::size_t size,
              std::index_sequence<I...>) {
  ((which == I ? check_body<std::tuple_element_t<I, Types>>(data, size) : void()), ...);
}

template <class T>
void write_seed(const char* dir, std::size_t index, const T& v) {
  std::vector<std::byte> m;
  codec::encode(v, m);
  const std::string path = std::string(dir) + "/seed-" + std::to_string(index);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  const auto sel = static_cast<unsigned char>(index);
  std::fwrite(&sel, 1, 1, f);
  std::fwrite(m.data() + codec::kTagSize, 1, m.size() - codec::kTagSize, f);
  std::fclose(f);
}

void write_corpus(const char* dir) {
  Rec r{7,
        "seven",
        {{1, 2}, {3, 4}},
        {{"a", 1}, {"b", 2}},
        std::variant<std::int32_t, std::string>("x")};
  write_seed(dir, 0, r);
  write_seed(dir, 1, std::vector<std::string>{"", "ab", "cde"});
  write_seed(dir, 2, std::map<std::string, std::vector<std::int32_t>>{{"k", {1, 2, 3}}, {"l", {}}});
  write_seed(dir, 3,
             std::tuple<bool, std::optional<std::int64_t>,
                        std::variant<std::monostate, std::string, std::uint16_t>>{
                 true, 5, std::string("v")});
  write_seed(dir, 4, std::unordered_map<std::int32_t, std::set<std::string>>{{1, {"a", "b"}}});
  Node n{1, {Node{2, {Node{3, {}}}}, Node{4, {}}}};
  write_seed(dir, 5, n);
  write_seed(dir, 6,
             std::tuple<std::vector<Empty>, std::deque<std::vector<bool>>,
                        std::list<std::pair<std::int32_t, std::string>>>{
                 std::vector<Empty>(3), {{true, false}}, {{1, "one"}}});
  write_seed(dir, 7, std::array<std::string, 3>{"x", "", "zz"});
  write_seed(dir, 8, std::multiset<std::int16_t>{1, 1, 2});
  // The whole-message selector: a full Rec message, tag included.
  std::vector<std::byte> m;
  codec::encode(r, m);
  const std::string path = std::string(dir) + "/seed-whole";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  const auto sel = static_cast<unsigned char>(kTypes);
  std::fwrite(&sel, 1, 1, f);
  std::fwrite(m.data(), 1, m.size(), f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("CONCUR_FUZZ_WRITE_CORPUS")) {
    write_corpus(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t which = data[0] % (kTypes + 1);
  if (which == kTypes) {
    check<Rec>(std::span(reinterpret_cast<const std::byte*>(data + 1), size - 1));
    return 0;
  }
  dispatch(which, data + 1, size - 1, std::make_index_sequence<kTypes>{});
  return 0;
}
