"""stolon.os: fork with a working hub in the child, cooperative waitpid, fd I/O.

Cross-checked against gevent 26.9 (names switched).  Every forked child leaves with
``os._exit`` whatever happens, so a failure there never runs the test suite twice.
"""
import gc
import os
import sys
import time

import pytest

import stolon
import stolon.os as sos
from conftest import reaped


def _in_child(body):
    """In a forked child: run ``body()`` and leave with its return value as the exit
    code (99 if it raised)."""
    code = 99
    try:
        code = body()
    finally:
        os._exit(code)


def _hub_works_in_child():
    # sleep, spawn and a timer-driven switch all need a working loop
    g = stolon.spawn(lambda: stolon.sleep(0.05) or 7)
    stolon.sleep(0.01)
    return g.get(timeout=5)


def _waitpid_while_ticking(pid):
    """``waitpid(pid, 0)`` with a greenlet ticking every 10 ms meanwhile; returns
    ``(rpid, status, ticks)``."""
    ticks = []

    def tick():
        while True:
            ticks.append(time.monotonic())
            stolon.sleep(0.01)

    ticker = stolon.spawn(tick)
    try:
        rpid, status = sos.waitpid(pid, 0)
    finally:
        ticker.kill()
    return rpid, status, len(ticks)


def test_module_surface():
    for name in ("fork", "fork_gevent", "fork_and_watch", "forkpty", "forkpty_gevent",
                 "forkpty_and_watch", "waitpid", "make_nonblocking", "nb_read", "nb_write",
                 "tp_read", "tp_write"):
        assert callable(getattr(sos, name)), name
    # everything else is the os module's
    assert sos.getpid is os.getpid
    assert sos.WNOHANG == os.WNOHANG
    assert "fork" in sos.__all__ and "waitpid" in sos.__all__


def test_fork_child_has_a_working_hub_and_parent_waits_cooperatively():
    stolon.sleep(0)     # the parent's hub exists and has run
    pid = sos.fork()
    if pid == 0:
        _in_child(_hub_works_in_child)
    rpid, status, ticks = _waitpid_while_ticking(pid)
    assert rpid == pid
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7
    assert ticks >= 3       # the parent's greenlets ran while it waited
    assert reaped(pid)


def test_waitpid_wnohang_while_running_then_status():
    r, w = os.pipe()
    pid = sos.fork()
    if pid == 0:
        os.close(w)
        _in_child(lambda: len(os.read(r, 1)) + 4)
    os.close(r)
    try:
        assert sos.waitpid(pid, os.WNOHANG) == (0, 0)
    finally:
        os.write(w, b"x")
        os.close(w)
    rpid, status = sos.waitpid(pid, 0)
    assert (rpid, os.WEXITSTATUS(status)) == (pid, 5)
    assert reaped(pid)


def test_waitpid_from_two_greenlets():
    pid = sos.fork()
    if pid == 0:
        _in_child(lambda: time.sleep(0.2) or 3)
    waiters = [stolon.spawn(sos.waitpid, pid, 0) for _ in range(2)]
    stolon.joinall(waiters, timeout=10, raise_error=True)
    assert [os.WEXITSTATUS(g.value[1]) for g in waiters] == [3, 3]
    assert [g.value[0] for g in waiters] == [pid, pid]


def _take_stale_statuses():
    # gevent keeps the status of a child that waitpid(pid) returned until a
    # waitpid(-1) takes it again; stolon returns each status once
    while True:
        try:
            if sos.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def test_waitpid_any_child():
    _take_stale_statuses()
    pid = sos.fork()
    if pid == 0:
        _in_child(lambda: time.sleep(0.1) or 6)
    assert sos.waitpid(-1, os.WNOHANG) == (0, 0)
    rpid, status = sos.waitpid(-1, 0)
    assert (rpid, os.WEXITSTATUS(status)) == (pid, 6)
    assert reaped(pid)


def test_fork_and_watch_callback_gets_the_status():
    seen = []
    pid = sos.fork_and_watch(lambda watcher: seen.append((watcher.pid, watcher.rstatus)))
    if pid == 0:
        _in_child(lambda: 2)
    _, status = sos.waitpid(pid, 0)
    stolon.sleep(0)
    assert seen == [(pid, status)]
    assert os.WEXITSTATUS(status) == 2


