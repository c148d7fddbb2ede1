"""stolon.event: Event and AsyncResult, with gevent.event's semantics (FIFO wake-ups
from one hub callback, wait() return values, timeouts, killed waiters, LoopExit,
set() from another thread)."""
import sys
import threading
import time
import traceback

import pytest

import stolon
from stolon.event import AsyncResult, Event
from stolon.exceptions import InvalidThreadUseError
from stolon.hub import LoopExit


def spawn_waiters(n, target, *args):
    """n raw greenlets running target(i, *args), each already blocked."""
    glets = [stolon.spawn_raw(target, i, *args) for i in range(n)]
    stolon.sleep(0)
    return glets


def kill_all(glets):
    for g in glets:
        if not g.dead:
            stolon.kill(g)
    stolon.sleep(0)


# -- Event ---------------------------------------------------------------------------

def test_event_flag_and_wait_return_values():
    e = Event()
    assert e.is_set() is False and e.ready() is False
    assert e.wait(0) is False
    assert e.wait(0.01) is False
    e.set()
    assert e.is_set() is True and e.ready() is True
    assert e.wait() is True
    assert e.wait(0) is True
    e.clear()
    assert e.is_set() is False
    assert e.wait(0.001) is False


def test_event_negative_timeout_acts_as_zero():
    e = Event()
    start = time.monotonic()
    assert e.wait(-1) is False
    assert time.monotonic() - start < 0.5
    e.set()
    assert e.wait(-1) is True


def test_event_waiters_woken_fifo_from_one_callback():
    e = Event()
    log = []

    def waiter(i):
        log.append(("woke", i, e.wait()))

    glets = spawn_waiters(5, waiter)
    assert log == [] and e.linkcount() == 5
    e.set()
    assert log == []        # set() never switches
    stolon.get_hub().loop.run_callback(log.append, "later callback")
    stolon.sleep(0)
    assert log == [("woke", i, True) for i in range(5)] + ["later callback"]
    assert e.linkcount() == 0
    assert all(g.dead for g in glets)


def test_event_set_then_clear_still_wakes_waiters_with_true():
    e = Event()
    results = []
    spawn_waiters(3, lambda i: results.append(e.wait(1)))
    e.set()
    e.clear()
    stolon.sleep(0)
    assert results == [True, True, True]
    assert not e.is_set()


def test_event_set_while_some_waiters_time_out():
    e = Event()
    results = {}

    def waiter(i):
        results[i] = e.wait(0.01 if i % 2 else None)

    glets = spawn_waiters(4, waiter)
    stolon.sleep(0.05)
    assert results == {1: False, 3: False}
    assert e.linkcount() == 2       # timed-out waiters removed their links
    e.set()
    stolon.sleep(0)
    assert results == {0: True, 1: False, 2: True, 3: False}
    assert all(g.dead for g in glets)


def test_event_killed_waiter_is_unlinked_and_never_woken():
    e = Event()
    log = []

    def waiter(i):
        try:
            log.append((i, e.wait()))
        except stolon.GreenletExit:
            log.append((i, "killed"))
            raise

    glets = spawn_waiters(3, waiter)
    stolon.kill(glets[1])
    stolon.sleep(0)
    assert log == [(1, "killed")]
    assert e.linkcount() == 2
    e.set()
    stolon.sleep(0)
    stolon.sleep(0)
    assert log == [(1, "killed"), (0, True), (2, True)]


def test_event_wait_after_set_queues_behind_earlier_waiters():
    # gevent issue 1520: a greenlet that finds the flag set while the waiters are being
    # woken runs after them, not before
    e = Event()
    log = []

    def waiter(i):
        e.wait()
        log.append(i)
        if i == 0:
            late = stolon.spawn_raw(lambda: (e.wait(), log.append("late")))
            late.switch()

    spawn_waiters(3, waiter)
    e.set()
    stolon.sleep(0)
    stolon.sleep(0)
    assert log == [0, 1, 2, "late"]


def test_event_wait_with_nobody_to_set_raises_loop_exit():
    e = Event()
    with pytest.raises(LoopExit) as info:
        e.wait()
    assert "This operation would block forever" in str(info.value)
    assert e.linkcount() == 0
    e.set()
    assert e.wait() is True


def test_event_rawlink_called_from_hub_once_and_unlink():
    e = Event()
    calls = []
    hub = stolon.get_hub()

    def link(source):
        calls.append((source, stolon.getcurrent() is hub))

    def removed(source):
        calls.append("removed link was called")

    e.rawlink(link)
    e.rawlink(removed)
    e.unlink(removed)
    e.unlink(removed)       # absent: no error
    e.set()
    assert calls == []
    stolon.sleep(0)
    assert calls == [(e, True)]
    e.clear()
    e.set()
    stolon.sleep(0)
    assert calls == [(e, True)]     # a link is called once, then dropped
    with pytest.raises(TypeError):
        e.rawlink(42)


