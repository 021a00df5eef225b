#!/usr/bin/env bash
# `make bench`: runs every concur benchmark program (each measures concur, the OS limit and
# the C++ peer side by side), then the Python peers, with progress, into $BENCH_OUT (default
# build/bench-results), then bench/report.py regenerates the summary of docs/benchmarks.md
# and docs/bench/speedup.{png,svg}. Pass program names to run a subset (no report then,
# unless BENCH_REPORT=1): bench/run.sh build/bench lock_bench.
#   BENCH_REPS (3) repetitions per benchmark, BENCH_MIN_TIME (0.1) seconds per repetition,
#   PEER_REPEATS (3) runs per Python peer, BENCH_NO_PYTHON=1 skips the Python peers.
set -euo pipefail
build=${1:-build/bench}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build/bench-results}
reps=${BENCH_REPS:-3}
min_time=${BENCH_MIN_TIME:-0.1}
mkdir -p "$out"
{ lscpu | grep 'Model name'; nproc; uname -r; python3 --version; g++ --version | head -1; } > "$out/machine.txt" 2>&1 || true
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$SECONDS
progs=("$@")
report=${BENCH_REPORT:-}
if [ ${#progs[@]} -eq 0 ]; then
  report=1
  for b in "$build"/bench/*_bench; do [ -x "$b" ] && progs+=("$(basename "$b")"); done
fi
scripts=()
if [ -z "${BENCH_NO_PYTHON:-}" ] && command -v python3 >/dev/null; then
  scripts=("$root"/bench/python/b*.py)
fi
total=$((${#progs[@]} + ${#scripts[@]}))
i=0
for p in "${progs[@]}"; do
  i=$((i + 1))
  echo "[$i/$total] $p ($((SECONDS - t0)) s so far)"
  "$build/bench/$p" --benchmark_repetitions="$reps" --benchmark_min_time="$min_time" \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/$p.json" --benchmark_out_format=json >"$out/$p.txt" 2>&1 ||
    echo "   $p failed (see $out/$p.txt)"
done
for s in "${scripts[@]}"; do
  i=$((i + 1))
  n=$(basename "$s" .py)
  echo "[$i/$total] python $n ($((SECONDS - t0)) s so far)"
  PEER_REPEATS=${PEER_REPEATS:-3} python3 "$s" >"$out/python_$n.txt" 2>"$out/python_$n.err" ||
    echo "   python $n failed (see $out/python_$n.err)"
done
# MpiPoolExecutor over 3 ranks and its Python peers (mpi4py.futures, ProcessPoolExecutor):
# not Google Benchmark output, kept as text beside the others (docs/benchmarks.md, MPI).
if [ ${#@} -eq 0 ] && command -v mpirun >/dev/null && [ -x "$build/bench/mpi/mpi_executor_bench" ]; then
  echo "[mpi] bench/mpi/run.sh ($((SECONDS - t0)) s so far)"
  bash "$root/bench/mpi/run.sh" "$build" >"$out/mpi.txt" 2>&1 || echo "   mpi failed (see $out/mpi.txt)"
fi
machine=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cat >"$out/run.json" <<JSON
{"machine": "$machine, $(nproc) vCPUs, Linux $(uname -r)", "date": "$started",
 "load_before": "$load_before", "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "repetitions": $reps, "peer_repeats": ${PEER_REPEATS:-3},
 "python": "$(python3 --version 2>&1 | cut -d' ' -f2)", "seconds": $((SECONDS - t0))}
JSON
echo "results in $out ($((SECONDS - t0)) s)"
if [ -n "$report" ]; then
  python3 "$root/bench/report.py" "$out"
fi
