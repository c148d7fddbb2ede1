"""stolon.socket: the stdlib's ``socket`` module, cooperative (gevent.socket's API).

``socket`` subclasses the stdlib's ``socket.socket`` (so ``isinstance`` checks,
``fileno``, ``family``, ``getsockopt``, ``makefile`` ... behave as the stdlib's), with
the file descriptor always non-blocking underneath.  Each blocking call tries its
syscall first; on EAGAIN it parks the current greenlet on the socket's read or write
io watcher with ``hub.wait`` (the loop switches straight back into it on readiness,
no Python callback in between) and tries again.  The Python-level timeout keeps the
stdlib's meaning: ``None`` blocks the greenlet, ``0.0`` raises ``BlockingIOError`` at
once, a positive value raises ``socket.timeout('timed out')`` when it expires.

Closing a socket that another greenlet waits on wakes that greenlet with
``cancel_wait_ex`` (OSError EBADF); two greenlets waiting on the same direction of
one socket is a ``ConcurrentObjectUseError``.  The other names of the module are the
stdlib's (see ``stolon._socketcommon``); DNS functions go to ``get_hub().resolver``.
"""
import io as _io
import os as _os
import socket as _stdlib
import sys as _sys
import _socket
from errno import EAGAIN, EALREADY, EINPROGRESS, EISCONN, EWOULDBLOCK
from operator import index as _index
from time import monotonic as _monotonic

from stolon import _socketcommon
from stolon._core import install_socket_methods as _install_c_methods
from stolon._core import sock_recv as _c_recv
from stolon._core import sock_recv_into as _c_recv_into
from stolon._core import sock_send as _c_send
from stolon._core import sock_sendall as _c_sendall
from stolon._socketcommon import (_IN_USE, __dns__, __extensions__, __imports__,
                                  __implements__, cancel_wait, cancel_wait_ex, getaddrinfo, gethostbyaddr,
                                  gethostbyname, gethostbyname_ex, getfqdn, getnameinfo,
                                  wait, wait_on_watcher, wait_read, wait_readwrite,
                                  wait_write)
from stolon.exceptions import ConcurrentObjectUseError
from stolon.hub import get_hub

# The stdlib's constants, exceptions and plain functions (AF_INET, error, htons ...);
# the code below uses them under their own names.
globals().update((name, getattr(_socketcommon, name)) for name in __imports__)

__all__ = __implements__ + __extensions__ + __imports__

_GLOBAL_DEFAULT_TIMEOUT = _stdlib._GLOBAL_DEFAULT_TIMEOUT
_timeout_error = _stdlib.timeout
_GiveupOnSendfile = _stdlib._GiveupOnSendfile
_MSG_DONTWAIT = getattr(_socket, "MSG_DONTWAIT", 0)

_CONNECT_PENDING = (EINPROGRESS, EALREADY, EWOULDBLOCK)
# Linux: connect() again after the wait returns the attempt's outcome and, on failure,
# leaves the socket ready for a new attempt, as a blocking connect does (reading
# SO_ERROR instead would make that next attempt fail with ECONNABORTED).
_CONNECT_REPORTS_ERROR = _sys.platform.startswith("linux")
_HAS_EXCEPTION_GROUP = _sys.version_info >= (3, 11)


def _dontwait(flags):
    # flags the stdlib has accepted: an int, or an object with __index__
    return (flags if type(flags) is int else _index(flags)) & _MSG_DONTWAIT


# The C methods, fetched once: the hot paths call them without attribute lookups.
_ss = _socket.socket
_ss_fileno = _ss.fileno
_ss_recv = _ss.recv
_ss_recv_into = _ss.recv_into
_ss_recvfrom = _ss.recvfrom
_ss_recvfrom_into = _ss.recvfrom_into
_ss_send = _ss.send
_ss_sendto = _ss.sendto
_ss_accept = _ss._accept
_ss_connect_ex = _ss.connect_ex
_ss_setblocking = _ss.setblocking
_ss_gettimeout = _ss.gettimeout
# bound now: once monkey patched, the stdlib module's names are stolon's own
_StdlibSocket = _stdlib.socket
_stdlib_create_server = getattr(_stdlib, "create_server", None)


