"""stolon.ssl: TLS between greenlets of one process over real sockets on 127.0.0.1, with
certificates made by trustme: handshakes (on connect, explicit, after connect, on
accept), TLS 1.2 and 1.3, ALPN, SNI, peer certificates both ways, bulk transfers,
makefile, sendfile, unwrap, timeouts, non-blocking mode, EOFs and resets, closing under
a waiter, cooperation between connections, StreamServer in SSL mode,
get_server_certificate and the module's re-exports of the stdlib."""
import contextlib
import errno
import hashlib
import os
import socket as stdlib_socket
import ssl as stdlib_ssl
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings

import pytest
import trustme

import stolon
from conftest import child_env, live_object_count, open_fd_count, recv_exactly
import stolon.socket as gsocket
import stolon.ssl as gssl
from stolon.event import Event
from stolon.exceptions import ConcurrentObjectUseError
from stolon.pool import Group
from stolon.server import StreamServer

# This file also runs against gevent (names switched) to check the expected behaviour.
UNDER_GEVENT = "gevent" in stolon.__name__

LOCALHOST = "127.0.0.1"
TLS_VERSIONS = [stdlib_ssl.TLSVersion.TLSv1_2, stdlib_ssl.TLSVersion.TLSv1_3]
VERSION_NAMES = {stdlib_ssl.TLSVersion.TLSv1_2: "TLSv1.2", stdlib_ssl.TLSVersion.TLSv1_3: "TLSv1.3"}


# conftest's module_closes_its_fds: every descriptor is closed by the module's end
FD_WARM_UP = stolon.get_hub


class PKI:
    """A CA, a server certificate for localhost and 127.0.0.1, a client certificate,
    and the same as files."""

    def __init__(self, directory):
        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("localhost", LOCALHOST)
        self.client = self.ca.issue_cert("client.example.org")
        self.ca_file = os.path.join(directory, "ca.pem")
        self.cert_file = os.path.join(directory, "server.pem")
        self.key_file = os.path.join(directory, "server.key")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.server.cert_chain_pems[0].write_to_path(self.cert_file)
        self.server.private_key_pem.write_to_path(self.key_file)

    def server_context(self, version=None):
        context = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
        self.server.configure_cert(context)
        if version is not None:
            context.minimum_version = context.maximum_version = version
        return context

    def client_context(self, version=None):
        context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
        self.ca.configure_trust(context)
        if version is not None:
            context.minimum_version = context.maximum_version = version
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def listener():
    sock = gsocket.socket()
    sock.bind((LOCALHOST, 0))
    sock.listen(16)
    yield sock
    sock.close()


@contextlib.contextmanager
def tls_pair(listener, server_context, client_context, server_kwargs=None, client_kwargs=None):
    """A connected (client, server) pair of SSL sockets; the server side shakes hands
    in a greenlet while the client does in this one."""
    def accept():
        conn, _ = listener.accept()
        return server_context.wrap_socket(conn, server_side=True, **(server_kwargs or {}))

    accepting = stolon.spawn(accept)
    raw = gsocket.create_connection(listener.getsockname())
    try:
        client = client_context.wrap_socket(raw, server_hostname="localhost", **(client_kwargs or {}))
    except BaseException:
        raw.close()
        accepting.kill()
        raise
    server = accepting.get()
    try:
        yield client, server
    finally:
        client.close()
        server.close()


# -- handshakes ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.2", "TLSv1.3"])
def test_handshake_on_connect_and_echo(pki, listener, version):
    with tls_pair(listener, pki.server_context(version), pki.client_context(version)) as (client, server):
        assert isinstance(client, gssl.SSLSocket) and isinstance(server, gssl.SSLSocket)
        if not UNDER_GEVENT:
            # stolon's sockets are stdlib sockets (gevent's wrap one)
            assert isinstance(client, (stdlib_socket.socket, stdlib_ssl.SSLSocket))
        assert client.version() == server.version() == VERSION_NAMES[version]
        assert client.cipher() == server.cipher()
        assert client.server_hostname == "localhost" and not client.server_side
        assert server.server_side and server.server_hostname is None
        client.sendall(b"ping")
        assert server.recv(100) == b"ping"
        server.write(b"pong")
        assert client.read(100) == b"pong"


