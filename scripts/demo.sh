#!/usr/bin/env bash
# The tour: runs the example programs of every module in the order of the Python notes
# (threading, queue, futures, multiprocessing, subprocess), each as listed in
# examples/<module>/demo.list ("name [args...]" a line; # starts a comment).
set -euo pipefail
build=${1:-build/default}
root=$(cd "$(dirname "$0")/.." && pwd)
ran=0
for module in threading queue futures multiprocessing subprocess mpi; do
  list=$root/examples/$module/demo.list
  [ -f "$list" ] || continue
  echo "################ concur::$module ################"
  launch=()
  if [ "$module" = mpi ]; then
    # MpiPoolExecutor's examples run over 3 ranks on this machine.
    if ! command -v mpirun >/dev/null || [ ! -d "$build/examples/mpi" ]; then
      echo "(skipped: mpirun or concur::mpi is absent; install libopenmpi-dev openmpi-bin)"
      continue
    fi
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
    launch=(mpirun --oversubscribe -np 3)
  fi
  while read -r name args; do
    [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
    echo
    echo "======== $module/$name $args"
    # shellcheck disable=SC2086
    "${launch[@]}" "$build/examples/$module/$name" $args
    ran=$((ran + 1))
  done < "$list"
  echo
done
echo "demo: $ran example programs ran"
