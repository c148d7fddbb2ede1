"""stolon.select: cooperative select() and poll() with gevent.select's semantics
(the standard library's return shapes and argument errors, readiness of sockets and
pipes, timeouts, concurrent waiters, and no watcher or fd left behind)."""
import errno
import os
import select as std_select
import socket
import time

import pytest

import stolon
from stolon import select as gselect

# The same file runs against gevent (names switched) as a cross-check.
UNDER_GEVENT = stolon.__name__ != "st" + "olon"


@pytest.fixture(scope="module", autouse=True)
def no_fd_leak():
    stolon.get_hub()   # the hub's own descriptors are not the tests'
    before = len(os.listdir("/proc/self/fd"))
    yield
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def active_count():
    """Asserts the hub's loop has as many active watchers after the test as before."""
    loop = stolon.get_hub().loop
    stolon.sleep(0.001)   # lets the hub's own callback machinery go idle
    before = loop.activecnt
    yield
    stolon.sleep(0.001)
    assert loop.activecnt == before


def fill(sock):
    """Make ``sock`` unwritable by filling both buffers; returns the bytes sent."""
    sock.setblocking(False)
    sent = 0
    for _ in range(100000):
        try:
            sent += sock.send(b"x" * 65536)
        except BlockingIOError:
            return sent
    raise AssertionError("socket never filled")


def drain(sock, count):
    """Read ``count`` bytes from blocking ``sock``."""
    while count:
        count -= len(sock.recv(min(count, 1 << 20)))


def later(delay, func, *args):
    return stolon.spawn_later(delay, func, *args)


# -- the module ------------------------------------------------------------------------

