"""concurrent.futures.ThreadPoolExecutor after patch_all(): its workers are greenlets."""
from stolon import monkey

monkey.patch_all()

import concurrent.futures
import threading
import time

import stolon


def work(n):
    time.sleep(0.05)
    # a worker thread is a greenlet: its identifier is the greenlet's
    return n * 2, threading.get_ident() == id(stolon.getcurrent())


start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=8) as executor:
    mapped = list(executor.map(work, range(8)))
    print("map", [value for value, _ in mapped])
    print("workers are greenlets", all(in_greenlet for _, in_greenlet in mapped))
    futures = [executor.submit(work, n) for n in range(4)]
    done, not_done = concurrent.futures.wait(futures, timeout=5)
    print("wait", len(done), len(not_done))
    print("as_completed", sorted(f.result()[0] for f in concurrent.futures.as_completed(futures)))
    failing = executor.submit(divmod, 1, 0)
    print("exception", type(failing.exception(timeout=5)).__name__)
print("parallel", time.monotonic() - start < 0.5)