@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.2", "TLSv1.3"])
def test_explicit_handshake(pki, listener, version):
    pair = tls_pair(listener, pki.server_context(version), pki.client_context(version),
                    {"do_handshake_on_connect": False}, {"do_handshake_on_connect": False})
    with pair as (client, server):
        assert client.version() is None and server.version() is None
        assert client.cipher() is None
        peer = stolon.spawn(server.do_handshake)
        client.do_handshake()
        peer.get()
        assert client.version() == server.version() == VERSION_NAMES[version]
        client.sendall(b"after")
        assert server.recv(10) == b"after"


def test_connect_then_handshake(pki, listener):
    server_context = pki.server_context()

    def serve():
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(tls.recv(100).upper())

    serving = stolon.spawn(serve)
    with pki.client_context().wrap_socket(gsocket.socket(), server_hostname="localhost") as client:
        assert client.version() is None
        client.connect(listener.getsockname())
        assert client.version() is not None
        client.sendall(b"connected")
        assert client.recv(100) == b"CONNECTED"
    serving.get()


def test_connect_ex_returns_zero_and_refused_errno(pki, listener):
    server_context = pki.server_context()
    serving = stolon.spawn(lambda: server_context.wrap_socket(listener.accept()[0], server_side=True).close())
    with pki.client_context().wrap_socket(gsocket.socket(), server_hostname="localhost") as client:
        assert client.connect_ex(listener.getsockname()) == 0
        assert client.version() is not None
    serving.get()
    closed = gsocket.socket()
    closed.bind((LOCALHOST, 0))
    address = closed.getsockname()
    closed.close()
    with pki.client_context().wrap_socket(gsocket.socket(), server_hostname="localhost") as client:
        assert client.connect_ex(address) == errno.ECONNREFUSED


def test_accept_on_a_listening_ssl_socket(pki, listener):
    tls_listener = pki.server_context().wrap_socket(listener, server_side=True)
    try:
        def client():
            raw = gsocket.create_connection(tls_listener.getsockname())
            with pki.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"hello")
                return tls.recv(100)

        talking = stolon.spawn(client)
        conn, address = tls_listener.accept()
        with conn:
            assert isinstance(conn, gssl.SSLSocket) and conn.server_side
            assert address[0] == LOCALHOST
            assert conn.version() is not None          # handshake done in accept()
            conn.sendall(conn.recv(100) * 2)
        assert talking.get() == b"hellohello"
    finally:
        tls_listener.close()


def test_failed_verification_closes_both_sides(pki, listener):
    untrusting = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)     # no CA loaded
    server_context = pki.server_context()
    outcome = []

    def serve():
        conn, _ = listener.accept()
        try:
            server_context.wrap_socket(conn, server_side=True)
        except (gssl.SSLError, OSError) as ex:
            outcome.append(ex)
        assert conn.fileno() == -1                 # taken over by the SSL socket, then closed

    serving = stolon.spawn(serve)
    raw = gsocket.create_connection(listener.getsockname())
    with pytest.raises(gssl.SSLCertVerificationError):
        untrusting.wrap_socket(raw, server_hostname="localhost")
    assert raw.fileno() == -1
    serving.get()
    assert len(outcome) == 1


# -- negotiation and certificates -------------------------------------------------------

def test_alpn(pki, listener):
    server_context = pki.server_context()
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    client_context = pki.client_context()
    client_context.set_alpn_protocols(["http/1.1", "spdy/3"])
    with tls_pair(listener, server_context, client_context) as (client, server):
        assert client.selected_alpn_protocol() == server.selected_alpn_protocol() == "http/1.1"


def test_sni_callback_sees_the_name_and_the_socket(pki, listener):
    server_context = pki.server_context()
    seen = []

    def on_name(conn, name, context):
        seen.append((type(conn), name, context))

    server_context.sni_callback = on_name
    assert server_context.sni_callback is on_name
    with tls_pair(listener, server_context, pki.client_context()) as (client, server):
        assert seen == [(type(server), "localhost", server_context)]
        assert client.server_hostname == "localhost"


