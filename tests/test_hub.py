"""The hub: one per thread, running the loop; errors, LoopExit, join, destroy, sleep."""
import io
import socket
import sys
import threading
import time

import pytest

import stolon
from stolon import error as greenlet_error
from stolon import greenlet as raw_greenlet
from stolon import hub as hubmod
from stolon.exceptions import BlockingSwitchOutError, InvalidSwitchError, LoopExit


def test_get_hub_is_per_thread_and_stable():
    hub = stolon.get_hub()
    assert stolon.get_hub() is hub
    assert hub.parent is stolon.getcurrent()    # made by this test process's main greenlet
    other = []
    t = threading.Thread(target=lambda: other.append(stolon.get_hub()))
    t.start()
    t.join()
    assert other[0] is not hub
    assert other[0].loop is not hub.loop


def test_main_thread_hub_uses_the_default_loop_other_threads_do_not():
    assert stolon.get_hub().loop.default
    seen = []

    def body():
        h = stolon.get_hub()
        seen.append(h.loop.default)
        h.destroy(destroy_loop=True)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [False]


def test_waiting_with_nothing_that_could_wake_raises_loopexit():
    hub = stolon.get_hub()
    with pytest.raises(LoopExit) as info:
        hub.switch()
    assert "This operation would block forever" in str(info.value)
    assert info.value.hub is hub
    # the hub survives: it runs again on the next wait
    stolon.sleep(0.001)


def test_sleep_with_unreferenced_timer_alone_raises_loopexit():
    with pytest.raises(LoopExit):
        stolon.sleep(0.01, ref=False)


def test_sleep_zero_yields_fifo_to_every_ready_greenlet():
    order = []

    def worker(name):
        for i in range(3):
            order.append((name, i))
            stolon.sleep(0)

    for name in "abc":
        stolon.spawn_raw(worker, name)
    stolon.sleep(0.01)
    assert order == [(n, i) for i in range(3) for n in "abc"]


def test_sleep_orders_by_deadline():
    order = []
    for delay in (0.03, 0.01, 0.02):
        stolon.spawn_raw(lambda d=delay: (stolon.sleep(d), order.append(d)))
    stolon.sleep(0.06)
    assert order == [0.01, 0.02, 0.03]


def test_negative_sleep_yields_like_zero():
    ran = []
    stolon.spawn_raw(ran.append, 1)
    stolon.sleep(-5)
    assert ran == [1]


def test_sleep_rejects_non_numbers():
    with pytest.raises(TypeError):
        stolon.sleep("1")
    with pytest.raises(TypeError):
        stolon.sleep(None)


def test_errors_in_greenlets_are_printed_and_do_not_stop_the_hub(capsys):
    def boom():
        raise ZeroDivisionError("boom-zde")

    stolon.spawn_raw(boom)
    ran = []
    stolon.spawn_raw(ran.append, "after")
    stolon.sleep(0.01)
    err = capsys.readouterr().err
    assert "ZeroDivisionError: boom-zde" in err
    assert "failed with ZeroDivisionError" in err
    assert ran == ["after"]


def test_handle_error_uses_exception_stream():
    hub = stolon.get_hub()
    stream = io.StringIO()
    hub.exception_stream = stream
    try:
        try:
            raise ValueError("streamed")
        except ValueError:
            hub.handle_error("ctx-name", *sys.exc_info())
    finally:
        del hub.exception_stream
    assert hub.exception_stream is sys.stderr
    text = stream.getvalue()
    assert "ValueError: streamed" in text
    assert "ctx-name failed with ValueError" in text


@pytest.mark.skipif(stolon.__name__ != "st" + "olon",
                    reason="gevent's handle_error raises what printing the report raised")
def test_a_report_that_cannot_be_written_does_not_stop_the_hub(monkeypatch):
    # out of file descriptors, a traceback cannot read source lines: the hub writes
    # the error's one line instead, and goes on
    import stolon.hub

    def no_descriptors(*args, **kwargs):
        raise OSError(24, "Too many open files")

    hub = stolon.get_hub()
    stream = io.StringIO()
    hub.exception_stream = stream
    monkeypatch.setattr(stolon.hub.traceback, "print_exception", no_descriptors)
    ran = []
    try:
        stolon.spawn_raw(lambda: 1 / 0)
        stolon.spawn_raw(ran.append, "after")
        stolon.sleep(0.01)

        class Unwritable:
            def write(self, text):
                raise OSError(9, "Bad file descriptor")
        hub.exception_stream = Unwritable()
        stolon.spawn_raw(lambda: 1 / 0)
        stolon.spawn_raw(ran.append, "after an unwritable stream")
        stolon.sleep(0.01)
    finally:
        del hub.exception_stream
    assert ran == ["after", "after an unwritable stream"]
    assert "failed with ZeroDivisionError: division by zero (no traceback: " in stream.getvalue()


