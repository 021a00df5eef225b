#!/usr/bin/env bash
# The end of the tour: concur against Python's standard library on six workloads, measured
# now (examples/tour/versus and examples/tour/versus.py, ~1 s per workload per side), with
# progress while it measures. Skipped with a note when python3 or the program is missing.
# Always exits 0.  Usage: scripts/versus.sh [build-dir]
set -uo pipefail
build=${1:-build/default}
root=$(cd "$(dirname "$0")/.." && pwd)
prog=$build/examples/tour/versus
py=$root/examples/tour/versus.py
python=${PYTHON:-python3}  # the Python to compare with
# key | what is measured (the same work on both sides)
workloads() {
  cat <<'W'
lock    | Lock acquire + release, uncontended
queue   | queue.Queue, one thread puts, another gets
pool    | ThreadPoolExecutor(2), no-op submit + result
process | Process start + join, empty target
pipe    | Pipe round trip with a child process
mpqueue | multiprocessing.Queue, child process -> parent
W
}
if ! command -v "$python" >/dev/null; then
  echo "(python3 is not installed: the comparison with Python is skipped)"
  exit 0
fi
if [ ! -x "$prog" ]; then
  echo "(examples/tour/versus is not built: the comparison is skipped)"
  exit 0
fi
human() { # 12345678 -> "12.3 M/s"
  awk -v x="$1" 'BEGIN { u = ""; if (x >= 1e9) { x /= 1e9; u = "G" } else if (x >= 1e6) { x /= 1e6; u = "M" } else if (x >= 1e3) { x /= 1e3; u = "k" }
                         printf (x >= 100 ? "%.0f %s/s" : "%.3g %s/s"), x, u }'
}
total=$(workloads | wc -l)
rows=()
i=0
while IFS='|' read -r key label; do
  key=${key// /} label=${label# }
  i=$((i + 1))
  printf '[%d/%d] %-48s concur ...' "$i" "$total" "$label" >&2
  c=$(nice -n 0 "$prog" "$key" 2>/dev/null) || c=""
  printf ' %s, python3 ...' "${c:+$(human "$c")}" >&2
  p=$(timeout 60 "$python" "$py" "$key" 2>/dev/null) || p=""
  printf ' %s\n' "${p:+$(human "$p")}" >&2
  if [ -n "$c" ] && [ -n "$p" ]; then
    ratio=$(awk -v c="$c" -v p="$p" 'BEGIN { printf "%.1fx", c / p }')
  else
    ratio="-"
  fi
  rows+=("$(printf '| %-48s | %12s | %12s | %8s |' "$label" "${c:+$(human "$c")}" "${p:+$(human "$p")}" "$ratio")")
done < <(workloads)
echo
printf '| %-48s | %12s | %12s | %8s |\n' "workload (operations per second)" "concur" "Python 3" "concur/Py"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..50})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..10})"
printf '%s\n' "${rows[@]}"
echo "($("$python" --version 2>&1); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "best of 3 slices of ~0.1 s each side: a loaded machine moves these numbers, not their order)"
exit 0
