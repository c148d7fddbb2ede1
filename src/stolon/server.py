"""stolon.server: TCP and UDP servers (gevent.server).

``StreamServer`` accepts connections and runs ``handle(client_socket, address)`` for
each, with a cooperative ``stolon.socket.socket`` that is closed when ``handle``
returns.  ``DatagramServer`` runs ``handle(data, address)`` for each datagram and
answers with ``sendto``.  Both take requests from the kernel only when the listener
is readable, with the plain (non-waiting) socket calls: the hub never blocks in them.
"""
import functools
import sys
from _socket import AF_INET, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR
from _socket import socket as _RawSocket

from stolon.baseserver import BaseServer
from stolon.lock import Semaphore
from stolon.socket import socket as _CooperativeSocket

try:
    from _socket import SO_REUSEPORT
except ImportError:  # not every platform has it
    SO_REUSEPORT = None

__all__ = ["StreamServer", "DatagramServer"]

# Windows' SO_REUSEADDR lets another process steal a bound port (gevent issue 217)
DEFAULT_REUSE_ADDR = None if sys.platform == "win32" else 1

# The C-level calls, looked up once: they skip the cooperative socket's waiting
# (readiness is known when they run) and take no Python-level detour.
_raw_accept = _RawSocket._accept
_raw_recvfrom = _RawSocket.recvfrom


class StreamServer(BaseServer):
    """A TCP server: ``StreamServer(listener, handle=None, backlog=None,
    spawn='default', *, reuse_port=None, **ssl_args)``.

    ``listener`` and ``spawn`` are as for BaseServer; ``backlog`` (default 128, the
    usual kernel maximum) is the listen queue's length and only applies when the server
    binds the socket itself.  Errors in a handler are the handler's (reported by its
    greenlet); errors from accept() or spawn pause accepting (``min_delay`` doubling up
    to ``max_delay``).

    SSL: any ``ssl_args`` turn it on (``ssl_enabled``).  ``ssl_context=`` an SSLContext
    whose ``wrap_socket`` gets the other arguments (``server_side=True`` by default);
    other arguments alone (``certfile``, ``keyfile``, ``cert_reqs``, ``ca_certs`` ...)
    are for ``stolon.ssl.wrap_socket``.  The ``wrap_socket`` attribute does the
    wrapping, and the TLS handshake, in the connection's handler greenlet, never in
    the accept loop.  A stdlib ``ssl.SSLContext`` also gives cooperative
    ``stolon.ssl.SSLSocket``s (with gevent it gives the stdlib's, which block).

    ``reuse_addr`` (class attribute; 1 on POSIX) sets SO_REUSEADDR on sockets the server
    binds; ``reuse_port`` (keyword or attribute, default False) sets SO_REUSEPORT, so
    several processes can each bind a listener to the same port and the kernel spreads
    connections among them.
    """

    #: listen() backlog when the server binds the socket itself.
    backlog = 128
    reuse_addr = DEFAULT_REUSE_ADDR
    reuse_port = False

    def __init__(self, listener, handle=None, backlog=None, spawn="default", *, reuse_port=None, **ssl_args):
        BaseServer.__init__(self, listener, handle=handle, spawn=spawn)
        try:
            if reuse_port is not None:
                self.reuse_port = reuse_port
            if ssl_args:
                ssl_args.setdefault("server_side", True)
                if "ssl_context" in ssl_args:
                    self.wrap_socket = _context_wrap_socket(ssl_args.pop("ssl_context"))
                else:
                    from stolon.ssl import wrap_socket
                    self.wrap_socket = wrap_socket
                self.ssl_args = ssl_args
            else:
                self.ssl_args = None
            if backlog is not None:
                if hasattr(self, "socket"):
                    raise TypeError("backlog must be None when a socket instance is passed")
                self.backlog = backlog
        except:  # noqa: E722 -- a half-built server must not keep the socket open
            self.close()
            raise

    @property
    def ssl_enabled(self):
        """True if accepted connections are wrapped in SSL."""
        return self.ssl_args is not None

    def init_socket(self):
        if not hasattr(self, "socket"):
            if self.reuse_port:
                self.socket = self.get_listener(self.address, self.backlog, self.family, reuse_port=True)
            else:
                # subclasses written for gevent override get_listener without reuse_port
                self.socket = self.get_listener(self.address, self.backlog, self.family)
            self.address = self.socket.getsockname()
        sock = self.socket
        # do_read accepts only when the listener is readable; non-blocking mode makes
        # sure a connection taken by another process in the meantime cannot block the
        # hub in accept()
        sock.setblocking(False)
        self._client_args = (sock.family, sock.type, sock.proto)
        self._handle = self.wrap_socket_and_handle if self.ssl_args else self.handle

    @classmethod
    def get_listener(cls, address, backlog=None, family=None, reuse_port=None):
        """A cooperative TCP socket bound to ``address`` and listening."""
        if backlog is None:
            backlog = cls.backlog
        if reuse_port is None:
            reuse_port = cls.reuse_port
        return _tcp_listener(address, backlog=backlog, reuse_addr=cls.reuse_addr, family=family,
                             reuse_port=reuse_port)

    def do_read(self):
        try:
            fd, address = _raw_accept(self.socket)
        except BlockingIOError:
            return None
        family, type_, proto = self._client_args
        return _CooperativeSocket(family, type_, proto, fd), address

    def do_close(self, sock, *args):
        sock.close()

    def wrap_socket_and_handle(self, client_socket, address):
        """The handler in SSL mode: wrap the connection (and shake hands), then
        ``handle`` it; the connection is closed either way."""
        try:
            ssl_socket = self.wrap_socket(client_socket, **self.ssl_args)
        except BaseException:
            # refused before it took the descriptor over (a failed handshake has
            # closed it already: closing again is a no-op)
            client_socket.close()
            raise
        with ssl_socket:
            return self.handle(ssl_socket, address)


