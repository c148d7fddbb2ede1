"""Threads with a Lock, a Condition and a queue.Queue; prints the same with and
without patching (pass "patch" to patch)."""
import sys

if sys.argv[1:] == ["patch"]:
    from stolon import monkey
    monkey.patch_all()

import queue
import threading

jobs = queue.Queue(maxsize=3)
results = []
results_lock = threading.Lock()
ready = threading.Condition()
consumed = [0]


def producer(base):
    for i in range(20):
        jobs.put(base + i)


def consumer():
    while True:
        item = jobs.get()
        if item is None:
            jobs.task_done()
            return
        with results_lock:
            results.append(item * item)
        with ready:
            consumed[0] += 1
            ready.notify_all()
        jobs.task_done()


consumers = [threading.Thread(target=consumer) for _ in range(3)]
producers = [threading.Thread(target=producer, args=(base,)) for base in (0, 100)]
for thread in consumers + producers:
    thread.start()
with ready:
    print("all consumed", ready.wait_for(lambda: consumed[0] == 40, timeout=10))
for thread in producers:
    thread.join()
for _ in consumers:
    jobs.put(None)
jobs.join()
for thread in consumers:
    thread.join()
print("results", len(results), sum(results))
sem = threading.BoundedSemaphore(2)
barrier = threading.Barrier(3)
crossed = []


def cross(n):
    barrier.wait(timeout=5)
    with sem:
        crossed.append(n)


threads = [threading.Thread(target=cross, args=(n,)) for n in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("barrier", sorted(crossed))
rlock = threading.RLock()
with rlock:
    with rlock:
        print("rlock reentrant")
event = threading.Event()
threading.Thread(target=event.set).start()
print("event", event.wait(5))
