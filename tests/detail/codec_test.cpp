// The codec: every type family round-trips (alone and nested), the type tag rejects the
// wrong type and agrees across fork and exec, and truncated, corrupt and hostile messages
// are DecodeErrors that never allocate what the bytes cannot justify.
#include "concur/detail/codec.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <new>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "../helpers/codec_types.hpp"

// Counts allocations made while `counting` is set (EncodeToNeverAllocates).
namespace {
thread_local bool counting = false;
thread_local int allocations = 0;
}  // namespace
// g++ 12 reports free() of operator new's memory where it inlines these (-Wmismatched-new-
// delete); here they are a matched pair by construction.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {
namespace codec = concur::detail::codec;
using codec::DecodeError;
using codec_test::Pod;
using codec_test::Point;
using codec_test::Record;
using codec_test::Shape;
using Bytes = std::vector<std::byte>;

template <class T>
Bytes enc(const T& v) {
  Bytes out;
  codec::encode(v, out);
  return out;
}

// Encodes v three ways (encode, encode_to into an exact buffer, appended after a prefix),
// checks they agree with encoded_size, decodes, and checks every strict prefix is refused.
template <class T>
T round_trip(const T& v, bool check_prefixes = true) {
  const Bytes m = enc(v);
  EXPECT_EQ(m.size(), codec::encoded_size(v));
  Bytes exact(codec::encoded_size(v));
  codec::encode_to(v, exact.data());
  EXPECT_EQ(exact, m);
  Bytes appended{std::byte{7}};
  codec::encode(v, appended);
  EXPECT_EQ(appended.size(), m.size() + 1);
  EXPECT_TRUE(std::equal(m.begin(), m.end(), appended.begin() + 1));
  EXPECT_EQ(codec::message_tag(m), codec::type_tag<T>());
  if (check_prefixes) {
    for (std::size_t n = 0; n < m.size(); ++n)
      EXPECT_THROW((void)codec::decode<T>(std::span(m.data(), n)), DecodeError) << "prefix " << n;
  }
  Bytes longer = m;
  longer.push_back(std::byte{0});
  EXPECT_THROW((void)codec::decode<T>(longer), DecodeError);
  return codec::decode<T>(m);
}

template <class T>
void expect_round_trip(const T& v) {
  EXPECT_EQ(round_trip(v), v);
}

enum class Color : std::uint8_t { red = 1, green = 2 };
enum Plain { kOne = 1, kTwo = 2 };

