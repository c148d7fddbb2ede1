"""stolon.socket: real sockets on 127.0.0.1 and AF_UNIX between greenlets: echo, many
connections, UDP, timeouts, refused connections, half-close, resets, large transfers,
makefile, closing under a waiter, concurrent waiters, dup/detach, sendfile, closed
sockets, the module's functions and its re-exports of the stdlib."""
import errno
import io
import os
import resource
import socket as stdlib_socket
import tempfile
import time
import zlib

import pytest

import stolon
from conftest import open_fd_count
import stolon.socket as gsocket
from stolon.exceptions import ConcurrentObjectUseError

# This file also runs against gevent (names switched) to check the expected behaviour.
UNDER_GEVENT = "gevent" in stolon.__name__

LOCALHOST = "127.0.0.1"


# conftest's module_closes_its_fds: every descriptor is closed by the module's end
FD_WARM_UP = stolon.get_hub


@pytest.fixture
def listener():
    sock = gsocket.socket()
    sock.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
    sock.bind((LOCALHOST, 0))
    sock.listen(128)
    yield sock
    sock.close()


@pytest.fixture
def pair():
    a, b = gsocket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def tcp_pair(listener):
    """A connected (client, server side) TCP pair."""
    client = gsocket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    yield client, server
    client.close()
    server.close()


def echo_once(listener):
    conn, _ = listener.accept()
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


def recv_exactly(sock, n):
    chunks = []
    while n:
        data = sock.recv(n)
        assert data, "peer closed early"
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


# -- the module ------------------------------------------------------------------------

def test_module_reexports_the_stdlib():
    for name in ("AF_INET", "SOCK_STREAM", "SOL_SOCKET", "SO_REUSEADDR", "SHUT_WR",
                 "inet_aton", "inet_ntoa", "htons", "ntohl", "getdefaulttimeout",
                 "setdefaulttimeout", "gethostname", "error", "herror", "gaierror",
                 "timeout", "AddressFamily", "SocketKind", "has_ipv6"):
        assert getattr(gsocket, name) is getattr(stdlib_socket, name), name
    assert gsocket.htons(1) == stdlib_socket.htons(1)
    assert gsocket.inet_aton("1.2.3.4") == b"\x01\x02\x03\x04"
    assert issubclass(gsocket.timeout, OSError)     # TimeoutError itself from 3.10 on
    for name in ("socket", "SocketType", "create_connection", "socketpair", "fromfd",
                 "getaddrinfo", "gethostbyname", "wait_read", "wait_write",
                 "wait_readwrite", "cancel_wait"):
        assert name in gsocket.__all__, name
    # stolon-specific: SocketType stays the stdlib's base of every socket (gevent: its
    # class), so isinstance() holds for any socket, cooperative or not
    assert gsocket.SocketType is stdlib_socket.SocketType
    with gsocket.socket() as sock:
        assert isinstance(sock, gsocket.SocketType)


def test_cancel_wait_ex_is_ebadf():
    ex = gsocket.cancel_wait_ex()
    assert isinstance(ex, OSError)
    assert ex.errno == errno.EBADF
    assert ex.strerror == "File descriptor was closed in another greenlet"


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent 26 wraps a _socket.socket instead")
def test_socket_subclasses_the_stdlib_socket(pair):
    a, _ = pair
    assert isinstance(a, stdlib_socket.socket)
    assert a.family == stdlib_socket.AF_UNIX and a.type == stdlib_socket.SOCK_STREAM
    assert a.proto == 0 and a.fileno() >= 0
    assert "stolon.socket.socket" in repr(a)


def test_socket_attributes(tcp_pair):
    client, server = tcp_pair
    assert client.family is gsocket.AF_INET
    assert client.type == gsocket.SOCK_STREAM     # SOCK_NONBLOCK never shows
    if not UNDER_GEVENT:                          # gevent gives a plain int
        assert client.type is gsocket.SOCK_STREAM
    assert client.getpeername() == server.getsockname()
    assert client.getsockopt(gsocket.SOL_SOCKET, gsocket.SO_TYPE) == gsocket.SOCK_STREAM
    # the descriptor is non-blocking underneath whatever the Python-level timeout
    assert os.get_blocking(client.fileno()) is False
    assert client.gettimeout() is None and client.getblocking()