def test_module_names():
    assert gselect.error is OSError is std_select.error
    assert set(gselect.__all__) == {"error", "select", "poll"}
    for name in ("POLLIN", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL", "PIPE_BUF"):
        assert getattr(gselect, name) == getattr(std_select, name)
    assert gselect.select is not std_select.select
    assert gselect.poll is not std_select.poll


# -- select(): readiness ---------------------------------------------------------------

def test_select_ready_now_returns_objects_as_passed(pair, active_count):
    a, b = pair
    b.sendall(b"x")
    r, w, x = gselect.select([a], [a, b], [], 1)
    assert r == [a]
    assert set(w) == {a, b}
    assert x == []
    assert gselect.select([a.fileno()], [], [], 0) == ([a.fileno()], [], [])


def test_select_pipe_read_and_write(pipe, active_count):
    r, w = pipe
    assert gselect.select([r], [w], [], 0) == ([], [w], [])
    os.write(w, b"x")
    assert gselect.select([r], [], [], 0) == ([r], [], [])


def test_select_accepts_any_iterables(pair):
    a, b = pair
    b.sendall(b"x")
    r, w, x = gselect.select(iter([a]), (s for s in [b]), set(), 0)
    assert r == [a] and w == [b] and x == []


def test_select_wakes_on_data_from_another_greenlet(pair, active_count):
    a, b = pair
    ran = []

    def send():
        ran.append("sender")
        b.sendall(b"x")

    later(0.02, send)
    start = time.monotonic()
    r, w, x = gselect.select([a], [], [], None)
    assert (r, w, x) == ([a], [], [])
    assert ran == ["sender"]
    assert time.monotonic() - start < 1


def test_select_waits_for_writability(pair, active_count):
    a, b = pair
    sent = fill(a)
    drainer = later(0.02, drain, b, sent)
    try:
        assert gselect.select([], [a], [], 2) == ([], [a], [])
    finally:
        drainer.join(2)
    assert drainer.successful()


def test_select_reports_everything_ready_in_one_iteration(active_count):
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        readers = [p[0] for p in pairs]
        result = []
        waiter = stolon.spawn(lambda: result.append(gselect.select(readers, [], [], 2)))
        stolon.sleep(0.01)
        for _, b in pairs:
            b.sendall(b"x")
        waiter.join(2)
        r, w, x = result[0]
        assert sorted(r, key=id) == sorted(readers, key=id)
        assert w == [] and x == []
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_select_several_greenlets_on_different_fds(active_count):
    pairs = [socket.socketpair() for _ in range(4)]
    woke = []

    def wait_on(i):
        r, _, _ = gselect.select([pairs[i][0]], [], [], 2)
        woke.append((i, r == [pairs[i][0]]))

    try:
        waiters = [stolon.spawn(wait_on, i) for i in range(4)]
        stolon.sleep(0.01)
        for i in (2, 0, 3, 1):
            pairs[i][1].sendall(b"x")
            stolon.sleep(0.01)
        stolon.joinall(waiters, timeout=2)
        assert woke == [(2, True), (0, True), (3, True), (1, True)]
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_select_hangup_is_readable(pair):
    a, b = pair
    later(0.01, b.close)
    assert gselect.select([a], [], [], 2) == ([a], [], [])


# -- select(): timeouts ----------------------------------------------------------------

def test_select_timeout_zero_polls_and_yields(pair, active_count):
    a, b = pair
    ran = []
    stolon.spawn(ran.append, "other")
    start = time.monotonic()
    assert gselect.select([a], [], [], 0) == ([], [], [])
    assert gselect.select([a], [], [], 0.0) == ([], [], [])
    assert time.monotonic() - start < 0.5
    assert ran == ["other"]


def test_select_ready_answer_still_yields(pair):
    a, b = pair
    ran = []
    stolon.spawn(ran.append, "other")
    assert gselect.select([], [a], [], None) == ([], [a], [])
    assert ran == ["other"]


def test_select_positive_timeout_expires(pair, active_count):
    a, b = pair
    start = time.monotonic()
    assert gselect.select([a], [], [a], 0.05) == ([], [], [])
    elapsed = time.monotonic() - start
    assert 0.045 <= elapsed < 1


def test_select_interrupted_by_timeout_and_kill_leaves_no_watcher(pair, active_count):
    a, b = pair
    with pytest.raises(stolon.Timeout):
        with stolon.Timeout(0.02):
            gselect.select([a, b], [], [], None)
    g = stolon.spawn(gselect.select, [a, b], [], [])
    stolon.sleep(0.01)
    g.kill()
    assert g.dead
    b.sendall(b"x")   # a watcher left behind would fire now
    stolon.sleep(0.01)


def test_select_nothing_to_wait_for_but_timeout():
    start = time.monotonic()
    assert gselect.select([], [], [], 0.02) == ([], [], [])
    assert time.monotonic() - start >= 0.015


# -- select(): arguments ---------------------------------------------------------------

def test_select_negative_timeout_is_value_error(pair):
    a, b = pair
    with pytest.raises(ValueError, match="timeout must be non-negative"):
        gselect.select([a], [], [], -1)


def test_select_object_without_fileno_is_type_error():
    with pytest.raises(TypeError):
        gselect.select([object()], [], [], 0)
    with pytest.raises(TypeError):
        gselect.select([], ["nope"], [], 0)


def test_select_negative_fd_is_value_error():
    with pytest.raises(ValueError):
        gselect.select([-1], [], [], 0)


def test_select_closed_fd_is_ebadf(pipe):
    r, w = pipe
    os.close(r)
    with pytest.raises(OSError) as info:
        gselect.select([r], [], [], 1)
    assert info.value.errno == errno.EBADF
    with pytest.raises(OSError) as info:
        gselect.select([], [], [r], None)
    assert info.value.errno == errno.EBADF


def test_select_fd_closed_while_waiting_does_not_raise(pipe, active_count):
    # as in gevent: the kernel forgets a closed fd, so the wait ends at the timeout
    # (or reports it, on a backend that sees the close); it never raises
    r, w = pipe
    later(0.01, os.close, r)
    start = time.monotonic()
    rr, ww, xx = gselect.select([r], [], [], 0.1)
    assert rr in ([], [r]) and ww == [] and xx == []
    assert time.monotonic() - start < 1


# -- poll() ----------------------------------------------------------------------------

def test_poll_default_mask_and_results(pair, active_count):
    a, b = pair
    p = gselect.poll()
    p.register(a)
    assert p.poll(0) == [(a.fileno(), gselect.POLLOUT)]
    b.sendall(b"x")
    assert p.poll(0) == [(a.fileno(), gselect.POLLIN | gselect.POLLOUT)]


def test_poll_masks_and_modify(pair, active_count):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    assert p.poll(0) == []
    b.sendall(b"x")
    assert p.poll(0) == [(a.fileno(), gselect.POLLIN)]
    a.recv(1)
    p.modify(a, gselect.POLLOUT)
    assert p.poll(0) == [(a.fileno(), gselect.POLLOUT)]
    p.modify(a.fileno(), gselect.POLLIN | gselect.POLLPRI)
    assert p.poll(0) == []


def test_poll_several_fds(pair, pipe, active_count):
    a, b = pair
    r, w = pipe
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    p.register(r, gselect.POLLIN)
    p.register(w, gselect.POLLOUT)
    os.write(w, b"x")
    b.sendall(b"x")
    result = p.poll(1000)
    assert sorted(result) == sorted([(a.fileno(), gselect.POLLIN), (r, gselect.POLLIN),
                                     (w, gselect.POLLOUT)])


def test_poll_timeout_is_milliseconds(pair, active_count):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    start = time.monotonic()
    assert p.poll(50) == []
    elapsed = time.monotonic() - start
    assert 0.045 <= elapsed < 1


@pytest.mark.parametrize("timeout", [None, -1])
def test_poll_blocks_until_another_greenlet_sends(pair, active_count, timeout):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    later(0.02, b.sendall, b"x")
    start = time.monotonic()
    assert p.poll(timeout) == [(a.fileno(), gselect.POLLIN)]
    assert time.monotonic() - start < 1


def test_poll_hangup_is_pollin(pair):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    b.close()
    assert p.poll(1000) == [(a.fileno(), gselect.POLLIN)]


def test_poll_closed_fd_is_pollnval(pipe, active_count):
    r, w = pipe
    os.close(r)
    p = gselect.poll()
    p.register(r, gselect.POLLIN)
    p.register(w, gselect.POLLOUT)
    assert sorted(p.poll(0)) == [(r, gselect.POLLNVAL), (w, gselect.POLLOUT)]


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent waits out the timeout first")
def test_poll_closed_fd_answers_at_once(pipe):
    # deliberate difference: like select.poll, a closed descriptor is an answer;
    # gevent still waits for the timeout before reporting it
    r, w = pipe
    os.close(r)
    p = gselect.poll()
    p.register(r, gselect.POLLIN)
    start = time.monotonic()
    assert p.poll(2000) == [(r, gselect.POLLNVAL)]
    assert time.monotonic() - start < 0.5


def test_poll_unregister(pair):
    a, b = pair
    p = gselect.poll()
    p.register(a)
    p.unregister(a)
    assert p.poll(0) == []
    with pytest.raises(KeyError):
        p.unregister(a)
    with pytest.raises(KeyError):
        p.unregister(a.fileno())


def test_poll_bad_registrations():
    p = gselect.poll()
    with pytest.raises(ValueError, match="Invalid file object"):
        p.register(object())
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        p.register(-1)
    assert p.poll(0) == []


def test_poll_several_greenlets(active_count):
    pairs = [socket.socketpair() for _ in range(3)]
    results = {}

    def wait_on(i):
        p = gselect.poll()
        p.register(pairs[i][0], gselect.POLLIN)
        results[i] = p.poll(2000)

    try:
        waiters = [stolon.spawn(wait_on, i) for i in range(3)]
        stolon.sleep(0.01)
        for i in (1, 2, 0):
            pairs[i][1].sendall(b"x")
        stolon.joinall(waiters, timeout=2)
        assert results == {i: [(pairs[i][0].fileno(), gselect.POLLIN)] for i in range(3)}
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_poll_killed_while_waiting_leaves_no_watcher(pair, active_count):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    g = stolon.spawn(p.poll)
    stolon.sleep(0.01)
    g.kill()
    assert g.dead
    b.sendall(b"x")
    stolon.sleep(0.01)


@pytest.mark.skipif(UNDER_GEVENT, reason="stolon's loop backends")
def test_poll_backend_hub():
    # the same waits on a hub whose loop uses poll(2): there a descriptor closed
    # while a greenlet waits on it is reported (the backend sees POLLNVAL)
    import threading
    from stolon.hub import Hub, set_hub

    out = []

    def run():
        hub = Hub("poll")
        set_hub(hub)
        try:
            a, b = socket.socketpair()
            r, w = os.pipe()
            with a, b:
                stolon.spawn_later(0.01, b.sendall, b"x")
                out.append(gselect.select([a], [], [], 1))
                p = gselect.poll()
                p.register(a, gselect.POLLIN)
                out.append(p.poll(1000))
                stolon.spawn_later(0.01, os.close, r)
                out.append(gselect.select([r], [], [], 1))
                os.close(w)
                out.append((a, a.fileno()))
        finally:
            hub.destroy(destroy_loop=True)

    t = threading.Thread(target=run)
    t.start()
    t.join(5)
    assert len(out) == 4
    a, fd = out[3]
    assert out[0] == ([a], [], [])
    assert out[1] == [(fd, gselect.POLLIN)]
    assert len(out[2][0]) == 1 and out[2][1:] == ([], [])