class socket(_StdlibSocket):
    """A cooperative ``socket.socket``; same constructor and methods.

    ``timeout`` is the Python-level timeout (``gettimeout()``); ``hub`` the hub whose
    loop watches the descriptor.  The two io watchers are made on the first wait."""

    __slots__ = ("hub", "timeout", "_read_event", "_write_event")

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        _StdlibSocket.__init__(self, family, type, proto, fileno)
        # the stdlib's own choice: 0.0 for SOCK_NONBLOCK, else the default timeout
        self.timeout = _ss_gettimeout(self)
        _ss_setblocking(self, False)
        self.hub = get_hub()
        self._read_event = None
        self._write_event = None

    # -- waiting ---------------------------------------------------------------------

    def _read_watcher(self):
        watcher = self._read_event
        if watcher is None:
            watcher = self._read_event = self.hub.loop.io(_ss_fileno(self), 1)
        return watcher

    def _write_watcher(self):
        watcher = self._write_event
        if watcher is None:
            watcher = self._write_event = self.hub.loop.io(_ss_fileno(self), 2)
        return watcher

    def _wait_on(self, watcher, timeout):
        """Park until ``watcher`` fires; one greenlet per direction (gevent's error)."""
        if watcher.callback is not None:
            raise ConcurrentObjectUseError(_IN_USE % (watcher.callback,))
        if timeout is None:
            self.hub.wait(watcher)
        else:
            wait_on_watcher(watcher, timeout, hub=self.hub)

    def _wait_read(self, timeout):
        self._wait_on(self._read_event or self._read_watcher(), timeout)

    def _wait_write(self, timeout):
        self._wait_on(self._write_event or self._write_watcher(), timeout)

    @property
    def ref(self):
        """Whether the socket's watchers keep the loop alive while they wait."""
        read, write = self._read_event, self._write_event
        # a watcher not made yet will be made referenced
        return read is None or read.ref or write is None or write.ref

    @ref.setter
    def ref(self, value):
        if self._read_event is None:
            self._read_event = self.hub.loop.io(_ss_fileno(self), 1)
        if self._write_event is None:
            self._write_event = self.hub.loop.io(_ss_fileno(self), 2)
        self._read_event.ref = self._write_event.ref = value

    # -- timeouts --------------------------------------------------------------------

    def settimeout(self, howlong):
        """``None``: block the greenlet; ``0.0``: non-blocking; else seconds."""
        if howlong is not None:
            try:
                as_float = howlong.__float__
            except AttributeError:
                raise TypeError("a float is required", howlong, type(howlong)) from None
            howlong = as_float()
            if not howlong >= 0.0:         # negative, or NaN
                raise ValueError("Timeout value out of range")
        # the descriptor stays non-blocking whatever the mode; as the stdlib's, this
        # fails (OSError) on a descriptor that is no longer open
        _ss_setblocking(self, False)
        self.timeout = howlong

    def gettimeout(self):
        return self.timeout

    def setblocking(self, flag):
        _ss_setblocking(self, False)      # see settimeout
        self.timeout = None if flag else 0.0

    def getblocking(self):
        return self.timeout != 0.0

    # -- connections -----------------------------------------------------------------

    def accept(self):
        """Wait for a connection: ``(cooperative socket, address)``."""
        while True:
            try:
                fd, addr = _ss_accept(self)
                break
            except BlockingIOError:
                if self.timeout == 0.0:
                    raise
            self._wait_read(self.timeout)
        return socket(self.family, self.type, self.proto, fileno=fd), addr

    def connect(self, address):
        """Connect to ``address`` (a host name is resolved cooperatively)."""
        self._connect(address)

    def connect_ex(self, address):
        """As ``connect``, returning an errno (0 on success) instead of raising."""
        try:
            self._connect(address)
        except _timeout_error:
            return EAGAIN
        except _stdlib.gaierror:
            raise
        except OSError as ex:
            if ex.errno:
                return ex.errno
            raise
        return 0

    def _connect(self, address):
        timeout = self.timeout
        if timeout == 0.0:
            return _ss.connect(self, address)
        address = _resolved(self, address)
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            err = _ss_connect_ex(self, address)
            if not err or err == EISCONN:
                return
            if err not in _CONNECT_PENDING:
                raise OSError(err, _os.strerror(err))
            self._wait_write(_time_left(deadline))
            if not _CONNECT_REPORTS_ERROR:
                err = self.getsockopt(SOL_SOCKET, SO_ERROR)
                if err:
                    raise OSError(err, _os.strerror(err))

    # -- receiving -------------------------------------------------------------------

    def _retry(self, call, flags, wait, *args):
        """``call(self, *args)`` until it stops saying EAGAIN, parking with ``wait``
        between tries; a non-blocking socket or MSG_DONTWAIT gets BlockingIOError."""
        while True:
            try:
                return call(self, *args)
            except BlockingIOError:
                if self.timeout == 0.0 or _dontwait(flags):
                    raise
            wait(self.timeout)

    def recv(self, bufsize, flags=0):
        fd = _ss_fileno(self)
        if self.timeout is None and isinstance(flags, int) and not flags & _MSG_DONTWAIT and fd >= 0:
            # blocking mode: the whole try-wait-retry cycle runs in C (csrc/py/sockio.c)
            return _c_recv(fd, bufsize, flags, self.hub, self._read_event or self._read_watcher())
        return self._retry(_ss_recv, flags, self._wait_read, bufsize, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        fd = _ss_fileno(self)
        if self.timeout is None and isinstance(flags, int) and not flags & _MSG_DONTWAIT and fd >= 0:
            return _c_recv_into(fd, buffer, nbytes, flags, self.hub, self._read_event or self._read_watcher())
        return self._retry(_ss_recv_into, flags, self._wait_read, buffer, nbytes, flags)

    def recvfrom(self, bufsize, flags=0):
        return self._retry(_ss_recvfrom, flags, self._wait_read, bufsize, flags)

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        return self._retry(_ss_recvfrom_into, flags, self._wait_read, buffer, nbytes, flags)

    if hasattr(_ss, "recvmsg"):
        def recvmsg(self, bufsize, ancbufsize=0, flags=0):
            return self._retry(_ss.recvmsg, flags, self._wait_read, bufsize, ancbufsize, flags)

    if hasattr(_ss, "recvmsg_into"):
        def recvmsg_into(self, buffers, ancbufsize=0, flags=0):
            return self._retry(_ss.recvmsg_into, flags, self._wait_read, buffers, ancbufsize, flags)

    # -- sending ---------------------------------------------------------------------

    def send(self, data, flags=0):
        fd = _ss_fileno(self)
        if self.timeout is None and isinstance(flags, int) and not flags & _MSG_DONTWAIT and fd >= 0:
            return _c_send(fd, data, flags, self.hub, self._write_event or self._write_watcher())
        return self._retry(_ss_send, flags, self._wait_write, data, flags)

    def sendall(self, data, flags=0):
        """Send all of ``data``; a positive timeout bounds the whole call, as in the
        stdlib.  The common case is one ``send`` that takes everything."""
        fd = _ss_fileno(self)
        if self.timeout is None and isinstance(flags, int) and not flags & _MSG_DONTWAIT and fd >= 0:
            return _c_sendall(fd, data, flags, self.hub, self._write_event or self._write_watcher())
        kind = type(data)
        if kind is not bytes and kind is not bytearray:
            try:
                view = memoryview(data)
            except TypeError:
                # the stdlib's words (memoryview's add a prefix)
                raise TypeError("a bytes-like object is required, not '%s'"
                                % kind.__name__) from None
            data = view.cast("B")
        try:
            sent = _ss_send(self, data, flags)
        except BlockingIOError:
            if self.timeout == 0.0 or _dontwait(flags):
                raise
            sent = 0
        if sent < len(data):
            self._send_rest(data, sent, flags)

    def _send_rest(self, data, sent, flags):
        timeout = self.timeout
        deadline = None if timeout is None else _monotonic() + timeout
        with memoryview(data) as view:
            total = len(view)
            while sent < total:
                try:
                    sent += _ss_send(self, view[sent:], flags)
                    continue
                except BlockingIOError:
                    if self.timeout == 0.0 or _dontwait(flags):
                        raise
                self._wait_write(_time_left(deadline))

    def sendto(self, data, *flags_and_address):
        if not flags_and_address:
            # the stdlib's words (sendto(data, address) or sendto(data, flags, address))
            raise TypeError("sendto() takes 2 or 3 arguments (1 given)")
        flags = flags_and_address[0] if len(flags_and_address) > 1 else 0
        return self._retry(_ss_sendto, flags, self._wait_write, data, *flags_and_address)

    if hasattr(_ss, "sendmsg"):
        def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
            return self._retry(_ss.sendmsg, flags, self._wait_write, buffers, ancdata, flags, address)

    _sendfile_block_size = 8192

    def _sendfile_use_send(self, file, offset=0, count=None):
        # The stdlib's fallback (a file without a descriptor) polls a blocking selector
        # between sends when the socket has a timeout; this one only sends, and the
        # sends park cooperatively.
        self._check_sendfile_params(file, offset, count)
        if self.timeout == 0.0:
            raise ValueError("non-blocking sockets are not supported")
        if offset:
            file.seek(offset)
        blocksize = self._sendfile_block_size
        if count:
            blocksize = min(count, blocksize)
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        break
                data = file.read(blocksize)
                if not data:
                    break
                self.sendall(data)
                total_sent += len(data)
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)

    if hasattr(_os, "sendfile"):
        def _sendfile_use_sendfile(self, file, offset=0, count=None):
            # The stdlib's os.sendfile() loop, waiting on the write watcher instead of
            # a blocking selector; sendfile() falls back to send() on _GiveupOnSendfile.
            self._check_sendfile_params(file, offset, count)
            try:
                fileno = file.fileno()
            except (AttributeError, _io.UnsupportedOperation) as err:
                raise _GiveupOnSendfile(err)
            try:
                fsize = _os.fstat(fileno).st_size
            except OSError as err:
                raise _GiveupOnSendfile(err)
            if not fsize:
                return 0
            if self.timeout == 0.0:
                raise ValueError("non-blocking sockets are not supported")
            blocksize = min(count or fsize, 2 ** 30)
            sockno = _ss_fileno(self)
            total_sent = 0
            try:
                while True:
                    if count:
                        blocksize = count - total_sent
                        if blocksize <= 0:
                            break
                    try:
                        sent = _os.sendfile(sockno, fileno, offset, blocksize)
                    except BlockingIOError:
                        self._wait_write(self.timeout)
                        continue
                    except OSError as err:
                        if total_sent == 0:
                            raise _GiveupOnSendfile(err)
                        raise err from None
                    if sent == 0:
                        break
                    offset += sent
                    total_sent += sent
                return total_sent
            finally:
                if total_sent > 0 and hasattr(file, "seek"):
                    file.seek(offset)

    # -- ending ----------------------------------------------------------------------

    def shutdown(self, how):
        """Shut down one or both directions; greenlets waiting on a direction that is
        shut get ``cancel_wait_ex``, as in gevent."""
        hub = self.hub
        if how != SHUT_WR and self._read_event is not None:
            hub.cancel_wait(self._read_event, cancel_wait_ex)
        if how != SHUT_RD and self._write_event is not None:
            hub.cancel_wait(self._write_event, cancel_wait_ex)
        _ss.shutdown(self, how)

    def detach(self):
        """Forget the descriptor without closing it and return it; waiters get
        ``cancel_wait_ex``."""
        self._closed = True
        self._drop_watchers()
        return _ss.detach(self)

    def _drop_watchers(self):
        """Close both watchers; a greenlet waiting on one gets ``cancel_wait_ex`` from
        the hub (which then closes that watcher).  True if somebody was waiting."""
        read, write = self._read_event, self._write_event
        if read is None and write is None:
            return False
        self._read_event = self._write_event = None
        waited = False
        for watcher in (read, write):
            if watcher is None:
                continue
            if watcher.callback is None:
                watcher.close()
            else:
                self.hub.cancel_wait(watcher, cancel_wait_ex, True)
                waited = True
        return waited

    def _real_close(self, _ss=_ss):
        # close() calls this once no makefile() stream holds the socket.  Somebody still
        # waiting, or another watcher on the fd: the number must stay ours until they
        # have been told, so the object lets go of it now and the loop closes it later.
        waited = self._drop_watchers()
        loop = self.hub.loop
        fd = _ss.fileno(self)
        if fd < 0 or loop is None:
            _ss.close(self)
        elif waited:
            loop.run_callback(_close_fd_when_unwatched, loop, _ss.detach(self))
        elif loop.closing_fd(fd):
            _close_fd_at_check(loop, _ss.detach(self))
        else:
            _ss.close(self)