# -- TCP -------------------------------------------------------------------------------

def test_tcp_echo_between_greenlets(listener):
    server = stolon.spawn(echo_once, listener)
    client = gsocket.create_connection(listener.getsockname())
    with client:
        for i in range(20):
            msg = b"message %d" % i
            client.sendall(msg)
            assert recv_exactly(client, len(msg)) == msg
        client.shutdown(gsocket.SHUT_WR)
        assert client.recv(10) == b""
    server.get(timeout=2)


def test_many_concurrent_connections(listener):
    count = 500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = open_fd_count() + 2 * count + 64
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    listener.listen(count)      # all of them queue at once: no SYN retransmits
    handlers = []

    def serve():
        for _ in range(count):
            conn, _ = listener.accept()
            handlers.append(stolon.spawn(handle, conn))

    def handle(conn):
        with conn:
            conn.sendall(conn.recv(100).upper())

    def client(i):
        with gsocket.create_connection(listener.getsockname()) as sock:
            sock.sendall(b"client %d" % i)
            return sock.recv(100)

    try:
        acceptor = stolon.spawn(serve)
        clients = [stolon.spawn(client, i) for i in range(count)]
        stolon.joinall(clients, timeout=10)
        acceptor.join(timeout=5)
        stolon.joinall(handlers, timeout=5)
        assert [c.value for c in clients] == [b"CLIENT %d" % i for i in range(count)]
        assert all(h.successful() for h in handlers) and len(handlers) == count
    finally:
        stolon.killall(clients + [acceptor] + handlers)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_connect_refused_only_fails_the_caller():
    # a bound socket that does not listen refuses connections at once
    closed = stdlib_socket.socket()
    closed.bind((LOCALHOST, 0))
    ticks = []

    def ticker():
        for _ in range(5):
            ticks.append(1)
            stolon.sleep(0.001)

    try:
        other = stolon.spawn(ticker)
        caller = stolon.spawn(gsocket.create_connection, closed.getsockname())
        caller.join(timeout=2)
        other.join(timeout=2)
        assert isinstance(caller.exception, ConnectionRefusedError)
        assert other.successful() and len(ticks) == 5
        sock = gsocket.socket()
        with sock:
            assert sock.connect_ex(closed.getsockname()) == errno.ECONNREFUSED
            if not UNDER_GEVENT:
                # as the stdlib, the socket may try again (gevent: ECONNABORTED)
                with pytest.raises(ConnectionRefusedError):
                    sock.connect(closed.getsockname())
    finally:
        closed.close()


def test_connect_resolves_host_names(listener):
    port = listener.getsockname()[1]
    with gsocket.socket() as sock:
        sock.connect(("localhost", port))
        conn, _ = listener.accept()
        conn.close()
    with gsocket.create_connection(("localhost", port), timeout=1,
                                   source_address=(LOCALHOST, 0)) as sock:
        assert sock.gettimeout() == 1.0
        assert sock.getsockname()[0] == LOCALHOST
        conn, _ = listener.accept()
        conn.close()


def test_half_close(tcp_pair):
    client, server = tcp_pair
    client.sendall(b"request")
    client.shutdown(gsocket.SHUT_WR)
    assert recv_exactly(server, 7) == b"request"
    assert server.recv(10) == b""
    server.sendall(b"reply")        # the other direction still works
    server.close()
    assert recv_exactly(client, 5) == b"reply"
    assert client.recv(10) == b""


def test_peer_reset_wakes_a_reader(tcp_pair):
    client, server = tcp_pair
    reader = stolon.spawn(client.recv, 100)
    stolon.sleep(0.01)
    assert not reader.ready()
    # SO_LINGER with a zero timeout makes close() send an RST
    server.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    server.close()
    reader.join(timeout=2)
    assert isinstance(reader.exception, ConnectionResetError)
    assert reader.exception.errno == errno.ECONNRESET


