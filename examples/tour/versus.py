# The tour's live table (scripts/versus.sh): the Python side of examples/tour/versus.cpp,
# the same workload with the standard library, printed as "<operations per second>".
#   python3 versus.py lock|queue|pool|process|pipe|mpqueue
import multiprocessing as mp
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ctx = mp.get_context("fork")  # what concur does (fork); also Python's Linux default before 3.14


def lock_batch(n):
    lock = threading.Lock()
    for _ in range(n):
        lock.acquire()
        lock.release()


def queue_batch(n):
    q = queue.Queue()

    def consumer():
        for _ in range(n):
            q.get()

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(n):
        q.put(i)
    t.join()


def pool_batch(n):
    with ThreadPoolExecutor(2) as ex:
        fs = [ex.submit(int) for _ in range(n)]
        for f in fs:
            f.result()


def empty():
    pass


def process_batch(n):
    for _ in range(n):
        p = ctx.Process(target=empty)
        p.start()
        p.join()


def echo(c, count):
    for _ in range(count):
        c.send(c.recv())


def pipe_batch(n):
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b, n))
    p.start()
    b.close()
    for i in range(n):
        a.send(i)
        a.recv()
    p.join()


def produce(q, count):
    for i in range(count):
        q.put(i)


def mpqueue_batch(n):
    q = ctx.Queue()
    p = ctx.Process(target=produce, args=(q, n))
    p.start()
    for _ in range(n):
        q.get()
    p.join()


def measure(batch):
    n = 1
    while True:
        t0 = time.perf_counter()
        batch(n)
        dt = time.perf_counter() - t0
        if dt >= 0.1:
            break
        n *= 10 if dt < 0.01 else 2
    best = n / dt
    for _ in range(3):
        t0 = time.perf_counter()
        batch(n)
        best = max(best, n / (time.perf_counter() - t0))
    return best


if __name__ == "__main__":
    batches = {"lock": lock_batch, "queue": queue_batch, "pool": pool_batch,
               "process": process_batch, "pipe": pipe_batch, "mpqueue": mpqueue_batch}
    if len(sys.argv) != 2 or sys.argv[1] not in batches:
        sys.exit("usage: versus.py " + "|".join(batches))
    print("%.6g" % measure(batches[sys.argv[1]]))
