#!/usr/bin/env python3
"""Regenerates the summary at the top of docs/benchmarks.md and docs/bench/speedup.{png,svg}.

    python3 bench/report.py [results-dir]      (default build/bench-results)

Reads the workload registry bench/workloads.txt, the Google Benchmark JSON files
(<prog>.json) and the Python peers' JSON lines (python_<script>.txt) that bench/run.sh wrote
into results-dir, plus run.json (machine, load, date). Writes results-dir/report.json, the
text between <!-- report:begin --> and <!-- report:end --> in docs/benchmarks.md (the
hand-written sections below the markers are kept as they are), and the chart with gnuplot.
"""
import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from markers import replace_between  # noqa: E402
DOCS = os.environ.get("BENCH_DOCS", os.path.join(ROOT, "docs"))  # where the report goes
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
DECORATIONS = re.compile(r"/(real_time|manual_time|threads:\d+|iterations:\d+|min_time:[\d.s]+)")


def is_rate(unit):
    return "/s" in unit


def time_scale(unit):
    """Seconds per unit for a time unit such as 'us', 'ms/proc', 'ns/pair'; None if a rate."""
    if is_rate(unit):
        return None
    return TIME_UNITS.get(unit.split("/")[0].split(" ")[0])


class Results:
    def __init__(self, out):
        self.out = out
        self.gb = {}  # prog -> {name: entry}
        self.py = {}  # script -> {bench: entry}

    def gbench(self, prog):
        if prog not in self.gb:
            runs, path = {}, os.path.join(self.out, prog + ".json")
            if os.path.exists(path):
                try:
                    data = json.load(open(path))
                except ValueError:
                    data = {"benchmarks": []}
                for b in data.get("benchmarks", []):
                    if b.get("error_occurred"):
                        continue
                    name = DECORATIONS.sub("", b.get("run_name", b["name"]))
                    # A median aggregate wins over single iterations; else the last run.
                    if b.get("run_type") == "aggregate":
                        if b.get("aggregate_name") == "median":
                            runs[name] = dict(b, _median=True)
                    elif not runs.get(name, {}).get("_median"):
                        runs[name] = b
            self.gb[prog] = runs
        return self.gb[prog]

    def python(self, script):
        if script not in self.py:
            lines, path = {}, os.path.join(self.out, "python_" + script + ".txt")
            if os.path.exists(path):
                for line in open(path):
                    try:
                        j = json.loads(line)
                        lines[j["bench"]] = j
                    except (ValueError, KeyError):
                        pass
            self.py[script] = lines
        return self.py[script]

    def value(self, src, unit):
        """The figure of source `src` in `unit`, or None when it was not measured."""
        if not src or src == "-":
            return None
        if src.startswith("py:"):
            _, script, bench = src.split(":", 2)
            j = self.python(script).get(bench)
            if j is None:
                return None
            v = float(j["median"])
            if is_rate(unit):
                return v  # same quantity per second (the registry pairs like with like)
            src_scale = time_scale(j["unit"])
            return v * src_scale / time_scale(unit) if src_scale else None
        prog, name = src.split(":", 1)
        field = None
        if "@" in name:
            name, field = name.split("@", 1)
        b = self.gbench(prog).get(name)
        if b is None:
            return None
        if field == "per_item":
            ips = b.get("items_per_second")
            return 1.0 / ips / time_scale(unit) if ips else None
        if field:
            return float(b[field]) if field in b else None
        if is_rate(unit):
            if unit.startswith("MB/s"):
                bps = b.get("bytes_per_second")
                return bps / 1e6 if bps else None
            return b.get("items_per_second")
        return float(b["real_time"]) * TIME_UNITS[b.get("time_unit", "ns")] / time_scale(unit)