def test_large_transfer_sendall_recv_into(tcp_pair):
    client, server = tcp_pair
    payload = os.urandom(1 << 20) * 100         # 100 MiB
    expected = zlib.crc32(payload)

    def receive():
        buf = bytearray(256 * 1024)
        view = memoryview(buf)
        crc, total = 0, 0
        while total < len(payload):
            n = server.recv_into(view)
            assert n
            crc = zlib.crc32(view[:n], crc)
            total += n
        return total, crc

    receiver = stolon.spawn(receive)
    client.sendall(payload)
    assert receiver.get(timeout=60) == (len(payload), expected)


def test_sendall_accepts_any_buffer(pair):
    import array
    a, b = pair
    data = array.array("i", range(1000))
    a.sendall(data)
    a.sendall(memoryview(b"tail"))
    assert recv_exactly(b, 4004) == data.tobytes() + b"tail"


def test_accept_returns_cooperative_sockets(listener):
    client = stolon.spawn(gsocket.create_connection, listener.getsockname())
    conn, addr = listener.accept()
    with conn, client.get(timeout=2) as sock:
        assert type(conn) is gsocket.socket
        assert addr == sock.getsockname()
        assert conn.gettimeout() is None
        reader = stolon.spawn(conn.recv, 10)
        stolon.sleep(0.005)
        sock.sendall(b"ping")
        assert reader.get(timeout=2) == b"ping"


# -- UDP and AF_UNIX ----------------------------------------------------------------------

def test_udp_sendto_recvfrom():
    with gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM) as server, \
            gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM) as client:
        server.bind((LOCALHOST, 0))
        client.bind((LOCALHOST, 0))
        reader = stolon.spawn(server.recvfrom, 100)
        stolon.sleep(0.005)
        assert not reader.ready()
        assert client.sendto(b"datagram", server.getsockname()) == 8
        assert reader.get(timeout=2) == (b"datagram", client.getsockname())
        buf = bytearray(16)
        client.sendto(b"into", 0, server.getsockname())
        assert server.recvfrom_into(buf) == (4, client.getsockname())
        assert bytes(buf[:4]) == b"into"
        # the stdlib's arity errors
        with pytest.raises(TypeError, match=r"\(1 given\)"):
            client.sendto(b"lonely")
        with pytest.raises(TypeError, match=r"\(4 given\)"):
            client.sendto(b"crowded", 0, server.getsockname(), 4)


def test_unix_socketpair(pair):
    a, b = pair
    assert a.family == gsocket.AF_UNIX
    reader = stolon.spawn(b.recv, 100)
    stolon.sleep(0.001)
    a.sendall(b"over a pair")
    assert reader.get(timeout=2) == b"over a pair"


def test_unix_path_socket():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sock")
        with gsocket.socket(gsocket.AF_UNIX, gsocket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)

            def client():
                with gsocket.socket(gsocket.AF_UNIX, gsocket.SOCK_STREAM) as sock:
                    sock.connect(path)
                    sock.sendall(b"unix path")
                    return sock.recv(100)

            job = stolon.spawn(client)
            conn, _ = server.accept()
            with conn:
                conn.sendall(recv_exactly(conn, 9).upper())
            assert job.get(timeout=2) == b"UNIX PATH"


def test_sendmsg_recvmsg_pass_descriptors(pair):
    a, b = pair
    r, w = os.pipe()
    try:
        receiver = stolon.spawn(gsocket.recv_fds, b, 100, 1)
        stolon.sleep(0.001)
        gsocket.send_fds(a, [b"fd"], [w])
        data, fds, _flags, _addr = receiver.get(timeout=2)
        assert data == b"fd" and len(fds) == 1
        os.write(fds[0], b"x")
        os.close(fds[0])
        assert os.read(r, 1) == b"x"
    finally:
        os.close(r)
        os.close(w)


