"""The C recv/send primitives under stolon.socket (csrc/py/sockio.c): one syscall
attempt, and on EAGAIN a wait on the socket's io watcher through the hub's C path."""
import errno
import gc
import hashlib
import os
import socket
import sys

import pytest

import stolon
from stolon import _core
from stolon.timeout import Timeout


@pytest.fixture
def pair():
    hub = stolon.get_hub()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    ends = {
        "a": a, "b": b, "hub": hub,
        "ra": hub.loop.io(a.fileno(), 1), "wa": hub.loop.io(a.fileno(), 2),
        "rb": hub.loop.io(b.fileno(), 1), "wb": hub.loop.io(b.fileno(), 2),
    }
    yield ends
    for key in ("ra", "wa", "rb", "wb"):
        ends[key].close()
    a.close()
    b.close()


def test_recv_returns_what_is_there(pair):
    pair["b"].send(b"hello")
    assert _core.sock_recv(pair["a"].fileno(), 100, 0, pair["hub"], pair["ra"]) == b"hello"


def test_recv_parks_until_data_arrives(pair):
    stolon.spawn_raw(lambda: (stolon.sleep(0.01), pair["b"].send(b"late")))
    assert _core.sock_recv(pair["a"].fileno(), 100, 0, pair["hub"], pair["ra"]) == b"late"
    assert not pair["ra"].active


def test_recv_without_watcher_raises_blocking_io_error(pair):
    with pytest.raises(BlockingIOError) as info:
        _core.sock_recv(pair["a"].fileno(), 100, 0, pair["hub"], None)
    assert info.value.errno == errno.EAGAIN


def test_recv_end_of_stream_is_empty_bytes(pair):
    pair["b"].shutdown(socket.SHUT_WR)
    assert _core.sock_recv(pair["a"].fileno(), 100, 0, pair["hub"], pair["ra"]) == b""


def test_recv_into_and_nbytes_checks(pair):
    pair["b"].send(b"abcdef")
    buf = bytearray(4)
    assert _core.sock_recv_into(pair["a"].fileno(), buf, 0, 0, pair["hub"], pair["ra"]) == 4
    assert buf == b"abcd"
    view = memoryview(bytearray(8))
    assert _core.sock_recv_into(pair["a"].fileno(), view, 2, 0, pair["hub"], pair["ra"]) == 2
    assert bytes(view[:2]) == b"ef"
    with pytest.raises(ValueError, match="buffer too small"):
        _core.sock_recv_into(pair["a"].fileno(), bytearray(2), 3, 0, pair["hub"], pair["ra"])
    with pytest.raises(TypeError):
        _core.sock_recv_into(pair["a"].fileno(), b"read-only", 0, 0, pair["hub"], pair["ra"])


def test_bad_arguments():
    hub = stolon.get_hub()
    with pytest.raises(OSError) as info:
        _core.sock_recv(-1, 10, 0, hub, None)
    assert info.value.errno == errno.EBADF
    with pytest.raises(ValueError, match="negative buffersize"):
        _core.sock_recv(0, -1, 0, hub, None)
    with pytest.raises(TypeError):
        _core.sock_recv(0, 10, 0, hub)
    with pytest.raises(TypeError):
        _core.sock_send("0", b"", 0, hub, None)


def test_send_and_sendall_large_transfer_with_checksum(pair):
    payload = os.urandom(4 * 1024 * 1024)
    got = bytearray()

    def reader():
        while len(got) < len(payload):
            chunk = _core.sock_recv(pair["b"].fileno(), 65536, 0, pair["hub"], pair["rb"])
            if not chunk:
                break
            got.extend(chunk)

    g = stolon.spawn(reader)
    _core.sock_sendall(pair["a"].fileno(), memoryview(payload), 0, pair["hub"], pair["wa"])
    g.join(timeout=10)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    assert _core.sock_send(pair["a"].fileno(), b"xyz", 0, pair["hub"], pair["wa"]) == 3


def test_sendall_without_watcher_raises_once_the_buffer_is_full(pair):
    with pytest.raises(BlockingIOError):
        _core.sock_sendall(pair["a"].fileno(), b"x" * (64 * 1024 * 1024), 0, pair["hub"], None)


