"""stolon.ssl: the stdlib's ``ssl`` module, cooperative (gevent.ssl's API).

``SSLSocket`` subclasses both the stdlib's ``ssl.SSLSocket`` and ``stolon.socket.socket``:
the stdlib class supplies the TLS API (``getpeercert``, ``cipher``, ``version``,
``recv``/``recv_into`` over ``read``, ``makefile`` ...) and the cooperative socket the
non-blocking descriptor, its watchers and the plain (pre-TLS, post-``unwrap``) I/O.  The
OpenSSL object always sees a non-blocking descriptor: every call that would block raises
SSLWantReadError or SSLWantWriteError inside it, and this module turns that into a park
of the current greenlet on the socket's read or write watcher, then tries again.

Timeouts keep the stdlib's meaning: ``None`` waits as long as it takes, ``0.0`` lets the
SSLWant* errors out (non-blocking mode), a positive value bounds each read, write or
handshake call as a whole and raises ``socket.timeout`` ("The read operation timed out",
"The write operation timed out", "The handshake operation timed out").  Closing the
socket from another greenlet wakes a waiter with ``cancel_wait_ex`` (EBADF), as in
stolon.socket.

``SSLContext`` is the stdlib's with ``sslsocket_class`` set to this ``SSLSocket``.
``create_default_context`` (and the stdlib's private context factories) return this
module's ``SSLContext``; the other names (constants, exceptions, ``MemoryBIO``,
``SSLObject``, ``DER_cert_to_PEM_cert`` ...) are the stdlib's own objects.
"""
import functools as _functools
import ssl as _stdlib
from _socket import AF_INET, SO_TYPE, SOCK_STREAM, SOL_SOCKET
from _socket import socket as _RawSocket
from _socket import timeout as _timeout_error
from _ssl import _SSLContext as _CSSLContext
from errno import EAGAIN, EINVAL, ENOTCONN, EWOULDBLOCK
from ssl import (CERT_NONE, CERT_REQUIRED, DER_cert_to_PEM_cert, PROTOCOL_SSLv23,
                 PROTOCOL_TLS_CLIENT, SSL_ERROR_EOF, SSLEOFError, SSLError, SSLWantReadError,
                 SSLWantWriteError, SSLZeroReturnError)
from time import monotonic as _monotonic

from stolon._socketcommon import wait_on_watcher as _wait_on_watcher
from stolon.socket import _GLOBAL_DEFAULT_TIMEOUT, create_connection, socket

__implements__ = ["SSLContext", "SSLSocket", "get_server_certificate"]
#: ``wrap_socket`` left the stdlib in Python 3.12; stolon keeps it, as gevent does.
if hasattr(_stdlib, "wrap_socket"):
    __implements__.append("wrap_socket")
    __extensions__ = []
else:
    __extensions__ = ["wrap_socket"]

# Stdlib functions that build an SSLContext: here they return this module's class.
_CONTEXT_FACTORIES = ["create_default_context", "_create_unverified_context",
                      "_create_default_https_context", "_create_stdlib_context"]

# Everything else in the stdlib module's namespace is re-exported unchanged (its
# modules, constants, exceptions, enums, helpers), except the socket names, which are
# stolon.socket's.
__imports__ = [name for name in vars(_stdlib)
               if not name.startswith("__")
               and name not in __implements__ + __extensions__ + _CONTEXT_FACTORIES
               and name not in ("socket", "create_connection", "namedtuple")]
globals().update((name, getattr(_stdlib, name)) for name in __imports__)

__all__ = (__implements__ + __extensions__ + ["create_default_context", "create_connection"]
           + __imports__)

_StdlibSSLContext = _stdlib.SSLContext
_StdlibSSLSocket = _stdlib.SSLSocket
_ss_recv = _RawSocket.recv
_WANT = (SSLWantReadError, SSLWantWriteError)

_READ_TIMED_OUT = "The read operation timed out"
_WRITE_TIMED_OUT = "The write operation timed out"
_HANDSHAKE_TIMED_OUT = "The handshake operation timed out"
# gevent's plain socket message for these two (the stdlib names the direction)
_SENDALL_TIMED_OUT = _UNWRAP_TIMED_OUT = "timed out"
# recv() errnos that mean "no bytes arrived before the handshake"
_NO_EARLY_DATA = (ENOTCONN, EINVAL, EAGAIN, EWOULDBLOCK)