def test_peer_certificates_both_ways(pki, listener):
    server_context = pki.server_context()
    server_context.verify_mode = gssl.CERT_REQUIRED
    pki.ca.configure_trust(server_context)
    client_context = pki.client_context()
    pki.client.configure_cert(client_context)
    with tls_pair(listener, server_context, client_context) as (client, server):
        server_cert = client.getpeercert()
        assert ("DNS", "localhost") in server_cert["subjectAltName"]
        assert ("IP Address", LOCALHOST) in server_cert["subjectAltName"]
        client_cert = server.getpeercert()
        assert ("DNS", "client.example.org") in client_cert["subjectAltName"]
        der = client.getpeercert(binary_form=True)
        assert gssl.DER_cert_to_PEM_cert(der) == pki.server.cert_chain_pems[0].bytes().decode()


def test_client_without_the_requested_certificate_is_refused(pki, listener):
    server_context = pki.server_context(stdlib_ssl.TLSVersion.TLSv1_2)
    server_context.verify_mode = gssl.CERT_REQUIRED
    pki.ca.configure_trust(server_context)
    failures = []

    def serve():
        conn, _ = listener.accept()
        try:
            server_context.wrap_socket(conn, server_side=True)
        except gssl.SSLError as ex:
            failures.append(ex)

    serving = stolon.spawn(serve)
    raw = gsocket.create_connection(listener.getsockname())
    with pytest.raises(gssl.SSLError):
        pki.client_context().wrap_socket(raw, server_hostname="localhost")
    serving.get()
    assert len(failures) == 1


# -- data ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.2", "TLSv1.3"])
def test_megabytes_both_ways_with_a_checksum(pki, listener, version):
    payload = os.urandom(3 << 20)
    with tls_pair(listener, pki.server_context(version), pki.client_context(version)) as (client, server):
        def echo():
            buffer = bytearray(65536)
            total = 0
            while total < len(payload):
                n = server.recv_into(buffer)
                assert n
                server.sendall(memoryview(buffer)[:n])
                total += n

        def receive():
            digest = hashlib.sha256()
            received = 0
            while received < len(payload):
                chunk = client.read(1 << 17)
                assert chunk
                digest.update(chunk)
                received += len(chunk)
            return digest.digest()

        # the client sends and receives at once (the echo would fill both directions)
        echoing = stolon.spawn(echo)
        receiving = stolon.spawn(receive)
        client.sendall(payload)
        assert receiving.get(timeout=10) == hashlib.sha256(payload).digest()
        echoing.get()


def test_write_returns_the_length_and_pending_counts_buffered_bytes(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, server):
        assert server.write(b"x" * 1000) == 1000
        assert client.pending() == 0
        assert client.read(10) == b"x" * 10
        assert client.pending() == 990
        buffer = bytearray(2000)
        assert client.recv_into(buffer) == 990
        assert client.recv(0) == b""


def test_makefile(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, server):
        def serve():
            with server.makefile("rwb") as stream:
                for line in stream:
                    stream.write(line.upper())
                    stream.flush()
            server.unwrap()                         # answer the client's close_notify

        serving = stolon.spawn(serve)
        with client.makefile("rwb") as stream:
            for word in (b"alpha\n", b"beta\n"):
                stream.write(word)
                stream.flush()
                assert stream.readline() == word.upper()
        client.unwrap()                             # close_notify: the server's loop ends
        serving.get()


def test_sendfile_over_tls(pki, listener):
    payload = os.urandom(300000)
    with tempfile.TemporaryFile() as file, \
            tls_pair(listener, pki.server_context(), pki.client_context()) as (client, server):
        file.write(payload)
        file.seek(0)
        receiving = stolon.spawn(recv_exactly, server, len(payload) - 1000)
        assert client.sendfile(file, offset=1000) == len(payload) - 1000
        assert file.tell() == len(payload)
        assert receiving.get() == payload[1000:]


