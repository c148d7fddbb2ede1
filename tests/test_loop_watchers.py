"""stolon.loop watchers: every kind, the shared attributes, bad input."""
import os
import signal
import socket
import threading
import time

import pytest

import stolon.loop as L


# ---- shared watcher behaviour ----

def test_start_stop_active_callback_args(loop_any):
    t = loop_any.timer(30)
    assert not t.active and t.callback is None and t.args is None
    t.start(print, 1, 2)
    assert t.active and t.callback is print and t.args == (1, 2)
    assert t.loop is loop_any
    t.stop()
    assert not t.active and t.callback is None


def test_callback_called_with_args(loop_any):
    got = []
    loop_any.timer(0).start(lambda *a: got.append(a), "x", 2)
    loop_any.run()
    assert got == [("x", 2)]


def test_non_callable_callback(loop_any):
    t = loop_any.timer(0)
    with pytest.raises(TypeError):
        t.start(42)
    with pytest.raises(TypeError):
        t.start()
    with pytest.raises(TypeError):
        t.callback = "nope"
    assert not t.active


def test_watcher_types_not_instantiable():
    with pytest.raises(TypeError):
        L.timer()
    with pytest.raises(TypeError):
        L.watcher()


def test_pending(loop_any):
    seen = []
    a = loop_any.timer(0)
    b = loop_any.timer(0)
    a.start(lambda: seen.append(b.pending))
    b.start(lambda: None)
    loop_any.run()
    assert seen == [True]
    assert not b.pending


def test_stop_clears_pending(loop_any):
    seen = []
    a = loop_any.timer(0)
    b = loop_any.timer(0)
    a.start(b.stop)
    b.start(seen.append, "b")
    loop_any.run()
    assert seen == []


def test_priority_rules(loop_any):
    t = loop_any.timer(30, priority=2)
    assert t.priority == 2
    t.priority = -2
    assert t.priority == -2
    with pytest.raises(ValueError):
        t.priority = 3
    t.start(lambda: None)
    with pytest.raises(AttributeError):
        t.priority = 0
    t.stop()
    t.priority = 0
    with pytest.raises(ValueError):
        loop_any.timer(1, priority=9)


def test_priority_orders_callbacks(loop_any):
    order = []
    for p in (-2, 0, 2, 1, -1):
        loop_any.timer(0, priority=p).start(order.append, p)
    loop_any.run()
    assert order == [2, 1, 0, -1, -2]


def test_close_and_closed_start(loop_any):
    t = loop_any.timer(30)
    t.start(print)
    t.close()
    assert t.closed and not t.active and t.callback is None
    with pytest.raises(ValueError, match="closed"):
        t.start(print)


def test_context_manager(loop_any):
    with loop_any.timer(30) as t:
        t.start(print)
        assert t.active
    assert not t.active and t.closed


def test_set_callback_and_args(loop_any):
    got = []
    t = loop_any.timer(0)
    t.start(print)
    t.callback = got.append
    t.args = ("new",)
    loop_any.run()
    assert got == ["new"]
    with pytest.raises(TypeError):
        t.args = [1]


def test_one_shot_timer_releases_callback(loop_any):
    t = loop_any.timer(0)
    t.start(lambda: None)
    loop_any.run()
    assert not t.active and t.callback is None


def test_restart_from_own_callback(loop_any):
    n = []
    t = loop_any.timer(0)

    def cb():
        n.append(1)
        if len(n) < 5:
            t.start(cb)
    t.start(cb)
    loop_any.run()
    assert len(n) == 5


# ---- timer ----

def test_timer_never_early(loop_any):
    loop_any.update_now()
    start = time.monotonic()
    fired = []
    loop_any.timer(0.02).start(lambda: fired.append(time.monotonic()))
    loop_any.run()
    assert fired and fired[0] - start >= 0.02 - 0.001


def test_timer_order_fifo_among_equal(loop_any):
    order = []
    for i in range(20):
        loop_any.timer(0.001).start(order.append, i)
    loop_any.run()
    assert order == list(range(20))


def test_timer_repeat(loop_any):
    n = []
    t = loop_any.timer(0, 0.001)

    def cb():
        n.append(1)
        if len(n) == 4:
            t.stop()
    t.start(cb)
    loop_any.run()
    assert len(n) == 4
    assert t.repeat == pytest.approx(0.001)


