"""mpi4py.futures (the anchor) and Python's ProcessPoolExecutor, the same measures as
executor_bench.cpp: one-task latency, submit+result tasks/s, map items/s (chunksize 1, 64).
Run: mpirun -np 3 /usr/bin/python3 -m mpi4py.futures bench/mpi/mpi4py_futures.py [n_lat n_tp]
(rank 0 runs this file; ranks 1-2 are mpi4py's workers). The ProcessPoolExecutor case uses
2 worker processes on this node, started after the MPI part."""
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from mpi4py.futures import MPIPoolExecutor


def inc(x):
    return x + 1


def bench(label, ex, n_lat, n_tp):
    for i in range(200):
        ex.submit(inc, i).result()
    t0 = time.perf_counter()
    for i in range(n_lat):
        ex.submit(inc, i).result()
    print(f"{label:<14} one-task latency          {(time.perf_counter() - t0) / n_lat * 1e6:8.2f} us")
    t0 = time.perf_counter()
    fs = [ex.submit(inc, i) for i in range(n_tp)]
    for f in fs:
        f.result()
    tps = n_tp / (time.perf_counter() - t0)
    print(f"{label:<14} submit+result tasks/s     {tps:8.0f} /s")
    for chunk in (1, 64):
        t0 = time.perf_counter()
        s = sum(ex.map(inc, [0] * n_tp, chunksize=chunk))
        assert s == n_tp
        print(f"{label:<14} map chunksize={chunk:<3} items/s {n_tp / (time.perf_counter() - t0):8.0f} /s")
    sys.stdout.flush()


if __name__ == "__main__":
    n_lat = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    n_tp = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    with MPIPoolExecutor() as ex:
        bench("mpi4py.futures", ex, n_lat, n_tp)
    with ProcessPoolExecutor(2) as ex:
        bench("ProcessPool", ex, n_lat, n_tp)
