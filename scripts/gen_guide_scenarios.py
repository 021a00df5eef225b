#!/usr/bin/env python3
"""Regenerates the "The notes, scenario by scenario" part of docs/guide.md: for every scenario
of the tour (the table in scripts/demo.sh, the single list of scenarios), the Python snippet
of the note beside the concur program that `make demo` runs for it (examples/*/<prog>.cpp).

    python3 scripts/gen_guide_scenarios.py [--check] [seeds-dir]   (default ../shared/seeds)

Run it again after adding a scenario or an example (the pool and manager branches' programs
appear once they are in examples/). The text between <!-- scenarios:begin --> and
<!-- scenarios:end --> in docs/guide.md is replaced; the rest of the guide is kept.
"""
import glob
import html
import os
import re
import sys

from markers import replace_between

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- scenarios:begin -->", "<!-- scenarios:end -->"

# program -> the Python snippets of the notes it answers: (note number, line of the snippet's
# opening ``` fence or "In [n]:" cell in that note). Programs without a snippet answer a
# note's prose (or go beyond the notes); the guide says so.
SNIPPETS = {
    "thread_basic": [("000", 38)], "thread_subclass": [("000", 65)],
    "thread_logging": [("000", 94)], "daemon_thread": [("000", 126)],
    "daemon_thread_join": [("000", 160)], "thread_event": [("000", 198)],
    "thread_lock": [("000", 282)], "thread_rlock": [("000", 371)],
    "thread_condition": [("000", 472)], "thread_semaphore": [("000", 547)],
    "thread_local_data": [("000", 618)], "countdown": [("002", 241)],
    "worker_pool": [("002", 66), ("004", 36)], "queue_kinds": [("002", 122), ("002", 139)],
    "daemon_worker": [("002", 155)], "square_cube": [("002", 181), ("002", 206)],
    "pool_square_cube": [("002", 181)], "process_info": [("002", 256)],
    "process_basic": [("003", 18)], "process_subclass": [("003", 56)],
    "process_logging": [("003", 105)], "daemon_process": [("003", 132)],
    "process_exit": [("003", 171)], "shared_counter": [("001", 28)],
    "lost_updates": [("001", 101)], "queue_hello": [("003", 258)],
    "pipe_message": [("003", 298)], "clock_queue": [("001", 297)],
    "clock_pipe": [("001", 360)], "manager_clock": [("001", 197), ("001", 247)],
    "echo": [("002", 39), ("002", 45)], "sleep": [("002", 50)],
}
PROSE = {
    "thread_pool": "note 000 recommends `concurrent.futures` (\"멀티코어 CPU에서는 "
                   "`concurrent.futures.ProcessPoolExecutor`를 사용하는 것은 권장\"); this is "
                   "its thread-pool half.",
    "gil_lesson": "note 000, GIL: \"CPython은 `coarse-grained lock` 이기 때문에 Cpython에서 "
                  "thread를 여러개 생성하는 것이 생각보다 효율이 높지 않음\" — C++ has no GIL.",
    "pool_gil": "note 000, GIL: CPU-bound work belongs on a `ProcessPoolExecutor` in Python.",
    "counter_get_lock": "note 001, 1-3 결론: \"동시에 write하는 경우 문제가 발생할 수 있으니\" — "
                        "the fix Python also has: `with counter.get_lock(): counter.value += 1`.",
    "counter_fetch_add": "note 001, 1-3 결론 — a fix Python does not have: one atomic add.",
    "robust_lock": "note 001, 1-2 한계 — beyond Python: a lock holder killed mid-update.",
    "manager_remote": "note 001, 2. Server Process — the manager reached over a socket.",
    "pipeline": "note 002, 6.1.1: parent and child processes — two children joined by a pipe.",
    "timeout": "note 002, 6.1.1 (`subprocess.run(['sleep','10'])`) with a timeout.",
}


