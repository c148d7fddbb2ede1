"""Ordinary thread programs; prints the same with and without patching (pass
"patch" to patch first)."""
import sys

if sys.argv[1:] == ["patch"]:
    from stolon import monkey
    monkey.patch_all()

import concurrent.futures
import queue
import threading
import time


def counter_with_lock():
    total = [0]
    lock = threading.Lock()

    def add(times):
        for _ in range(times):
            with lock:
                value = total[0]
                time.sleep(0)   # give up the CPU inside the critical section
                total[0] = value + 1

    threads = [threading.Thread(target=add, args=(50,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total[0]


def condition_handoff():
    condition = threading.Condition()
    items = []
    taken = []

    def consumer():
        for _ in range(5):
            with condition:
                condition.wait_for(lambda: items, timeout=5)
                taken.append(items.pop(0))

    thread = threading.Thread(target=consumer)
    thread.start()
    for n in range(5):
        with condition:
            items.append(n * n)
            condition.notify()
        time.sleep(0.005)
    thread.join()
    with condition:
        timed_out = condition.wait(0.01)
    return taken, timed_out


def queue_pipeline():
    jobs = queue.Queue(maxsize=3)
    done = queue.Queue()

    def worker():
        while True:
            job = jobs.get()
            if job is None:
                jobs.task_done()
                return
            done.put(job * 10)
            jobs.task_done()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(3)]
    for thread in workers:
        thread.start()
    for job in range(12):
        jobs.put(job)
    jobs.join()
    for _ in workers:
        jobs.put(None)
    for thread in workers:
        thread.join()
    results = sorted(done.get_nowait() for _ in range(done.qsize()))
    try:
        done.get(timeout=0.01)
    except queue.Empty:
        empty = True
    priority, lifo = queue.PriorityQueue(), queue.LifoQueue()
    for value in (3, 1, 2):
        priority.put(value)
        lifo.put(value)
    return (results, empty, [priority.get() for _ in range(3)],
            [lifo.get() for _ in range(3)])


def semaphores_barrier_event():
    semaphore = threading.BoundedSemaphore(2)
    inside = [0]
    most = [0]
    barrier = threading.Barrier(4)
    order = []
    go = threading.Event()

    def task(n):
        go.wait(5)
        with semaphore:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            inside[0] -= 1
        order.append(barrier.wait(5) is not None)

    threads = [threading.Thread(target=task, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    waiting = sum(thread.is_alive() for thread in threads)
    go.set()
    for thread in threads:
        thread.join()
    try:
        semaphore.release()
    except ValueError:
        over_release = "ValueError"
    return waiting, most[0], order, over_release


def rlock_timer_local():
    rlock = threading.RLock()
    with rlock:
        with rlock:
            reentered = True
    fired = threading.Event()
    timer = threading.Timer(0.01, fired.set)
    timer.start()
    timer.join()
    data = threading.local()
    data.name = "main"
    seen = []

    def look(name):
        data.name = name
        time.sleep(0.001)
        seen.append(data.name)

    threads = [threading.Thread(target=look, args=("t%d" % n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reentered, fired.is_set(), sorted(seen), data.name


def executor():
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        squares = list(pool.map(lambda n: n * n, range(10)))
        futures = [pool.submit(pow, 2, n) for n in range(5)]
        completed = sorted(f.result() for f in concurrent.futures.as_completed(futures, 5))
        failing = pool.submit(int, "x")
        error = type(failing.exception(5)).__name__
    return squares, completed, error, pool._shutdown


def uncaught_exception_hook():
    seen = []
    previous = threading.excepthook
    threading.excepthook = lambda args: seen.append(
        (args.exc_type.__name__, str(args.exc_value), args.thread.name))
    thread = threading.Thread(target=lambda: 1 / 0, name="failing")
    thread.start()
    thread.join()
    threading.excepthook = previous
    return seen


print("lock counter", counter_with_lock())
print("condition", condition_handoff())
print("queues", queue_pipeline())
print("semaphores barrier event", semaphores_barrier_event())
print("rlock timer local", rlock_timer_local())
print("executor", executor())
print("excepthook", uncaught_exception_hook())
print("threads left", threading.active_count(), threading.current_thread().name)