# recv, recv_into, send and sendall in blocking mode without a Python frame: C methods
# that take the same decision as the ones above (kept as _py_recv etc.) and call them
# for every other case (csrc/py/sockmethods.c)
_install_c_methods(socket)

def _close_fd_when_unwatched(loop, fd):
    # Runs after the hub's cancel_wait callbacks queued before it (FIFO).
    if loop.closing_fd(fd):
        _close_fd_at_check(loop, fd)
    else:
        _close_fd(fd)


def _close_fd_at_check(loop, fd):
    # The watchers just fed by closing_fd run in this iteration; close after them.
    check = loop.check()
    check.start(_close_fd_checked, check, fd)


def _close_fd_checked(check, fd):
    check.close()
    _close_fd(fd)


def _close_fd(fd):
    # Nobody is left to report an error to: close() has long returned.
    try:
        _os.close(fd)
    except OSError:
        pass


def _time_left(deadline):
    """Seconds to ``deadline`` (None: no limit); raises the socket timeout once due."""
    if deadline is None:
        return None
    left = deadline - _monotonic()
    if left <= 0.0:
        raise _timeout_error("timed out")
    return left


_RESOLVABLE_FAMILIES = (AF_INET, AF_INET6) if has_ipv6 else (AF_INET,)


def _resolved(sock, address):
    """``address`` with a host name replaced by its first address (cooperatively,
    through getaddrinfo), so that connect() never resolves in C."""
    if not isinstance(address, tuple) or sock.family not in _RESOLVABLE_FAMILIES:
        return address
    try:
        _socket.inet_pton(sock.family, address[0])
        return address
    except (OSError, TypeError, ValueError):
        pass
    host, port = address[:2]
    resolved = getaddrinfo(host, None, sock.family)[0][-1]
    return (resolved[0], port) + tuple(address[2:])


