// concur/detail/py_repr.hpp — Python's repr() of a str and of a list of str.
//
// The one implementation behind every message that shows a string the way Python does
// (subprocess's CalledProcessError / TimeoutExpired / CompletedProcess, OSError's filename,
// Process and Thread reprs). The bytes are read as UTF-8 the way Python reads a file name
// (os.fsdecode: invalid bytes become lone surrogates U+DC80..U+DCFF), then quoted exactly
// as CPython's unicode_repr does: single quotes unless the text holds a single quote and no
// double quote; backslash and the chosen quote escaped; \t \n \r; other ASCII controls and
// DEL as \xHH; printable non-ASCII characters as they are; non-printable ones (per
// str.isprintable(), table from scripts/gen_py_printable.py) as \xHH, \uHHHH or \UHHHHHHHH.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace concur::detail {

// repr(s): "'hi\\n'" for "hi\n", "\"it's\"" for "it's".
std::string py_repr(std::string_view s);
// repr(list): "['echo', 'hi']".
std::string py_repr(const std::vector<std::string>& list);

}  // namespace concur::detail
