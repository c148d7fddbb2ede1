"""stolon.threadpool: ThreadPool, ThreadResult, ThreadPoolExecutor, the hub's pool.

Cross-checked against gevent 26.9 (names switched); where stolon differs the test says so.
"""
import concurrent.futures
import os
import signal
import sys
import threading
import time
import traceback

import pytest

import stolon
from stolon.exceptions import InvalidThreadUseError
from stolon.hub import get_hub
from stolon.threadpool import ThreadPool, ThreadPoolExecutor


def _os_threads():
    return len(os.listdir("/proc/self/task"))


def _fd_count():
    return len(os.listdir("/proc/self/fd"))


def _wait_until(predicate, limit=2.0):
    """Cooperatively poll ``predicate`` for at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        stolon.sleep(0.005)
    return True


# the module runs under gevent too (names switched) for the cross-check
UNDER_GEVENT = stolon.__name__ == "gevent"


@pytest.fixture(scope="module", autouse=True)
def _no_leaks():
    get_hub()   # the main hub's loop is not ours to count
    fds = _fd_count()
    threads = _os_threads()
    yield
    hub = get_hub()
    if hub._threadpool is not None:
        hub._threadpool.kill()
        hub._threadpool = None
    # the resolver holds the pool it was made with: a killed pool must not stay there
    hub._resolver = None
    assert _wait_until(lambda: _os_threads() <= threads)
    assert _fd_count() == fds


@pytest.fixture
def pool():
    p = ThreadPool(3)
    yield p
    p.kill()
    assert p.size == 0


# -- results -----------------------------------------------------------------------------

def test_spawn_returns_the_value(pool):
    result = pool.spawn(lambda a, b=0: a * b, 6, b=7)
    assert result.get(timeout=2) == 42
    assert result.successful()


def test_apply_passes_args_and_kwargs(pool):
    assert pool.apply(divmod, (17, 5)) == (3, 2)
    assert pool.apply(int, ("ff",), {"base": 16}) == 255


def test_runs_in_another_native_thread(pool):
    assert pool.apply(threading.get_ident) != threading.get_ident()


def test_exception_comes_back_with_its_traceback(pool, capsys):
    def fails_in_thread():
        raise KeyError("lost")

    result = pool.spawn(fails_in_thread)
    with pytest.raises(KeyError) as info:
        result.get(timeout=2)
    assert info.value.args == ("lost",)
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "fails_in_thread" in names
    assert result.exception is info.value
    # like gevent, the hub reports the failure as well (context: worker, function)
    err = capsys.readouterr().err
    assert "ThreadPoolWorker" in err and "failed with KeyError" in err


def test_apply_raises_in_the_caller(pool, capsys):
    with pytest.raises(ZeroDivisionError):
        pool.apply(divmod, (1, 0))
    assert "ZeroDivisionError" in capsys.readouterr().err


# -- concurrency ---------------------------------------------------------------------------

def test_concurrency_is_bounded_by_maxsize(pool):
    lock = threading.Lock()
    state = {"running": 0, "peak": 0}

    def task(i):
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        time.sleep(0.02)
        with lock:
            state["running"] -= 1
        return i

    results = [pool.spawn(task, i) for i in range(12)]
    assert [r.get(timeout=2) for r in results] == list(range(12))
    assert state["peak"] == 3
    assert pool.size <= 3


def test_spawn_blocks_once_the_pool_is_saturated():
    pool = ThreadPool(1)
    release = threading.Event()
    try:
        first = pool.spawn(release.wait, 2)
        second = pool.spawn(release.wait, 2)     # maxsize + 1 tasks fit
        third = stolon.spawn(pool.spawn, release.wait, 2)
        stolon.sleep(0.05)
        assert not third.ready()                  # waits for a slot
        assert len(pool) == 2
        release.set()
        assert third.get(timeout=2).get(timeout=2) is True
        assert first.get(timeout=2) is True and second.get(timeout=2) is True
    finally:
        release.set()
        pool.kill()


def test_greenlets_run_while_a_task_blocks(pool):
    ticks = []

    def ticker():
        for i in range(50):
            ticks.append(i)
            stolon.sleep(0.01)

    g = stolon.spawn(ticker)
    try:
        pool.apply(time.sleep, (0.2,))
        assert len(ticks) >= 5
    finally:
        g.kill()


def test_many_greenlets_wait_on_one_pool(pool):
    greenlets = [stolon.spawn(pool.apply, pow, (2, i)) for i in range(20)]
    stolon.joinall(greenlets, timeout=2)
    assert [g.value for g in greenlets] == [2 ** i for i in range(20)]


# -- mapping -------------------------------------------------------------------------------

def test_map_keeps_order(pool):
    assert pool.map(lambda x: x * x, range(10)) == [x * x for x in range(10)]


def test_imap_and_imap_unordered(pool):
    assert list(pool.imap(pow, [2, 3, 4], [2, 2, 2])) == [4, 9, 16]
    assert sorted(pool.imap_unordered(abs, [-3, -1, -2])) == [1, 2, 3]


def test_imap_reraises_a_task_error(pool, capsys):
    iterator = pool.imap(divmod, [4, 1], [2, 0])
    assert next(iterator) == (2, 0)
    with pytest.raises(ZeroDivisionError):
        next(iterator)
    capsys.readouterr()


def test_apply_async_returns_a_greenlet_and_calls_back(pool):
    seen = []
    g = pool.apply_async(divmod, (7, 2), callback=seen.append)
    assert isinstance(g, stolon.Greenlet)
    assert g.get(timeout=2) == (3, 1)
    assert seen == [(3, 1)]


def test_apply_from_a_worker_runs_in_that_worker(pool):
    outer = threading.get_ident()
    # inside a task, apply() on the same pool runs the function right there
    inner, here = pool.apply(lambda: (pool.apply(threading.get_ident), threading.get_ident()))
    assert inner == here != outer


# -- size ----------------------------------------------------------------------------------

def test_threads_start_on_demand_and_size_is_settable(pool):
    assert pool.size == 0 and pool.maxsize == 3
    pool.size = 2
    assert pool.size == 2
    pool.size = 3
    assert pool.size == 3
    pool.size = 1
    assert pool.size == 1
    with pytest.raises(ValueError):
        pool.size = 4
    with pytest.raises(ValueError):
        pool.size = -1


def test_maxsize_validation_and_shrinking(pool):
    with pytest.raises(TypeError):
        pool.maxsize = 1.5
    with pytest.raises(ValueError):
        pool.maxsize = -1
    pool.size = 3
    pool.maxsize = 1
    assert _wait_until(lambda: pool.size == 1)
    assert pool.apply(lambda: 5) == 5
    pool.maxsize = 4
    pool.size = 4
    assert pool.size == 4


def test_len_counts_unfinished_tasks_and_join_waits(pool):
    release = threading.Event()
    results = [pool.spawn(release.wait, 2) for _ in range(3)]
    assert len(pool) == 3 and pool
    release.set()
    pool.join()
    assert len(pool) == 0 and not pool
    assert all(r.get(timeout=2) for r in results)


@pytest.mark.skipif(UNDER_GEVENT, reason="free_count is a stolon extension")
def test_free_count(pool):
    release = threading.Event()
    assert pool.free_count() == 3
    result = pool.spawn(release.wait, 2)
    assert pool.free_count() == 2
    release.set()
    result.get(timeout=2)
    pool.join()
    assert pool.free_count() == 3


def test_kill_stops_every_thread():
    # the pool's own threads, by ident: the process's thread count also moves with
    # threads that other tests' pools retire meanwhile
    pool = ThreadPool(4)
    pool.size = 4
    barrier = threading.Barrier(4, timeout=5)
    idents = set()

    def work():
        idents.add(threading.get_ident())
        barrier.wait()      # four tasks at once: on four threads
    results = [pool.spawn(work) for _ in range(4)]
    for result in results:
        result.get(timeout=5)
    assert len(idents) == 4
    pool.kill()
    assert pool.size == 0
    assert _wait_until(lambda: not idents & set(sys._current_frames()))


def test_kill_lets_queued_tasks_finish_first():
    pool = ThreadPool(1)
    done = []
    results = [pool.spawn(lambda i=i: (time.sleep(0.01), done.append(i))) for i in range(2)]
    pool.kill()
    assert done == [0, 1]
    assert all(r.get(timeout=2) for r in results)


def test_idle_threads_expire():
    threads = _os_threads()
    pool = ThreadPool(2, idle_task_timeout=0.02)
    try:
        assert pool.apply(lambda: 1) == 1
        assert _wait_until(lambda: pool.size == 0)
        assert _wait_until(lambda: _os_threads() <= threads)
        assert pool.apply(lambda: 2) == 2    # a new thread starts on demand
    finally:
        pool.kill()


@pytest.mark.skipif(UNDER_GEVENT, reason="the child's apply() hangs under gevent 26.9 here "
                    "(not investigated); stolon's pool resets from the loop's fork watcher")
def test_forked_child_gets_fresh_threads(pool):
    assert pool.apply(os.getpid) == os.getpid()
    # stolon has no stolon.fork yet; gevent's runs its fork hooks
    pid = getattr(stolon, "fork", os.fork)()
    if pid == 0:
        # the worker threads did not survive; the pool notices on the loop's next turn
        code = 1
        try:
            signal.alarm(5)
            stolon.reinit()
            stolon.sleep(0.01)
            if pool.apply(os.getpid) == os.getpid():
                code = 0
            pool.kill()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pool.apply(os.getpid) == os.getpid()


def test_spawn_from_another_thread_is_refused(pool):
    errors = []

    def other_thread():
        try:
            pool.spawn(int)
        except InvalidThreadUseError as ex:
            errors.append(ex)
        get_hub().destroy(True)     # spawn() made this thread's hub

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(2)
    assert len(errors) == 1


def test_a_task_may_use_its_own_hub(pool):
    # a worker has no hub; sleeping there makes one for that thread, which is
    # destroyed with the worker
    def sleepy():
        stolon.sleep(0.01)
        return get_hub()

    worker_hub = pool.apply(sleepy)
    assert worker_hub is not get_hub()
    pool.kill()
    assert worker_hub.loop is None


def test_repr(pool):
    text = repr(pool)
    assert text.startswith("<ThreadPool at 0x") and "size=0 maxsize=3" in text


# -- the hub's pool ------------------------------------------------------------------------

def test_hub_threadpool_is_created_once():
    pool = get_hub().threadpool
    assert pool is get_hub().threadpool is get_hub()._threadpool
    assert pool.maxsize == get_hub().threadpool_size == 10
    assert pool.apply(lambda: 3) == 3


def test_hub_destroy_kills_its_threadpool():
    threads = _os_threads()
    box = {}

    def in_thread():
        hub = get_hub()
        pool = hub.threadpool
        box["value"] = pool.apply(lambda: "done")
        hub.destroy(True)
        box["size"] = pool.size

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(2)
    assert box == {"value": "done", "size": 0}
    assert _wait_until(lambda: _os_threads() <= threads)


# -- ThreadPoolExecutor --------------------------------------------------------------------

def test_executor_submit_and_result():
    with ThreadPoolExecutor(2) as executor:
        future = executor.submit(pow, 2, 8)
        assert future.result(timeout=2) == 256
        assert future.done() and not future.cancelled()


def test_executor_map():
    with ThreadPoolExecutor(2) as executor:
        assert list(executor.map(abs, [-1, -2, -3])) == [1, 2, 3]


def test_executor_result_raises_and_times_out(capsys):
    with ThreadPoolExecutor(1) as executor:
        failing = executor.submit(divmod, 1, 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=2)
        release = threading.Event()
        slow = executor.submit(release.wait, 2)
        with pytest.raises(concurrent.futures.TimeoutError):
            slow.result(timeout=0.01)
        release.set()
        assert slow.result(timeout=2) is True
    capsys.readouterr()


@pytest.mark.skipif(UNDER_GEVENT,
                    reason="gevent's Future.exception() raises the exception instead")
def test_executor_exception_returns_it(capsys):
    with ThreadPoolExecutor(1) as executor:
        assert isinstance(executor.submit(divmod, 1, 0).exception(timeout=2), ZeroDivisionError)
        assert executor.submit(int).exception(timeout=2) is None
    capsys.readouterr()


def test_executor_result_from_a_greenlet_does_not_block_the_hub():
    ticks = []

    def ticker():
        for i in range(50):
            ticks.append(i)
            stolon.sleep(0.01)

    with ThreadPoolExecutor(1) as executor:
        future = executor.submit(time.sleep, 0.1)
        waiter = stolon.spawn(future.result)
        g = stolon.spawn(ticker)
        try:
            assert waiter.get(timeout=2) is None
            assert len(ticks) >= 3
        finally:
            g.kill()


def test_executor_done_callback_and_stolon_wait():
    seen = []
    with ThreadPoolExecutor(2) as executor:
        futures = [executor.submit(pow, 3, i) for i in range(3)]
        futures[0].add_done_callback(lambda f: seen.append(f.result()))
        done = stolon.wait(futures, timeout=2)
        assert len(done) == 3
        assert [f.result() for f in futures] == [1, 3, 9]
        futures[1].add_done_callback(lambda f: seen.append(f.result()))  # already done
    assert seen == [1, 3]


def test_executor_shutdown():
    threads = _os_threads()
    executor = ThreadPoolExecutor(3)
    futures = [executor.submit(time.sleep, 0.01) for _ in range(3)]
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(int)
    assert all(f.result(timeout=2) is None for f in futures)
    assert _wait_until(lambda: _os_threads() <= threads)