def registry():
    rows = []
    for line in open(os.path.join(ROOT, "bench", "workloads.txt"), encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        kind, label, unit, concur, python, limit, peer = parts + ["-"] * (7 - len(parts))
        if kind.startswith("series"):
            xs = kind.split("x=", 1)[1].split(",")
            rows.append({"kind": "series", "label": label, "unit": unit, "xs": xs,
                         "src": [concur, python, limit, peer]})
        else:
            rows.append({"kind": "row", "label": label, "unit": unit,
                         "src": [concur, python, limit, peer]})
    return rows


def better(a, b, unit):
    """How many times better a is than b (>1: a is better), for a rate or a time."""
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return a / b if is_rate(unit) else b / a


def fmt(v, unit):
    if v is None:
        return "—"
    if is_rate(unit):
        for scale, p in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if v >= scale and not unit.startswith("MB/s"):
                return "%.3g %s %s" % (v / scale, p, unit)
        return ("%.3g %s" if v < 1000 else "%.0f %s") % (v, unit)
    base, _, per = unit.partition("/")
    steps = ["ns", "us", "ms", "s"]
    while base in steps[:-1] and v >= 10000:  # 20603 us -> 20.6 ms
        v, base = v / 1000, steps[steps.index(base) + 1]
    unit = base + ("/" + per if per else "")
    return ("%.3g %s" % (v, unit)) if v < 1000 else ("%.0f %s" % (v, unit))


def fx(r):
    return "—" if r is None else ("%.2f×" % r if r < 10 else "%.0f×" % r)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bench-results")
    res = Results(out)
    run = {}
    if os.path.exists(os.path.join(out, "run.json")):
        run = json.load(open(os.path.join(out, "run.json")))
    rows, series, report = [], [], {"run": run, "rows": [], "series": []}
    for w in registry():
        if w["kind"] == "row":
            c, p, l, q = (res.value(s, w["unit"]) for s in w["src"])
            r = {"workload": w["label"], "unit": w["unit"], "concur": c, "python": p,
                 "limit": l, "peer": q, "vs_python": better(c, p, w["unit"]),
                 "vs_limit": better(c, l, w["unit"]), "vs_peer": better(c, q, w["unit"])}
            rows.append(r)
            report["rows"].append(r)
        else:
            pts = []
            for x in w["xs"]:
                c, p, l, q = (res.value(s.replace("{x}", x), w["unit"]) for s in w["src"])
                pts.append({"x": x, "concur": c, "python": p, "limit": l, "peer": q,
                            "vs_python": better(c, p, w["unit"]), "vs_limit": better(c, l, w["unit"])})
            s = {"workload": w["label"], "unit": w["unit"], "points": pts}
            series.append(s)
            report["series"].append(s)
    json.dump(report, open(os.path.join(out, "report.json"), "w"), indent=1)

    md = [BEGIN, "", "## Summary (generated by `make bench`)", ""]
    md.append("Regenerated by `make bench` (`bench/run.sh` then `bench/report.py`; the workloads "
              "are the lines of `bench/workloads.txt`). Machine: %s. Date: %s. Load average "
              "before / after: %s / %s. Google Benchmark medians of %s repetitions; Python %s, "
              "medians of %s runs. \"× Python\" and \"× limit\" say how many times better concur "
              "is (higher is better for both: 1.00× the limit means at the OS floor)."
              % (run.get("machine", "?"), run.get("date", "?"), run.get("load_before", "?"),
                 run.get("load_after", "?"), run.get("repetitions", "?"),
                 run.get("python", "?"), run.get("peer_repeats", "?")))
    try:
        loaded = float(str(run.get("load_before", "0")).split()[0]) > (os.cpu_count() or 1)
    except ValueError:
        loaded = False
    if loaded:
        md += ["", "**This sitting ran on a loaded machine** (load average above its core count: "
               "other builds and tests shared it), so absolute figures are depressed and noisy "
               "(±30 % and more between sittings); read the ratios, and the module sections "
               "below for quieter sittings."]
    md += ["", "![speed-up over Python and ratio to the OS limit](bench/speedup.svg)", "",
           "| workload | concur | Python | OS limit | C++ peer | × Python | × limit | × C++ peer |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["workload"], fmt(r["concur"], r["unit"]), fmt(r["python"], r["unit"]),
            fmt(r["limit"], r["unit"]), fmt(r["peer"], r["unit"]), fx(r["vs_python"]),
            fx(r["vs_limit"]), fx(r["vs_peer"])))
    md += ["", "C++ peers: std::mutex / std::condition_variable / std::thread (libstdc++), "
           "oneTBB (concurrent_bounded_queue, task_group), Boost.Interprocess message_queue, "
           "cereal. OS limits: the raw syscall or memory traffic of `bench/limits/`.", "",
           "### How cost grows with the work", ""]
    for s in series:
        md += ["#### " + s["workload"], "",
               "| x | concur | Python | OS limit | × Python | × limit |", "|---|---|---|---|---|---|"]
        for pt in s["points"]:
            md.append("| %s | %s | %s | %s | %s | %s |" % (
                pt["x"], fmt(pt["concur"], s["unit"]), fmt(pt["python"], s["unit"]),
                fmt(pt["limit"], s["unit"]), fx(pt["vs_python"]), fx(pt["vs_limit"])))
        md.append("")
    md.append(END)
    path = os.path.join(DOCS, "benchmarks.md")

    def under_title(text, block):  # first run: the block goes right under the title
        head, _, rest = text.partition("\n")
        return head + "\n\n" + block + "\n" + rest

    replace_between(path, BEGIN, END, "\n".join(md), under_title)
    chart(rows)
    print("report: %d workloads, %d series -> %s, docs/bench/speedup.{png,svg}"
          % (len(rows), len(series), path))


def chart(rows):
    d = os.path.join(DOCS, "bench")
    os.makedirs(d, exist_ok=True)
    data = os.path.join(d, "speedup.dat")
    with open(data, "w", encoding="utf-8") as f:
        f.write("# workload\tx_python\tx_limit (1 = no value)\n")
        for r in rows:
            if r["vs_python"] is None and r["vs_limit"] is None:
                continue
            label = r["workload"].replace('"', "'")
            f.write('"%s"\t%s\t%s\n' % (label, r["vs_python"] or "NaN", r["vs_limit"] or "NaN"))
    script = """
set datafile separator "\\t"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 10
set yrange [0.01:1000]
set grid ytics
set ylabel "times better than the reference (log scale)"
set key top right
set xtics rotate by -35 left font ",8" nomirror
set bmargin 12
set rmargin 18
set title "concur: speed-up over Python 3, and fraction of the OS limit (1 = at the limit)"
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "black"
plot %(plots)s
"""
    kept = [r for r in rows if r["vs_python"] is not None or r["vs_limit"] is not None]
    plots = []
    if any(r["vs_python"] is not None for r in kept):
        plots.append('"%s" using 2:xtic(1) title "× Python (concur / Python)" lc rgb "#2b7bba"'
                     % data)
    if any(r["vs_limit"] is not None for r in kept):
        plots.append('"%s" using 3%s title "× OS limit (concur / limit)" lc rgb "#e69f00"'
                     % (data, "" if plots else ":xtic(1)"))
    if not plots:
        print("report: nothing to chart")
        return
    for term, ext in (('pngcairo size 1400,700 font "DejaVu Sans,10"', "png"),
                      ('svg size 1400,700 dynamic font "DejaVu Sans,10"', "svg")):
        subprocess.run(["gnuplot"], input="set terminal %s\nset output '%s'\n%s" % (
            term, os.path.join(d, "speedup." + ext), script % {"plots": ", ".join(plots)}),
            text=True, check=True)


if __name__ == "__main__":
    main()
