"""The one helper that rewrites a generated block of a hand-written document: the text
between two marker lines is replaced, everything else is kept. Used by bench/report.py
(docs/benchmarks.md) and scripts/gen_guide_scenarios.py (docs/guide.md)."""


def replace_between(path, begin, end, block, place_new):
    """Puts `block` (which starts with `begin` and ends with `end`) into the file at `path`,
    replacing the old block; without one, place_new(text, block) says where it goes."""
    text = open(path, encoding="utf-8").read()
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = place_new(text, block)
    open(path, "w", encoding="utf-8").write(text)