def test_a_false_exception_stream_disables_printing(capsys):
    hub = stolon.get_hub()
    hub.exception_stream = None
    try:
        stolon.spawn_raw(lambda: 1 / 0)
        stolon.sleep(0.01)
    finally:
        del hub.exception_stream
    assert "ZeroDivisionError" not in capsys.readouterr().err


def test_not_errors_are_not_printed(capsys):
    stolon.spawn_raw(lambda: (_ for _ in ()).throw(stolon.GreenletExit()))
    stolon.sleep(0.01)
    assert "GreenletExit" not in capsys.readouterr().err


def test_system_exit_in_a_greenlet_reaches_the_main_greenlet():
    def leave():
        raise SystemExit(7)

    stolon.spawn_raw(leave)
    with pytest.raises(SystemExit) as info:
        stolon.sleep(0.05)
    assert info.value.code == 7
    stolon.sleep(0.001)   # the hub still works


def test_keyboard_interrupt_from_a_callback_reaches_main_and_the_loop_resumes():
    hub = stolon.get_hub()

    def interrupt():
        raise KeyboardInterrupt

    ran = []
    hub.loop.run_callback(interrupt)
    hub.loop.run_callback(ran.append, 1)
    with pytest.raises(KeyboardInterrupt):
        stolon.sleep(0.01)
    stolon.sleep(0.01)
    assert ran == [1]


class _FromSignalHandler(Exception):
    pass


def test_a_signal_handlers_exception_reaches_the_waiting_main_greenlet(capsys):
    # the handler runs while the hub polls: as in gevent, the error is printed and
    # thrown into the main greenlet, and the hub goes on serving later waits
    import signal

    def handler(signum, frame):
        raise _FromSignalHandler("alarm")
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        started = time.monotonic()
        with pytest.raises(_FromSignalHandler):
            stolon.sleep(5)
        assert time.monotonic() - started < 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert "_FromSignalHandler: alarm" in capsys.readouterr().err
    hub = stolon.get_hub()
    assert not hub.dead
    stolon.sleep(0.01)          # no stray switch: the hub still runs the loop
    assert stolon.spawn(lambda: 42).get(timeout=2) == 42


def test_an_error_handler_that_fails_does_not_kill_the_hub():
    # stolon-specific: the failure of handle_error itself reaches the main greenlet
    # (gevent prints it and goes on); either way the hub survives
    hub = stolon.get_hub()
    seen = []

    def broken_handle_error(context, type, value, tb):
        seen.append(type)
        raise RuntimeError("handle_error failed")
    hub.handle_error = broken_handle_error
    try:
        stolon.get_hub().loop.run_callback(lambda: 1 / 0)
        with pytest.raises(RuntimeError, match="handle_error failed"):
            stolon.sleep(0.01)
    finally:
        del hub.handle_error
    assert seen == [ZeroDivisionError] and not hub.dead
    stolon.sleep(0.01)
    assert stolon.spawn(lambda: 7).get(timeout=2) == 7


def test_blocking_inside_the_hub_raises_blocking_switch_out_error():
    hub = stolon.get_hub()
    caught = []

    def in_callback():
        try:
            stolon.sleep(0)
        except BlockingSwitchOutError as ex:
            caught.append(str(ex))

    hub.loop.run_callback(in_callback)
    stolon.sleep(0.01)
    assert caught == ["Impossible to call blocking function in the event loop callback"]


def test_wait_detects_a_stray_switch():
    hub = stolon.get_hub()
    me = stolon.getcurrent()
    timer = hub.loop.timer(10)
    hub.loop.run_callback(me.switch, "stray")
    with pytest.raises(InvalidSwitchError) as info:
        hub.wait(timer)
    assert "Invalid switch into" in str(info.value)
    assert not timer.active


def test_wait_returns_when_the_watcher_fires_and_stops_it():
    hub = stolon.get_hub()
    timer = hub.loop.timer(0.001)
    assert hub.wait(timer) is None
    assert not timer.active and not timer.pending
    timer.close()


def test_cancel_wait_throws_into_the_waiting_greenlet():
    hub = stolon.get_hub()
    timer = hub.loop.timer(10)
    got = []

    def waiter():
        try:
            hub.wait(timer)
        except OSError as ex:
            got.append(ex)

    g = stolon.spawn_raw(waiter)
    stolon.sleep(0)
    hub.cancel_wait(timer, OSError(9, "closed elsewhere"), True)
    stolon.sleep(0.01)
    assert len(got) == 1 and got[0].errno == 9
    assert g.dead


def test_join_returns_true_when_nothing_is_left_and_false_on_timeout():
    hub = stolon.get_hub()
    assert hub.join() is True
    stolon.spawn_raw(stolon.sleep, 0.2)
    assert hub.join(timeout=0.01) is False
    assert hub.join() is True