def test_event_rawlink_when_already_set_notifies():
    e = Event()
    e.set()
    calls = []
    e.rawlink(calls.append)
    stolon.sleep(0)
    assert calls == [e]


def test_event_error_in_link_goes_to_hub_and_later_links_run(monkeypatch):
    e = Event()
    hub = stolon.get_hub()
    errors = []
    monkeypatch.setattr(hub, "handle_error", lambda ctx, t, v, tb: errors.append((ctx, t)))
    calls = []

    def bad(source):
        raise ZeroDivisionError

    e.rawlink(bad)
    e.rawlink(calls.append)
    e.set()
    stolon.sleep(0)
    assert errors == [((bad, e), ZeroDivisionError)]
    assert calls == [e]


def test_event_wait_timeout_inside_outer_timeout_raises_the_outer_one():
    e = Event()
    outer = stolon.Timeout(0.01)
    outer.start()
    try:
        with pytest.raises(stolon.Timeout) as info:
            e.wait(5)
        assert info.value is outer
    finally:
        outer.close()
    assert e.linkcount() == 0


def test_event_str():
    e = Event()
    assert "clear _links[0]" in str(e)
    e.set()
    assert "set _links[0]" in str(e)


def test_event_set_from_another_thread_wakes_waiter():
    e = Event()
    stolon.get_hub()

    def setter():
        time.sleep(0.05)
        e.set()

    t = threading.Thread(target=setter)
    t.start()
    try:
        assert e.wait(2) is True
    finally:
        t.join(2)


def test_event_wait_from_another_thread_than_the_owner_is_refused():
    e = Event()
    e.wait(0.001)       # now owned by this thread's hub
    errors = []

    def other():
        try:
            e.wait(0.1)
        except InvalidThreadUseError as ex:
            errors.append(ex)

    t = threading.Thread(target=other)
    t.start()
    t.join(2)
    assert len(errors) == 1


def test_event_link_to_another_threads_main_greenlet_is_resent_to_its_hub():
    e = Event()
    e.wait(0.001)       # owned by this thread's hub, which runs the notifier
    got = []
    linked = threading.Event()

    def other():
        hub = stolon.get_hub()
        keep_alive = hub.loop.timer(5)      # the hub has something to wait for
        keep_alive.start(lambda: None)
        e.rawlink(stolon.getcurrent().switch)   # this thread's main greenlet
        linked.set()
        got.append(hub.switch())        # resumed by its own hub, from the resend
        keep_alive.stop()
        hub.destroy(destroy_loop=True)

    t = threading.Thread(target=other)
    t.start()
    assert linked.wait(2)
    e.set()
    deadline = time.monotonic() + 2
    while t.is_alive() and time.monotonic() < deadline:
        stolon.sleep(0.01)
    t.join(2)
    assert got == [e]


# -- AsyncResult ---------------------------------------------------------------------

def test_async_result_value():
    r = AsyncResult()
    assert not r.ready() and not r.successful() and not r.done()
    assert r.value is None and r.exception is None and r.exc_info == ()
    assert "unset" in str(r)
    r.set(42)
    assert r.ready() and r.successful() and r.done()
    assert r.get() == 42 and r.get_nowait() == 42 and r.result() == 42 and r.wait() == 42
    assert r.value == 42 and r.exception is None
    assert r.cancel() is False and r.cancelled() is False


def test_async_result_unset_get_nonblocking_and_timeouts():
    r = AsyncResult()
    with pytest.raises(stolon.Timeout):
        r.get_nowait()
    with pytest.raises(stolon.Timeout):
        r.get(block=False)
    with pytest.raises(stolon.Timeout) as info:
        r.get(timeout=0.01)
    assert info.value.seconds == 0.01
    with pytest.raises(stolon.Timeout):
        r.get(timeout=-1)
    assert r.wait(0.01) is None
    assert r.linkcount() == 0


def test_async_result_exception():
    def fails():
        raise ValueError("boom")

    r = AsyncResult()
    try:
        fails()
    except ValueError:
        r.set_exception(sys.exc_info()[1], sys.exc_info())
    assert r.ready() and not r.successful()
    assert r.value is None
    assert isinstance(r.exception, ValueError)
    assert r.exc_info[0] is ValueError and r.exc_info[1] is r.exception
    assert r.wait() is None
    with pytest.raises(ValueError) as info:
        r.get()
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "fails" in names

    r2 = AsyncResult()
    r2.set_exception(KeyError("k"))
    assert r2.exc_info[:2] == (KeyError, r2.exception)
    with pytest.raises(KeyError):
        r2.get_nowait()
    assert "exception=KeyError('k')" in str(r2)


def test_async_result_wakes_getters_in_order():
    r = AsyncResult()
    got = []
    spawn_waiters(4, lambda i: got.append((i, r.get())))
    r.set("v")
    assert got == []
    stolon.sleep(0)
    assert got == [(i, "v") for i in range(4)]