# -- timeouts -----------------------------------------------------------------------------

def test_recv_timeout(pair):
    a, _ = pair
    a.settimeout(0.05)
    assert a.gettimeout() == 0.05
    start = time.monotonic()
    with pytest.raises(gsocket.timeout, match="timed out"):
        a.recv(10)
    assert 0.04 <= time.monotonic() - start < 1.0


def test_zero_timeout_raises_blocking_io_error(pair, listener):
    a, _ = pair
    a.settimeout(0)
    with pytest.raises(BlockingIOError):
        a.recv(10)
    listener.setblocking(False)
    assert listener.gettimeout() == 0.0 and not listener.getblocking()
    with pytest.raises(BlockingIOError):
        listener.accept()
    with gsocket.socket() as sock:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.connect(listener.getsockname())
        gsocket.wait_read(listener.fileno(), timeout=1)
        conn, _ = listener.accept()
        conn.close()


def test_setblocking_and_settimeout_values(pair):
    a, _ = pair
    a.setblocking(False)
    assert a.gettimeout() == 0.0
    a.setblocking(True)
    assert a.gettimeout() is None and a.getblocking()
    a.settimeout(2)
    assert a.gettimeout() == 2.0 and a.getblocking()
    with pytest.raises(ValueError, match="Timeout value out of range"):
        a.settimeout(-1)
    with pytest.raises(TypeError):
        a.settimeout("1")
    a.settimeout(None)
    assert a.gettimeout() is None


def test_default_timeout_applies_to_new_sockets():
    old = gsocket.getdefaulttimeout()
    gsocket.setdefaulttimeout(0.25)
    try:
        with gsocket.socket() as sock:
            assert sock.gettimeout() == 0.25
    finally:
        gsocket.setdefaulttimeout(old)


def test_accept_timeout(listener):
    listener.settimeout(0.02)
    with pytest.raises(gsocket.timeout):
        listener.accept()


def test_sendall_timeout_bounds_the_whole_call(pair):
    a, _ = pair
    a.settimeout(0.05)
    start = time.monotonic()
    with pytest.raises(gsocket.timeout, match="timed out"):
        a.sendall(b"x" * (16 << 20))     # the peer never reads
    assert time.monotonic() - start < 1.0


def test_timeout_lets_other_greenlets_run(pair):
    a, b = pair
    a.settimeout(1)
    stolon.spawn_later(0.01, b.sendall, b"late")
    assert a.recv(10) == b"late"


# -- makefile -----------------------------------------------------------------------------

def test_makefile_lines(tcp_pair):
    client, server = tcp_pair

    def serve():
        with server.makefile("rb") as rfile, server.makefile("wb") as wfile:
            for line in rfile:
                wfile.write(line.upper())
                wfile.flush()

    job = stolon.spawn(serve)
    with client.makefile("rw", encoding="ascii", newline="\n") as f:
        for text in ("first\n", "second\n"):
            f.write(text)
            f.flush()
            assert f.readline() == text.upper()
    client.shutdown(gsocket.SHUT_WR)
    job.get(timeout=2)


def test_makefile_keeps_socket_open_until_closed(pair):
    a, b = pair
    f = a.makefile("rb")
    a.close()
    assert a.fileno() != -1          # the stream still holds it, as in the stdlib
    b.sendall(b"still here\n")
    assert f.readline() == b"still here\n"
    f.close()
    assert a.fileno() == -1


def test_makefile_read_timeout(pair):
    a, _ = pair
    a.settimeout(0.02)
    with a.makefile("rb") as f:
        with pytest.raises(gsocket.timeout):
            f.readline()


# -- closing, waiters ---------------------------------------------------------------------

def test_close_wakes_a_waiting_greenlet(pair):
    a, _ = pair
    reader = stolon.spawn(a.recv, 10)
    stolon.sleep(0.001)
    a.close()
    reader.join(timeout=2)
    ex = reader.exception
    assert isinstance(ex, OSError)
    assert ex.errno == errno.EBADF
    assert "File descriptor was closed in another greenlet" in str(ex)


