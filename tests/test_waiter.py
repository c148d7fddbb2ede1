"""Waiter: the one-shot slot between a waiting greenlet and the hub."""
import gc
import sys

import pytest

import stolon
from stolon.exceptions import ConcurrentObjectUseError
from stolon.hub import Waiter, get_hub
from stolon._waiter import MultipleWaiter


def test_value_stored_before_get_is_returned_at_once():
    w = Waiter()
    assert not w.ready()
    w.switch(42)
    assert w.ready() and w.successful() and w.exc_info is None
    assert w.get() == 42
    assert w.value == 42


def test_throw_before_get_raises_in_get():
    w = Waiter()
    w.throw(KeyError, KeyError("k"))
    assert w.ready() and not w.successful()
    assert w.exc_info[0] is KeyError
    with pytest.raises(KeyError):
        w.get()


def test_get_parks_until_the_hub_switches():
    hub = get_hub()
    w = Waiter(hub)
    hub.loop.run_callback(w.switch, "woken")
    assert w.get() == "woken"
    assert w.greenlet is None   # forgotten after the wake-up


def test_throw_from_the_hub_raises_in_the_waiting_greenlet():
    hub = get_hub()
    w = Waiter(hub)
    hub.loop.run_callback(w.throw, ValueError("thrown"))
    with pytest.raises(ValueError, match="thrown"):
        w.get()


def test_switch_args_delivers_a_tuple():
    hub = get_hub()
    w = Waiter(hub)
    hub.loop.run_callback(w.switch_args, 1, 2)
    assert w.get() == (1, 2)


def test_only_the_hub_may_switch_into_a_waiting_greenlet():
    hub = get_hub()
    w = Waiter(hub)
    errors = []

    def intruder():
        try:
            w.switch("x")
        except AssertionError as ex:
            errors.append(str(ex))
        w_timer.stop()
        hub.loop.run_callback(w.switch, "from hub")

    w_timer = hub.loop.timer(0)
    stolon.spawn_raw(intruder)
    assert w.get() == "from hub"
    assert errors == ["Can only use Waiter.switch method from the Hub greenlet"]


def test_a_second_concurrent_get_is_an_error():
    hub = get_hub()
    w = Waiter(hub)
    errors = []

    def second():
        try:
            w.get()
        except ConcurrentObjectUseError as ex:
            errors.append(str(ex))
        hub.loop.run_callback(w.switch, None)

    stolon.spawn_raw(second)
    w.get()
    assert len(errors) == 1 and errors[0].startswith("This Waiter is already used by ")


def test_errors_of_the_woken_greenlet_go_to_handle_error(capsys):
    hub = get_hub()
    w = Waiter(hub)

    def sleeper():
        w.get()
        raise RuntimeError("after wake-up")

    g = stolon.greenlet(sleeper, hub)
    hub.loop.run_callback(g.switch)
    stolon.sleep(0)
    w.switch  # the waiter is parked in g now
    assert w.greenlet is g
    hub.loop.run_callback(w.switch, None)
    stolon.sleep(0.01)
    assert "RuntimeError: after wake-up" in capsys.readouterr().err


def test_clear_forgets_everything():
    w = Waiter()
    w.switch(1)
    w.clear()
    assert not w.ready() and w.value is None and w.greenlet is None


def test_str_shows_the_state():
    w = Waiter()
    assert str(w) == "<Waiter greenlet=None>"
    w.switch(5)
    assert str(w) == "<Waiter greenlet=None value=5>"
    w2 = Waiter()
    w2.throw(ValueError)
    assert str(w2).startswith("<Waiter greenlet=None exc_info=")


class _Source:
    def __init__(self, value=None, exception=None):
        self.value = value
        self.exception = exception


def test_used_as_a_link_callback():
    w = Waiter()
    w(_Source(value="v"))
    assert w.get() == "v"
    w2 = Waiter()
    w2(_Source(exception=IndexError("i")))
    with pytest.raises(IndexError):
        w2.get()


def test_subclass_and_hub_argument():
    class Mine(Waiter):
        __slots__ = ("extra",)

    m = Mine(get_hub())
    m.extra = 1
    assert m.hub is get_hub()
    m.switch(3)
    assert m.get() == 3


def test_multiple_waiter_collects_in_order():
    hub = get_hub()
    mw = MultipleWaiter(hub)
    for v in "abc":
        hub.loop.run_callback(mw.switch, v)
    assert [mw.get(), mw.get(), mw.get()] == ["a", "b", "c"]


def test_waiters_do_not_leak():
    hub = get_hub()
    for _ in range(100):
        w = Waiter(hub)
        hub.loop.run_callback(w.switch, None)
        w.get()
    gc.collect()
    before = len(gc.get_objects())
    rc = sys.getrefcount(hub)
    for _ in range(20000):
        w = Waiter(hub)
        hub.loop.run_callback(w.switch, None)
        w.get()
    del w
    gc.collect()
    assert len(gc.get_objects()) - before < 50
    assert sys.getrefcount(hub) - rc < 5


def test_multiple_waiter_parks_again_once_buffered_values_are_taken():
    hub = get_hub()
    mw = MultipleWaiter(hub)
    mw.switch("a")                      # buffered before anyone waits
    assert mw.get() == "a"
    hub.loop.run_callback(mw.switch, "b")
    assert mw.get() == "b"              # parked until the callback, no IndexError
