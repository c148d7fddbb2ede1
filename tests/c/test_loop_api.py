"""The loop's C API driven directly from pytest through cffi, on every backend.

These tests call csrc/loop/ function by function: argument checking and
error codes, the phase order seen by Python callbacks (through the
extern "Python" trampoline of loop_cffi), timers, io on real sockets,
async sends from Python threads, signals, child processes next to the
subprocess module, and destruction with active watchers.  The loop itself
never calls Python: the trampoline is just a C function pointer to it.
"""
import errno
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("cffi")

import loop_cffi  # noqa: E402

# The backends this platform builds (the test skips one that is missing).
BACKENDS = ["epoll", "poll"] if sys.platform.startswith("linux") else ["kqueue", "poll"]


@pytest.fixture(scope="module")
def mod():
    return loop_cffi.load()


@pytest.fixture(params=BACKENDS)
def env(mod, request):
    """(ffi, lib, loop) with a fresh loop of the backend; checks callbacks did not raise."""
    ffi, lib = mod.ffi, mod.lib
    bits = {"epoll": lib.STL_BACKEND_EPOLL, "poll": lib.STL_BACKEND_POLL,
            "kqueue": lib.STL_BACKEND_KQUEUE}[request.param]
    if not lib.stl_loop_supported_backends() & bits:
        pytest.skip("no %s here" % request.param)
    out = ffi.new("stl_loop **")
    assert lib.stl_loop_new(out, bits) == 0
    loop = out[0]
    del loop_cffi.CALLBACK_ERRORS[:]
    keep = []
    yield ffi, lib, loop, keep
    assert lib.stl_loop_free(loop) == 0
    errors, loop_cffi.CALLBACK_ERRORS[:] = list(loop_cffi.CALLBACK_ERRORS), []
    assert not errors, errors


def init(ffi, lib, keep, kind, fn, *args):
    """stl_<kind>_init with the Python trampoline; data is set after init (which clears it)."""
    w = ffi.new("stl_%s *" % kind)
    rc = getattr(lib, "stl_%s_init" % kind)(w, lib.tl_py_cb, *args)
    assert rc in (0, None)
    handle = ffi.new_handle(fn)
    keep.append(handle)
    w.w.data = handle
    return w


def test_backends_and_names(env):
    ffi, lib, loop, keep = env
    supported = lib.stl_loop_supported_backends()
    assert supported & lib.STL_BACKEND_POLL
    if sys.platform.startswith("linux"):
        assert supported & lib.STL_BACKEND_EPOLL and not supported & lib.STL_BACKEND_KQUEUE
    names = {lib.STL_BACKEND_EPOLL: "epoll", lib.STL_BACKEND_POLL: "poll", lib.STL_BACKEND_KQUEUE: "kqueue"}
    assert ffi.string(lib.stl_loop_backend_name(loop)).decode() == names[lib.stl_loop_backend(loop)]


