#!/usr/bin/env python3
"""Doxygen input filter (docs/api/Doxyfile): concur's headers document each name with plain
// comments right above it (STYLE.md). This turns those lines into /// so Doxygen reads them,
without touching the headers; a trailing "// ..." after code becomes ///< (a member's note).
In the comment text <, >, \\ and @ are escaped: the comments speak C++ (Future<T>, a -> b),
not HTML or Doxygen commands."""
import re
import sys

LEAD = re.compile(r"^(\s*)//(?!/)(.*)$")
TRAIL = re.compile(r"^(.*?[;{,]\s*)//(?!/)(.*)$")


def esc(text):
    return re.sub(r"([<>\\@])", r"\\\1", text)


for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    m = LEAD.match(line)
    if m:
        line = m.group(1) + "///" + esc(m.group(2))
    elif not line.lstrip().startswith("#") and '"' not in line:
        m = TRAIL.match(line)
        if m:
            line = m.group(1) + "///<" + esc(m.group(2))
    print(line)
