# A14: multiprocessing.connection.Client(address, authkey) to a Listener in another process:
# a new connection plus its HMAC handshake, over TCP on 127.0.0.1 and over AF_UNIX; and the
# same without a key (then the client waits for an empty message sent once accepted).
# Peer of bench/listener_bench.cpp.
import multiprocessing as mp, os, sys, tempfile, time
from multiprocessing.connection import Listener, Client
sys.path.insert(0, os.path.dirname(__file__))
from _common import report, repeat

ctx = mp.get_context("fork")
KEY = b"bench-key"

def serve(listener, key):
    while True:
        try:
            c = listener.accept()
            if key is None:
                c.send_bytes(b"")  # "accepted" (as bench/listener_bench.cpp)
            c.close()
        except Exception:
            pass

def per_connect_us(address, key, n):
    t0 = time.perf_counter()
    for _ in range(n):
        c = Client(address, authkey=key)
        if key is None:
            c.recv_bytes()
        c.close()
    return (time.perf_counter() - t0) / n * 1e6

def case(name, address, family, key, n):
    l = Listener(address, family=family, authkey=key, backlog=128)
    p = ctx.Process(target=serve, args=(l, key), daemon=True)
    p.start()
    try:
        report(name, "us per connect", repeat(lambda: per_connect_us(l.address, key, n)))
    finally:
        p.kill()
        p.join()
        l.close()

if __name__ == "__main__":
    case("Client(tcp, authkey)", ("127.0.0.1", 0), "AF_INET", KEY, 500)
    case("Client(tcp, no key)", ("127.0.0.1", 0), "AF_INET", None, 500)
    d = tempfile.mkdtemp()
    case("Client(unix, authkey)", os.path.join(d, "s1"), "AF_UNIX", KEY, 500)
    case("Client(unix, no key)", os.path.join(d, "s2"), "AF_UNIX", None, 500)
