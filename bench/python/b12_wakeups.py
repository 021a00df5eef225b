# A12: wake-up round trips between two threads: threading.Event pair and
# threading.Condition ping-pong (the Python peer of lock_bench's BM_Event_pingpong and
# BM_Condition_pingpong; added by the sync helper, not in the original peer set).
import threading, time, sys
sys.path.insert(0, __import__("os").path.dirname(__file__))
from _common import report, repeat

N = 20_000

def event_rt():
    ping, pong = threading.Event(), threading.Event()
    def partner():
        for _ in range(N):
            ping.wait(); ping.clear(); pong.set()
    t = threading.Thread(target=partner); t.start()
    t0 = time.perf_counter()
    for _ in range(N):
        ping.set(); pong.wait(); pong.clear()
    dt = time.perf_counter() - t0
    t.join()
    return dt / N * 1e6

def cond_rt():
    c = threading.Condition(threading.Lock())
    turn = [0]
    def partner():
        with c:
            for _ in range(N):
                c.wait_for(lambda: turn[0] == 1); turn[0] = 0; c.notify()
    t = threading.Thread(target=partner); t.start()
    t0 = time.perf_counter()
    with c:
        for _ in range(N):
            turn[0] = 1; c.notify(); c.wait_for(lambda: turn[0] == 0)
    dt = time.perf_counter() - t0
    t.join()
    return dt / N * 1e6

if __name__ == "__main__":
    report("threading.Event ping-pong, 2 threads (20k RT)", "us/RT", repeat(event_rt))
    report("threading.Condition ping-pong, 2 threads (20k RT)", "us/RT", repeat(cond_rt))