class SSLContext(_StdlibSSLContext):
    """The stdlib's ``ssl.SSLContext`` whose ``wrap_socket`` returns this module's
    cooperative ``SSLSocket`` (``sslsocket_class``).

    The property setters below store through the C base class directly: the stdlib's
    look their class up through the ``ssl`` module's global, which monkey-patching
    rebinds to this class, and would then call themselves forever."""

    __slots__ = ()

    sslsocket_class = None          # SSLSocket, once it exists (below)

    @_StdlibSSLContext.options.setter
    def options(self, value):
        _CSSLContext.options.__set__(self, value)

    @_StdlibSSLContext.verify_flags.setter
    def verify_flags(self, value):
        _CSSLContext.verify_flags.__set__(self, value)

    @_StdlibSSLContext.verify_mode.setter
    def verify_mode(self, value):
        _CSSLContext.verify_mode.__set__(self, value)

    if hasattr(_CSSLContext, "minimum_version"):
        @_StdlibSSLContext.minimum_version.setter
        def minimum_version(self, value):
            if value == _stdlib.TLSVersion.SSLv3:
                self.options &= ~_stdlib.Options.OP_NO_SSLv3
            _CSSLContext.minimum_version.__set__(self, value)

        @_StdlibSSLContext.maximum_version.setter
        def maximum_version(self, value):
            _CSSLContext.maximum_version.__set__(self, value)

    if hasattr(_CSSLContext, "_msg_callback"):
        @_StdlibSSLContext._msg_callback.setter
        def _msg_callback(self, callback):
            # The stdlib's setter wraps the callback, then stores it through the module
            # global; while the module is patched, point that global back for the call
            # (nothing in between can switch greenlets).
            patched = _stdlib.SSLContext
            if patched is _StdlibSSLContext:
                _StdlibSSLContext._msg_callback.fset(self, callback)
                return
            _stdlib.SSLContext = _StdlibSSLContext
            try:
                _StdlibSSLContext._msg_callback.fset(self, callback)
            finally:
                _stdlib.SSLContext = patched