def test_bad_arguments_are_errors_not_crashes(env):
    ffi, lib, loop, keep = env
    out = ffi.new("stl_loop **")
    assert lib.stl_loop_new(out, 0xFFFF) == -errno.EINVAL
    for bits in (lib.STL_BACKEND_EPOLL, lib.STL_BACKEND_KQUEUE):
        if not lib.stl_loop_supported_backends() & bits:
            assert lib.stl_loop_new(out, bits) == -errno.ENOSYS
    assert lib.stl_loop_run(loop, 99) == -errno.EINVAL
    io = ffi.new("stl_io *")
    assert lib.stl_io_init(io, lib.tl_record, -1, lib.STL_READ) == -errno.EBADF
    assert lib.stl_io_start(loop, io) == -errno.EBADF
    assert lib.stl_io_init(io, lib.tl_record, 0, 0x400) == -errno.EINVAL
    t = ffi.new("stl_timer *")
    for after, repeat in [(-1, 0), (0, -1), (math.nan, 0), (0, math.nan)]:
        assert lib.stl_timer_init(t, lib.tl_record, after, repeat) == -errno.EINVAL
    assert lib.stl_timer_init(t, lib.tl_record, 1e300, 0) == 0
    s = ffi.new("stl_signal *")
    for signum in (0, -1, signal.SIGKILL, signal.SIGSTOP, 65, 1000):
        assert lib.stl_signal_init(s, lib.tl_record, signum) == -errno.EINVAL
        assert lib.stl_signal_start(loop, s) == -errno.EINVAL
    c = ffi.new("stl_child *")
    assert lib.stl_child_init(c, lib.tl_record, 0, 0) == -errno.EINVAL
    assert lib.stl_child_init(c, lib.tl_record, -5, 0) == -errno.EINVAL
    assert lib.stl_child_start(loop, c) == -errno.EINVAL
    p = ffi.new("stl_prepare *")
    lib.stl_prepare_init(p, lib.tl_record)
    assert lib.stl_set_priority(ffi.addressof(p, "w"), 5) == -errno.EINVAL
    assert lib.stl_loop_refcount(loop) == 0


def test_phase_order_seen_by_python_callbacks(env):
    ffi, lib, loop, keep = env
    seen = []

    def rec(name):
        return lambda loop_, w, revents: seen.append((name, revents, lib.stl_loop_iteration(loop_)))

    a, b = socket.socketpair()
    try:
        p = init(ffi, lib, keep, "prepare", rec("prepare"))
        c = init(ffi, lib, keep, "check", rec("check"))
        i = init(ffi, lib, keep, "idle", rec("idle"))
        t = init(ffi, lib, keep, "timer", rec("timer"), 0.0, 0.0)
        w = init(ffi, lib, keep, "io", rec("io"), a.fileno(), lib.STL_WRITE)
        for kind, x in [("prepare", p), ("check", c), ("idle", i), ("timer", t), ("io", w)]:
            assert getattr(lib, "stl_%s_start" % kind)(loop, x) == 0
        assert lib.stl_loop_run(loop, lib.STL_RUN_ONCE) == 1
        assert seen == [("prepare", lib.STL_PREPARE, 0), ("io", lib.STL_WRITE, 1),
                        ("timer", lib.STL_TIMER, 1), ("check", lib.STL_CHECK, 1)]
        lib.stl_io_stop(loop, w)
        del seen[:]
        lib.stl_loop_run(loop, lib.STL_RUN_ONCE)
        assert [s[0] for s in seen] == ["prepare", "idle", "check"]
        for kind, x in [("prepare", p), ("check", c), ("idle", i)]:
            getattr(lib, "stl_%s_stop" % kind)(loop, x)
        assert lib.stl_loop_refcount(loop) == 0
    finally:
        a.close()
        b.close()


def test_timers_fire_in_deadline_then_start_order(env):
    ffi, lib, loop, keep = env
    order = []
    timers = []
    for k in range(60):
        after = [0.004, 0.0, 0.002][k % 3]
        timers.append(init(ffi, lib, keep, "timer", lambda lp, w, r, k=k: order.append(k), after, 0.0))
        lib.stl_timer_start(loop, timers[-1])
    assert lib.stl_loop_refcount(loop) == 60
    assert lib.stl_loop_run(loop, lib.STL_RUN_DEFAULT) == 0
    expect = sorted(range(60), key=lambda k: ([0.004, 0.0, 0.002][k % 3], k))
    assert order == expect