TEST(Codec, Arithmetic) {
  expect_round_trip(std::int8_t{-5});
  expect_round_trip(std::uint8_t{250});
  expect_round_trip(std::int16_t{-30000});
  expect_round_trip(std::uint16_t{65000});
  expect_round_trip(std::int32_t{-2000000000});
  expect_round_trip(std::uint32_t{4000000000u});
  expect_round_trip(std::numeric_limits<std::int64_t>::min());
  expect_round_trip(std::numeric_limits<std::uint64_t>::max());
  expect_round_trip('x');
  expect_round_trip(char8_t{'y'});
  expect_round_trip(char32_t{0x1F600});
  expect_round_trip(true);
  expect_round_trip(false);
  expect_round_trip(3.25f);
  expect_round_trip(-1e300);
  expect_round_trip(std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
  expect_round_trip(static_cast<long double>(1.5));
  expect_round_trip(Color::green);
  expect_round_trip(kTwo);
  expect_round_trip(std::byte{0xAB});
  // Raw types are exactly tag + their bytes.
  EXPECT_EQ(codec::encoded_size(std::int32_t{1}), 12u);
  EXPECT_EQ(codec::encoded_size(1.0), 16u);
  EXPECT_EQ(codec::encoded_size(true), 9u);
}

TEST(Codec, BoolOtherThanZeroOrOneIsCorrupt) {
  Bytes m = enc(true);
  m[8] = std::byte{2};
  EXPECT_THROW((void)codec::decode<bool>(m), DecodeError);
}

TEST(Codec, Strings) {
  expect_round_trip(std::string{});
  expect_round_trip(std::string("hello"));
  expect_round_trip(std::string("with\0nul", 8));
  expect_round_trip(std::string(100000, 'z'));
  expect_round_trip(std::u32string(U"wide \U0001F600"));
  expect_round_trip(std::wstring(L"w"));
  EXPECT_EQ(codec::encoded_size(std::string("abc")), 8u + 8u + 3u);
}

TEST(Codec, Vectors) {
  expect_round_trip(std::vector<int>{});
  expect_round_trip(std::vector<int>{1, 2, 3});
  std::vector<std::int32_t> big(1024);
  for (int i = 0; i < 1024; ++i) big[static_cast<std::size_t>(i)] = i * 7 - 3000;
  expect_round_trip(big);
  expect_round_trip(std::vector<double>{1.5, -2.5});
  expect_round_trip(std::vector<std::byte>{std::byte{1}, std::byte{255}});
  expect_round_trip(std::vector<bool>{true, false, true, true});
  expect_round_trip(std::vector<bool>{});
  expect_round_trip(std::vector<std::string>{"a", "", "ccc"});
  expect_round_trip(std::vector<std::vector<int>>{{}, {1}, {2, 3}});
  EXPECT_EQ(codec::encoded_size(big), 8u + 8u + 4096u);
}

TEST(Codec, VectorOfRawDecodesFromMisalignedMemory) {
  const std::vector<std::uint64_t> v{1, 2, 3, 0xFFFFFFFFFFFFFFFFull};
  const Bytes m = enc(v);
  Bytes shifted{std::byte{0}};
  shifted.insert(shifted.end(), m.begin(), m.end());
  EXPECT_EQ(codec::decode<std::vector<std::uint64_t>>(std::span(shifted).subspan(1)), v);
}

TEST(Codec, DecodeIntoReusesTheValue) {
  std::vector<std::int32_t> out;
  out.reserve(64);
  const auto* before = out.data();
  codec::decode_into(enc(std::vector<std::int32_t>{1, 2, 3}), out);
  EXPECT_EQ(out, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(out.data(), before);
  Shape s;
  s.points = {{1, 1}};
  Shape got;
  got.label = "old";
  got.records["stale"] = Record{};
  codec::decode_into(enc(s), got);
  EXPECT_EQ(got, s);
  EXPECT_THROW(codec::decode_into(enc(1), out), concur::TypeError);
  Bytes longer = enc(std::vector<std::int32_t>{1});
  longer.push_back(std::byte{0});
  EXPECT_THROW(codec::decode_into(longer, out), DecodeError);
}

TEST(Codec, ArraysPairsTuples) {
  expect_round_trip(std::array<int, 4>{1, 2, 3, 4});
  expect_round_trip(std::array<int, 0>{});
  expect_round_trip(std::array<std::string, 2>{"x", "yy"});
  expect_round_trip(std::pair<int, std::string>{7, "seven"});
  expect_round_trip(std::pair<double, float>{1.0, 2.0f});
  expect_round_trip(std::tuple<>{});
  expect_round_trip(std::tuple<int, std::string, std::vector<double>>{1, "t", {0.5}});
  EXPECT_TRUE((codec::is_raw_v<std::array<int, 4>>));
  EXPECT_FALSE((codec::is_raw_v<std::array<std::string, 2>>));
}

TEST(Codec, OptionalAndVariant) {
  expect_round_trip(std::optional<int>{});
  expect_round_trip(std::optional<int>{42});
  expect_round_trip(std::optional<std::string>{"opt"});
  expect_round_trip(std::optional<std::optional<int>>{std::optional<int>{}});
  using V = std::variant<std::monostate, int, std::string, std::vector<double>>;
  expect_round_trip(V{});
  expect_round_trip(V{5});
  expect_round_trip(V{std::string("v")});
  expect_round_trip(V{std::vector<double>{1, 2}});
  // A trivially copyable optional/variant is still validated, never taken as raw bytes.
  EXPECT_FALSE(codec::is_raw_v<std::optional<int>>);
  EXPECT_FALSE((codec::is_raw_v<std::variant<int, float>>));
}

TEST(Codec, OptionalFlagAndVariantIndexAreValidated) {
  Bytes m = enc(std::optional<int>{3});
  m[8] = std::byte{9};
  EXPECT_THROW((void)codec::decode<std::optional<int>>(m), DecodeError);
  using V = std::variant<int, float>;
  Bytes v = enc(V{1});
  v[8] = std::byte{2};  // index 2 of a 2-alternative variant
  EXPECT_THROW((void)codec::decode<V>(v), DecodeError);
  v[8] = std::byte{0};
  v[11] = std::byte{0x80};
  EXPECT_THROW((void)codec::decode<V>(v), DecodeError);
}

TEST(Codec, MapsAndSets) {
  expect_round_trip(std::map<int, std::string>{});
  expect_round_trip(std::map<int, std::string>{{1, "one"}, {2, "two"}});
  expect_round_trip(std::map<std::string, std::vector<int>>{{"a", {1}}, {"b", {}}});
  expect_round_trip(std::unordered_map<std::string, int>{{"x", 1}, {"y", 2}});
  expect_round_trip(std::multimap<int, int>{{1, 1}, {1, 2}});
  expect_round_trip(std::set<int>{3, 1, 2});
  expect_round_trip(std::set<std::string>{});
  expect_round_trip(std::unordered_set<int>{5, 6});
  expect_round_trip(std::multiset<int>{1, 1, 1});
  expect_round_trip(std::unordered_multiset<int>{2, 2});
  expect_round_trip(std::deque<int>{1, 2});
  expect_round_trip(std::list<std::string>{"l", "m"});
}

TEST(Codec, DuplicateKeysAreCorrupt) {
  Bytes m = enc(std::set<std::int32_t>{1, 2});
  std::memcpy(m.data() + 20, m.data() + 16, 4);  // second key := first key
  EXPECT_THROW((void)codec::decode<std::set<std::int32_t>>(m), DecodeError);
  Bytes mm = enc(std::map<std::int32_t, std::int32_t>{{1, 5}, {2, 6}});
  std::memcpy(mm.data() + 24, mm.data() + 16, 4);
  using M = std::map<std::int32_t, std::int32_t>;
  EXPECT_THROW((void)codec::decode<M>(mm), DecodeError);
}

TEST(Codec, UserTypes) {
  expect_round_trip(Record{1, 2.5, "twelve chars"});
  expect_round_trip(Point{3, -4});
  Shape s;
  s.label = "tri";
  s.points = {{0, 0}, {1, 0}, {0, 1}};
  s.records["r"] = Record{9, 0.5, "nine"};
  s.extra = std::variant<int, std::string>(std::string("extra"));
  expect_round_trip(s);
  expect_round_trip(Shape{});
  expect_round_trip(std::vector<Record>{{1, 1, "a"}, {2, 2, "b"}});
  expect_round_trip(std::map<Point, int, decltype([](Point a, Point b) {
                               return std::tie(a.x, a.y) < std::tie(b.x, b.y);
                             })>{{{1, 2}, 3}});
  // A user type is encoded through its serialize, member by member.
  EXPECT_EQ(codec::encoded_size(Record{1, 2, "abc"}), 8u + 8u + 8u + 8u + 3u);
  EXPECT_FALSE(codec::is_raw_v<Record>);
  EXPECT_FALSE(codec::is_raw_v<Point>);  // has serialize, though trivially copyable
}

TEST(Codec, TriviallyCopyableStructTravelsAsItsBytes) {
  const Pod p{7, 1.5f, {'a', 'b', 'c', 'd', 'e', '\0'}};
  EXPECT_TRUE(codec::is_raw_v<Pod>);
  EXPECT_EQ(codec::encoded_size(p), 8u + sizeof(Pod));
  expect_round_trip(p);
  expect_round_trip(std::vector<Pod>{p, p});
}

// save/load split, member and free, and a private serialize reached through access.
class Split {
 public:
  Split() = default;
  explicit Split(int v) : v_(v) {}
  template <class A>
  void save(A& ar) const {
    ar(v_ * 2);
  }
  template <class A>
  void load(A& ar) {
    int twice = 0;
    ar(twice);
    v_ = twice / 2;
  }
  int value() const { return v_; }

 private:
  int v_ = 0;
};

class Private {
 public:
  Private() = default;
  explicit Private(std::string s) : s_(std::move(s)) {}
  const std::string& s() const { return s_; }

 private:
  friend struct concur::detail::codec::access;
  template <class A>
  void serialize(A& ar) {
    ar(s_);
  }
  std::string s_;
};

struct FreeSplit {
  int a = 0;
};
template <class A>
void save(A& ar, const FreeSplit& f) {
  ar(f.a + 1);
}
template <class A>
void load(A& ar, FreeSplit& f) {
  ar(f.a);
  f.a -= 1;
}

// cereal's versioned forms: serialize(ar, version), member and free; version is 0.
struct Versioned {
  int a = 0;
  std::uint32_t seen = 99;
  template <class A>
  void serialize(A& ar, const std::uint32_t version) {
    seen = version;
    ar(a);
  }
};
struct FreeVersioned {
  std::string s;
};
template <class A>
void serialize(A& ar, FreeVersioned& f, const std::uint32_t) {
  ar(f.s);
}

TEST(Codec, CerealVersionedSerialize) {
  const Versioned got = round_trip(Versioned{5, 99});
  EXPECT_EQ(got.a, 5);
  EXPECT_EQ(got.seen, 0u);
  EXPECT_EQ(round_trip(FreeVersioned{"v"}).s, "v");
  EXPECT_EQ(codec::encoded_size(Versioned{}), 8u + 4u);
}

// C arrays as members (cereal sends them too): raw ones as bytes, others element-wise.
struct WithArrays {
  int raw[3] = {};
  std::string names[2];
  template <class A>
  void serialize(A& ar) {
    ar(raw, names);
  }
};

TEST(Codec, CArrayMembers) {
  WithArrays w;
  w.raw[0] = 1;
  w.raw[2] = 3;
  w.names[1] = "second";
  const WithArrays got = round_trip(w);
  EXPECT_EQ(got.raw[2], 3);
  EXPECT_EQ(got.names[0], "");
  EXPECT_EQ(got.names[1], "second");
  EXPECT_EQ(codec::encoded_size(w), 8u + 12u + 8u + 8u + 6u);
}

TEST(Codec, SaveLoadAndPrivateSerialize) {
  EXPECT_EQ(round_trip(Split(21)).value(), 21);
  const Bytes m = enc(Split(21));
  int wire = 0;
  std::memcpy(&wire, m.data() + 8, 4);
  EXPECT_EQ(wire, 42);
  EXPECT_EQ(round_trip(Private("secret")).s(), "secret");
  EXPECT_EQ(round_trip(FreeSplit{5}).a, 5);
}

// An empty user type costs one pad byte per element in a counted sequence, so a count can
// always be checked against the bytes left.
struct Empty {
  template <class A>
  void serialize(A&) {}
  bool operator==(const Empty&) const = default;
};

TEST(Codec, EmptyElements) {
  expect_round_trip(Empty{});
  EXPECT_EQ(codec::encoded_size(Empty{}), 8u);
  expect_round_trip(std::vector<Empty>(100));
  EXPECT_EQ(codec::encoded_size(std::vector<Empty>(100)), 8u + 8u + 100u);
  expect_round_trip(std::vector<std::tuple<>>(3));
  expect_round_trip(std::map<int, Empty>{{1, {}}, {2, {}}});
  Bytes m = enc(std::vector<Empty>(2));
  m.back() = std::byte{1};  // pad bytes are 0
  EXPECT_THROW((void)codec::decode<std::vector<Empty>>(m), DecodeError);
}

TEST(Codec, EncodeToNeverAllocates) {
  Shape s;
  s.label = std::string(100, 'l');
  s.points.assign(50, Point{1, 2});
  for (int i = 0; i < 20; ++i) s.records["key" + std::to_string(i)] = Record{i, 1.0, "r"};
  s.extra = std::variant<int, std::string>(std::string(40, 'e'));
  const std::vector<std::int32_t> ints(1024, 7);
  std::vector<std::byte> buf(codec::encoded_size(s) + codec::encoded_size(ints));
  counting = true;  // the counter sees allocations: encode() into a vector is one
  allocations = 0;
  std::vector<std::byte> grown;
  codec::encode(ints, grown);
  counting = false;
  EXPECT_EQ(allocations, 1);
  counting = true;
  allocations = 0;
  const std::size_t n = codec::encoded_size(s);
  codec::encode_to(s, buf.data());
  codec::encode_to(ints, buf.data() + n);
  counting = false;
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(codec::decode<Shape>(std::span(buf.data(), n)), s);
  // decode_into a vector with the capacity allocates nothing either.
  std::vector<std::int32_t> out;
  out.reserve(1024);
  counting = true;
  codec::decode_into(std::span(buf).subspan(n), out);
  counting = false;
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(out, ints);
}

TEST(Codec, ChronoAndOtherTriviallyCopyableStdTypes) {
  using namespace std::chrono;
  expect_round_trip(milliseconds(1500));
  expect_round_trip(steady_clock::time_point(nanoseconds(123456789)));
  expect_round_trip(std::vector<seconds>{seconds(1), seconds(2)});
  EXPECT_TRUE(codec::is_raw_v<nanoseconds>);
  EXPECT_FALSE(codec::is_raw_v<std::string>);
  EXPECT_FALSE(codec::is_raw_v<int*>);
  EXPECT_FALSE(codec::Sendable<int*>);
  EXPECT_FALSE(codec::Sendable<std::string_view>);
  EXPECT_FALSE(codec::Sendable<std::span<const int>>);
  EXPECT_FALSE(codec::Sendable<std::vector<const char*>>);
  EXPECT_TRUE((codec::Sendable<std::map<std::string, std::vector<std::optional<Shape>>>>));
}

#if defined(__GNUC__) && !defined(__clang__)
// The tag scheme is a wire format: programs built from different versions of concur must
// keep agreeing. Changing it must be deliberate (bump "concur.codec.v1").
TEST(Codec, TagSchemeIsStable) {
  // FNV-1a-64 of "concur.codec.v1 int 4" (python3 computes the same).
  EXPECT_EQ(codec::type_name<std::int32_t>(), "int");
  EXPECT_EQ(codec::type_tag<std::int32_t>(), 0xbeb266d6c859c077ull);
  EXPECT_EQ(codec::type_tag<std::vector<std::string>>(), 0xd9452c1d2a1a1cdeull);
}
#endif

TEST(Codec, TypeMismatchIsTypeError) {
  const Bytes m = enc(std::int32_t{1});
  EXPECT_THROW((void)codec::decode<std::uint32_t>(m), concur::TypeError);
  EXPECT_THROW((void)codec::decode<float>(m), concur::TypeError);
  EXPECT_THROW((void)codec::decode<std::vector<int>>(enc(std::set<int>{1})), concur::TypeError);
  EXPECT_THROW((void)codec::decode<Record>(enc(Shape{})), concur::TypeError);
  try {
    (void)codec::decode<std::string>(m);
    FAIL();
  } catch (const concur::TypeError& e) {
    EXPECT_NE(std::string(e.what()).find("basic_string"), std::string::npos) << e.what();
  }
  // TypeError and DecodeError are distinct: DecodeError is a ValueError.
  static_assert(std::is_base_of_v<concur::ValueError, DecodeError>);
  static_assert(!std::is_base_of_v<concur::TypeError, DecodeError>);
}

TEST(Codec, TagsDifferBetweenTypes) {
  using namespace codec;
  const std::vector<std::uint64_t> tags = {type_tag<std::int32_t>(),
                                           type_tag<std::uint32_t>(),
                                           type_tag<float>(),
                                           type_tag<std::int64_t>(),
                                           type_tag<double>(),
                                           type_tag<bool>(),
                                           type_tag<char>(),
                                           type_tag<signed char>(),
                                           type_tag<unsigned char>(),
                                           type_tag<std::vector<int>>(),
                                           type_tag<std::set<int>>(),
                                           type_tag<std::vector<unsigned>>(),
                                           type_tag<std::string>(),
                                           type_tag<std::vector<char>>(),
                                           type_tag<std::map<int, int>>(),
                                           type_tag<std::unordered_map<int, int>>(),
                                           type_tag<std::pair<int, int>>(),
                                           type_tag<std::tuple<int, int>>(),
                                           type_tag<std::array<int, 2>>(),
                                           type_tag<std::array<int, 3>>(),
                                           type_tag<Record>(),
                                           type_tag<Point>(),
                                           type_tag<Color>(),
                                           type_tag<std::uint16_t>(),
                                           type_tag<std::optional<int>>(),
                                           type_tag<std::variant<int, float>>(),
                                           type_tag<std::variant<float, int>>()};
  const std::set<std::uint64_t> unique(tags.begin(), tags.end());
  EXPECT_EQ(unique.size(), tags.size());
  // Compile-time constants.
  static_assert(type_tag<int>() == type_tag<std::int32_t>());
  static_assert(type_tag<int>() != type_tag<unsigned>());
}

std::string tag_lines() {
  std::string out;
  codec_test::for_each_tagged([&](const char* name, std::uint64_t tag) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s 0x%016llx\n", name, static_cast<unsigned long long>(tag));
    out += buf;
  });
  return out;
}

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s.append(buf, static_cast<std::size_t>(n));
  }
  return s;
}

