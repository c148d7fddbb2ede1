"""stolon.baseserver and stolon.server: accepting, spawning, stopping, error survival,
UDP, addresses and socket options, with no fd left open."""
import errno
import os
import socket as stdsocket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import stolon
import stolon.socket
from stolon.baseserver import BaseServer, parse_address
from stolon.event import Event
from stolon.pool import Pool
from stolon.server import DatagramServer, StreamServer
from conftest import child_env, recv_exactly

LOCAL = ("127.0.0.1", 0)
CLIENT_TIMEOUT = 2.0


# -- fixtures and helpers --------------------------------------------------------------


def FD_WARM_UP():
    """conftest's module_closes_its_fds counts from here: whatever the hub opens once
    (its loop, a resolver) stays open."""
    with StreamServer(LOCAL, echo) as server:
        server.start()
        assert ask(server, b"warm up") == b"warm up"


def echo(sock, _address):
    """Echo until the client closes."""
    while True:
        data = sock.recv(1024)
        if not data:
            return
        sock.sendall(data)


def connect(server):
    return stolon.socket.create_connection((server.server_host, server.server_port), CLIENT_TIMEOUT)


def ask(server, payload):
    """Connect, send ``payload``, half-close, read everything back."""
    with connect(server) as sock:
        sock.sendall(payload)
        sock.shutdown(stdsocket.SHUT_WR)
        return recv_exactly(sock, 1 << 20)


