# The codec's Python peer (bench/codec_bench.cpp): pickle.dumps + pickle.loads, the step
# multiprocessing runs for every message it sends (Connection.send, Queue.put), of the same
# two values: a small record (int, float, 12-char str) and 1024 int32 (array.array('i'), the
# closest Python has to a std::vector<int32_t>; a list of 1024 ints is given too).
# Times are this thread's CPU time (time.thread_time), as Google Benchmark's CPU column: on
# the shared 2-vCPU machine wall time mostly measures the other tenants.
import array, pickle, time, sys
sys.path.insert(0, __import__("os").path.dirname(__file__))
from _common import report, repeat

def per_call(value, n):
    dumps, loads, proto = pickle.dumps, pickle.loads, pickle.HIGHEST_PROTOCOL
    t0 = time.thread_time()
    for _ in range(n):
        loads(dumps(value, proto))
    return (time.thread_time() - t0) / n * 1e9

if __name__ == "__main__":
    record = (42, 3.5, "twelve chars")
    report("pickle dumps+loads of (int, float, 12-char str) (200k)", "ns/round trip",
           repeat(lambda: per_call(record, 200_000)))
    ints = array.array("i", range(-512, 512))
    report("pickle dumps+loads of array('i', 1024 ints) (100k)", "ns/round trip",
           repeat(lambda: per_call(ints, 100_000)))
    report("pickle dumps+loads of a list of 1024 ints (20k)", "ns/round trip",
           repeat(lambda: per_call(list(ints), 20_000)))