# -- module functions ----------------------------------------------------------------------

def create_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *,
                      all_errors=False):
    """Connect to ``(host, port)``, trying each address getaddrinfo gives, and return
    the connected cooperative socket.  ``timeout`` is set on the socket before it
    connects (default: ``getdefaulttimeout()``); ``source_address`` is bound first.
    Raises the last error, or (``all_errors``, Python 3.11+) an ExceptionGroup of all."""
    if not _HAS_EXCEPTION_GROUP:
        all_errors = False
    host, port = address
    errors = []
    for af, socktype, proto, _canonname, sockaddr in getaddrinfo(host, port, 0, SOCK_STREAM):
        sock = None
        try:
            sock = socket(af, socktype, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            errors.clear()
            return sock
        except error as exc:
            if not all_errors:
                errors.clear()
            errors.append(exc)
            if sock is not None:
                sock.close()
        except BaseException:
            if sock is not None:
                sock.close()
            raise
    if not errors:
        raise error("getaddrinfo returns an empty list")
    try:
        if all_errors:
            raise ExceptionGroup("create_connection failed", errors)  # noqa: F821 (3.11+)
        raise errors[0]
    finally:
        errors.clear()


if hasattr(_stdlib, "create_server"):
    def create_server(address, *, family=AF_INET, backlog=None, reuse_port=False,
                      dualstack_ipv6=False):
        """The stdlib's ``create_server`` (bound, listening, SOCK_STREAM), as a
        cooperative socket."""
        listener = _stdlib_create_server(address, family=family, backlog=backlog,
                                         reuse_port=reuse_port, dualstack_ipv6=dualstack_ipv6)
        return socket(listener.family, listener.type, listener.proto, listener.detach())


def socketpair(family=None, type=SOCK_STREAM, proto=0):
    """A pair of connected cooperative sockets (AF_UNIX by default)."""
    if family is None:
        family = AF_UNIX
    one, two = _socket.socketpair(family, type, proto)
    return (socket(family, type, proto, one.detach()),
            socket(family, type, proto, two.detach()))


def fromfd(fd, family, type, proto=0):
    """A cooperative socket on a duplicate of ``fd``."""
    return socket(family, type, proto, _os.dup(fd))
