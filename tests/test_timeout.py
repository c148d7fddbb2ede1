"""Timeout and with_timeout."""
import gc

import pytest

import stolon
from stolon import Timeout, with_timeout


def test_raises_itself_in_the_greenlet_that_started_it():
    t = Timeout(0.01)
    t.start()
    with pytest.raises(Timeout) as info:
        stolon.sleep(1)
    assert info.value is t
    assert not t.pending


def test_context_manager_and_exception_class_or_instance():
    with pytest.raises(ValueError):
        with Timeout(0.01, ValueError):
            stolon.sleep(1)
    err = KeyError("custom")
    with pytest.raises(KeyError) as info:
        with Timeout(0.01, err):
            stolon.sleep(1)
    assert info.value is err


def test_false_exception_is_silent():
    import time

    started = time.monotonic()
    with Timeout(0.01, False) as t:
        stolon.sleep(1)
    assert time.monotonic() - started < 0.5     # it fired, and silently
    assert not t.pending


def test_string_exception_is_in_the_message():
    with pytest.raises(Timeout) as info:
        with Timeout(0.01, "waited too long"):
            stolon.sleep(1)
    assert str(info.value) == "0.01 seconds: waited too long"


def test_no_expiry_when_the_block_finishes_first():
    with Timeout(0.5) as t:
        stolon.sleep(0.001)
        assert t.pending
    assert not t.pending


def test_nested_timeouts_each_raise_their_own():
    outer = Timeout(0.05)
    with pytest.raises(Timeout) as info:
        with outer:
            inner = Timeout(0.01)
            try:
                with inner:
                    stolon.sleep(1)
            except Timeout as ex:
                assert ex is inner
            stolon.sleep(1)
    assert info.value is outer


def test_seconds_none_never_fires_and_cannot_be_started_by_its_timer():
    t = Timeout()
    t.start()
    assert not t.pending
    stolon.sleep(0.001)
    assert str(t) == ""
    with Timeout(None):
        stolon.sleep(0.001)


def test_zero_and_negative_fire_at_the_next_turn():
    for seconds in (0, -1):
        with pytest.raises(Timeout):
            with Timeout(seconds):
                stolon.sleep(0.05)


def test_starting_twice_is_an_error_cancel_allows_restart():
    t = Timeout(1)
    t.start()
    with pytest.raises(AssertionError, match="already started"):
        t.start()
    t.cancel()
    assert not t.pending
    t.start()
    assert t.pending
    t.close()
    assert not t.pending


def test_start_new_accepts_a_timeout():
    t = Timeout(1)
    assert Timeout.start_new(t) is t and t.pending
    t.cancel()
    t2 = Timeout.start_new(1, ValueError)
    assert isinstance(t2, Timeout) and t2.pending and t2.exception is ValueError
    t2.cancel()


def test_str_and_repr():
    assert str(Timeout(1)) == "1 second"
    assert str(Timeout(2)) == "2 seconds"
    assert str(Timeout(2, False)) == "2 seconds (silent)"
    assert str(Timeout(2, ValueError("x"))) == "2 seconds: x"
    t = Timeout(3, KeyError)
    assert repr(t).startswith("<Timeout at 0x") and "seconds=3" in repr(t)
    assert "exception=<class 'KeyError'>" in repr(t)
    t.start()
    assert repr(t).endswith(" pending>")
    t.cancel()


def test_is_a_base_exception_so_except_exception_does_not_catch_it():
    assert issubclass(Timeout, BaseException) and not issubclass(Timeout, Exception)
    caught = []
    with pytest.raises(Timeout):
        with Timeout(0.01):
            try:
                stolon.sleep(1)
            except Exception:
                caught.append(1)
    assert caught == []


def test_with_timeout():
    assert with_timeout(1, lambda a, b=0: a + b, 1, b=2) == 3
    assert with_timeout(0.01, stolon.sleep, 1, timeout_value="late") == "late"
    with pytest.raises(Timeout):
        with_timeout(0.01, stolon.sleep, 1)


def test_with_timeout_lets_other_timeouts_through():
    def inner():
        with Timeout(0.01):
            stolon.sleep(1)

    with pytest.raises(Timeout):
        with_timeout(1, inner, timeout_value="not this one")


def test_unreferenced_timeout_does_not_keep_the_loop_alive():
    with pytest.raises(stolon.hub.LoopExit):
        with Timeout(1, ref=False):
            stolon.get_hub().switch()


def test_timeouts_do_not_leak():
    for _ in range(200):
        with Timeout(1):
            pass
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(20000):
        with Timeout(1):
            pass
        t = Timeout.start_new(1)
        t.cancel()
        t.close()
    del t
    gc.collect()
    assert len(gc.get_objects()) - before < 50
    assert stolon.get_hub().loop.activecnt == 0


def _timeout_cycles(count):
    for _ in range(count):
        with Timeout(1):
            pass


def test_a_million_timeouts_keep_objects_and_rss_flat():
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    _timeout_cycles(20_000)
    gc.collect()
    objects, rss = len(gc.get_objects()), proc.memory_info().rss
    _timeout_cycles(1_000_000)
    gc.collect()
    assert len(gc.get_objects()) - objects < 50
    assert proc.memory_info().rss - rss < 4 * 1024 * 1024


def test_a_timeout_counts_from_its_start_not_from_the_loops_last_turn():
    import time

    stolon.sleep(0)                     # the loop's clock is read here...
    spin_until = time.monotonic() + 0.05
    while time.monotonic() < spin_until:
        pass                            # ...and goes stale while this greenlet computes
    started = time.monotonic()
    with pytest.raises(Timeout):
        with Timeout(0.05):
            stolon.sleep(1)
    assert time.monotonic() - started >= 0.045