class SSLSocket(_StdlibSSLSocket, socket):
    """A cooperative ``ssl.SSLSocket``.

    Normally made by ``SSLContext.wrap_socket``; the constructor is gevent's public one
    (``SSLSocket(sock=None, keyfile=None, certfile=None, server_side=False, ...)``),
    which builds a context from the old ``wrap_socket`` arguments when no ``_context``
    is given.  ``sock`` is taken over (detached) once the new socket owns its
    descriptor; its timeout carries over."""

    def __init__(self, sock=None, keyfile=None, certfile=None,
                 server_side=False, cert_reqs=CERT_NONE,
                 ssl_version=PROTOCOL_SSLv23, ca_certs=None,
                 do_handshake_on_connect=True,
                 family=AF_INET, type=SOCK_STREAM, proto=0, fileno=None,
                 suppress_ragged_eofs=True, npn_protocols=None, ciphers=None,
                 server_hostname=None,
                 _session=None, _context=None):
        if _context is None:
            if server_side and not certfile:
                raise ValueError("certfile must be specified for server-side operations")
            if keyfile and not certfile:
                raise ValueError("certfile must be specified")
            if certfile and not keyfile:
                keyfile = certfile
            _context = _legacy_context(certfile, keyfile, cert_reqs, ssl_version, ca_certs,
                                       npn_protocols, ciphers)
            self.keyfile = keyfile
            self.certfile = certfile
            self.cert_reqs = cert_reqs
            self.ssl_version = ssl_version
            self.ca_certs = ca_certs
            self.ciphers = ciphers
        if sock is not None and sock.getsockopt(SOL_SOCKET, SO_TYPE) != SOCK_STREAM:
            raise NotImplementedError("only stream sockets are supported")
        if server_side:
            if server_hostname:
                raise ValueError("server_hostname can only be specified in client mode")
            if _session is not None:
                raise ValueError("session can only be specified in client mode")
        if _context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")

        if sock is not None:
            timeout = sock.gettimeout()
            socket.__init__(self, sock.family, sock.type, sock.proto, sock.fileno())
            # only now that this object owns the descriptor: on an error above, the
            # caller still has a socket to close
            sock.detach()
        elif fileno is not None:
            socket.__init__(self, fileno=fileno)
            timeout = self.timeout
        else:
            socket.__init__(self, family, type, proto)
            timeout = self.timeout

        self._context = _context
        self._session = _session
        self._sslobj = None
        self.server_side = server_side
        self.server_hostname = _context._encode_hostname(server_hostname)
        self.do_handshake_on_connect = do_handshake_on_connect
        self.suppress_ragged_eofs = suppress_ragged_eofs
        try:
            self._connected = connected = self._is_connected()
            self.settimeout(timeout)
            if connected:
                self._sslobj = _context._wrap_socket(self, server_side, self.server_hostname,
                                                     owner=self, session=_session)
                if do_handshake_on_connect:
                    if timeout == 0.0:
                        raise ValueError("do_handshake_on_connect should not be specified "
                                         "for non-blocking sockets")
                    self.do_handshake()
        except BaseException:
            # a failed (or interrupted, or killed) handshake: the descriptor is ours
            self.close()
            raise

    @classmethod
    def _create(cls, sock, server_side=False, do_handshake_on_connect=True,
                suppress_ragged_eofs=True, server_hostname=None, context=None, session=None):
        # the stdlib SSLContext.wrap_socket's way in
        return cls(sock=sock, server_side=server_side,
                   do_handshake_on_connect=do_handshake_on_connect,
                   suppress_ragged_eofs=suppress_ragged_eofs,
                   server_hostname=server_hostname, _context=context, _session=session)

    def _is_connected(self):
        """Whether the descriptor is connected; an unconnected one must not hold bytes
        already (they would pass for data that came through TLS)."""
        try:
            self.getpeername()
            return True
        except OSError as ex:
            if ex.errno != ENOTCONN:
                raise
        try:
            early = _ss_recv(self, 1)       # the descriptor is non-blocking
        except OSError as ex:
            if ex.errno not in _NO_EARLY_DATA:
                raise
            return False
        if early:
            reason = "Closed before TLS handshake with data in recv buffer."
            error = SSLError(ENOTCONN, reason)
            error.reason = reason           # the attributes _ssl's errors always carry
            error.library = None
            raise error
        return False

    # -- waiting ---------------------------------------------------------------------

    def _io(self, operation, args, timeout, timeout_text):
        """``operation(*args)`` until OpenSSL stops asking for the descriptor, parking
        on the read or write watcher as it asks.  ``timeout`` bounds the whole call
        (``socket.timeout(timeout_text)``); ``0.0`` lets the SSLWant* error out."""
        deadline = None
        while True:
            try:
                return operation(*args)
            except SSLWantReadError:
                if timeout == 0.0:
                    raise
                watcher = self._read_event or self._read_watcher()
            except SSLWantWriteError:
                if timeout == 0.0:
                    raise
                watcher = self._write_event or self._write_watcher()
            if timeout is None:
                _wait_on_watcher(watcher, None, None, self.hub)
                continue
            if deadline is None:
                deadline = _monotonic() + timeout
                left = timeout
            else:
                left = deadline - _monotonic()
                if left <= 0.0:
                    raise _timeout_error(timeout_text)
            _wait_on_watcher(watcher, left, _timeout_error(timeout_text), self.hub)

    # -- TLS -------------------------------------------------------------------------

    def do_handshake(self, block=False):
        """Perform the TLS handshake (``block``: even in non-blocking mode)."""
        self._check_connected()
        timeout = self.timeout
        if block and timeout == 0.0:
            timeout = None
        self._io(self._sslobj.do_handshake, (), timeout, _HANDSHAKE_TIMED_OUT)

    def read(self, len=1024, buffer=None):
        """Read up to ``len`` bytes (into ``buffer`` if given: then return the count).
        A TLS EOF without close_notify reads as the end when ``suppress_ragged_eofs``."""
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        try:
            if buffer is None:
                return self._io(sslobj.read, (len,), self.timeout, _READ_TIMED_OUT)
            return self._io(sslobj.read, (len, buffer), self.timeout, _READ_TIMED_OUT)
        except SSLError as ex:
            if ex.args[0] == SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return b"" if buffer is None else 0
            raise

    def write(self, data):
        """Write all of ``data`` over TLS; return its length."""
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Write on closed or unwrapped SSL socket.")
        return self._io(sslobj.write, (data,), self.timeout, _WRITE_TIMED_OUT)

    def send(self, data, flags=0):
        """``write`` over TLS (no flags allowed); plain ``send`` without it.  In
        non-blocking mode a write that cannot proceed returns 0, as in gevent (the
        stdlib raises SSLWantWriteError): send the same data again later."""
        sslobj = self._sslobj
        if sslobj is None:
            return socket.send(self, data, flags)
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to send() on %s" % self.__class__)
        try:
            return self._io(sslobj.write, (data,), self.timeout, _WRITE_TIMED_OUT)
        except _WANT:
            return 0

    def sendall(self, data, flags=0):
        """Send all of ``data``; a positive timeout bounds the whole call (``socket.timeout
        ('timed out')``, as gevent).  Non-blocking mode raises SSLWantWriteError when the
        socket is full."""
        sslobj = self._sslobj
        if sslobj is None:
            return socket.sendall(self, data, flags)
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to sendall() on %s" % self.__class__)
        # OpenSSL writes everything or asks to be called again with the same bytes
        self._io(sslobj.write, (data,), self.timeout, _SENDALL_TIMED_OUT)

    _sendfile_block_size = 16384     # one TLS record per send

    def unwrap(self):
        """Shut TLS down (close_notify both ways) and return this socket, now plain.
        A peer that went away without its close_notify counts as done, as in gevent
        (the stdlib raises SSLEOFError)."""
        sslobj = self._sslobj
        if not sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        try:
            self._io(sslobj.shutdown, (), self.timeout, _UNWRAP_TIMED_OUT)
        except (SSLEOFError, SSLZeroReturnError):
            pass
        self._sslobj = None
        return self