def test_close_wakes_a_writer_and_an_acceptor(listener):
    acceptor = stolon.spawn(listener.accept)
    a, b = gsocket.socketpair()
    with b:
        a.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_SNDBUF, 4096)
        writer = stolon.spawn(a.sendall, b"x" * (4 << 20))
        stolon.sleep(0.01)
        a.close()
        listener.close()
        stolon.joinall([writer, acceptor], timeout=2)
    for job in (writer, acceptor):
        assert isinstance(job.exception, OSError) and job.exception.errno == errno.EBADF


def test_closed_descriptor_number_is_not_reused_under_a_waiter():
    a, b = gsocket.socketpair()
    reader = stolon.spawn(a.recv, 10)
    stolon.sleep(0.001)
    a.close()
    c, d = gsocket.socketpair()     # must not be handed the number the waiter knew
    with b, c, d:
        reader.join(timeout=2)
        assert reader.exception.errno == errno.EBADF
        stolon.sleep(0.001)
        c.sendall(b"fresh")
        assert recv_exactly(d, 5) == b"fresh"


def test_close_under_a_foreign_watcher():
    # somebody waits on the descriptor through wait_read: close() tells the loop, the
    # waiter wakes, and the descriptor is closed after it
    a, b = gsocket.socketpair()
    with b:
        waiter = stolon.spawn(gsocket.wait_read, a.fileno(), 5)
        stolon.sleep(0.001)
        a.close()
        waiter.join(timeout=0.5)        # far sooner than its own 5 s timeout
        assert waiter.successful()
        stolon.sleep(0.001)


def test_ref_property(pair):
    a, b = pair
    assert a.ref is True
    b.settimeout(0.001)
    with pytest.raises(gsocket.timeout):
        b.recv(1)                   # makes only the read watcher
    assert b.ref is True
    a.ref = False
    assert a.ref is False

    def send_and_keep_the_loop_alive():
        stolon.sleep(0.005)
        b.sendall(b"x")
        stolon.sleep(1)

    sender = stolon.spawn(send_and_keep_the_loop_alive)
    assert a.recv(1) == b"x"
    sender.kill()
    a.ref = True
    assert a.ref is True


def test_two_waiters_same_direction(pair):
    a, b = pair
    first = stolon.spawn(a.recv, 10)
    stolon.sleep(0.001)
    with pytest.raises(ConcurrentObjectUseError,
                       match="This socket is already used by another greenlet"):
        a.recv(10)
    b.sendall(b"one")
    assert first.get(timeout=2) == b"one"


def test_reader_and_writer_share_a_socket(pair):
    a, b = pair
    reader = stolon.spawn(a.recv, 10)
    stolon.sleep(0.001)
    a.sendall(b"ping")              # another direction: no conflict
    assert recv_exactly(b, 4) == b"ping"
    b.sendall(b"pong")
    assert reader.get(timeout=2) == b"pong"


def test_operations_on_a_closed_socket():
    a, b = gsocket.socketpair()
    b.close()
    a.close()
    a.close()                       # twice is fine
    assert a.fileno() == -1
    assert "[closed]" in repr(a)
    for call in (lambda: a.recv(1), lambda: a.send(b"x"), lambda: a.sendall(b"x"),
                 lambda: a.recv_into(bytearray(1)), lambda: a.getsockname()):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF


def test_context_manager_closes(pair):
    a, _ = pair
    with a as same:
        assert same is a
    assert a.fileno() == -1


def test_shutdown_read_cancels_a_reader(pair):
    # gevent's choice: the waiting reader gets cancel_wait_ex rather than b''
    a, _ = pair
    reader = stolon.spawn(a.recv, 10)
    stolon.sleep(0.001)
    a.shutdown(gsocket.SHUT_RD)
    reader.join(timeout=2)
    assert isinstance(reader.exception, OSError) and reader.exception.errno == errno.EBADF