TEST(Codec, TagsAgreeInForkChildAndInAnotherProgram) {
  const std::string mine = tag_lines();
  {  // a fork child computes the same tags
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      const std::string s = tag_lines();
      const bool ok = ::write(fds[1], s.data(), s.size()) == static_cast<ssize_t>(s.size());
      ::_exit(ok ? 0 : 1);
    }
    ::close(fds[1]);
    EXPECT_EQ(read_all(fds[0]), mine);
    ::close(fds[0]);
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  {  // concur_child, a separate program compiled from the same definitions
    std::FILE* p = ::popen(CONCUR_CHILD_PATH " print-tags", "r");
    ASSERT_NE(p, nullptr);
    const std::string theirs = read_all(::fileno(p));
    EXPECT_EQ(::pclose(p), 0);
    EXPECT_EQ(theirs, mine);
    EXPECT_NE(theirs.find("Record 0x"), std::string::npos);
  }
}

// ---- hostile input ----

Bytes frame(std::uint64_t tag, std::initializer_list<std::uint64_t> words) {
  Bytes m(8 + 8 * words.size());
  std::memcpy(m.data(), &tag, 8);
  std::size_t at = 8;
  for (std::uint64_t w : words) {
    std::memcpy(m.data() + at, &w, 8);
    at += 8;
  }
  return m;
}

