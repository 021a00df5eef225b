// concur::detail::py_repr against CPython's repr() of the same strings. The expected texts
// were printed by python3 (3.11) and are checked again against a live python3 when there
// is one.
#include "concur/detail/py_repr.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "concur/errors.hpp"
#include "concur/subprocess.hpp"

using concur::detail::py_repr;

namespace {

struct Case {
  std::string in, out;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"", "''"},
      {"abc", "'abc'"},
      {"it's", "\"it's\""},
      {"say \"hi\"", "'say \"hi\"'"},
      {"both ' and \"", "'both \\' and \"'"},
      {"back\\slash", "'back\\\\slash'"},
      {"nl\ntab\tcr\r", "'nl\\ntab\\tcr\\r'"},
      {std::string("nul\0x", 5), "'nul\\x00x'"},
      {"\x01\x1b\x7f", "'\\x01\\x1b\\x7f'"},
      {"caf\xc3\xa9", "'caf\xc3\xa9'"},
      {"\xec\x9d\xb4\xea\xb2\x83", "'\xec\x9d\xb4\xea\xb2\x83'"},
      {"\xc2\x85", "'\\x85'"},                      // U+0085 NEL
      {"\xc2\xa0", "'\\xa0'"},                      // U+00A0 NO-BREAK SPACE
      {"\xc2\xad", "'\\xad'"},                      // U+00AD SOFT HYPHEN (Cf)
      {"\xe2\x80\x8b", "'\\u200b'"},                // U+200B ZERO WIDTH SPACE
      {"\xe2\x80\xa8", "'\\u2028'"},                // U+2028 LINE SEPARATOR
      {"\xef\xbb\xbf", "'\\ufeff'"},                // BOM
      {"\xf0\x9f\x98\x80", "'\xf0\x9f\x98\x80'"},   // U+1F600
      {"\xf3\xa0\x80\x81", "'\\U000e0001'"},        // U+E0001 LANGUAGE TAG
      {"\xff", "'\\udcff'"},                        // invalid byte: surrogateescape
      {"a\xe2\x82z", "'a\\udce2\\udc82z'"},         // truncated sequence
      {"\xed\xa0\x80", "'\\udced\\udca0\\udc80'"},  // encoded surrogate
      {"\xc0\xaf", "'\\udcc0\\udcaf'"},             // overlong '/'
  };
  return c;
}

}  // namespace

TEST(PyRepr, MatchesPythonOnTrickyStrings) {
  for (const auto& c : cases()) EXPECT_EQ(py_repr(c.in), c.out) << c.in;
}

TEST(PyRepr, MatchesLivePython) {
  // Feed each case (hex-encoded) to python3: repr(os.fsdecode(bytes)).
  std::string script =
      "import os,sys\nfor h in sys.argv[1:]: print(repr(os.fsdecode(bytes.fromhex(h))))\n";
  std::vector<std::string> args = {"python3", "-c", script};
  for (const auto& c : cases()) {
    std::string h;
    char b[3];
    for (unsigned char ch : c.in) {
      std::snprintf(b, sizeof b, "%02x", ch);
      h += b;
    }
    args.push_back(h);
  }
  concur::subprocess::CompletedProcess cp;
  try {
    cp = concur::subprocess::run(args, {.capture_output = true,
                                        .env = concur::subprocess::Environment{
                                            {"PATH", "/usr/bin:/bin"}, {"LC_ALL", "C.UTF-8"}}});
  } catch (const concur::FileNotFoundError&) {
    GTEST_SKIP() << "no python3";
  }
  ASSERT_EQ(cp.returncode, 0) << cp.err;
  std::string expect;
  for (const auto& c : cases()) expect += py_repr(c.in) + "\n";
  EXPECT_EQ(cp.out, expect);
}

TEST(PyRepr, ListAndSubprocessMessages) {
  EXPECT_EQ(py_repr(std::vector<std::string>{"echo", "it's"}), "['echo', \"it's\"]");
  EXPECT_EQ(py_repr(std::vector<std::string>{}), "[]");
  concur::subprocess::CalledProcessError e(1, {"sh", "-c", "echo it's"});
  EXPECT_STREQ(e.what(), "Command '['sh', '-c', \"echo it's\"]' returned non-zero exit status 1.");
  EXPECT_EQ(concur::subprocess::format_args({"a\\b"}), "['a\\\\b']");
}