# -- dup, detach, fromfd ------------------------------------------------------------------

def test_dup(pair):
    a, b = pair
    a.settimeout(3)
    c = a.dup()
    with c:
        assert type(c) is type(a) and c.fileno() != a.fileno()
        assert c.gettimeout() == 3
        a.close()
        c.sendall(b"via dup")
        assert recv_exactly(b, 7) == b"via dup"


def test_detach(pair):
    a, b = pair
    fd = a.detach()
    assert a.fileno() == -1
    with gsocket.socket(gsocket.AF_UNIX, gsocket.SOCK_STREAM, fileno=fd) as again:
        b.sendall(b"detached")
        assert recv_exactly(again, 8) == b"detached"


def test_detach_wakes_a_waiter(pair):
    a, _ = pair
    reader = stolon.spawn(a.recv, 10)
    stolon.sleep(0.001)
    fd = a.detach()
    reader.join(timeout=2)
    os.close(fd)
    assert isinstance(reader.exception, OSError) and reader.exception.errno == errno.EBADF


def test_fromfd(pair):
    a, b = pair
    c = gsocket.fromfd(a.fileno(), gsocket.AF_UNIX, gsocket.SOCK_STREAM)
    with c:
        assert c.fileno() != a.fileno()
        reader = stolon.spawn(c.recv, 10)
        stolon.sleep(0.001)
        b.sendall(b"fromfd")
        assert reader.get(timeout=2) == b"fromfd"


# -- sendfile -----------------------------------------------------------------------------

def test_sendfile(tcp_pair):
    client, server = tcp_pair
    data = os.urandom(3 << 20)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        f.seek(0)
        receiver = stolon.spawn(recv_exactly, server, len(data))
        assert client.sendfile(f) == len(data)
        assert receiver.get(timeout=5) == data
        assert f.tell() == len(data)
        receiver = stolon.spawn(recv_exactly, server, 1000)
        assert client.sendfile(f, offset=10, count=1000) == 1000
        assert receiver.get(timeout=2) == data[10:1010]


def test_sendfile_from_a_non_file(tcp_pair):
    client, server = tcp_pair
    receiver = stolon.spawn(recv_exactly, server, 5)
    assert client.sendfile(io.BytesIO(b"bytes")) == 5
    assert receiver.get(timeout=2) == b"bytes"


def test_sendfile_from_a_non_file_with_a_timeout_cooperates(tcp_pair):
    # more than the kernel buffers hold: the sender must wait for the reader, a
    # greenlet of this thread (the stdlib's fallback would block in a selector)
    client, server = tcp_pair
    client.settimeout(5)
    data = os.urandom(8 << 20)
    receiver = stolon.spawn(recv_exactly, server, len(data) - 100)
    source = io.BytesIO(data)
    assert client.sendfile(source, offset=100) == len(data) - 100
    assert receiver.get(timeout=5) == data[100:]
    assert source.tell() == len(data)


# -- module functions ---------------------------------------------------------------------

def test_wait_read_and_write(pair):
    a, b = pair
    with pytest.raises(gsocket.timeout, match="timed out"):
        gsocket.wait_read(a.fileno(), timeout=0.01)
    with pytest.raises(ValueError):
        gsocket.wait_read(a.fileno(), timeout=0.01, timeout_exc=ValueError)
    gsocket.wait_write(a.fileno(), timeout=1)
    gsocket.wait_readwrite(a.fileno(), timeout=1)
    stolon.spawn_later(0.005, b.sendall, b"x")
    gsocket.wait_read(a.fileno(), timeout=1)
    assert a.recv(1) == b"x"


