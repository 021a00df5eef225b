#!/usr/bin/env bash
# Runs every concur benchmark program (each measures concur and the OS limit side by side),
# then the Python peers, into $BENCH_OUT (default build/bench-results). Pass program names
# to run a subset: bench/run.sh build/bench lock_bench.
set -euo pipefail
build=${1:-build/bench}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/build/bench-results}
mkdir -p "$out"
{ lscpu | grep 'Model name'; nproc; uname -r; python3 --version; g++ --version | head -1; } > "$out/machine.txt" 2>&1 || true
progs=("$@")
if [ ${#progs[@]} -eq 0 ]; then
  for b in "$build"/bench/*_bench; do [ -x "$b" ] && progs+=("$(basename "$b")"); done
fi
for p in "${progs[@]}"; do
  echo "== $p"
  "$build/bench/$p" --benchmark_out="$out/$p.json" --benchmark_out_format=json
done
if [ -z "${BENCH_NO_PYTHON:-}" ]; then
  for s in "$root"/bench/python/b*.py; do
    n=$(basename "$s" .py)
    echo "== python $n"
    PEER_REPEATS=${PEER_REPEATS:-3} python3 "$s" | tee "$out/python_$n.txt"
  done
fi
echo "results in $out"