def test_timer_again(loop_any):
    n = []
    t = loop_any.timer(30, 0.001)
    t.again(n.append, 1)  # inactive + repeat: starts at now + repeat
    assert t.active
    loop_any.run(once=True)
    while not n:
        loop_any.run(once=True)
    t.stop()
    one = loop_any.timer(0.001)
    one.again(n.append, 2)  # inactive one-shot: starts it (gevent)
    loop_any.run()
    assert n == [1, 2]
    t2 = loop_any.timer(30)
    t2.start(print)
    t2.again(print, update=False)  # active one-shot: libev stops it
    assert not t2.active
    with pytest.raises(TypeError):
        t2.again(print, bogus=1)


def test_timer_remaining_and_update(loop_any):
    t = loop_any.timer(5)
    assert t.remaining == pytest.approx(5)
    t.start(print, update=True)
    assert 0 < t.remaining <= 5
    t.stop()


@pytest.mark.parametrize("args", [(-1,), (0, -1), (float("nan"),)])
def test_negative_timer(loop_any, args):
    with pytest.raises(ValueError):
        loop_any.timer(*args)


def test_timer_bad_repeat_set(loop_any):
    t = loop_any.timer(1)
    with pytest.raises(ValueError):
        t.repeat = -3


# ---- io ----

def test_io_read_and_write(loop_any):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        got = []
        r = loop_any.io(a.fileno(), L.READ)
        w = loop_any.io(b.fileno(), L.WRITE)
        assert r.fd == a.fileno() and r.events == L.READ

        def on_write():
            b.send(b"ping")
            w.stop()

        def on_read():
            got.append(a.recv(10))
            r.stop()
        r.start(on_read)
        w.start(on_write)
        loop_any.run()
        assert got == [b"ping"]
    finally:
        a.close()
        b.close()


def test_io_accepts_objects_with_fileno(loop_any):
    a, b = socket.socketpair()
    try:
        w = loop_any.io(a, L.WRITE)
        assert w.fd == a.fileno()
    finally:
        a.close()
        b.close()


def test_io_several_watchers_per_fd(loop_any):
    a, b = socket.socketpair()
    try:
        got = []
        w1 = loop_any.io(a.fileno(), L.READ)
        w2 = loop_any.io(a.fileno(), L.READ | L.WRITE)
        w1.start(lambda: (got.append(1), w1.stop()))
        w2.start(lambda: (got.append(2), w2.stop()))
        b.send(b"x")
        loop_any.run()
        assert sorted(got) == [1, 2]
    finally:
        a.close()
        b.close()


def test_io_events_setter(loop_any):
    a, b = socket.socketpair()
    try:
        w = loop_any.io(a.fileno(), L.READ)
        w.events = L.WRITE
        assert w.events == L.WRITE
        got = []
        w.start(lambda: (got.append(1), w.stop()))
        w.events = L.READ | L.WRITE
        loop_any.run()
        assert got == [1]
        with pytest.raises(ValueError):
            w.events = 8
    finally:
        a.close()
        b.close()


def test_io_bad_input(loop_any):
    with pytest.raises(ValueError):
        loop_any.io(-1, L.READ)
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as ei:
        loop_any.io(r, L.READ)
    assert ei.value.errno == 9  # EBADF
    a, b = socket.socketpair()
    try:
        with pytest.raises(ValueError):
            loop_any.io(a.fileno(), 4)
        with pytest.raises(ValueError):
            loop_any.io(a.fileno(), -1)
    finally:
        a.close()
        b.close()


def test_io_fd_closed_while_watched(loop_any):
    """Closing a watched fd must not crash; the watcher may get an error event or nothing."""
    a, b = socket.socketpair()
    w = loop_any.io(a.fileno(), L.READ)
    w.start(lambda: w.stop())
    a.close()
    b.close()
    t = loop_any.timer(0.01)
    t.start(lambda: None)
    loop_any.run(once=True)
    w.stop()


# ---- signal ----

def test_signal_watcher(loop_any):
    got = []
    s = loop_any.signal(signal.SIGUSR1)
    assert s.signum == signal.SIGUSR1
    s.start(lambda: (got.append(1), s.stop()))
    os.kill(os.getpid(), signal.SIGUSR1)
    loop_any.run()
    assert got == [1]