def scenarios():
    """(part, heading, note, program, args) from the table in scripts/demo.sh."""
    text = open(os.path.join(ROOT, "scripts", "demo.sh"), encoding="utf-8").read()
    table = text.split("cat <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    part, out = "", []
    for line in table.splitlines():
        if line.startswith("## "):
            part = line[3:]
            continue
        heading, note, cmd = (x.strip() for x in line.split("|"))
        prog, _, args = cmd.partition(" ")
        out.append((part, heading, note, prog, args))
    return out


def note_file(seeds, num):
    return glob.glob(os.path.join(seeds, num + "_*.txt"))[0]


def snippet(seeds, num, line):
    lines = open(note_file(seeds, num), encoding="utf-8").read().splitlines()
    start = line  # 1-based line of the fence / cell marker; the code starts after it
    body = []
    if lines[start - 1].lstrip().startswith("```"):
        for text in lines[start:]:
            if text.strip() == "```":
                break
            body.append(text)
    else:  # a notebook cell: up to its output, the next heading or the next cell
        for text in lines[start:]:
            if re.match(r"^(In \[|##|스레드|CompletedProcess|\d+$)", text):
                break
            body.append(text)
    while body and not body[-1].strip():
        body.pop()
    indent = min((len(t) - len(t.lstrip()) for t in body if t.strip()), default=0)
    return "\n".join(t[indent:] for t in body)


def concur_source(prog):
    paths = glob.glob(os.path.join(ROOT, "examples", "*", prog + ".cpp"))
    if not paths:
        return None, None
    src = open(paths[0], encoding="utf-8").read().splitlines()
    i = 0
    while i < len(src) and (src[i].startswith("//") or not src[i].strip()):
        i += 1  # the header comment quotes the Python side already
    return os.path.relpath(paths[0], ROOT), "\n".join(src[i:]).rstrip()


def cell(lang, code):
    return "\n\n```%s\n%s\n```\n\n" % (lang, code)


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    check = "--check" in sys.argv[1:]  # exit 1 if docs/guide.md is not what this writes
    seeds = args[0] if args else os.path.join(ROOT, "..", "shared", "seeds")
    if not os.path.isdir(seeds):
        seeds = "/work/shared/seeds"
    out = [BEGIN, "", "## The notes, scenario by scenario", "",
           "Every scenario of the Python notes, in the order `make demo` runs them "
           "(`scripts/demo.sh`): the note's own Python on the left, the concur program the "
           "tour runs on the right (its header comment, which quotes the Python again, is "
           "left out). Generated by `scripts/gen_guide_scenarios.py` from the notes and "
           "`examples/`; the notes are cited by their number in `../shared/seeds/`.", ""]
    part = None
    done = set()
    for sc_part, heading, note, prog, args in scenarios():
        if sc_part != part:
            part = sc_part
            out += ["### " + part, ""]
        if prog in done:
            continue  # e.g. daemon_process and "daemon_process join": one program, one entry
        done.add(prog)
        out += ["#### %s (note %s)" % (heading, note), ""]
        path, code = concur_source(prog)
        py = [snippet(seeds, n, ln) for n, ln in SNIPPETS.get(prog, [])]
        left = "".join(cell("python", p) for p in py) if py else \
            "\n\n" + html.escape(PROSE.get(prog, "(no snippet in the notes)")) + "\n\n"
        right = cell("cpp", code) if code else \
            "\n\n`%s` (not in this tree yet: it comes with the branch that builds it)\n\n" % prog
        run = "<code>%s%s</code>" % (prog, " " + args if args else "")
        out += ["<table><tr><th>Python (note %s)</th><th>concur — %s, run as %s</th></tr>"
                % (note.split()[0], "<code>%s</code>" % (path or prog), run),
                "<tr><td valign=\"top\">" + left + "</td><td valign=\"top\">" + right +
                "</td></tr></table>", ""]
    out.append(END)
    path = os.path.join(ROOT, "docs", "guide.md")
    if check:
        text = open(path, encoding="utf-8").read()
        current = text[text.index(BEGIN):text.index(END) + len(END)] if BEGIN in text else ""
        if current != "\n".join(out):
            print("docs/guide.md is out of date: run scripts/gen_guide_scenarios.py")
            sys.exit(1)
        print("guide: up to date")
        return
    replace_between(path, BEGIN, END, "\n".join(out),
                    lambda text, block: text.rstrip("\n") + "\n\n" + block + "\n")
    print("guide: %d scenarios -> %s" % (len(done), path))


if __name__ == "__main__":
    main()
