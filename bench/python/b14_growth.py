# Cost-growth series (issue 13), the Python side of bench/growth_bench.cpp and friends:
#   mp.Queue throughput vs message size (8 B .. 1 MiB), one child process puts, parent gets;
#   ProcessPoolExecutor(2) throughput vs task size (bytes of argument per task);
#   Process start+join vs the parent's resident memory (0/16/64/256 MiB touched).
import multiprocessing as mp, time, sys, os
from concurrent.futures import ProcessPoolExecutor
sys.path.insert(0, os.path.dirname(__file__))
from _common import report, repeat

ctx = mp.get_context("fork")
SIZES = [8, 64, 512, 4096, 32768, 262144, 1048576]


def count(size, cap):
    return max(200, min(cap, (64 << 20) // size))


def produce(q, size, n):
    msg = b"x" * size
    for _ in range(n):
        q.put(msg)


def queue_once(size):
    n = count(size, 20000)
    q = ctx.Queue()
    p = ctx.Process(target=produce, args=(q, size, n))
    t0 = time.perf_counter()
    p.start()
    got = 0
    for _ in range(n):
        got += len(q.get())
    p.join()
    dt = time.perf_counter() - t0
    assert got == n * size
    return n / dt


def task(b):
    return len(b)


def pool_once(size):
    n = count(size, 5000) // 4
    arg = b"x" * size
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        list(ex.map(task, [arg] * 8))  # start the workers first
        t0 = time.perf_counter()
        total = sum(ex.map(task, [arg] * n))
        dt = time.perf_counter() - t0
    assert total == n * size
    return n / dt


def empty():
    pass


def start_once(mib):
    ballast = bytearray(b"\1" * (mib << 20))  # every page touched
    n = 50
    t0 = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=empty)
        p.start()
        p.join()
    dt = time.perf_counter() - t0
    del ballast
    return dt / n * 1e6


if __name__ == "__main__":
    for s in SIZES:
        report("growth mp.Queue bytes/%d" % s, "msgs/s", repeat(lambda: queue_once(s)))
    for s in SIZES:
        report("growth ProcessPoolExecutor bytes/%d" % s, "tasks/s", repeat(lambda: pool_once(s)))
    for m in [0, 16, 64, 256]:
        report("growth Process start+join rss/%d" % m, "us/proc", repeat(lambda: start_once(m)))
