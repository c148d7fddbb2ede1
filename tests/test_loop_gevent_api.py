"""The gevent loop API items of issue #3: closing_fd, sig_pending, fileno, timer.at,
io.events_str, EVENTS, loop(default=True), the fast argument parsing of the
factories and start(), and the loop entries of the _C_API capsule.

Where gevent's libev loop (gevent.libev.corecext) is installed, the same
scenario is run on it and the observable results are compared.
"""
import ctypes
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

import stolon
import stolon.loop as L
from conftest import child_env

try:
    from gevent.libev import corecext as gcore
except ImportError:  # gevent is an optional comparison anchor
    gcore = None

needs_gevent = pytest.mark.skipif(gcore is None, reason="gevent's libev loop is not installed")


def _pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


# ---- closing_fd ----

def _closing_fd_scenario(lp, events):
    """What closing_fd reports and delivers, as a comparable tuple."""
    a, b = _pair()
    try:
        before = lp.closing_fd(a.fileno())
        got = []
        w = lp.io(a.fileno(), 1)
        w.start(lambda *args: got.append(args), events, "x")
        lp.run(nowait=True)          # nothing readable: nothing delivered
        with_watcher = lp.closing_fd(a.fileno())
        pending = w.pending
        lp.run(nowait=True)
        w.stop()
        return before, with_watcher, pending, got
    finally:
        a.close()
        b.close()


def test_closing_fd_wakes_watchers(loop_any):
    before, with_watcher, pending, got = _closing_fd_scenario(loop_any, L.EVENTS)
    assert before is False
    assert with_watcher is True and pending is True
    assert got == [(L.READ, "x")]


@needs_gevent
def test_closing_fd_like_gevent():
    lp = L.loop("epoll", default=False)
    g = gcore.loop(default=False)
    try:
        ours = _closing_fd_scenario(lp, L.EVENTS)
        theirs = _closing_fd_scenario(g, gcore.EVENTS)
        assert ours == theirs
    finally:
        lp.destroy()
        g.destroy()


def test_closing_fd_then_reused_number(loop_any):
    """A watcher forgotten over a close does not confuse a new file on the same number."""
    a, b = _pair()
    old = loop_any.io(a.fileno(), 1)
    old.start(lambda: None)
    loop_any.run(nowait=True)
    num = a.fileno()
    assert loop_any.closing_fd(num) is True
    old.stop()
    a.close()
    c, d = _pair()
    if c.fileno() != num:
        os.dup2(c.fileno(), num)
        c.close()
        c = socket.socket(fileno=num)
    try:
        got = []
        w = loop_any.io(num, 1)
        w.start(got.append, "new")
        loop_any.run(nowait=True)
        assert got == []
        d.send(b"x")
        loop_any.run(once=True)
        assert got == ["new"]
        w.stop()
    finally:
        for s in (b, c, d):
            s.close()


def test_closing_fd_bad_input(loop_any):
    with pytest.raises(ValueError):
        loop_any.closing_fd(-1)
    with pytest.raises(TypeError):
        loop_any.closing_fd("x")
    assert loop_any.closing_fd(100000) is False


# ---- sig_pending, fileno ----

def test_sig_pending():
    lp = L.loop("poll", default=False)
    try:
        assert lp.sig_pending is False
        got = []
        w = lp.signal(signal.SIGUSR1)
        w.start(got.append, 1)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert lp.sig_pending is True
        lp.run(nowait=True)
        assert lp.sig_pending is False and got == [1]
        w.stop()
    finally:
        lp.destroy()
    with pytest.raises(ValueError):
        lp.sig_pending


def test_fileno():
    ep = L.loop("epoll", default=False)
    pl = L.loop("poll", default=False)
    try:
        fd = ep.fileno()
        assert isinstance(fd, int) and fd >= 0
        assert os.readlink("/proc/self/fd/%d" % fd) == "anon_inode:[eventpoll]"
        assert pl.fileno() is None
    finally:
        ep.destroy()
        pl.destroy()
    assert ep.fileno() is None


@needs_gevent
def test_fileno_like_gevent():
    g = gcore.loop("epoll", default=False)
    try:
        assert os.readlink("/proc/self/fd/%d" % g.fileno()) == "anon_inode:[eventpoll]"
    finally:
        g.destroy()


# ---- timer.at, io.events_str, EVENTS ----

def test_timer_at(loop_any):
    t = loop_any.timer(5.0)
    assert abs(t.at - (loop_any.now() + 5.0)) < 1e-6
    t.start(lambda: None)
    deadline = t.at
    assert abs(deadline - (loop_any.now() + 5.0)) < 1e-6
    assert abs((deadline - loop_any.now()) - t.remaining) < 1e-6
    loop_any.update_now()
    assert t.at == deadline          # fixed while active
    t.stop()


def test_events_str(loop_any):
    a, b = _pair()
    try:
        strs = [loop_any.io(a.fileno(), ev).events_str for ev in (1, 2, 3)]
        assert strs == ["READ", "WRITE", "READ|WRITE"]
        w = loop_any.io(a.fileno(), 1)
        w.events = 3
        assert w.events_str == "READ|WRITE"
    finally:
        a.close()
        b.close()


@needs_gevent
def test_events_str_like_gevent():
    g = gcore.loop(default=False)
    try:
        theirs = [g.io(0, ev).events_str.replace("|_IOFDSET", "") for ev in (1, 2, 3)]
    finally:
        g.destroy()
    assert theirs == ["READ", "WRITE", "READ|WRITE"]