def test_unwrap_back_to_plain_text(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, server):
        client.sendall(b"secret")
        assert server.recv(100) == b"secret"
        peer = stolon.spawn(server.unwrap)
        plain = client.unwrap()
        assert plain is client
        assert peer.get() is server
        assert client.version() is None
        server.sendall(b"in the clear")
        assert recv_exactly(client, 12) == b"in the clear"
        with pytest.raises(ValueError, match="No SSL wrapper around"):
            client.unwrap()
        with pytest.raises(ValueError, match="Read on closed or unwrapped SSL socket"):
            client.read(1)


def test_methods_the_stdlib_refuses(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, _server):
        with pytest.raises(NotImplementedError, match="Can't dup"):
            client.dup()
        with pytest.raises(ValueError, match="recvfrom not allowed"):
            client.recvfrom(10)
        with pytest.raises(ValueError, match="sendto not allowed"):
            client.sendto(b"x", (LOCALHOST, 9))
        with pytest.raises(ValueError, match="non-zero flags"):
            client.send(b"x", stdlib_socket.MSG_OOB)
        with pytest.raises(NotImplementedError):
            client.recvmsg(10)


def test_datagram_sockets_are_refused():
    with gsocket.socket(type=stdlib_socket.SOCK_DGRAM) as sock:
        with pytest.raises(NotImplementedError, match="only stream sockets are supported"):
            gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT).wrap_socket(sock, server_hostname="x")
        assert sock.fileno() != -1                   # still the caller's


# -- timeouts and non-blocking mode --------------------------------------------------------

def test_read_timeout(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, _server):
        client.settimeout(0.1)
        start = time.monotonic()
        with pytest.raises(stdlib_socket.timeout, match="The read operation timed out"):
            client.recv(10)
        assert 0.09 <= time.monotonic() - start < 1.0


def test_write_timeout_when_the_peer_does_not_read(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, _server):
        client.settimeout(0.1)
        with pytest.raises(stdlib_socket.timeout, match="^The write operation timed out$"):
            client.write(b"x" * (32 << 20))
        start = time.monotonic()
        # gevent's sendall says what a plain socket says (the stdlib names the direction)
        with pytest.raises(stdlib_socket.timeout, match="^timed out$"):
            client.sendall(b"x" * (32 << 20))
        assert 0.09 <= time.monotonic() - start < 1.0


def test_handshake_timeout_when_the_peer_never_answers(pki, listener):
    raw = gsocket.create_connection(listener.getsockname())
    silent, _ = listener.accept()
    try:
        raw.settimeout(0.1)
        start = time.monotonic()
        with pytest.raises(stdlib_socket.timeout, match="The handshake operation timed out"):
            pki.client_context().wrap_socket(raw, server_hostname="localhost")
        assert 0.09 <= time.monotonic() - start < 1.0
        assert raw.fileno() == -1                  # taken over, and closed on the failure
    finally:
        raw.close()
        silent.close()


def test_timeout_carries_over_from_the_wrapped_socket(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, server):
        assert client.gettimeout() is None
    raw = gsocket.create_connection(listener.getsockname())
    raw.settimeout(5.0)
    peer = stolon.spawn(lambda: pki.server_context().wrap_socket(listener.accept()[0], server_side=True))
    with pki.client_context().wrap_socket(raw, server_hostname="localhost") as client:
        assert client.gettimeout() == 5.0
    peer.get().close()


def test_non_blocking_mode_raises_want_errors(pki, listener):
    raw = gsocket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    raw.setblocking(False)
    with pytest.raises(ValueError, match="do_handshake_on_connect should not be specified"):
        pki.client_context().wrap_socket(raw, server_hostname="localhost")
    conn.close()
    pair = tls_pair(listener, pki.server_context(), pki.client_context(),
                    client_kwargs={"do_handshake_on_connect": False},
                    server_kwargs={"do_handshake_on_connect": False})
    with pair as (client, server):
        client.setblocking(False)
        with pytest.raises(gssl.SSLWantReadError):
            client.do_handshake()              # the ClientHello went out; no answer yet
        peer = stolon.spawn(server.do_handshake)
        for _ in range(200):
            try:
                client.do_handshake()
                break
            except gssl.SSLWantReadError:
                stolon.sleep(0.005)
        peer.get()
        with pytest.raises(gssl.SSLWantReadError):
            client.recv(10)
        server.sendall(b"now")
        for _ in range(200):
            try:
                assert client.recv(10) == b"now"
                break
            except gssl.SSLWantReadError:
                stolon.sleep(0.005)
        else:
            pytest.fail("never readable")
        # the server does not read: the client's buffers fill up
        for _ in range(2000):
            sent = client.send(b"x" * 65536)
            if sent == 0:       # gevent's answer (the stdlib raises SSLWantWriteError)
                break
            assert sent == 65536
        else:
            pytest.fail("never full")
        with pytest.raises(gssl.SSLWantWriteError):
            client.sendall(b"x" * 65536)