def test_cancel_wait(pair):
    a, _ = pair
    hub = stolon.get_hub()
    watcher = hub.loop.io(a.fileno(), 1)
    try:
        waiter = stolon.spawn(gsocket.wait, watcher)
        stolon.sleep(0.001)
        gsocket.cancel_wait(watcher)
        waiter.join(timeout=2)
        assert isinstance(waiter.exception, gsocket.cancel_wait_ex)
    finally:
        watcher.close()


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent re-exports the stdlib's, blocking socket")
def test_create_server():
    server = gsocket.create_server((LOCALHOST, 0))
    with server:
        assert type(server) is gsocket.socket
        client = stolon.spawn(gsocket.create_connection, server.getsockname())
        conn, _ = server.accept()
        conn.close()
        client.get(timeout=2).close()


def test_create_connection_tries_every_address(monkeypatch, listener):
    refusing = stdlib_socket.socket()
    refusing.bind((LOCALHOST, 0))
    good = listener.getsockname()
    answers = [(gsocket.AF_INET, gsocket.SOCK_STREAM, 6, "", refusing.getsockname()),
               (gsocket.AF_INET, gsocket.SOCK_STREAM, 6, "", good)]
    monkeypatch.setattr(gsocket, "getaddrinfo", lambda *args: answers)
    try:
        with gsocket.create_connection(("anything", 1)) as sock:
            assert sock.getpeername() == good
        listener.accept()[0].close()
        answers.pop()
        with pytest.raises(ConnectionRefusedError):
            gsocket.create_connection(("anything", 1))
        answers.clear()
        with pytest.raises(OSError, match="getaddrinfo returns an empty list"):
            gsocket.create_connection(("anything", 1))
    finally:
        refusing.close()


def test_dns_functions():
    info = gsocket.getaddrinfo(LOCALHOST, 80, 0, gsocket.SOCK_STREAM)
    assert info[0][0] is gsocket.AF_INET and info[0][1] is gsocket.SOCK_STREAM
    assert info[0][4] == (LOCALHOST, 80)
    assert gsocket.gethostbyname(LOCALHOST) == LOCALHOST
    assert gsocket.gethostbyname_ex(LOCALHOST)[2] == [LOCALHOST]
    assert gsocket.getnameinfo((LOCALHOST, 80), gsocket.NI_NUMERICHOST | gsocket.NI_NUMERICSERV) \
        == (LOCALHOST, "80")
    assert isinstance(gsocket.getfqdn(), str)


def test_dns_goes_through_the_hub_resolver():
    calls = []

    class Resolver:
        def gethostbyname(self, name):
            calls.append(name)
            return "10.1.2.3"

        def close(self):
            pass

    hub = stolon.get_hub()
    had_resolver = "resolver" in type(hub).__dict__ or "resolver" in vars(hub)
    old = hub.resolver if had_resolver else None
    hub.resolver = Resolver()
    try:
        assert gsocket.gethostbyname("example.invalid") == "10.1.2.3"
        assert calls == ["example.invalid"]
    finally:
        if old is not None:
            hub.resolver = old
        else:
            del hub.resolver


# -- stolon's own choices -----------------------------------------------------------------

@pytest.mark.skipif(UNDER_GEVENT, reason="gevent waits; the stdlib raises at once")
def test_msg_dontwait_does_not_wait(pair):
    a, _ = pair
    with pytest.raises(BlockingIOError):
        a.recv(10, gsocket.MSG_DONTWAIT)


# -- the stdlib's mode rules ----------------------------------------------------------------

def test_sock_nonblock_type_means_non_blocking_mode(listener):
    with gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM | gsocket.SOCK_NONBLOCK) as sock:
        assert sock.gettimeout() == 0.0 and not sock.getblocking()
        sock.connect_ex(listener.getsockname())
        with pytest.raises(BlockingIOError):
            sock.recv(1)
        listener.accept()[0].close()


def test_setblocking_and_settimeout_fail_on_a_closed_descriptor():
    with gsocket.socket() as first:
        fd = first.fileno()
        sock = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM, 0, fd)
    try:
        with pytest.raises(OSError):
            sock.setblocking(False)
        with pytest.raises(OSError):
            sock.settimeout(1.0)
    finally:
        sock.detach()
