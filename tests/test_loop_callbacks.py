"""loop.run_callback / run_callback_threadsafe: FIFO, before blocking, the time-slice bound."""
import gc
import sys
import threading
import time

import pytest


def test_fifo_and_args(loop_any):
    got = []
    for i in range(100):
        loop_any.run_callback(got.append, i)
    loop_any.run()
    assert got == list(range(100))


def test_callback_object(loop_any):
    got = []
    cb = loop_any.run_callback(got.append, 1)
    assert cb.pending and cb.callback == got.append and cb.args == (1,)
    cb2 = loop_any.run_callback(got.append, 2)
    cb2.stop()
    assert not cb2.pending
    loop_any.run()
    assert got == [1]
    assert not cb.pending
    assert "callback" in repr(cb)


def test_callbacks_keep_run_going_and_queue_more(loop_any):
    got = []

    def step(n):
        got.append(n)
        if n < 50:
            loop_any.run_callback(step, n + 1)
    loop_any.run_callback(step, 0)
    assert loop_any.activecnt == 1
    loop_any.run()
    assert got == list(range(51))
    assert loop_any.activecnt == 0


def test_callbacks_run_before_blocking(loop_any):
    order = []
    t = loop_any.timer(0.05)
    t.start(order.append, "timer")
    loop_any.run_callback(order.append, "cb")
    loop_any.run()
    assert order == ["cb", "timer"]


def test_run_callback_bad_input(loop_any):
    with pytest.raises(TypeError):
        loop_any.run_callback(3)
    with pytest.raises(TypeError):
        loop_any.run_callback()


def test_callback_error_goes_to_handle_error(loop_any):
    seen = []
    loop_any.handle_error = lambda *a: seen.append(a[1])
    loop_any.run_callback(lambda: 1 / 0)
    got = []
    loop_any.run_callback(got.append, 1)
    loop_any.run()
    assert seen == [ZeroDivisionError] and got == [1]


def test_keyboard_interrupt_from_callback(loop_any):
    def ki():
        raise KeyboardInterrupt
    got = []
    loop_any.run_callback(ki)
    loop_any.run_callback(got.append, 1)
    with pytest.raises(KeyboardInterrupt):
        loop_any.run()
    loop_any.run()  # the rest still runs
    assert got == [1]


def test_switch_interval_bounds_a_drain(loop_any):
    """A drain longer than the switch interval yields to a (non-blocking) poll.

    As in gevent, the clock is read every 50 callbacks, so the drain stops at
    the first multiple of 50 past the interval."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    count = 150
    try:
        ran = []
        polls = []
        chk = loop_any.check(ref=False)
        chk.start(lambda: polls.append(len(ran)))
        keep = loop_any.timer(30)  # blocking would hang without the zero timer
        keep.start(print)

        def slow(i):
            ran.append(i)
            time.sleep(0.0002)
            if i == count - 1:
                keep.stop()
        for i in range(count):
            loop_any.run_callback(slow, i)
        loop_any.run()
        assert ran == list(range(count))
        # polls happened with callbacks still queued, after whole batches of 50
        between = [n for n in polls if 0 < n < count]
        assert between and all(n % 50 == 0 for n in between), polls
    finally:
        sys.setswitchinterval(old)


def test_run_callback_threadsafe(loop_any):
    got = []
    keep = loop_any.timer(30)
    keep.start(print)

    def worker():
        time.sleep(0.02)
        loop_any.run_callback_threadsafe(lambda: (got.append(threading.get_ident()), keep.stop()))
    t = threading.Thread(target=worker)
    t.start()
    loop_any.run()
    t.join()
    assert got == [threading.get_ident()]


def test_run_callback_from_thread_while_blocked_is_threadsafe(loop_any):
    got = []
    keep = loop_any.timer(30)
    keep.start(print)

    def worker():
        time.sleep(0.02)
        loop_any.run_callback(lambda: (got.append(1), keep.stop()))
    t = threading.Thread(target=worker)
    t.start()
    loop_any.run()
    t.join()
    assert got == [1]


def test_destroy_drops_queued_callbacks(loop_any):
    cb = loop_any.run_callback(print, "never")
    loop_any.destroy()
    assert not cb.pending


def test_a_cycle_through_a_queued_callback_is_collected():
    """Callback objects are not GC-tracked; the loop reports what they hold, so a
    loop kept alive only by a cycle through its own queued call is still freed."""
    import weakref

    from stolon import loop as loopmod

    class Owner:
        pass

    owner = Owner()
    owner.loop = loopmod.loop(default=False)
    owner.pending = owner.loop.run_callback(lambda o=owner: o)
    ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert ref() is None


def test_many_queued_callbacks_run_in_order_and_leave_nothing_behind(loop_any):
    ran = []
    for i in range(20000):
        loop_any.run_callback(ran.append, i)
    loop_any.run()
    assert ran == list(range(20000))
    gc.collect()
    before = len(gc.get_objects())
    for i in range(20000):
        loop_any.run_callback(ran.append, i).stop() if i % 2 else loop_any.run_callback(ran.append, i)
    loop_any.run()
    del ran[:]
    gc.collect()
    assert len(gc.get_objects()) - before < 50


def _busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_timer_started_by_a_callback_counts_from_the_present(loop_any):
    # gevent's rule: while run_callback callbacks run, timer.start() (update=None)
    # refreshes the loop's time first; elsewhere the iteration's cached time holds
    moved = {}

    def start_after_work(name, kwargs={}):
        before = loop_any.now()
        _busy(0.03)
        timer = loop_any.timer(10)
        timer.start(lambda: None, **kwargs)
        moved[name] = loop_any.now() - before
        timer.stop()

    loop_any.run_callback(start_after_work, "callback")
    loop_any.run_callback(start_after_work, "callback, update=None", {"update": None})
    loop_any.run_callback(start_after_work, "callback, update=False", {"update": False})
    loop_any.run()
    watcher = loop_any.timer(0)
    watcher.start(start_after_work, "timer callback")
    loop_any.run()
    watcher = loop_any.timer(0)
    watcher.start(start_after_work, "timer callback, update=True", {"update": True})
    loop_any.run()
    assert moved["callback"] >= 0.03
    assert moved["callback, update=None"] >= 0.03
    assert moved["callback, update=False"] == 0
    assert moved["timer callback"] == 0
    assert moved["timer callback, update=True"] >= 0.03


def test_spawn_later_after_work_does_not_fire_early():
    import stolon
    stolon.sleep(0)          # the main greenlet now runs from a callback
    _busy(0.2)
    order = []
    # counted from the loop's stale time, 0.1 s would be long past (0.1 s of
    # margin for a loaded machine to reach the idle watcher first)
    later = stolon.spawn_later(0.1, order.append, "timer")
    stolon.idle()
    order.append("idle returned")
    later.join()
    assert order == ["idle returned", "timer"]
