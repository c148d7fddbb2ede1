"""requests or urllib3 (argv[1]) fetch from a local server with 100 concurrent
threads (argv[2] "threads") or greenlets ("greenlets"); every request takes 0.2 s on
the server, so patched they overlap: prints the count of right answers and the time."""
import sys

from stolon import monkey

monkey.patch_all()

import threading
import time

import stolon
from _local_http import LocalServer

library, runner = sys.argv[1], sys.argv[2]
COUNT = 100

if library == "requests":
    import requests
    import requests.adapters

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=COUNT))

    def fetch(url):
        with session.get(url, timeout=10) as response:
            return response.status_code, response.text
else:
    import urllib3

    pool = urllib3.PoolManager(maxsize=COUNT, retries=False, timeout=10)

    def fetch(url):
        response = pool.request("GET", url)
        return response.status, response.data.decode()

results = {}


def one(url, n):
    results[n] = fetch("%s/r%d?delay=0.2" % (url, n))


with LocalServer() as url:
    fetch(url + "/warmup")   # imports and the first connection, outside the timing
    start = time.monotonic()
    if runner == "threads":
        threads = [threading.Thread(target=one, args=(url, n)) for n in range(COUNT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        stolon.joinall([stolon.spawn(one, url, n) for n in range(COUNT)], raise_error=True)
    elapsed = time.monotonic() - start
if library == "urllib3":
    pool.clear()
else:
    session.close()
print("ok", sum(results[n] == (200, "r%d" % n) for n in range(COUNT)))
print("elapsed %.2f" % elapsed)
