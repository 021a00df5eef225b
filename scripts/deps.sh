#!/usr/bin/env bash
# Installs the Debian packages concur's build, tests, examples and benchmarks need.
# As root: apt-get installs whatever is missing. Otherwise: prints the exact command and fails.
set -euo pipefail
pkgs=(cmake ninja-build g++ make pkg-config python3 libgtest-dev libgmock-dev libbenchmark-dev
      libcereal-dev libssl-dev libtbb-dev libboost-dev clang doxygen gnuplot-nox
      libopenmpi-dev openmpi-bin python3-mpi4py)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "deps: missing Debian packages. Run:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
