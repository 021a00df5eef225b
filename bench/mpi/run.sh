#!/usr/bin/env bash
# MpiPoolExecutor's benchmark over 3 ranks, then its Python peers (mpi4py.futures and
# Python's ProcessPoolExecutor), in one sitting: bench/mpi/run.sh [build-dir] [n_lat n_tp].
set -euo pipefail
build=${1:-build/bench}
shift || true
root=$(cd "$(dirname "$0")/../.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
echo "== concur MpiPoolExecutor (3 ranks)"
mpirun -np 3 "$build/bench/mpi/mpi_executor_bench" "$@"
if /usr/bin/python3 -c "import mpi4py.futures" 2>/dev/null; then
  echo "== Python: mpi4py.futures (3 ranks) and ProcessPoolExecutor(2)"
  mpirun -np 3 /usr/bin/python3 -m mpi4py.futures "$root/bench/mpi/mpi4py_futures.py" "$@"
else
  echo "(mpi4py not installed: apt-get install python3-mpi4py)"
fi