def run_script(code):
    """Run ``code`` in a fresh interpreter that imports this stolon; (rc, out, err)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env=child_env(), check=False)
    return proc.returncode, proc.stdout, proc.stderr


# -- serving ---------------------------------------------------------------------------

def test_echo_many_concurrent_clients():
    server = StreamServer(LOCAL, echo)
    server.start()
    try:
        assert server.started and not server.closed
        assert server.server_host == "127.0.0.1" and server.server_port > 0

        def client(i):
            with connect(server) as sock:
                for round_ in range(3):
                    msg = b"client %d round %d" % (i, round_)
                    sock.sendall(msg)
                    assert recv_exactly(sock, len(msg)) == msg
            return i

        clients = [stolon.spawn(client, i) for i in range(60)]
        stolon.joinall(clients, timeout=5, raise_error=True)
        assert sorted(g.value for g in clients) == list(range(60))
    finally:
        server.stop()
    assert server.closed and not server.started


def test_ten_thousand_concurrent_connections():
    # The server holds 10,000 connections, each with its handler parked in recv; the
    # clients live in a child process (both ends in one process would need 20,000 fds).
    rc, out, err = run_script('''
        import os, resource, subprocess, sys, stolon, stolon.socket
        from stolon.server import StreamServer
        COUNT = 10_000
        CLIENT = """if 1:
            import socket, sys
            conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
            for c in conns:
                c.sendall(b"x")
            assert all(c.recv(1) == b"X" for c in conns)
            print("echoed", flush=True)
            sys.stdin.readline()
            for c in conns:
                c.close()
            print("closed", flush=True)
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = COUNT + 200
        if hard != resource.RLIM_INFINITY and hard < need:
            print("skip: RLIMIT_NOFILE hard limit %d is below %d" % (hard, need))
            raise SystemExit(0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        stolon.get_hub().loop   # the loop's own fds stay open
        fds_before = len(os.listdir("/proc/self/fd"))
        live, served = set(), []

        def handle(sock, address):
            me = stolon.getcurrent()
            live.add(me)
            try:
                while True:
                    data = sock.recv(64)
                    if not data:
                        break
                    sock.sendall(data.upper())
                served.append(1)
            finally:
                live.discard(me)

        server = StreamServer(("127.0.0.1", 0), handle, backlog=1024)
        server.start()
        client = subprocess.Popen([sys.executable, "-c", CLIENT, str(server.server_port), str(COUNT)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def line():
            with stolon.Timeout(60):
                stolon.socket.wait_read(client.stdout.fileno())
                return client.stdout.readline().strip()

        print(line(), len(live))
        client.stdin.write("go\\n")
        client.stdin.flush()
        print(line())
        with stolon.Timeout(60):
            while live:
                stolon.sleep(0.01)
        print("served", len(served))
        server.stop()
        client.wait(timeout=10)
        client.stdin.close()
        client.stdout.close()
        print("fds back", len(os.listdir("/proc/self/fd")) - fds_before)
    ''')
    assert rc == 0, err
    if out.startswith("skip:"):
        pytest.skip(out.strip()[6:])
    assert out.split("\n")[:4] == ["echoed 10000", "closed", "served 10000", "fds back 0"], (out, err)


def test_blocking_client_in_a_thread():
    server = StreamServer(LOCAL, echo)
    server.start()
    done = Event()
    result = {}

    def blocking_client():
        try:
            with stdsocket.create_connection(server.address, CLIENT_TIMEOUT) as sock:
                sock.sendall(b"from a thread")
                sock.shutdown(stdsocket.SHUT_WR)
                result["data"] = sock.recv(100)
        finally:
            done.set()

    thread = threading.Thread(target=blocking_client)
    thread.start()
    try:
        assert done.wait(timeout=5)
    finally:
        thread.join(5)
        server.stop()
    assert result["data"] == b"from a thread"


def test_handler_socket_is_cooperative_and_closed_after_handle():
    seen = []

    def handle(sock, address):
        seen.append((type(sock), sock.gettimeout(), address))
        sock.sendall(b"bye")

    with StreamServer(LOCAL, handle) as server:
        server.start()
        with connect(server) as client:
            assert recv_exactly(client, 10) == b"bye"    # EOF: the server side is closed
            client_port = client.getsockname()[1]
    sock_type, timeout, address = seen[0]
    assert issubclass(sock_type, stolon.socket.socket)
    assert timeout is None
    assert address == ("127.0.0.1", client_port)


def test_handle_method_of_a_subclass_and_set_handle():
    class Hello(StreamServer):
        def handle(self, sock, _address):
            sock.sendall(b"hello")

    with Hello(LOCAL) as server:
        server.start()
        assert ask(server, b"") == b"hello"
        server.set_handle(lambda sock, _a: sock.sendall(b"other"))
        assert ask(server, b"") == b"other"


def test_handle_is_required():
    with pytest.raises(TypeError, match="'handle' must be provided"):
        StreamServer(LOCAL)


def test_address_as_string_and_port_reported():
    with StreamServer("127.0.0.1:0", echo) as server:
        assert server.server_port == 0
        server.start()
        assert server.server_host == "127.0.0.1"
        assert server.server_port != 0
        assert server.address == (server.server_host, server.server_port)
        assert server.socket.getsockname() == server.address
        assert ask(server, b"string address") == b"string address"


@pytest.mark.parametrize("socket_class", [stolon.socket.socket, stdsocket.socket], ids=["cooperative", "stdlib"])
def test_listener_given_as_socket(socket_class):
    # stolon deliberately differs with a blocking stdlib listener: the server makes it
    # non-blocking; gevent keeps it blocking, and its accept loop then blocks the hub
    # in accept() once the pending connections are taken (this test hangs there).
    listener = socket_class()
    listener.bind(LOCAL)
    listener.listen(5)
    server = StreamServer(listener, echo)
    try:
        assert server.socket is listener
        assert server.address == listener.getsockname()
        server.start()
        assert ask(server, b"given socket") == b"given socket"
    finally:
        server.stop()
    assert listener.fileno() == -1    # the server closes the listener it was given


def test_backlog_only_for_addresses():
    listener = stolon.socket.socket()
    try:
        with pytest.raises(TypeError, match="backlog must be None when a socket instance is passed"):
            StreamServer(listener, echo, backlog=5)
        assert listener.fileno() == -1    # as gevent: the failed server closed it
    finally:
        listener.close()
    server = StreamServer(LOCAL, echo, backlog=7)
    assert server.backlog == 7 and StreamServer.backlog == 128
    server.close()


def test_parse_address():
    assert parse_address(("127.0.0.1", 80)) == (stdsocket.AF_INET, ("127.0.0.1", 80))
    assert parse_address(("", 80)) == (stdsocket.AF_INET6, ("", 80))
    assert parse_address(("::1", 80)) == (stdsocket.AF_INET6, ("::1", 80))
    assert parse_address("127.0.0.1:8080") == (stdsocket.AF_INET, ("127.0.0.1", 8080))
    assert parse_address("[::1]:8080") == (stdsocket.AF_INET6, ("::1", 8080))
    assert parse_address("*:8080") == (stdsocket.AF_INET, ("", 8080))
    assert parse_address(":8080") == (stdsocket.AF_INET, ("", 8080))
    assert parse_address("8080") == (stdsocket.AF_INET6, ("", 8080))
    assert parse_address(8080) == (stdsocket.AF_INET6, ("", 8080))
    with pytest.raises(ValueError, match=r"Failed to parse address 'host:port': invalid literal"):
        parse_address("host:port")
    with pytest.raises(TypeError, match="Expected tuple or string, got <class 'list'>"):
        parse_address(["127.0.0.1", 80])


def test_repr_and_str():
    server = StreamServer(LOCAL, echo)
    server.start()
    try:
        port = server.server_port
        fileno = server.socket.fileno()
        assert str(server) == "<StreamServer fileno=%d address=127.0.0.1:%d handle=%r>" % (fileno, port, echo)
        assert repr(server).startswith("<StreamServer at 0x")
    finally:
        server.stop()
    assert str(server) == "<StreamServer address=127.0.0.1:%d>" % port

    class Own(StreamServer):
        def handle(self, sock, address):
            pass

        def serve(self, sock, address):
            pass

    own = Own(("127.0.0.1", 5))
    assert str(own) == "<Own address=127.0.0.1:5>"    # a handle method is not shown
    own.set_handle(own.serve)
    assert str(own) == "<Own address=127.0.0.1:5 handle=<bound method Own.serve of self>>"
    own.close()


def test_max_accept_must_be_positive():
    class NoAccept(StreamServer):
        max_accept = 0

    with pytest.raises(ValueError, match="max_accept must be positive int: 0"):
        NoAccept(LOCAL, echo)


def test_ssl_context_wraps_connections():
    wrapped = []

    class Context:
        def wrap_socket(self, sock, **kwargs):
            wrapped.append(kwargs)
            return sock

    with StreamServer(LOCAL, echo, ssl_context=Context(), do_handshake_on_connect=False) as server:
        assert server.ssl_enabled
        server.start()
        assert ask(server, b"pretend tls") == b"pretend tls"
    assert wrapped == [{"server_side": True, "do_handshake_on_connect": False}]
    plain = StreamServer(LOCAL, echo)
    assert not plain.ssl_enabled
    plain.close()


# -- spawn policies ----------------------------------------------------------------------

@pytest.mark.parametrize("make_spawn", [lambda: 2, lambda: Pool(2)], ids=["int", "Pool"])
def test_pool_bounds_concurrency(make_spawn):
    gate = Event()
    state = {"active": 0, "peak": 0, "served": 0}

    def handle(sock, _address):
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        try:
            gate.wait()
            sock.sendall(b"ok")
        finally:
            state["active"] -= 1
            state["served"] += 1

    spawn = make_spawn()
    server = StreamServer(LOCAL, handle, spawn=spawn)
    assert isinstance(server.pool, Pool) and server.pool.size == 2
    if isinstance(spawn, Pool):
        assert server.pool is spawn
    server.start()
    try:
        clients = [stolon.spawn(ask, server, b"") for _ in range(8)]
        for _ in range(200):
            if state["active"] == 2:
                break
            stolon.sleep(0.005)
        stolon.sleep(0.02)    # the other six are connected, and wait for a slot
        assert state == {"active": 2, "peak": 2, "served": 0}
        gate.set()
        stolon.joinall(clients, timeout=5, raise_error=True)
        assert [g.value for g in clients] == [b"ok"] * 8
        assert state == {"active": 0, "peak": 2, "served": 8}
    finally:
        server.stop()


def test_default_spawn_has_no_bound():
    gate = Event()
    active = []

    def handle(sock, _address):
        active.append(sock)
        gate.wait()
        sock.sendall(b"ok")

    with StreamServer(LOCAL, handle) as server:
        assert server.pool is None
        server.start()
        clients = [stolon.spawn(ask, server, b"") for _ in range(8)]
        for _ in range(200):
            if len(active) == 8:
                break
            stolon.sleep(0.005)
        assert len(active) == 8    # all handlers run at once
        gate.set()
        stolon.joinall(clients, timeout=5, raise_error=True)
        assert [g.value for g in clients] == [b"ok"] * 8


def test_spawn_none_handles_inline_in_the_hub():
    seen = []

    def handle(sock, _address):
        seen.append(stolon.getcurrent() is stolon.get_hub())
        sock.sendall(b"inline")

    with StreamServer(LOCAL, handle, spawn=None) as server:
        server.start()
        assert ask(server, b"") == b"inline"
    assert seen == [True]


def test_spawn_raw():
    with StreamServer(LOCAL, echo, spawn=stolon.spawn_raw) as server:
        server.start()
        assert ask(server, b"raw") == b"raw"


def test_inline_handler_may_close_the_server(hub_errors):
    # stolon deliberately differs: gevent's accept loop goes on after the close and
    # reports an AttributeError (the server has no socket any more)
    def handle(sock, _address):
        sock.sendall(b"last")
        server.close()

    server = StreamServer(LOCAL, handle, spawn=None)
    server.start()
    assert ask(server, b"") == b"last"
    assert server.closed
    assert hub_errors.getvalue() == ""


def test_max_accept_of_one_serves_everybody():
    class OneAtATime(StreamServer):
        max_accept = 1

    with OneAtATime(LOCAL, echo) as server:
        server.start()
        clients = [stolon.spawn(ask, server, b"%d" % i) for i in range(20)]
        stolon.joinall(clients, timeout=5, raise_error=True)
        assert [g.value for g in clients] == [b"%d" % i for i in range(20)]


# -- stopping ----------------------------------------------------------------------------

@pytest.mark.parametrize("timeout_from", ["argument", "stop_timeout"])
def test_stop_waits_for_pool_handlers_up_to_the_timeout_then_kills_them(timeout_from):
    finished = []

    def handle(sock, _address):
        sock.sendall(b"ready")
        if sock.recv(10) == b"fast":
            stolon.sleep(0.02)
            sock.sendall(b"done")
            finished.append("fast")
        else:
            stolon.sleep(30)    # killed by stop()
            finished.append("slow")

    server = StreamServer(LOCAL, handle, spawn=10)
    server.start()
    fast, slow = connect(server), connect(server)
    try:
        assert recv_exactly(fast, 5) == b"ready" and recv_exactly(slow, 5) == b"ready"
        fast.sendall(b"fast")
        slow.sendall(b"slow")
        stolon.sleep(0.005)
        started = time.monotonic()
        if timeout_from == "argument":
            server.stop(timeout=0.15)
        else:
            server.stop_timeout = 0.15
            server.stop()
        elapsed = time.monotonic() - started
        assert 0.1 <= elapsed < 1.0
        assert finished == ["fast"]
        assert len(server.pool) == 0
        assert recv_exactly(fast, 10) == b"done"
        assert recv_exactly(slow, 10) == b""    # the killed handler's socket was closed
    finally:
        fast.close()
        slow.close()


def test_stop_returns_as_soon_as_pool_handlers_finish():
    def handle(sock, _address):
        stolon.sleep(0.03)
        sock.sendall(b"late")

    server = StreamServer(LOCAL, handle, spawn=5)
    server.start()
    with connect(server) as client:
        stolon.sleep(0.01)
        started = time.monotonic()
        server.stop(timeout=5)
        assert time.monotonic() - started < 1.0
        assert recv_exactly(client, 10) == b"late"


def test_stop_without_pool_leaves_handlers_running():
    gate = Event()

    def handle(sock, _address):
        gate.wait()
        sock.sendall(b"after stop")

    server = StreamServer(LOCAL, handle)
    server.start()
    with connect(server) as client:
        stolon.sleep(0.01)
        server.stop(timeout=0.01)
        assert server.closed
        gate.set()
        assert recv_exactly(client, 20) == b"after stop"


def test_closed_server_refuses_connections():
    server = StreamServer(LOCAL, echo)
    server.start()
    address = server.address
    server.stop()
    with pytest.raises(OSError) as info:
        stolon.socket.create_connection(address, CLIENT_TIMEOUT).close()
    assert info.value.errno == errno.ECONNREFUSED


def test_serve_forever_stopped_from_another_greenlet():
    server = StreamServer(LOCAL, echo)
    runner = stolon.spawn(server.serve_forever)
    stolon.sleep(0)
    assert server.started
    assert ask(server, b"forever") == b"forever"
    server.stop()
    runner.join(timeout=2)
    assert runner.dead and runner.successful()
    assert server.closed


def test_killing_serve_forever_stops_the_server():
    server = StreamServer(LOCAL, echo, spawn=3)
    runner = stolon.spawn(server.serve_forever, stop_timeout=0.05)
    stolon.sleep(0)
    assert ask(server, b"x") == b"x"
    runner.kill(timeout=2)
    assert runner.dead
    assert server.closed and not server.started


def test_context_manager_stops():
    with StreamServer(LOCAL, echo) as server:
        # the socket is made by start(): until then the server counts as closed
        assert server.closed and not server.started
        server.start()
        assert server.started and not server.closed
    assert server.closed and not server.started


# -- errors --------------------------------------------------------------------------

def test_error_in_handle_is_reported_and_the_server_keeps_serving(hub_errors):
    calls = []

    def handle(sock, _address):
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("handler failed")
        sock.sendall(b"still here")

    with StreamServer(LOCAL, handle) as server:
        server.start()
        assert ask(server, b"") == b""    # the failed handler's socket is closed too
        assert ask(server, b"") == b"still here"
    assert "ZeroDivisionError: handler failed" in hub_errors.getvalue()


def test_spawn_failure_is_reported_and_backs_off(hub_errors):
    failures = []

    def flaky_spawn(function, *args):
        if not failures:
            failures.append(1)
            raise RuntimeError("cannot spawn")
        return stolon.spawn(function, *args)

    with StreamServer(LOCAL, echo, spawn=flaky_spawn) as server:
        server.start()
        # the first connection is closed (not handed over); the next one is served
        with connect(server) as client:
            assert recv_exactly(client, 10) == b""
        assert server.delay == server.min_delay * 2
        assert ask(server, b"b") == b"b"
    assert "RuntimeError: cannot spawn" in hub_errors.getvalue()


class FailingAccept(StreamServer):
    """accept() fails with ``errno_`` ``failures`` times, then works."""

    errno_ = errno.ECONNABORTED
    failures = 3

    def do_read(self):
        if self.failures:
            self.failures -= 1
            self.delays.append(self.delay)
            raise OSError(self.errno_, os.strerror(self.errno_))
        return StreamServer.do_read(self)


def test_transient_accept_errors_back_off_with_doubling_delay(hub_errors):
    server = FailingAccept(LOCAL, echo)
    server.delays = []
    server.start()
    try:
        started = time.monotonic()
        assert ask(server, b"survived") == b"survived"
        # pauses of 0.01, 0.02 and 0.04 s before the accept that works
        assert time.monotonic() - started >= 0.07
        assert server.delays == [0.01, 0.02, 0.04]
        assert server.delay == server.min_delay    # reset by the success
    finally:
        server.stop()
    assert hub_errors.getvalue().count("failed with ConnectionAbortedError") == 3


def test_back_off_is_capped_by_max_delay(hub_errors):
    server = FailingAccept(LOCAL, echo)
    server.failures = 4
    server.max_delay = 0.02
    server.delays = []
    server.start()
    try:
        assert ask(server, b"capped") == b"capped"
        assert server.delays == [0.01, 0.02, 0.02, 0.02]
    finally:
        server.stop()


def test_fatal_accept_error_closes_the_server(hub_errors, capsys):
    server = FailingAccept(LOCAL, echo)
    server.errno_ = errno.EBADF
    server.delays = []
    server.start()
    with stolon.socket.socket() as client:
        # the outcome of connecting is the server's to decide: no errors expected here
        client.connect_ex(server.address)
        for _ in range(100):
            if server.closed:
                break
            stolon.sleep(0.005)
        assert server.closed and not server.started
    assert ("ERROR: <FailingAccept address=127.0.0.1:%d> failed with [Errno 9] Bad file descriptor\n"
            % server.server_port) in capsys.readouterr().err
    assert "failed with OSError" in hub_errors.getvalue()
    assert server.is_fatal_error(OSError(errno.ENOTSOCK, "x"))
    assert not server.is_fatal_error(OSError(errno.EMFILE, "x"))
    assert not server.is_fatal_error(ValueError(errno.EBADF))


def test_accept_survives_running_out_of_file_descriptors():
    rc, out, err = run_script("""
        import os, resource, stolon, stolon.socket
        from stolon.server import StreamServer

        def handle(sock, address):
            sock.sendall(b"served")

        server = StreamServer(("127.0.0.1", 0), handle)
        server.start()
        client = stolon.socket.socket()
        client.settimeout(5)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
        fillers = []
        try:
            while True:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as ex:
            print("filled", ex.errno == __import__("errno").EMFILE)
        client.connect(server.address)     # completes in the kernel's backlog
        stolon.sleep(0.05)                 # accept() fails with EMFILE meanwhile
        print("delay grew", server.delay > server.min_delay, server.started)
        for fd in fillers:
            os.close(fd)
        print("reply", client.recv(10))
        client.close()
        server.stop()
    """)
    assert rc == 0, err
    assert out.split("\n")[:3] == ["filled True", "delay grew True True", "reply b'served'"]
    assert "Too many open files" in err


# -- UDP -------------------------------------------------------------------------------

class UpperEcho(DatagramServer):
    def handle(self, data, address):
        self.sendto(data.upper(), address)


def test_datagram_echo():
    server = UpperEcho(LOCAL)
    server.start()
    client = stolon.socket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    client.settimeout(CLIENT_TIMEOUT)
    try:
        assert server.server_port > 0
        for i in range(20):
            client.sendto(b"datagram %d" % i, server.address)
            data, address = client.recvfrom(100)
            assert data == b"DATAGRAM %d" % i and address == server.address
    finally:
        client.close()
        server.stop()
    assert server.closed


def test_datagram_handle_function_and_many_senders():
    received = []
    done = Event()

    def handle(data, address):
        received.append(data)
        if len(received) == 30:
            done.set()

    with DatagramServer("127.0.0.1:0", handle) as server:
        server.start()
        senders = [stolon.socket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) for _ in range(3)]
        try:
            for i in range(10):
                for n, sender in enumerate(senders):
                    sender.sendto(b"%d-%d" % (n, i), server.address)
            assert done.wait(timeout=2)
        finally:
            for sender in senders:
                sender.close()
    assert sorted(received) == sorted(b"%d-%d" % (n, i) for n in range(3) for i in range(10))


# -- socket options --------------------------------------------------------------------

def test_reuse_addr_is_set():
    with StreamServer(LOCAL, echo) as server:
        server.start()
        assert server.socket.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR) == 1


def test_bind_error_names_the_address():
    with StreamServer(LOCAL, echo) as first:
        first.start()
        second = StreamServer(first.address, echo)
        with pytest.raises(OSError) as info:
            second.start()
        assert info.value.errno == errno.EADDRINUSE
        assert repr(first.address) in str(info.value)
        assert second.closed


@pytest.mark.skipif(not hasattr(stdsocket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port_lets_two_servers_share_a_port():
    # stolon-specific: gevent has no reuse_port option
    if not hasattr(StreamServer, "reuse_port"):
        pytest.skip("no reuse_port option")
    first = StreamServer(LOCAL, lambda sock, _a: sock.sendall(b"1"), reuse_port=True)
    first.start()
    second = StreamServer(first.address, lambda sock, _a: sock.sendall(b"2"), reuse_port=True)
    second.start()
    try:
        assert first.socket.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEPORT) == 1
        assert second.address == first.address
        replies = {ask(first, b"") for _ in range(40)}
        assert replies <= {b"1", b"2"} and replies
    finally:
        first.stop()
        second.stop()
    udp = DatagramServer(LOCAL, lambda data, address: None, reuse_port=True)
    udp.start()
    udp2 = DatagramServer(udp.address, lambda data, address: None, reuse_port=True)
    udp2.start()
    udp.stop()
    udp2.stop()


def test_base_server_needs_do_read():
    # BaseServer is abstract: an accept without do_read reports NotImplementedError
    listener = stolon.socket.socket()
    server = BaseServer(listener, lambda *args: None)
    assert (server.server_host, server.server_port) == ("0.0.0.0", 0)
    with pytest.raises(NotImplementedError):
        server.do_read()
    server.close()
    assert listener.fileno() == -1