# -- endings -------------------------------------------------------------------------------

def _end_connection(server, how):
    try:
        if how == "reset":
            server.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif how == "close_notify":
            server.unwrap()     # returns when the client closes: it never answers
    except OSError:             # the stdlib's unwrap reports that as an EOF error
        pass
    finally:
        server.close()


def _outcome(call):
    try:
        return call()
    except OSError as ex:
        return type(ex)


def _stdlib_outcome(pki, how, suppress_ragged_eofs):
    """What the stdlib's blocking sockets (the peer in a thread) read when the peer
    goes away ``how``: OpenSSL and CPython versions disagree, so ask them."""
    server_context = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_SERVER)
    pki.server.configure_cert(server_context)
    client_context = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_CLIENT)
    pki.ca.configure_trust(client_context)
    client_read = threading.Event()
    with stdlib_socket.create_server((LOCALHOST, 0)) as listener:
        def serve():
            conn, _ = listener.accept()
            tls = server_context.wrap_socket(conn, server_side=True)
            tls.sendall(b"last")
            client_read.wait(5)
            _end_connection(tls, how)

        thread = threading.Thread(target=serve)
        thread.start()
        raw = stdlib_socket.create_connection(listener.getsockname(), timeout=5)
        with client_context.wrap_socket(raw, server_hostname="localhost",
                                        suppress_ragged_eofs=suppress_ragged_eofs) as client:
            assert client.recv(10) == b"last"
            client_read.set()
            outcome = _outcome(lambda: client.recv(10))
        thread.join()
    return outcome


@pytest.mark.parametrize("suppress_ragged_eofs", [True, False], ids=["suppress", "raise"])
@pytest.mark.parametrize("how", ["close", "reset", "close_notify"])
def test_peer_going_away_reads_as_with_the_stdlib(pki, listener, how, suppress_ragged_eofs):
    expected = _stdlib_outcome(pki, how, suppress_ragged_eofs)
    if how == "close_notify" or suppress_ragged_eofs:
        assert expected in (b"", ConnectionResetError)
    else:
        assert expected in (b"", gssl.SSLEOFError, ConnectionResetError)
    pair = tls_pair(listener, pki.server_context(), pki.client_context(),
                    client_kwargs={"suppress_ragged_eofs": suppress_ragged_eofs})
    with pair as (client, server):
        server.sendall(b"last")
        assert client.recv(10) == b"last"
        stolon.spawn(_end_connection, server, how)
        assert _outcome(lambda: client.recv(10)) == expected


def test_close_from_another_greenlet_wakes_the_reader(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, _server):
        reader = stolon.spawn(client.recv, 10)
        stolon.sleep(0.01)
        assert not reader.ready()
        client.close()
        reader.join(timeout=2)
        assert reader.ready()
        assert isinstance(reader.exception, OSError)
        assert reader.exception.errno == errno.EBADF


def test_second_reader_of_one_socket_is_refused(pki, listener):
    with tls_pair(listener, pki.server_context(), pki.client_context()) as (client, server):
        first = stolon.spawn(client.recv, 10)
        stolon.sleep(0.01)
        with pytest.raises(ConcurrentObjectUseError):
            client.recv(10)
        server.sendall(b"one")
        assert first.get(timeout=2) == b"one"


# -- cooperation ---------------------------------------------------------------------------

