// Types the codec tests send, shared by the test binary and concur_child's `print-tags` mode
// (two programs built from the same definitions must agree on every type tag).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "concur/detail/codec.hpp"

namespace codec_test {

// A cereal-style record: member serialize with the call form.
struct Record {
  std::int64_t id = 0;
  double score = 0;
  std::string name;
  template <class A>
  void serialize(A& ar) {
    ar(id, score, name);
  }
  bool operator==(const Record&) const = default;
};

// Free serialize, found by ADL, with the `&` form.
struct Point {
  int x = 0, y = 0;
  bool operator==(const Point&) const = default;
};
template <class A>
void serialize(A& ar, Point& p) {
  ar& p.x& p.y;
}

// Nested user types and containers of them.
struct Shape {
  std::string label;
  std::vector<Point> points;
  std::map<std::string, Record> records;
  std::optional<std::variant<int, std::string>> extra;
  template <class A>
  void serialize(A& ar) {
    ar(label, points, records, extra);
  }
  bool operator==(const Shape&) const = default;
};

// Trivially copyable without serialize: travels as its bytes.
struct Pod {
  std::int32_t a;
  float b;
  char c[6];
  bool operator==(const Pod&) const = default;
};

// Every tag a second program must agree on, printed one per line as "name hex".
template <class F>
void for_each_tagged(F&& f) {
  using namespace concur::detail::codec;
  f("int32", type_tag<std::int32_t>());
  f("uint32", type_tag<std::uint32_t>());
  f("float", type_tag<float>());
  f("string", type_tag<std::string>());
  f("vector<int>", type_tag<std::vector<int>>());
  f("set<int>", type_tag<std::set<int>>());
  f("map<string,vector<double>>", type_tag<std::map<std::string, std::vector<double>>>());
  f("tuple<int,string,optional<Point>>",
    type_tag<std::tuple<int, std::string, std::optional<Point>>>());
  f("Record", type_tag<Record>());
  f("Shape", type_tag<Shape>());
  f("Pod", type_tag<Pod>());
}

}  // namespace codec_test