def test_events_sentinel(loop_any):
    assert L.EVENTS is L.GEVENT_CORE_EVENTS is stolon._core.EVENTS
    assert repr(L.EVENTS) == "stolon.loop.EVENTS"
    got = []
    loop_any.timer(0).start(lambda *a: got.append(a), L.EVENTS, 1, 2)
    loop_any.timer(0).start(lambda *a: got.append(a), 1, L.EVENTS)  # only args[0] counts
    many = tuple(range(12))
    loop_any.timer(0).start(lambda *a: got.append(a), L.EVENTS, *many)
    loop_any.run()
    assert got == [(0x100, 1, 2), (1, L.EVENTS), (0x100,) + many]


@needs_gevent
def test_events_sentinel_like_gevent():
    results = []
    for core, lp in ((L, L.loop(default=False)), (gcore, gcore.loop(default=False))):
        got = []
        lp.timer(0).start(lambda *a: got.append(a), core.EVENTS, "x")
        lp.run()
        results.append(got)
        lp.destroy()
    assert results[0] == results[1] == [(256, "x")]


# ---- the default loop ----

DEFAULT_SCRIPT = textwrap.dedent("""
    import threading, sys
    if sys.argv[1] == "gevent":
        from gevent.libev.corecext import loop
    else:
        from stolon.loop import loop
    a = loop(default=True)
    b = loop(default=True)
    out = {}
    def other():
        try:
            c = loop(default=True)
            out["thread"] = c.default
        except Exception as e:
            out["thread"] = type(e).__name__
    t = threading.Thread(target=other)
    t.start()
    t.join()
    w = b.timer(30)
    w.start(lambda: None)
    print(a.default, b.default, out["thread"], a.activecnt == b.activecnt >= 1)
""")


def _default_behaviour(which):
    r = subprocess.run([sys.executable, "-c", DEFAULT_SCRIPT, which], capture_output=True,
                       text=True, env=child_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_default_loop_shared():
    assert _default_behaviour("stolon") == ["True", "True", "True", "True"]


@needs_gevent
def test_default_loop_like_gevent():
    assert _default_behaviour("stolon") == _default_behaviour("gevent")


def test_default_loop_same_object_in_thread():
    code = textwrap.dedent("""
        import threading
        from stolon.loop import loop
        a = loop(default=True)
        seen = []
        t = threading.Thread(target=lambda: seen.append(loop(default=True)))
        t.start(); t.join()
        assert seen[0] is a and loop(default=True) is a
        assert loop(default=False) is not a and not loop(default=False).default
        a.destroy()
        b = loop(default=True)
        assert b is not a and b.default
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(),
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# ---- argument parsing (METH_FASTCALL) ----

def test_factory_arguments(loop_any):
    t = loop_any.timer(after=0.5, repeat=0.25, ref=False, priority=1)
    assert t.repeat == 0.25 and t.ref is False and t.priority == 1
    assert abs(t.remaining - 0.5) < 1e-9
    assert loop_any.timer(1).remaining == 1.0       # ints are numbers
    assert loop_any.timer().remaining == 0.0
    with pytest.raises(TypeError):
        loop_any.timer(1, 2, True, None, 5)
    with pytest.raises(TypeError):
        loop_any.timer(1, after=2)
    with pytest.raises(TypeError):
        loop_any.timer(bogus=1)
    with pytest.raises(TypeError):
        loop_any.timer("1")
    with pytest.raises(ValueError):
        loop_any.timer(-1)
    with pytest.raises(TypeError):
        loop_any.io()
    with pytest.raises(TypeError):
        loop_any.io(0, 1.5)
    with pytest.raises(OverflowError):
        loop_any.io(0, 2 ** 40)
    with pytest.raises(TypeError):
        loop_any.signal()
    assert loop_any.idle(priority=-1).priority == -1
    assert loop_any.async_(False).ref is False
    with pytest.raises(TypeError):
        loop_any.check(True, None, 3)


def test_start_arguments(loop_any):
    t = loop_any.timer(10, 10)
    with pytest.raises(TypeError):
        t.start()
    with pytest.raises(TypeError):
        t.start(1)
    with pytest.raises(TypeError):
        t.start(print, bogus=1)
    t.start(print, 1, update=True)
    assert t.args == (1,)
    t.again(print, 2, update=False)
    assert t.args == (2,) and t.active
    t.stop()
    w = loop_any.idle()
    with pytest.raises(TypeError):
        w.start(print, x=1)


# ---- the _C_API capsule's loop entries (after `version`) ----

CB = ctypes.CFUNCTYPE(None, ctypes.py_object, ctypes.c_int, ctypes.c_void_p)


class _Api(ctypes.Structure):
    _fields_ = [("greenlet", ctypes.c_void_p * 12), ("version", ctypes.c_int),
                ("watcher_start_c", ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, CB, ctypes.c_void_p)),
                ("watcher_stop", ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object))]


def _api():
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return ctypes.cast(get(stolon._C_API, b"stolon._C_API"), ctypes.POINTER(_Api)).contents


def test_capi_loop_entries(loop_any):
    api = _api()
    assert api.version == stolon._core.CAPI_VERSION >= 2
    got = []

    @CB
    def on_event(w, revents, arg):
        got.append((w, revents, arg))

    t = loop_any.timer(0)
    t.start(print)
    assert api.watcher_start_c(t, on_event, 42) == 0
    assert t.callback is None and t.active
    loop_any.run()
    assert got == [(t, 0x100, 42)]
    r = loop_any.timer(0, 0.001)
    assert api.watcher_start_c(r, on_event, None) == 0
    assert api.watcher_stop(r) == 0
    assert not r.active
    t.close()
    with pytest.raises(ValueError):
        api.watcher_start_c(t, on_event, None)
    with pytest.raises(TypeError):
        api.watcher_stop(object())