TEST(Codec, HostileLengthsAreRefusedBeforeAllocating) {
  using codec::type_tag;
  // cereal's binary archive allocates and zeroes 1 GiB here; the codec refuses.
  for (std::uint64_t n :
       {std::uint64_t{1} << 28, std::uint64_t{1} << 63, ~std::uint64_t{0}, std::uint64_t{1}}) {
    EXPECT_THROW((void)codec::decode<std::vector<std::int32_t>>(
                     frame(type_tag<std::vector<std::int32_t>>(), {n})),
                 DecodeError);
    EXPECT_THROW((void)codec::decode<std::string>(frame(type_tag<std::string>(), {n})),
                 DecodeError);
    EXPECT_THROW((void)codec::decode<std::vector<std::string>>(
                     frame(type_tag<std::vector<std::string>>(), {n})),
                 DecodeError);
    using M = std::map<int, int>;
    EXPECT_THROW((void)codec::decode<M>(frame(type_tag<M>(), {n})), DecodeError);
    EXPECT_THROW(
        (void)codec::decode<std::vector<Empty>>(frame(type_tag<std::vector<Empty>>(), {n})),
        DecodeError);
    EXPECT_THROW((void)codec::decode<std::vector<bool>>(frame(type_tag<std::vector<bool>>(), {n})),
                 DecodeError);
    EXPECT_THROW((void)codec::decode<std::list<Record>>(frame(type_tag<std::list<Record>>(), {n})),
                 DecodeError);
  }
  // A count that fits the bytes only if elements were smaller than they can be.
  EXPECT_THROW((void)codec::decode<std::vector<std::vector<int>>>(
                   frame(type_tag<std::vector<std::vector<int>>>(), {2, 0})),
               DecodeError);
  // Exactly enough bytes is fine.
  EXPECT_EQ(codec::decode<std::vector<std::vector<int>>>(
                frame(type_tag<std::vector<std::vector<int>>>(), {2, 0, 0})),
            (std::vector<std::vector<int>>{{}, {}}));
}