def test_a_slow_peer_does_not_hold_up_another_connection(pki, listener):
    server_context, client_context = pki.server_context(), pki.client_context()
    events = []
    slow_may_answer = Event()
    with tls_pair(listener, server_context, client_context) as (slow_client, slow_server), \
            tls_pair(listener, server_context, client_context) as (fast_client, fast_server):
        def slow_reader():
            data = slow_client.recv(10)
            events.append(("slow", data))

        def fast_talker():
            for i in range(5):
                fast_client.sendall(b"%d" % i)
                assert fast_server.recv(10) == b"%d" % i
                events.append(("fast", i))
            slow_may_answer.set()

        def slow_writer():
            slow_may_answer.wait()
            slow_server.sendall(b"late")

        stolon.joinall([stolon.spawn(slow_reader), stolon.spawn(fast_talker),
                        stolon.spawn(slow_writer)], timeout=5, raise_error=True)
    assert events == [("fast", i) for i in range(5)] + [("slow", b"late")]


# -- StreamServer ----------------------------------------------------------------------------

def _tls_request(pki, address, payload):
    raw = gsocket.create_connection(address)
    with pki.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(payload)
        return recv_exactly(tls, len(payload)), tls.version()


def _upper_echo(seen):
    def handle(sock, _address):
        seen.append((type(sock), stolon.getcurrent() is not stolon.get_hub(), sock.version()))
        sock.sendall(recv_exactly(sock, 5).upper())
    return handle


def test_stream_server_with_certfile_and_keyfile(pki):
    seen = []
    with warnings.catch_warnings():
        # the legacy arguments build an SSLContext(PROTOCOL_TLS), deprecated in 3.10
        warnings.simplefilter("ignore", DeprecationWarning)
        server = StreamServer((LOCALHOST, 0), _upper_echo(seen),
                              certfile=pki.cert_file, keyfile=pki.key_file)
        assert server.ssl_enabled
        assert server.wrap_socket is gssl.wrap_socket
        with server:
            server.start()
            assert _tls_request(pki, server.address, b"hello")[0] == b"HELLO"
    assert seen == [(gssl.SSLSocket, True, seen[0][2])] and seen[0][2] is not None


@pytest.mark.parametrize("version", TLS_VERSIONS, ids=["TLSv1.2", "TLSv1.3"])
def test_stream_server_with_ssl_context_shakes_hands_in_the_handler(pki, version):
    seen = []
    context = pki.server_context(version)
    handlers = Group()
    with StreamServer((LOCALHOST, 0), _upper_echo(seen), spawn=handlers.spawn,
                      ssl_context=context) as server:
        assert server.ssl_enabled and server.wrap_socket == context.wrap_socket
        server.start()
        # a client that never starts its handshake holds up nobody else
        with gsocket.create_connection(server.address):
            assert _tls_request(pki, server.address, b"first") == (b"FIRST", VERSION_NAMES[version])
            assert _tls_request(pki, server.address, b"again") == (b"AGAIN", VERSION_NAMES[version])
            assert len(handlers) == 1                      # still waiting for its hello
        # its EOF ends that handshake (an SSLError, reported by the handler's greenlet)
        handlers.join(timeout=2)
        assert len(handlers) == 0
    assert [entry[:2] for entry in seen] == [(gssl.SSLSocket, True)] * 2


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent wraps in the stdlib's (blocking) SSLSocket")
def test_stream_server_with_a_stdlib_context_still_cooperates(pki):
    seen = []
    context = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_SERVER)
    pki.server.configure_cert(context)
    with StreamServer((LOCALHOST, 0), _upper_echo(seen), ssl_context=context) as server:
        server.start()
        assert _tls_request(pki, server.address, b"stdlb")[0] == b"STDLB"
    assert seen[0][0] is gssl.SSLSocket


def test_stream_server_failed_handshake_closes_the_connection(pki):
    handled = []
    with StreamServer((LOCALHOST, 0), lambda sock, address: handled.append(sock),
                      ssl_context=pki.server_context()) as server:
        server.start()
        with gsocket.create_connection(server.address) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")         # not TLS
            raw.settimeout(2)
            try:
                while raw.recv(1024):                      # maybe an alert, then EOF
                    pass
            except ConnectionResetError:                   # it left bytes unread
                pass
    assert handled == []