SSLContext.sslsocket_class = SSLSocket


def _legacy_context(certfile, keyfile, cert_reqs, ssl_version, ca_certs, npn_protocols, ciphers):
    """An SSLContext from the arguments of the old module-level ``wrap_socket``."""
    context = SSLContext(ssl_version)
    context.verify_mode = cert_reqs
    if ca_certs:
        context.load_verify_locations(ca_certs)
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    if npn_protocols:
        context.set_npn_protocols(npn_protocols)
    if ciphers:
        context.set_ciphers(ciphers)
    return context


def _returning_cooperative_context(factory):
    @_functools.wraps(factory)
    def make_context(*args, **kwargs):
        context = factory(*args, **kwargs)
        if type(context) is _StdlibSSLContext:
            # same layout (this subclass adds no slots): only the methods change
            context.__class__ = SSLContext
        return context
    return make_context


create_default_context = _returning_cooperative_context(_stdlib.create_default_context)
_create_unverified_context = _returning_cooperative_context(_stdlib._create_unverified_context)
_create_default_https_context = create_default_context
_create_stdlib_context = _create_unverified_context


def wrap_socket(sock, keyfile=None, certfile=None,
                server_side=False, cert_reqs=CERT_NONE,
                ssl_version=PROTOCOL_SSLv23, ca_certs=None,
                do_handshake_on_connect=True,
                suppress_ragged_eofs=True,
                ciphers=None):
    """Wrap ``sock`` in an SSLSocket with a context built from these arguments (the old
    stdlib API; prefer ``SSLContext.wrap_socket``)."""
    return SSLSocket(sock=sock, keyfile=keyfile, certfile=certfile,
                     server_side=server_side, cert_reqs=cert_reqs,
                     ssl_version=ssl_version, ca_certs=ca_certs,
                     do_handshake_on_connect=do_handshake_on_connect,
                     suppress_ragged_eofs=suppress_ragged_eofs,
                     ciphers=ciphers)


def get_server_certificate(addr, ssl_version=PROTOCOL_TLS_CLIENT, ca_certs=None,
                           timeout=_GLOBAL_DEFAULT_TIMEOUT):
    """The PEM certificate of the server at ``addr`` (``(host, port)``), verified
    against ``ca_certs`` if given; ``timeout`` applies to the connection."""
    host, _port = addr
    cert_reqs = CERT_NONE if ca_certs is None else CERT_REQUIRED
    context = _create_stdlib_context(ssl_version, cert_reqs=cert_reqs, cafile=ca_certs)
    with create_connection(addr, timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as sslsock:
            dercert = sslsock.getpeercert(True)
    return DER_cert_to_PEM_cert(dercert)
