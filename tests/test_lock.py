"""stolon.lock: Semaphore, BoundedSemaphore, Lock, RLock, DummySemaphore, with
gevent.lock's semantics (FIFO hand-off, return values, timeouts, killed waiters,
LoopExit, use from other threads)."""
import threading
import time

import pytest

import stolon
from stolon.hub import LoopExit
from stolon.lock import BoundedSemaphore, DummySemaphore, RLock, Semaphore

try:
    from stolon.lock import Lock
except ImportError:     # gevent keeps it as gevent.thread.LockType
    from stolon.thread import LockType as Lock


def spawn_waiters(n, target, *args):
    """n raw greenlets running target(i, *args), each already blocked."""
    glets = [stolon.spawn_raw(target, i, *args) for i in range(n)]
    stolon.sleep(0)
    return glets


def cooperative_join(thread, limit=2.0):
    """Join a thread while this thread's hub keeps running (it may need to notify)."""
    deadline = time.monotonic() + limit
    while thread.is_alive() and time.monotonic() < deadline:
        stolon.sleep(0.005)
    assert not thread.is_alive()


# -- Semaphore -----------------------------------------------------------------------

def test_semaphore_counts():
    s = Semaphore(2)
    assert s.counter == 2 and not s.locked() and s.ready()
    assert s.acquire() is True
    assert s.acquire(blocking=False) is True
    assert s.counter == 0 and s.locked() and not s.ready()
    assert s.acquire(blocking=False) is False
    assert s.acquire(False, 1) is False      # non-blocking ignores the timeout
    assert s.release() == 1
    assert s.wait() == 1
    assert "counter=1 _links[0]" in str(s)
    with pytest.raises(ValueError, match="semaphore initial value must be >= 0"):
        Semaphore(-1)


def test_semaphore_timeouts_return_false():
    s = Semaphore(0)
    start = time.monotonic()
    assert s.acquire(timeout=0.01) is False
    assert s.acquire(timeout=0) is False
    assert s.acquire(timeout=-1) is False        # negative: as 0, as in gevent
    assert s.wait(0.01) == 0
    assert time.monotonic() - start < 0.5
    assert s.linkcount() == 0 and s.counter == 0


def test_semaphore_wakes_waiters_fifo_one_per_release():
    s = Semaphore(0)
    log = []

    def waiter(i):
        s.acquire()
        log.append(i)

    spawn_waiters(4, waiter)
    assert s.linkcount() == 4
    for expected in ([0], [0, 1], [0, 1, 2], [0, 1, 2, 3]):
        s.release()
        assert log == expected[:-1]     # release() never switches
        stolon.sleep(0)
        assert log == expected
    assert s.counter == 0


def test_semaphore_many_releases_wake_in_order_from_one_callback():
    s = Semaphore(0)
    log = []
    spawn_waiters(3, lambda i: (s.acquire(), log.append(i)))
    s.release()
    s.release()
    s.release()
    stolon.get_hub().loop.run_callback(log.append, "later callback")
    stolon.sleep(0)
    assert log == [0, 1, 2, "later callback"]


def test_semaphore_context_manager():
    s = Semaphore(1)
    with s:
        assert s.counter == 0
    assert s.counter == 1


def test_semaphore_wait_does_not_take_the_unit():
    s = Semaphore(0)
    results = []
    spawn_waiters(2, lambda i: results.append(s.wait()))
    s.release()
    stolon.sleep(0)
    assert results == [1, 1]
    assert s.counter == 1


def test_semaphore_waiter_timing_out_leaves_unit_for_the_next():
    s = Semaphore(0)
    results = {}

    def waiter(i):
        results[i] = s.acquire(timeout=0.01 if i == 0 else None)

    spawn_waiters(2, waiter)
    stolon.sleep(0.05)
    assert results == {0: False}
    assert s.linkcount() == 1
    s.release()
    stolon.sleep(0)
    assert results == {0: False, 1: True}
    assert s.counter == 0


def test_semaphore_killed_waiter_is_unlinked_and_unit_goes_to_next():
    s = Semaphore(0)
    log = []

    def waiter(i):
        try:
            s.acquire()
            log.append(i)
        except stolon.GreenletExit:
            log.append(("killed", i))
            raise

    glets = spawn_waiters(3, waiter)
    stolon.kill(glets[0])
    stolon.sleep(0)
    assert s.linkcount() == 2
    s.release()
    stolon.sleep(0)
    assert log == [("killed", 0), 1]
    assert s.counter == 0
    s.release()
    stolon.sleep(0)
    assert log == [("killed", 0), 1, 2]


def test_semaphore_rawlink_and_unlink():
    s = Semaphore(0)
    calls = []
    def removed(source):
        calls.append("unlinked was called")

    s.rawlink(calls.append)
    s.rawlink(removed)
    s.unlink(removed)
    s.release()
    stolon.sleep(0)
    assert calls == [s]
    assert s.counter == 1       # a link is told, it takes nothing


def test_semaphore_acquire_with_nobody_to_release_raises_loop_exit():
    s = Semaphore(0)
    with pytest.raises(LoopExit) as info:
        s.acquire()
    assert "This operation would block forever" in str(info.value)
    assert s.linkcount() == 0