TEST(Codec, MessageLargerThanTheLimitIsRefused) {
  const Bytes m = enc(std::string(1000, 'a'));
  EXPECT_THROW((void)codec::decode<std::string>(m, 100), DecodeError);
  EXPECT_EQ(codec::decode<std::string>(m, m.size()), std::string(1000, 'a'));
  EXPECT_THROW((void)codec::message_tag(std::span(m.data(), 7)), DecodeError);
}

struct Node {
  int v = 0;
  std::vector<Node> kids;
  template <class A>
  void serialize(A& ar) {
    ar(v, kids);
  }
};

TEST(Codec, RecursionDepthIsBounded) {
  Node root;
  Node* at = &root;
  for (int i = 0; i < 100; ++i) {
    at->kids.resize(1);
    at = &at->kids[0];
  }
  EXPECT_EQ(round_trip(root, false).kids.size(), 1u);
  // A hostile chain of single-child nodes deeper than kMaxDepth: refused, no stack overflow.
  std::vector<std::uint64_t> words;
  Bytes m(8);
  const std::uint64_t tag = codec::type_tag<Node>();
  std::memcpy(m.data(), &tag, 8);
  for (int i = 0; i < 100000; ++i) {
    const std::int32_t v = i;
    const std::uint64_t one = 1;
    const auto* pv = reinterpret_cast<const std::byte*>(&v);
    const auto* po = reinterpret_cast<const std::byte*>(&one);
    m.insert(m.end(), pv, pv + 4);
    m.insert(m.end(), po, po + 8);
  }
  EXPECT_THROW((void)codec::decode<Node>(m), DecodeError);
}

// Random corruption of valid messages: decode either succeeds or throws DecodeError.
TEST(Codec, RandomCorruptionIsOnlyEverDecodeError) {
  Shape s;
  s.label = "shape";
  s.points = {{1, 2}, {3, 4}};
  s.records["k"] = Record{1, 2, "v"};
  s.records["l"] = Record{3, 4, "w"};
  s.extra = std::variant<int, std::string>(7);
  const Bytes good = enc(s);
  std::mt19937 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    Bytes m = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f)
      m[8 + rng() % (m.size() - 8)] = static_cast<std::byte>(rng() & 0xFF);
    try {
      (void)codec::decode<Shape>(m);
    } catch (const DecodeError&) {
    }
  }
}

}  // namespace