def test_errors_carry_the_errno(pair):
    srv = socket.create_server(("127.0.0.1", 0))
    c = socket.create_connection(srv.getsockname())
    w = pair["hub"].loop.io(c.fileno(), 1)
    try:
        s, _ = srv.accept()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()           # linger 0: the peer gets a reset
        c.setblocking(False)
        with pytest.raises(ConnectionResetError):
            _core.sock_recv(c.fileno(), 10, 0, pair["hub"], w)
    finally:
        w.close()
        c.close()
        srv.close()


def test_timeout_around_a_wait(pair):
    with pytest.raises(socket.timeout):
        with Timeout(0.01, socket.timeout("timed out")):
            _core.sock_recv(pair["a"].fileno(), 10, 0, pair["hub"], pair["ra"])
    assert not pair["ra"].active


def test_cancel_wait_wakes_the_waiter_with_its_error(pair):
    hub = pair["hub"]
    errors = []

    def waiter():
        try:
            _core.sock_recv(pair["a"].fileno(), 10, 0, hub, pair["ra"])
        except OSError as ex:
            errors.append(ex.errno)

    g = stolon.spawn(waiter)
    stolon.sleep(0)
    hub.cancel_wait(pair["ra"], OSError(errno.EBADF, "File descriptor was closed in another greenlet"))
    g.join(timeout=1)
    assert errors == [errno.EBADF]


def test_no_leaks_over_many_round_trips(pair):
    def echo(count):
        for _ in range(count):
            data = _core.sock_recv(pair["b"].fileno(), 1024, 0, pair["hub"], pair["rb"])
            _core.sock_sendall(pair["b"].fileno(), data, 0, pair["hub"], pair["wb"])

    def rounds(count):
        g = stolon.spawn(echo, count)
        buf = bytearray(1024)
        for _ in range(count):
            _core.sock_sendall(pair["a"].fileno(), b"x" * 100, 0, pair["hub"], pair["wa"])
            _core.sock_recv_into(pair["a"].fileno(), buf, 0, 0, pair["hub"], pair["ra"])
        g.join()

    rounds(1000)
    gc.collect()
    # allocated blocks, not gc objects: a leaked bytes object is not GC-tracked
    before = sys.getallocatedblocks()
    rounds(20000)
    gc.collect()
    assert sys.getallocatedblocks() - before < 200


def test_a_second_waiter_on_one_direction_is_refused(pair):
    from stolon.exceptions import ConcurrentObjectUseError

    hub = pair["hub"]
    first = stolon.spawn(_core.sock_recv, pair["a"].fileno(), 10, 0, hub, pair["ra"])
    stolon.sleep(0)
    with pytest.raises(ConcurrentObjectUseError, match="already used by another greenlet"):
        _core.sock_recv(pair["a"].fileno(), 10, 0, hub, pair["ra"])
    pair["b"].send(b"first")
    assert first.get(timeout=1) == b"first"


# -- the read hint: after a short read from a stream socket the next blocking read waits
# for readiness first (the buffer was emptied), instead of a recv that says EAGAIN.
# Parking shows as other greenlets getting to run before the read returns.

def _read_yields(read):
    """Whether read() let a greenlet queued just before it run."""
    ran = []
    stolon.spawn_raw(ran.append, 1)
    read()
    yielded = bool(ran)
    stolon.sleep(0)     # let the queued greenlet run either way
    return yielded


def test_after_a_short_read_the_next_read_waits_first(pair):
    fd, hub, ra = pair["a"].fileno(), pair["hub"], pair["ra"]
    pair["b"].send(b"short")
    assert _core.sock_recv(fd, 100, 0, hub, ra) == b"short"
    pair["b"].send(b"already there")
    assert _read_yields(lambda: _core.sock_recv(fd, 100, 0, hub, ra) == b"already there")
    pair["b"].send(b"x" * 8)
    buf = bytearray(100)
    assert _read_yields(lambda: _core.sock_recv_into(fd, buf, 0, 0, hub, ra))
    assert buf[:8] == b"x" * 8
    assert not ra.active