def test_forked_child_does_not_inherit_the_parents_watched_children():
    # the parent's children are not the forked child's: waitpid(-1) there must not
    # return them, nor may their watchers report them there (with status 0).  (gevent's
    # child inherits its parent's table too: stale statuses are taken out first)
    _take_stale_statuses()
    r, w = os.pipe()
    try:
        elder = sos.fork()
        if elder == 0:
            os.close(w)
            _in_child(lambda: len(os.read(r, 1)))
        pid = sos.fork()
        if pid == 0:
            def body():
                grandchild = sos.fork()
                if grandchild == 0:
                    os._exit(4)
                ok = sos.waitpid(-1, 0) == (grandchild, 4 << 8)
                return 10 + ok
            _in_child(body)
        _, status = sos.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 11
    finally:
        os.write(w, b"x")
        os.close(r)
        os.close(w)
    assert os.WEXITSTATUS(sos.waitpid(elder, 0)[1]) == 1


def test_many_fork_waitpid_cycles_leak_nothing():
    loop = stolon.get_hub().loop

    def cycle():
        pid = sos.fork()
        if pid == 0:
            os._exit(0)
        assert sos.waitpid(pid, 0)[0] == pid
        return pid

    cycle()
    gc.collect()
    before = (len(os.listdir("/proc/self/fd")), loop.activecnt, len(gc.get_objects()))
    pids = [cycle() for _ in range(200)]
    gc.collect()
    after = (len(os.listdir("/proc/self/fd")), loop.activecnt, len(gc.get_objects()))
    assert after[:2] == before[:2]
    assert after[2] - before[2] < 50, (before, after)
    assert all(reaped(pid) for pid in pids)


def test_fork_gevent_does_not_watch():
    pid = sos.fork_gevent()
    if pid == 0:
        _in_child(_hub_works_in_child)
    # not watched: waitpid is the OS's, and only this process reaps it
    rpid, status = sos.waitpid(pid, 0)
    assert (rpid, os.WEXITSTATUS(status)) == (pid, 7)


@pytest.mark.skipif(not hasattr(os, "forkpty"), reason="no forkpty")
def test_forkpty_child_writes_to_the_terminal():
    pid, master = sos.forkpty()
    if pid == 0:
        _in_child(lambda: os.write(1, b"tty:%d" % os.isatty(1)) and _hub_works_in_child())
    try:
        sos.make_nonblocking(master)
        data = b""
        deadline = time.monotonic() + 10
        while b"tty:1" not in data and time.monotonic() < deadline:
            try:
                data += sos.nb_read(master, 100)
            except OSError:     # EIO once the child closed the terminal
                break
        _, status = sos.waitpid(pid, 0)
    finally:
        os.close(master)
    assert b"tty:1" in data
    assert os.WEXITSTATUS(status) == 7


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def test_nb_read_parks_until_another_greenlet_writes(pipe):
    r, w = pipe
    assert sos.make_nonblocking(r) is True
    assert not sos.make_nonblocking(r)      # already non-blocking
    sos.make_nonblocking(w)
    order = []

    def writer():
        order.append("writer")
        stolon.sleep(0.05)
        assert sos.nb_write(w, b"hello") == 5

    g = stolon.spawn(writer)
    data = sos.nb_read(r, 100)
    order.append("read")
    g.get()
    assert data == b"hello"
    assert order == ["writer", "read"]


def test_nb_write_parks_on_a_full_pipe(pipe):
    r, w = pipe
    sos.make_nonblocking(r)
    sos.make_nonblocking(w)
    while True:     # fill the pipe
        try:
            os.write(w, b"x" * 65536)
        except BlockingIOError:
            break
    drained = []

    def drain():
        stolon.sleep(0.05)
        drained.append(len(sos.nb_read(r, 1 << 20)))

    g = stolon.spawn(drain)
    assert sos.nb_write(w, b"y" * 10) == 10
    g.get()
    assert drained and drained[0] > 0


def test_tp_read_and_tp_write(pipe):
    r, w = pipe
    assert sos.tp_write(w, b"pool") == 4
    assert sos.tp_read(r, 10) == b"pool"
    # a blocking read in the pool does not block the hub
    g = stolon.spawn(sos.tp_read, r, 10)
    stolon.sleep(0.05)
    assert not g.ready()
    os.write(w, b"late")
    assert g.get(timeout=10) == b"late"


@pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="no posix_spawn")
def test_posix_spawn_is_watched():
    pid = sos.posix_spawn(sys.executable,
                          [sys.executable, "-c", "import time; time.sleep(0.1); raise SystemExit(4)"],
                          dict(os.environ))
    rpid, status, ticks = _waitpid_while_ticking(pid)
    assert (rpid, os.WEXITSTATUS(status)) == (pid, 4)
    assert ticks >= 3       # waited cooperatively: it was watched
    assert reaped(pid)