def test_signal_from_thread(loop_any):
    got = []
    s = loop_any.signal(signal.SIGUSR2)
    s.start(lambda: (got.append(1), s.stop()))
    t = threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGUSR2))
    t.start()
    loop_any.run()
    t.join()
    assert got == [1]


@pytest.mark.parametrize("signum", [0, -1, 10000, signal.SIGKILL])
def test_signal_bad_number(loop_any, signum):
    with pytest.raises(ValueError):
        loop_any.signal(signum)


def test_signal_owned_by_another_loop(loop_any):
    other = L.loop("poll", default=False)
    try:
        s1 = loop_any.signal(signal.SIGUSR1)
        s1.start(print)
        s2 = other.signal(signal.SIGUSR1)
        with pytest.raises(OSError):
            s2.start(print)
        s1.stop()
    finally:
        other.destroy()


# ---- child ----

def test_child_watcher(loop_any):
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    c = loop_any.child(pid)
    got = []
    c.start(lambda: got.append((c.rpid, c.rstatus)))
    assert c.pid == pid
    loop_any.run()
    assert got and got[0][0] == pid
    assert os.waitstatus_to_exitcode(got[0][1]) == 7 if hasattr(os, "waitstatus_to_exitcode") else True
    assert not c.active


def test_child_bad_pid(loop_any):
    with pytest.raises(ValueError):
        loop_any.child(0)
    with pytest.raises(ValueError):
        loop_any.child(-5)


# ---- idle, prepare, check ----

def test_idle_prepare_check_order(loop_any):
    order = []
    p = loop_any.prepare()
    c = loop_any.check()
    i = loop_any.idle()
    p.start(order.append, "prepare")

    def on_check():
        order.append("check")
        if "idle" in order:
            p.stop()
            c.stop()
    c.start(on_check)
    i.start(lambda: (order.append("idle"), i.stop()))
    loop_any.run()
    assert order[0] == "prepare"
    assert "idle" in order and "check" in order
    assert order.index("prepare") < order.index("check")


def test_idle_keeps_loop_from_blocking(loop_any):
    n = []
    i = loop_any.idle()
    keep = loop_any.timer(30)
    keep.start(print)

    def cb():
        n.append(1)
        if len(n) == 10:
            i.stop()
            keep.stop()
    i.start(cb)
    loop_any.run()
    assert len(n) == 10


def test_prepare_runs_before_block(loop_any):
    seen = []
    p = loop_any.prepare()
    p.start(lambda: seen.append(loop_any.iteration))
    t = loop_any.timer(0.001)
    t.start(p.stop)
    loop_any.run()
    assert seen


# ---- fork ----

def test_fork_watcher_runs_in_child(loop_any):
    r, w = os.pipe()
    f = loop_any.fork()
    f.start(lambda: os.write(w, b"F"))
    pid = os.fork()
    if pid == 0:
        try:
            loop_any.timer(0).start(lambda: None)
            loop_any.run(nowait=True)
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    data = os.read(r, 10)
    os.close(r)
    f.stop()
    assert data == b"F"


# ---- async ----

def test_async_send_same_thread(loop_any):
    got = []
    a = loop_any.async_()
    a.start(lambda: (got.append(1), a.stop()))
    a.send()
    assert a.pending
    loop_any.run()
    assert got == [1]


def test_async_send_from_thread_coalesces(loop_any):
    got = []
    a = loop_any.async_()
    a.start(lambda: (got.append(1), a.stop()))

    def sender():
        time.sleep(0.02)
        for _ in range(100):
            a.send()
    t = threading.Thread(target=sender)
    t.start()
    loop_any.run()
    t.join()
    assert got == [1]


def test_async_send_ignoring_arg(loop_any):
    got = []
    a = loop_any.async_()
    a.start(lambda: (got.append(1), a.stop()))
    a.send_ignoring_arg(object())
    loop_any.run()
    assert got == [1]


def test_other_thread_cannot_touch_blocked_loop(loop_any):
    errs = []
    a = loop_any.async_()
    t30 = loop_any.timer(30)

    def other():
        time.sleep(0.03)
        try:
            t30.stop()
        except RuntimeError as e:
            errs.append(e)
        a.send()
    a.start(lambda: (a.stop(), t30.stop()))
    t30.start(print)
    th = threading.Thread(target=other)
    th.start()
    loop_any.run()
    th.join()
    assert len(errs) == 1