# -- module functions and names ------------------------------------------------------------

def test_get_server_certificate(pki):
    with StreamServer((LOCALHOST, 0), _upper_echo([]), ssl_context=pki.server_context()) as server:
        server.start()
        expected = pki.server.cert_chain_pems[0].bytes().decode()
        pem = gssl.get_server_certificate(server.address)
        assert gssl.PEM_cert_to_DER_cert(pem) == gssl.PEM_cert_to_DER_cert(expected)
        pem = gssl.get_server_certificate(server.address, ca_certs=pki.ca_file)
        assert gssl.PEM_cert_to_DER_cert(pem) == gssl.PEM_cert_to_DER_cert(expected)


def test_module_wrap_socket(pki, listener):
    server_context = pki.server_context()
    serving = stolon.spawn(lambda: server_context.wrap_socket(listener.accept()[0], server_side=True))
    raw = gsocket.create_connection(listener.getsockname())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tls = gssl.wrap_socket(raw, cert_reqs=gssl.CERT_REQUIRED, ca_certs=pki.ca_file)
    with tls, serving.get() as server:
        assert isinstance(tls, gssl.SSLSocket)
        tls.sendall(b"legacy")
        assert server.recv(10) == b"legacy"
    with pytest.raises(ValueError, match="certfile must be specified for server-side"):
        gssl.wrap_socket(gsocket.socket(), server_side=True)


def test_reexports_of_the_stdlib():
    for name in ("CERT_NONE", "CERT_REQUIRED", "PROTOCOL_TLS_CLIENT", "PROTOCOL_TLS_SERVER",
                 "TLSVersion", "Purpose", "SSLError", "SSLWantReadError", "SSLWantWriteError",
                 "SSLEOFError", "SSLZeroReturnError", "SSLCertVerificationError", "MemoryBIO",
                 "SSLObject", "DER_cert_to_PEM_cert", "PEM_cert_to_DER_cert", "HAS_SNI",
                 "HAS_ALPN", "OPENSSL_VERSION", "Options", "VerifyMode"):
        assert getattr(gssl, name) is getattr(stdlib_ssl, name), name
    for name in ("SSLContext", "SSLSocket", "get_server_certificate", "wrap_socket",
                 "create_default_context"):
        assert name in gssl.__all__
    assert issubclass(gssl.SSLContext, stdlib_ssl.SSLContext)
    assert gssl.SSLContext.sslsocket_class is gssl.SSLSocket
    assert issubclass(gssl.SSLSocket, gsocket.socket)
    context = gssl.create_default_context()
    assert context.verify_mode == gssl.CERT_REQUIRED and context.check_hostname
    if not UNDER_GEVENT:
        # stolon: the context factories give cooperative contexts (gevent's are the
        # stdlib's until monkey-patched); SSLSocket is also a stdlib ssl.SSLSocket
        assert type(context) is gssl.SSLContext
        assert issubclass(gssl.SSLSocket, stdlib_ssl.SSLSocket)


def test_context_setters(pki):
    context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
    context.options |= gssl.OP_NO_COMPRESSION
    assert context.options & gssl.OP_NO_COMPRESSION
    context.minimum_version = gssl.TLSVersion.TLSv1_2
    context.maximum_version = gssl.TLSVersion.TLSv1_3
    assert (context.minimum_version, context.maximum_version) == (
        gssl.TLSVersion.TLSv1_2, gssl.TLSVersion.TLSv1_3)
    context.check_hostname = False
    context.verify_mode = gssl.CERT_NONE
    assert context.verify_mode == gssl.CERT_NONE
    context.verify_flags = gssl.VERIFY_X509_STRICT
    assert context.verify_flags == gssl.VERIFY_X509_STRICT