def test_timer_is_never_early_and_again_reschedules(env):
    ffi, lib, loop, keep = env
    fired = []
    t = init(ffi, lib, keep, "timer", lambda lp, w, r: fired.append(lib.stl_loop_now_ns(lp)), 0.03, 0.0)
    wall = time.monotonic()  # the same clock, read before the loop's
    lib.stl_loop_update_now(loop)
    start = lib.stl_loop_now_ns(loop)
    lib.stl_timer_start(loop, t)
    assert 0.029 < lib.stl_timer_remaining(loop, t) <= 0.03
    lib.stl_loop_run(loop, lib.STL_RUN_DEFAULT)
    assert fired and fired[0] - start >= 30_000_000
    assert time.monotonic() - wall >= 0.0299
    # again on an inactive repeating timer starts it with the repeat delay
    assert lib.stl_timer_set_repeat(t, 0.01) == 0
    lib.stl_timer_again(loop, t)
    assert t.w.active
    assert lib.stl_timer_repeat(t) == 0.01
    lib.stl_timer_stop(loop, t)
    assert not t.w.active


def test_callbacks_stop_and_restart_each_other(env):
    ffi, lib, loop, keep = env
    log = []
    a = ffi.new("stl_timer *")
    b = ffi.new("stl_timer *")

    def on_a(lp, w, r):
        log.append("a")
        lib.stl_timer_stop(lp, b)  # b was due in the same iteration: forgotten
        if len(log) < 5:
            lib.stl_timer_start(lp, b)

    def on_b(lp, w, r):
        log.append("b")

    keep.append(ffi.new_handle(on_a))
    keep.append(ffi.new_handle(on_b))
    lib.stl_timer_init(a, lib.tl_py_cb, 0.0, 0.001)
    lib.stl_timer_init(b, lib.tl_py_cb, 0.0, 0.0)
    a.w.data, b.w.data = keep[-2], keep[-1]
    lib.stl_timer_start(loop, a)
    lib.stl_timer_start(loop, b)
    for _ in range(20):
        lib.stl_loop_run(loop, lib.STL_RUN_ONCE)
        if len(log) >= 8:
            break
    lib.stl_timer_stop(loop, a)
    lib.stl_timer_stop(loop, b)
    assert log[0] == "a" and "b" in log


def test_io_ping_pong_with_python_callbacks(env):
    ffi, lib, loop, keep = env
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got = []
    try:
        def on_a(lp, w, r):
            data = a.recv(16)
            got.append(data)
            if len(got) == 100:
                lib.stl_io_stop(lp, wa)
            else:
                a.send(b"p")

        def on_b(lp, w, r):
            b.recv(16)
            b.send(b"q")

        wa = init(ffi, lib, keep, "io", on_a, a.fileno(), lib.STL_READ)
        wb = init(ffi, lib, keep, "io", on_b, b.fileno(), lib.STL_READ)
        lib.stl_io_start(loop, wa)
        lib.stl_io_start(loop, wb)
        lib.stl_unref(loop, ffi.addressof(wb, "w"))
        a.send(b"p")
        assert lib.stl_loop_run(loop, lib.STL_RUN_DEFAULT) == 0
        assert got == [b"q"] * 100
        lib.stl_io_stop(loop, wb)
    finally:
        a.close()
        b.close()


def test_async_from_python_threads(env):
    ffi, lib, loop, keep = env
    calls = []
    done = threading.Event()

    def on_async(lp, w, r):
        calls.append(r)
        if done.is_set():
            lib.stl_async_stop(lp, aw)

    aw = init(ffi, lib, keep, "async", on_async)
    lib.stl_async_start(loop, aw)

    def sender():
        for _ in range(200):
            lib.stl_async_send(loop, aw)
            time.sleep(0.0005)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for th in threads:
        th.start()

    def closer():
        for th in threads:
            th.join()
        done.set()
        lib.stl_async_send(loop, aw)

    closing = threading.Thread(target=closer)
    closing.start()
    assert lib.stl_loop_run(loop, lib.STL_RUN_DEFAULT) == 0  # releases the GIL while it polls
    closing.join()
    assert 1 <= len(calls) <= 601
    assert set(calls) == {lib.STL_ASYNC}