def test_join_only_from_the_main_greenlet():
    hub = stolon.get_hub()
    errors = []

    def joiner():
        try:
            hub.join()
        except AssertionError as ex:
            errors.append(str(ex))

    stolon.spawn_raw(joiner)
    stolon.sleep(0.01)
    assert errors == ["only possible from the MAIN greenlet"]


def test_destroy_in_a_thread_ends_its_run_and_a_new_hub_follows():
    result = []

    def body():
        h = stolon.get_hub()
        stolon.sleep(0.001)
        h.destroy()
        result.append(stolon.hub._get_hub() is None)
        result.append(h.loop is None)
        h2 = stolon.get_hub()
        result.append(h2 is not h)
        stolon.sleep(0.001)
        h2.destroy()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert result == [True, True, True]


def test_switching_into_another_threads_hub_fails():
    hubs = []
    ready = threading.Event()
    done = threading.Event()

    def body():
        hubs.append(stolon.get_hub())
        ready.set()
        done.wait(5)
        hubs[0].destroy()

    t = threading.Thread(target=body)
    t.start()
    try:
        ready.wait(5)
        with pytest.raises(greenlet_error):
            hubs[0].switch()
    finally:
        done.set()
        t.join()


def test_idle_runs_when_nothing_else_is_ready():
    order = []

    def busy():
        for i in range(3):
            order.append("busy")
            stolon.sleep(0)

    stolon.spawn_raw(busy)
    stolon.idle()
    order.append("idle")
    assert order == ["busy", "busy", "busy", "idle"]


def test_spawn_raw_passes_args_and_kwargs_and_checks_callable():
    got = []
    g = stolon.spawn_raw(lambda *a, **k: got.append((a, k)), 1, 2, x=3)
    stolon.sleep(0)
    assert got == [((1, 2), {"x": 3})]
    assert isinstance(g, raw_greenlet) and g.parent is stolon.get_hub()
    with pytest.raises(TypeError):
        stolon.spawn_raw(42)


def test_kill_of_a_raw_greenlet():
    state = []

    def victim():
        try:
            stolon.sleep(10)
        except stolon.GreenletExit:
            state.append("killed")
            raise

    g = stolon.spawn_raw(victim)
    stolon.sleep(0)
    stolon.kill(g)
    stolon.sleep(0.01)
    assert state == ["killed"] and g.dead


def test_switchinterval_round_trips():
    old = stolon.getswitchinterval()
    try:
        stolon.setswitchinterval(0.002)
        assert stolon.getswitchinterval() == pytest.approx(0.002)
    finally:
        stolon.setswitchinterval(old)


def test_a_busy_callback_stream_cannot_starve_timers():
    hub = stolon.get_hub()
    state = {"n": 0, "stop": False}

    def spin():
        state["n"] += 1
        if not state["stop"]:
            hub.loop.run_callback(spin)

    hub.loop.run_callback(spin)
    started = time.monotonic()
    stolon.sleep(0.02)          # a timer must fire even though callbacks never run out
    state["stop"] = True
    stolon.sleep(0)
    assert time.monotonic() - started < 1.0
    assert state["n"] > 10


def test_reinit_is_harmless_without_fork():
    stolon.reinit()
    a, b = socket.socketpair()
    try:
        fired = []
        watcher = stolon.get_hub().loop.io(a.fileno(), 1)

        def readable():
            fired.append(a.recv(1))
            watcher.stop()

        watcher.start(readable)
        b.send(b"x")
        stolon.sleep(0.01)
        watcher.close()
        assert fired == [b"x"]          # the rebuilt backend still reports fds
    finally:
        a.close()
        b.close()


def test_hub_run_cannot_be_called_directly():
    with pytest.raises(AssertionError):
        hubmod.Hub.run(stolon.get_hub())


def test_sleeps_and_waits_leave_objects_and_rss_flat():
    """The C paths of sleep(0) (a waiter and a queued C entry), sleep(n) (a timer
    watcher through Hub.wait) and Event hand-offs (the C notifier) allocate per call:
    repeating them leaves object counts and RSS flat."""
    import gc

    psutil = pytest.importorskip("psutil")
    from stolon.event import Event

    def rounds(count):
        ping, pong = Event(), Event()

        def other():
            for _ in range(count):
                ping.wait()
                ping.clear()
                pong.set()

        g = stolon.spawn_raw(other)
        for _ in range(count):
            stolon.sleep(0)
            ping.set()
            pong.wait()
            pong.clear()
        for _ in range(count // 200):
            stolon.sleep(0.000001)      # a timer each (the poll waits up to 1 ms)
        stolon.sleep(0)
        assert g.dead

    rounds(5000)
    gc.collect()
    objects, rss = len(gc.get_objects()), psutil.Process().memory_info().rss
    rounds(200_000)
    gc.collect()
    assert len(gc.get_objects()) - objects < 50
    assert psutil.Process().memory_info().rss - rss < 4 * 1024 * 1024