# -- BoundedSemaphore, Lock ----------------------------------------------------------

def test_bounded_semaphore_over_release():
    b = BoundedSemaphore(2)
    with pytest.raises(ValueError, match="^Semaphore released too many times$"):
        b.release()
    b.acquire()
    assert b.release() == 2
    with pytest.raises(ValueError):
        b.release()


def test_lock_release_unlocked_raises_runtime_error():
    lock = Lock()
    with pytest.raises(RuntimeError, match="^Semaphore released too many times$"):
        lock.release()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(timeout=0.01) is False
    with pytest.raises(ValueError):
        lock.acquire(False, 1)
    with pytest.raises(ValueError):
        lock.acquire(timeout=-2)
    lock.release()
    assert not lock.locked()
    with lock:
        assert lock.locked()


def test_lock_failed_nonblocking_acquire_lets_others_run():
    lock = Lock()
    lock.acquire()
    stolon.spawn_raw(lock.release)
    spins = 0
    while not lock.acquire(False):
        spins += 1
        assert spins < 10
    assert lock.locked()


# -- RLock ---------------------------------------------------------------------------

def test_rlock_reentrant_and_ownership():
    r = RLock()
    with pytest.raises(RuntimeError, match="^cannot release un-acquired lock"):
        r.release()
    assert r.acquire() is True
    assert r.acquire()
    assert r.locked()
    r.release()
    assert r.locked()
    r.release()
    assert not r.locked()
    with r:
        with r:
            assert r._is_owned()
    assert not r.locked()


def test_rlock_excludes_other_greenlets_until_fully_released():
    r = RLock()
    log = []

    def other(i):
        with pytest.raises(RuntimeError, match="cannot release un-acquired lock"):
            r.release()
        log.append(("try", r.acquire(timeout=0.01)))
        r.acquire()
        log.append("got it")
        r.release()

    r.acquire()
    r.acquire()
    spawn_waiters(1, other)
    stolon.sleep(0.05)
    assert log == [("try", False)]
    r.release()
    stolon.sleep(0)
    assert log == [("try", False)]
    r.release()
    stolon.sleep(0)
    assert log == [("try", False), "got it"]
    assert not r.locked()


# -- DummySemaphore ------------------------------------------------------------------

def test_dummy_semaphore_never_blocks():
    d = DummySemaphore(5)
    assert d.acquire() is True and d.acquire(False, 1) is True
    assert d.wait() == 1 and d.ready() and not d.locked()
    assert d.release() is None
    d.rawlink(print)
    d.unlink(print)
    with d:
        pass
    assert str(d) == "<DummySemaphore>"


# -- threads -------------------------------------------------------------------------

def test_release_from_thread_with_its_own_hub_wakes_waiting_greenlet():
    s = Semaphore(0)

    def releaser():
        stolon.sleep(0.05)
        s.release()
        stolon.get_hub().destroy(destroy_loop=True)

    t = threading.Thread(target=releaser)
    t.start()
    try:
        assert s.acquire(timeout=2) is True
    finally:
        t.join(2)
    assert s.counter == 0


def test_release_from_plain_thread_wakes_several_waiters_in_order():
    s = Semaphore(0)
    log = []
    spawn_waiters(2, lambda i: (s.acquire(), log.append(i)))

    def releaser():
        s.release()
        s.release()

    t = threading.Thread(target=releaser)
    t.start()
    cooperative_join(t)
    stolon.sleep(0.01)
    assert log == [0, 1]


def test_thread_with_hub_acquires_semaphore_held_here():
    s = Semaphore(1)
    s.acquire()
    results = []

    def other():
        stolon.get_hub()
        results.append(s.acquire(timeout=2))
        s.release()
        stolon.get_hub().destroy(destroy_loop=True)

    t = threading.Thread(target=other)
    t.start()
    stolon.sleep(0.05)
    assert results == []
    s.release()
    cooperative_join(t)
    assert results == [True]


def test_thread_without_hub_acquires_semaphore_held_here():
    s = Semaphore(1)
    s.acquire()
    results = []
    t = threading.Thread(target=lambda: results.append(s.acquire(timeout=2)))
    t.start()
    stolon.sleep(0.05)
    assert results == []
    s.release()
    cooperative_join(t)
    assert results == [True]


def test_thread_acquire_times_out():
    s = Semaphore(1)
    s.acquire()
    results = []

    def other():
        stolon.get_hub()
        start = time.monotonic()
        results.append(s.acquire(timeout=0.05))
        results.append(time.monotonic() - start)
        stolon.get_hub().destroy(destroy_loop=True)

    t = threading.Thread(target=other)
    t.start()
    cooperative_join(t)
    assert results[0] is False
    assert 0.04 <= results[1] < 1.0


def test_acquire_with_zero_timeout_in_a_thread_without_a_hub_does_not_wait():
    import threading
    import time

    from stolon.lock import Semaphore

    sem = Semaphore(0)
    took = []

    def worker():
        started = time.monotonic()
        took.append((sem.acquire(timeout=0), time.monotonic() - started))

    t = threading.Thread(target=worker)
    t.start()
    t.join(5)
    assert took and took[0][0] is False and took[0][1] < 0.5