def test_async_result_exception_reaches_blocked_getters():
    r = AsyncResult()
    got = []

    def getter(i):
        try:
            r.get()
        except KeyError as ex:
            got.append((i, ex.args))

    spawn_waiters(2, getter)
    r.set_exception(KeyError("x"))
    stolon.sleep(0)
    assert got == [(0, ("x",)), (1, ("x",))]


def test_event_link_unlinked_by_an_earlier_link_of_the_same_round_is_not_called():
    e = Event()
    calls = []

    def first(source):
        calls.append("first")
        e.unlink(second)
        assert e.linkcount() == 1       # third is still waiting its turn

    def second(source):
        calls.append("second")

    def third(source):
        calls.append("third")

    for link in (first, second, third):
        e.rawlink(link)
    e.set()
    stolon.sleep(0)
    assert calls == ["first", "third"]
    assert e.linkcount() == 0


def test_event_many_waiters_wake_in_order_and_a_woken_one_can_unlink_a_later_link():
    e = Event()
    woken = []
    n = 20000

    def waiter(i):
        e.wait()
        woken.append(i)
        if i == 0:
            e.unlink(last)      # still waiting its turn in this round

    def last(source):
        woken.append("unlinked link was called")

    spawn_waiters(n, waiter)
    e.rawlink(last)
    assert e.linkcount() == n + 1
    e.set()
    stolon.sleep(0)
    assert woken == list(range(n))
    assert e.linkcount() == 0


def test_async_result_killed_getter_is_unlinked():
    r = AsyncResult()
    got = []
    glets = spawn_waiters(2, lambda i: got.append((i, r.get())))
    kill_all(glets[:1])
    assert r.linkcount() == 1
    r.set(1)
    stolon.sleep(0)
    assert got == [(1, 1)]


def test_async_result_as_link_callback():
    class Source:
        def __init__(self, value=None, exception=None):
            self.value, self.exception = value, exception

        def successful(self):
            return self.exception is None

    ok = AsyncResult()
    ok(Source(value=7))
    assert ok.get() == 7
    bad = AsyncResult()
    bad(Source(exception=OSError("e")))
    with pytest.raises(OSError):
        bad.get()


def test_async_result_get_with_nobody_to_set_raises_loop_exit():
    with pytest.raises(LoopExit) as info:
        AsyncResult().get()
    assert "This operation would block forever" in str(info.value)


def test_the_woken_greenlet_may_wait_again_at_once():
    # its second wait arrives while the notification that woke it is still under
    # way: it must be served (the flag is set), never dropped into a LoopExit
    event = Event()
    stolon.spawn_later(0.01, event.set)
    assert event.wait() is True
    assert event.wait() is True
    result = AsyncResult()
    stolon.spawn_later(0.01, result.set, 5)
    assert result.get() == 5
    assert result.get() == 5

    def twice(waitable):
        return waitable.wait(), waitable.wait(timeout=1)
    other = Event()
    waiters = [stolon.spawn(twice, other) for _ in range(3)]
    stolon.sleep(0.01)
    other.set()
    assert [w.get(timeout=2) for w in waiters] == [(True, True)] * 3


@pytest.mark.parametrize("waiters", [1, 2])
def test_a_woken_greenlets_second_wait_is_served_in_the_same_round(waiters):
    # gevent serves a wait that arrives during the notification in that same
    # callback: no greenlet queued meanwhile runs between the two waits (one
    # waiter takes the C hand-off, two the Python notifier)
    log = []
    event = Event()
    result = AsyncResult()

    def wait_twice(name, waitable, wait):
        log.append((name, getattr(waitable, wait)()))
        log.append((name, getattr(waitable, wait)()))

    def other():
        log.append("other")

    # Event.wait() parks behind the round under way (served at its end);
    # AsyncResult.get() of a set result returns at once
    event_order = [(i, True) for i in range(waiters)] * 2
    result_order = [(i, 5) for i in range(waiters) for _ in range(2)]
    for waitable, wait, set_it, order in ((event, "wait", event.set, event_order),
                                          (result, "get", lambda: result.set(5), result_order)):
        del log[:]
        glets = [stolon.spawn(wait_twice, i, waitable, wait) for i in range(waiters)]
        stolon.sleep(0)
        setter = stolon.spawn(set_it)
        stolon.sleep(0)         # the setter has run: the notification is queued
        glets.append(stolon.spawn(other))
        glets.append(setter)
        stolon.joinall(glets, raise_error=True)
        assert log == order + ["other"]


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the stdlib deprecated isSet() in 3.10")
def test_isset_is_deprecated_as_in_the_stdlib():
    event = Event()
    with pytest.warns(DeprecationWarning, match=r"isSet\(\) is deprecated, use is_set\(\) instead"):
        assert event.isSet() is False
