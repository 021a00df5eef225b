// Python's repr() of str (see concur/detail/py_repr.hpp).
#include "concur/detail/py_repr.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace concur::detail {
namespace {

struct Range {
  char32_t lo, hi;
};
constexpr Range kNonPrintable[] = {
#include "py_printable.inc"
};

bool printable_non_ascii(char32_t c) {
  const auto* it = std::upper_bound(std::begin(kNonPrintable), std::end(kNonPrintable), c,
                                    [](char32_t v, const Range& r) { return v < r.lo; });
  return it == std::begin(kNonPrintable) || c > std::prev(it)->hi;
}

// Decodes one strict UTF-8 sequence at s[i] (no overlongs, no surrogates, <= U+10FFFF);
// returns its length, 0 if the byte at i does not start a valid sequence.
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& out) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n;
  char32_t c;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    c = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    c = b0 & 0x0Fu;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    c = b0 & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b & 0x3Fu);
  }
  if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
      (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  out = c;
  return n;
}

void append_hex(std::string& r, char prefix, char32_t c, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  r += '\\';
  r += prefix;
  for (int d = digits - 1; d >= 0; --d) r += kHex[(c >> (4 * d)) & 15u];
}

}  // namespace

std::string py_repr(std::string_view s) {
  const bool dq = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos;
  const char quote = dq ? '"' : '\'';
  std::string r;
  r.reserve(s.size() + 2);
  r += quote;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      if (b == static_cast<unsigned char>(quote) || b == '\\') {
        r += '\\';
        r += static_cast<char>(b);
      } else if (b == '\t') {
        r += "\\t";
      } else if (b == '\n') {
        r += "\\n";
      } else if (b == '\r') {
        r += "\\r";
      } else if (b < 0x20 || b == 0x7F) {
        append_hex(r, 'x', b, 2);
      } else {
        r += static_cast<char>(b);
      }
      continue;
    }
    char32_t c = 0;
    const std::size_t n = decode_utf8(s, i, c);
    if (n == 0) {  // os.fsdecode's surrogateescape: a lone U+DCxx, never printable
      append_hex(r, 'u', 0xDC00u + b, 4);
      ++i;
      continue;
    }
    if (printable_non_ascii(c)) {
      r.append(s.substr(i, n));
    } else if (c <= 0xFF) {
      append_hex(r, 'x', c, 2);
    } else if (c <= 0xFFFF) {
      append_hex(r, 'u', c, 4);
    } else {
      append_hex(r, 'U', c, 8);
    }
    i += n;
  }
  r += quote;
  return r;
}

std::string py_repr(const std::vector<std::string>& list) {
  std::string r = "[";
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i) r += ", ";
    r += py_repr(list[i]);
  }
  return r + "]";
}

}  // namespace concur::detail
