"""stolon.loop.loop: creation, run modes, break, ref/unref, time, errors, bad input."""
import os

import pytest

import stolon.loop as L


def test_backend_and_flags(loop_any):
    assert loop_any.backend in ("epoll", "poll")
    assert loop_any.default is False
    assert loop_any.depth == 0
    assert "backend=" in repr(loop_any)


def test_bad_backend_name():
    with pytest.raises(ValueError):
        L.loop("select-ish")
    with pytest.raises(TypeError):
        L.loop(3)


def test_supported_backends():
    names = L.supported_backends()
    assert "poll" in names


def test_default_loop_is_unique():
    lp = L.loop("poll", default=False)
    assert not lp.default
    lp.destroy()


def test_run_returns_when_nothing_is_active(loop_any):
    assert loop_any.run() is False


def test_run_nowait_does_not_block(loop_any):
    t = loop_any.timer(30)
    t.start(lambda: None)
    it = loop_any.iteration
    assert loop_any.run(nowait=True) is True
    assert loop_any.iteration == it + 1
    t.stop()


def test_run_once_runs_one_iteration(loop_any):
    fired = []
    loop_any.timer(0.001).start(fired.append, 1)
    loop_any.timer(30).start(fired.append, 2)
    loop_any.run(once=True)
    while not fired:
        loop_any.run(once=True)
    assert fired == [1]
    loop_any.destroy()


def test_break_one(loop_any):
    calls = []
    t = loop_any.timer(0, 0.001)

    def cb():
        calls.append(1)
        if len(calls) == 3:
            loop_any.break_()
    t.start(cb)
    loop_any.run()
    assert len(calls) == 3
    assert t.active
    t.stop()


def test_break_all_from_nested_run(loop_any):
    order = []
    outer = loop_any.timer(0)
    inner = loop_any.timer(0.001)
    keep = loop_any.timer(30)
    keep.start(lambda: None)

    def inner_cb():
        order.append("inner")
        loop_any.break_(L.EVBREAK_ALL)

    def outer_cb():
        order.append(("depth", loop_any.depth))
        inner.start(inner_cb)
        loop_any.run()
        order.append("after-nested")
    outer.start(outer_cb)
    loop_any.run()
    assert order == [("depth", 1), "inner", "after-nested"]
    keep.stop()


def test_break_bad_how(loop_any):
    with pytest.raises(ValueError):
        loop_any.break_(7)


def test_unref_watcher_lets_run_return(loop_any):
    t = loop_any.timer(30, ref=False)
    t.start(lambda: None)
    assert not t.ref
    assert loop_any.activecnt == 0
    assert loop_any.run() is False
    assert t.active
    t.ref = True
    assert loop_any.activecnt == 1
    t.ref = False
    assert loop_any.run() is False
    t.stop()


def test_now_and_update_now(loop_any):
    a = loop_any.now()
    loop_any.update_now()
    b = loop_any.now()
    assert b >= a
    assert isinstance(b, float)


def test_iteration_counts_polls(loop_any):
    it = loop_any.iteration
    loop_any.run(nowait=True)
    loop_any.run(nowait=True)
    assert loop_any.iteration == it + 2


def test_pendingcnt(loop_any):
    assert loop_any.pendingcnt == 0


def test_handle_error_called_and_loop_keeps_running(loop_any):
    seen = []

    class Sub:
        pass

    def handle_error(context, typ, value, tb):
        seen.append((context, typ, str(value), tb is not None))
    loop_any.handle_error = handle_error  # instance attribute shadows the method
    t1 = loop_any.timer(0)
    t1.start(lambda: 1 / 0)
    later = []
    loop_any.timer(0.002).start(later.append, "ran")
    loop_any.run()
    assert later == ["ran"]
    assert len(seen) == 1 and seen[0][0] is t1 and seen[0][1] is ZeroDivisionError and seen[0][3]


def test_default_handle_error_prints_traceback(loop_any, capsys):
    def boom():
        raise RuntimeError("boom-marker")
    loop_any.timer(0).start(boom)
    done = []
    loop_any.timer(0.001).start(done.append, 1)
    loop_any.run()
    err = capsys.readouterr().err
    assert "Traceback" in err and "boom-marker" in err and "failed with RuntimeError" in err
    assert done == [1]


def test_error_handler_attribute(loop_any):
    got = []

    class Hub:
        def handle_error(self, context, typ, value, tb):
            got.append(typ)
    loop_any.error_handler = Hub()
    loop_any.timer(0).start(lambda: [][1])
    loop_any.run()
    assert got == [IndexError]
    loop_any.error_handler = None


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_system_errors_propagate_out_of_run(loop_any, exc):
    def cb():
        raise exc()
    other = []
    loop_any.timer(0).start(cb)
    keep = loop_any.timer(30)
    keep.start(other.append, 1)
    with pytest.raises(exc):
        loop_any.run()
    # the loop stays usable
    keep.stop()
    loop_any.timer(0).start(other.append, 2)
    loop_any.run()
    assert other == [2]


def test_failing_handle_error_propagates(loop_any):
    def handle_error(*a):
        raise LookupError("from handler")
    loop_any.handle_error = handle_error
    loop_any.timer(0).start(lambda: 1 / 0)
    with pytest.raises(LookupError):
        loop_any.run()


def test_keyboard_interrupt_from_nested_run(loop_any):
    def inner():
        raise KeyboardInterrupt
    def outer():
        loop_any.timer(0).start(inner)
        loop_any.run()
    loop_any.timer(0).start(outer)
    with pytest.raises(KeyboardInterrupt):
        loop_any.run()


def test_sigint_during_block_raises_keyboard_interrupt(loop_any):
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        keep = loop_any.timer(10)
        keep.start(lambda: None)
        t = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
        t.start()
        with pytest.raises(KeyboardInterrupt):
            loop_any.run()
        t.join()
        keep.stop()
    finally:
        signal.signal(signal.SIGINT, old)


def test_reinit(loop_any):
    loop_any.reinit()
    fired = []
    loop_any.timer(0).start(fired.append, 1)
    loop_any.run()
    assert fired == [1]


def test_destroy_is_idempotent_and_ops_fail(loop_any):
    loop_any.destroy()
    loop_any.destroy()
    assert loop_any.destroyed
    assert loop_any.backend is None
    for call in (loop_any.run, loop_any.update_now, loop_any.now, lambda: loop_any.timer(1),
                 lambda: loop_any.run_callback(print), loop_any.reinit):
        with pytest.raises(ValueError, match="destroyed loop"):
            call()


def test_destroy_while_running_refused(loop_any):
    errs = []

    def cb():
        try:
            loop_any.destroy()
        except RuntimeError as e:
            errs.append(e)
    loop_any.timer(0).start(cb)
    loop_any.run()
    assert len(errs) == 1


def test_loop_attributes_and_subclass():
    class MyLoop(L.loop):
        pass
    lp = MyLoop("poll", default=False)
    lp.anything = 5
    assert lp.anything == 5
    lp.destroy()