def test_a_full_read_or_a_peek_keeps_reading_first(pair):
    fd, hub, ra = pair["a"].fileno(), pair["hub"], pair["ra"]
    pair["b"].send(b"abcd")
    assert _core.sock_recv(fd, 4, 0, hub, ra) == b"abcd"       # filled: maybe more behind
    pair["b"].send(b"efgh")
    assert not _read_yields(lambda: _core.sock_recv(fd, 2, socket.MSG_PEEK, hub, ra))
    assert not _read_yields(lambda: _core.sock_recv(fd, 100, 0, hub, ra))


def test_datagram_sockets_keep_reading_first():
    hub = stolon.get_hub()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        a.setblocking(False)
        ra = hub.loop.io(a.fileno(), 1)
        b.send(b"one")
        b.send(b"two")      # queued behind a short datagram
        assert _core.sock_recv(a.fileno(), 100, 0, hub, ra) == b"one"
        assert not _read_yields(lambda: _core.sock_recv(a.fileno(), 100, 0, hub, ra) == b"two")
        ra.close()


def test_a_reader_parked_by_the_hint_wakes_on_cancel(pair):
    fd, hub, ra = pair["a"].fileno(), pair["hub"], pair["ra"]
    pair["b"].send(b"short")
    assert _core.sock_recv(fd, 100, 0, hub, ra) == b"short"
    reader = stolon.spawn(_core.sock_recv, fd, 100, 0, hub, ra)
    stolon.sleep(0.01)
    assert ra.active
    hub.cancel_wait(ra, OSError(errno.EBADF, "closed"))
    reader.join(timeout=2)
    assert isinstance(reader.exception, OSError) and reader.exception.errno == errno.EBADF


def test_reads_after_short_reads_keep_every_byte(pair):
    # short reads go through a per-thread scratch buffer, long ones straight into
    # their bytes object: a stream of mixed sizes must come back intact either way
    fd, hub, ra = pair["a"].fileno(), pair["hub"], pair["ra"]
    chunks = [os.urandom(n) for n in (1, 100, 65536, 3, 70000, 7, 65535, 1, 200000, 9)]
    expected = b"".join(chunks)

    def send_all():
        for chunk in chunks:
            _core.sock_sendall(pair["b"].fileno(), chunk, 0, hub, pair["wb"])
            stolon.sleep(0)
        pair["b"].shutdown(socket.SHUT_WR)
    sender = stolon.spawn(send_all)
    got, sizes = [], (65536, 100, 100000, 1)
    while True:
        data = _core.sock_recv(fd, sizes[len(got) % len(sizes)], 0, hub, ra)
        if not data:
            break
        got.append(data)
    sender.join(timeout=5)
    assert b"".join(got) == expected


# -- the C methods of stolon.socket.socket (csrc/py/sockmethods.c) ---------------------------

def test_socket_methods_are_c_with_the_python_ones_kept():
    import stolon.socket as gsocket
    for name in ("recv", "recv_into", "send", "sendall"):
        assert type(getattr(gsocket.socket, name)).__name__ == "method_descriptor", name
        assert callable(getattr(gsocket.socket, "_py_" + name)), name


def test_socket_methods_take_every_path():
    import stolon.socket as gsocket
    a, b = gsocket.socketpair()
    with a, b:
        a.sendall(b"0123456789")                        # C path
        buf = bytearray(4)
        assert b.recv_into(buf, nbytes=2) == 2          # keywords: the Python method
        assert b.recv_into(buf, 2, 0) == 2 and buf[:2] == b"23"
        assert b.recv(3, 0) == b"456"
        b.settimeout(0.05)                              # a timeout: the Python method
        assert b.recv(10) == b"789"
        with pytest.raises(gsocket.timeout):
            b.recv(10)
        b.settimeout(None)
        with pytest.raises(TypeError):
            b.recv()                                    # the Python method's own errors
        with pytest.raises(TypeError):
            b.recv(1, 2, 3)
        with pytest.raises(TypeError):
            b.recv(1, "flags")
        assert a.send(memoryview(b"mv"), 0) == 2
        assert b.recv(2, False) == b"mv"                # a bool flag: the Python method
        reader = stolon.spawn(b.recv, 10)
        stolon.sleep(0.005)
        a.sendall(b"late")
        assert reader.get(timeout=2) == b"late"
    with pytest.raises(OSError):                        # closed: fd -1, the Python method
        b.recv(1)