def test_signal_watchers_in_the_test_process(env):
    ffi, lib, loop, keep = env
    hits = []
    s1 = init(ffi, lib, keep, "signal", lambda lp, w, r: hits.append(1), signal.SIGUSR2)
    s2 = init(ffi, lib, keep, "signal", lambda lp, w, r: hits.append(2), signal.SIGUSR2)
    lib.stl_signal_start(loop, s1)
    lib.stl_signal_start(loop, s2)
    os.kill(os.getpid(), signal.SIGUSR2)
    lib.stl_loop_run(loop, lib.STL_RUN_ONCE)
    assert hits == [1, 2]
    # another loop cannot take the signal while this one owns it
    out = ffi.new("stl_loop **")
    assert lib.stl_loop_new(out, 0) == 0
    other = init(ffi, lib, keep, "signal", lambda lp, w, r: None, signal.SIGUSR2)
    assert lib.stl_signal_start(out[0], other) == -errno.EBUSY
    lib.stl_loop_free(out[0])
    lib.stl_signal_stop(loop, s1)
    lib.stl_signal_stop(loop, s2)


def test_child_watcher_leaves_other_children_alone(env):
    ffi, lib, loop, keep = env
    watched = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(4)"])
    got = []
    c = init(ffi, lib, keep, "child", lambda lp, w, r: got.append((r, cw.rpid, cw.rstatus)), watched.pid, 0)
    cw = c
    assert lib.stl_child_start(loop, c) == 0
    assert lib.stl_loop_run(loop, lib.STL_RUN_DEFAULT) == 0
    assert len(got) == 1
    revents, rpid, status = got[0]
    assert revents == lib.STL_CHILD and rpid == watched.pid
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    assert not c.w.active
    assert other.wait(timeout=30) == 4  # not stolen
    watched.returncode = 3  # reaped by the loop: tell Popen


def test_destroy_leaves_active_watchers_inert(mod):
    ffi, lib = mod.ffi, mod.lib
    out = ffi.new("stl_loop **")
    assert lib.stl_loop_new(out, 0) == 0
    loop = out[0]
    r, w = os.pipe()
    try:
        io = ffi.new("stl_io *")
        t = ffi.new("stl_timer *")
        a = ffi.new("stl_async *")
        lib.stl_io_init(io, lib.tl_record, r, lib.STL_READ)
        lib.stl_timer_init(t, lib.tl_record, 100.0, 0.0)
        lib.stl_async_init(a, lib.tl_record)
        lib.stl_io_start(loop, io)
        lib.stl_timer_start(loop, t)
        lib.stl_async_start(loop, a)
        lib.stl_feed_event(loop, ffi.addressof(t, "w"), lib.STL_CUSTOM)
        assert lib.stl_loop_refcount(loop) == 3
        assert lib.stl_loop_free(loop) == 0
        for x in (io, t, a):
            assert not x.w.active and not x.w.pending
        lib.stl_io_stop(ffi.NULL, io)   # never touches a loop now
        lib.stl_timer_stop(ffi.NULL, t)
        lib.stl_async_stop(ffi.NULL, a)
    finally:
        os.close(r)
        os.close(w)


def test_loop_in_a_python_thread_with_fds_from_the_main_thread(env):
    ffi, lib, loop, keep = env
    a, b = socket.socketpair()
    got = []
    try:
        def on_read(lp, w, r):
            got.append(a.recv(16))
            lib.stl_io_stop(lp, io)

        io = init(ffi, lib, keep, "io", on_read, a.fileno(), lib.STL_READ)
        lib.stl_io_start(loop, io)
        th = threading.Thread(target=lambda: lib.stl_loop_run(loop, lib.STL_RUN_DEFAULT))
        th.start()
        time.sleep(0.02)
        b.send(b"hello")
        th.join(10)
        assert not th.is_alive()
        assert got == [b"hello"]
    finally:
        a.close()
        b.close()