def test_context_survives_the_ssl_module_being_patched(pki):
    # Monkey-patching rebinds ssl.SSLContext to this module's class; the stdlib's
    # property setters name their class through that global (gevent issue 1016).
    # Patching is for a fresh interpreter, never this one.
    code = """
        import ssl, sys
        import stolon, stolon.ssl, stolon.socket
        ssl.SSLContext = stolon.ssl.SSLContext
        ssl.SSLSocket = stolon.ssl.SSLSocket
        context = ssl.create_default_context(cafile=sys.argv[1])
        assert type(context) is stolon.ssl.SSLContext
        context.options |= ssl.OP_NO_COMPRESSION
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags = ssl.VERIFY_X509_STRICT
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_3
        messages = []
        context._msg_callback = lambda conn, *args: messages.append(type(conn))
        assert context._msg_callback is not None
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(sys.argv[2], sys.argv[3])
        listener = stolon.socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        def serve():
            conn, _ = listener.accept()
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(10))
        serving = stolon.spawn(serve)
        raw = stolon.socket.create_connection(listener.getsockname())
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"patched")
            print(tls.recv(10).decode(), type(tls).__module__)
        serving.get()
        listener.close()
        print(set(messages) == {stolon.ssl.SSLSocket})
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), pki.ca_file, pki.cert_file,
                           pki.key_file], capture_output=True, text=True, timeout=60, env=child_env(),
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["patched", gssl.__name__, "True"]


# -- a server that goes on, and leaks ------------------------------------------------------

class _ErrorCount:
    """The hub's exception stream: counts the reports by the name of their error."""

    def __init__(self):
        self.errors = {}

    def write(self, text):
        # a report's last line: '<time> <greenlet> failed with <Error>'
        if " failed with " in text:
            name = text.rsplit(" failed with ", 1)[1].strip()
            self.errors[name] = self.errors.get(name, 0) + 1


@pytest.fixture
def hub_reports():
    hub = stolon.get_hub()
    stream = hub.exception_stream = _ErrorCount()
    yield stream
    del hub.exception_stream


@pytest.fixture(scope="module")
def ecdsa_pki():
    # ECDSA: a handshake costs a fraction of an RSA one, so a thousand fit in a test
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    server = ca.issue_cert("localhost", LOCALHOST, key_type=trustme.KeyType.ECDSA)
    server_context = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    server.configure_cert(server_context)
    client_context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_context)
    return server_context, client_context


def _tls_hello(client_context, address):
    with gsocket.create_connection(address) as raw:
        with client_context.wrap_socket(raw, server_hostname="localhost") as sock:
            return recv_exactly(sock, 5)


def _plaintext_request(address):
    with gsocket.create_connection(address) as raw:
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
        raw.settimeout(2)
        try:
            while raw.recv(1024):
                pass
        except ConnectionResetError:                   # it left bytes unread
            pass


def _hello_handler(sock, address):
    sock.sendall(b"hello")


def test_server_reports_a_plaintext_client_and_goes_on(ecdsa_pki, hub_reports):
    server_context, client_context = ecdsa_pki
    with StreamServer((LOCALHOST, 0), _hello_handler, ssl_context=server_context) as server:
        server.start()
        for _ in range(3):
            _plaintext_request(server.address)
            assert _tls_hello(client_context, server.address) == b"hello"
        stolon.sleep(0.01)
    # each failed handshake is reported by its handler's greenlet, in that greenlet only
    assert hub_reports.errors == {"SSLError": 3}


@pytest.mark.parametrize("client, count", [("handshake", 1000), ("plaintext", 300)])
def test_no_leaks_over_many_connections(ecdsa_pki, hub_reports, client, count):
    server_context, client_context = ecdsa_pki

    def cycle(count):
        for _ in range(count):
            if client == "handshake":
                assert _tls_hello(client_context, server.address) == b"hello"
            else:
                _plaintext_request(server.address)
    with StreamServer((LOCALHOST, 0), _hello_handler, ssl_context=server_context) as server:
        server.start()
        cycle(count // 5)                  # caches and free lists fill up first
        stolon.sleep(0.01)
        fds, objects = open_fd_count(), live_object_count()
        cycle(count)
        stolon.sleep(0.01)
        assert open_fd_count() == fds
        assert live_object_count() - objects < 50