class DatagramServer(BaseServer):
    """A UDP server: ``DatagramServer(listener, handle=None, spawn='default', *,
    reuse_port=None)``.

    ``handle(data, address)`` gets each datagram (up to 8192 bytes); ``sendto(data,
    address)`` answers, one sender at a time.  ``reuse_addr`` and ``reuse_port`` are
    as for StreamServer.
    """

    reuse_addr = DEFAULT_REUSE_ADDR
    reuse_port = False

    def __init__(self, listener, handle=None, spawn="default", *, reuse_port=None):
        BaseServer.__init__(self, listener, handle=handle, spawn=spawn)
        if reuse_port is not None:
            self.reuse_port = reuse_port
        # the cooperative socket lets only one greenlet wait to write at a time
        self._writelock = Semaphore()

    def init_socket(self):
        if not hasattr(self, "socket"):
            if self.reuse_port:
                self.socket = self.get_listener(self.address, self.family, reuse_port=True)
            else:
                self.socket = self.get_listener(self.address, self.family)
            self.address = self.socket.getsockname()
        self.socket.setblocking(False)

    @classmethod
    def get_listener(cls, address, family=None, reuse_port=None):
        """A cooperative UDP socket bound to ``address``."""
        if reuse_port is None:
            reuse_port = cls.reuse_port
        return _udp_socket(address, reuse_addr=cls.reuse_addr, family=family, reuse_port=reuse_port)

    def do_read(self):
        try:
            return _raw_recvfrom(self.socket, 8192)
        except BlockingIOError:
            return None

    def sendto(self, *args):
        """``socket.sendto(data[, flags], address)`` on the server's socket."""
        with self._writelock:
            self.socket.sendto(*args)


def _context_wrap_socket(context):
    """What wraps accepted connections for ``ssl_context=context``: its own
    ``wrap_socket``, except that a stdlib ``ssl.SSLContext`` (whose sockets would block
    the thread) wraps in stolon's cooperative SSLSocket."""
    from ssl import SSLContext as _StdlibSSLContext
    from stolon.ssl import SSLContext, SSLSocket
    if isinstance(context, _StdlibSSLContext) and not isinstance(context, SSLContext):
        return functools.partial(SSLSocket._create, context=context)
    return context.wrap_socket


def _bound_socket(type_, address, reuse_addr, family, reuse_port):
    sock = _CooperativeSocket(family=family, type=type_)
    try:
        if reuse_addr is not None:
            sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, reuse_addr)
        if reuse_port:
            if SO_REUSEPORT is None:
                raise ValueError("reuse_port: SO_REUSEPORT is not available on this platform")
            sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1)
        try:
            sock.bind(address)
        except OSError as ex:
            # say which address could not be bound
            if ex.strerror is not None:
                ex.strerror = "%s: %r" % (ex.strerror, address)
            raise
    except:  # noqa: E722 -- the socket is ours to close
        sock.close()
        raise
    return sock


def _tcp_listener(address, backlog=50, reuse_addr=None, family=AF_INET, reuse_port=False):
    """A cooperative TCP socket bound to ``address``, listening and non-blocking."""
    sock = _bound_socket(SOCK_STREAM, address, reuse_addr, family, reuse_port)
    try:
        sock.listen(backlog)
        sock.setblocking(False)
    except:  # noqa: E722 -- the socket is ours to close
        sock.close()
        raise
    return sock


def _udp_socket(address, backlog=50, reuse_addr=None, family=AF_INET, reuse_port=False):
    """A cooperative UDP socket bound to ``address`` (``backlog`` is ignored; it keeps
    the signature of ``_tcp_listener``)."""
    return _bound_socket(SOCK_DGRAM, address, reuse_addr, family, reuse_port)
