"""stolon.baseserver: what every server shares (gevent.baseserver).

A server owns a listening socket and an io watcher on it.  When the socket is readable
the watcher's callback (run by the hub) takes up to ``max_accept`` requests from it
without blocking (``do_read``) and starts ``handle`` for each (``do_handle``): in a new
Greenlet by default, in a Pool, or inline.  While the pool is full the watcher is
stopped; a slot coming free restarts it.  An error from ``do_read`` or from spawning is
reported to the hub and stops accepting for ``delay`` seconds, which starts at
``min_delay`` and doubles up to ``max_delay`` while errors repeat (so a process out of
file descriptors keeps serving once some are closed); errors that mean the listener
itself is unusable (``fatal_errors``) close the server.
"""
import errno
import sys
from _socket import AF_INET, AF_INET6
from _socket import error as _SocketError

from stolon._greenlet import Greenlet
from stolon.event import Event
from stolon.hub import get_hub

__all__ = ["BaseServer"]


def _handle_and_close_when_done(handle, close, args):
    # Module-level and with the arguments as one tuple: the cheapest thing to spawn
    # per request.  The request is closed whatever handle() does.
    try:
        return handle(*args)
    finally:
        close(*args)


class BaseServer:
    """The common part of StreamServer and DatagramServer.

    ``listener`` is an address (``(host, port)``, ``'host:port'``, ``'[ipv6]:port'``,
    ``':port'`` or a port) to bind when the server starts, or a socket that is already
    bound (and listening, for TCP).  ``handle`` is called for each request (or define a
    ``handle`` method); when it returns, the request's socket is closed.  ``spawn``
    decides where ``handle`` runs: ``'default'`` (a new Greenlet each), a Pool (no
    accepting while it is full), an int (a Pool of that size), ``None`` (inline in the
    hub: it must not block) or any callable ``spawn(function, *args)``.

    The server is a context manager: ``with`` returns it and calls ``stop()`` on exit.
    """

    #: Seconds to stop accepting after an error in accept() or spawn; doubles for each
    #: consecutive error up to ``max_delay``; a success resets it.
    min_delay = 0.01
    #: The longest pause after consecutive accept errors.
    max_delay = 1
    #: The most requests taken per readiness notification (fewer favours established
    #: connections; set it to 1 when several processes share the listener).
    max_accept = 100
    #: Seconds ``stop()`` waits for a pool's handlers before killing them.
    stop_timeout = 1
    #: accept() errors that mean the listening socket itself is broken.
    fatal_errors = (errno.EBADF, errno.EINVAL, errno.ENOTSOCK)

    _spawn = Greenlet.spawn

    def __init__(self, listener, handle=None, spawn="default"):
        self._stop_event = Event()
        self._stop_event.set()
        self._watcher = None
        self._timer = None
        self._handle = None
        # a Pool when spawn names one; its full() then replaces ours
        self.pool = None
        try:
            self.set_listener(listener)
            self.set_spawn(spawn)
            self.set_handle(handle)
            self.delay = self.min_delay
            self.loop = get_hub().loop
            if self.max_accept < 1:
                raise ValueError("max_accept must be positive int: %r" % (self.max_accept,))
        except:  # noqa: E722 -- a half-built server must not keep the socket open
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.stop()

    # -- configuration -----------------------------------------------------------------

    def set_listener(self, listener):
        """Use ``listener``: a bound socket, or an address to bind in ``start()``."""
        if hasattr(listener, "accept"):
            if hasattr(listener, "do_handshake"):
                raise TypeError("Expected a regular socket, not SSLSocket: %r" % (listener,))
            self.family = listener.family
            self.address = listener.getsockname()
            self.socket = listener
        else:
            self.family, self.address = parse_address(listener)

    def set_spawn(self, spawn):
        """Choose where handlers run (see the class docstring)."""
        self.__dict__.pop("full", None)     # an earlier pool's full() must not stay
        if spawn == "default":
            self.pool = None
            self._spawn = type(self)._spawn
        elif hasattr(spawn, "spawn"):
            self.pool = spawn
            self._spawn = spawn.spawn
        elif isinstance(spawn, int):
            from stolon.pool import Pool
            self.pool = Pool(spawn)
            self._spawn = self.pool.spawn
        else:
            self.pool = None
            self._spawn = spawn
        if hasattr(self.pool, "full"):
            self.full = self.pool.full

    def set_handle(self, handle):
        """Use ``handle`` for requests (``None`` keeps the ``handle`` method)."""
        if handle is not None:
            self.handle = handle
        if hasattr(self, "handle"):
            self._handle = self.handle
        else:
            raise TypeError("'handle' must be provided")

    # -- the accept loop ---------------------------------------------------------------

    def _start_accepting_if_started(self, _source=None):
        if self.started:
            self.start_accepting()

    def start_accepting(self):
        """Watch the listener for requests (no-op while already watching)."""
        if self._watcher is None:
            self._watcher = self.loop.io(self.socket.fileno(), 1)
            self._watcher.start(self._do_read)

    def stop_accepting(self):
        """Stop watching the listener, and cancel a pending error back-off."""
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.stop()
            watcher.close()
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.stop()
            timer.close()

    def do_read(self):
        """Take one request from the listener without blocking: the arguments for
        ``handle``, or None if there was nothing to take."""
        raise NotImplementedError()

    def do_handle(self, *args):
        """Run ``handle(*args)`` with the spawn policy; ``do_close(*args)`` follows it."""
        spawn = self._spawn
        handle = self._handle
        close = self.do_close
        try:
            if spawn is None:
                _handle_and_close_when_done(handle, close, args)
            else:
                spawn(_handle_and_close_when_done, handle, close, args)
        except:  # noqa: E722 -- the request was not handed over: release it here
            close(*args)
            raise

    def do_close(self, *args):
        """Release a request once its handler is done (StreamServer closes the socket)."""

    def _back_off(self):
        # Pause accepting after an error; the pause doubles while errors repeat.
        # A negative delay means: keep going at once.
        if self.delay >= 0:
            self.stop_accepting()
            self._timer = self.loop.timer(self.delay)
            self._timer.start(self._start_accepting_if_started)
            self.delay = min(self.max_delay, self.delay * 2)

    def _do_read(self):
        for _ in range(self.max_accept):
            if self._watcher is None:
                # an inline handler stopped or closed the server
                return
            if self.full():
                self.stop_accepting()
                if self.pool is not None:
                    # one-shot: called when a slot comes free
                    self.pool._semaphore.rawlink(self._start_accepting_if_started)
                return
            try:
                args = self.do_read()
                self.delay = self.min_delay
                if not args:
                    return
            except:  # noqa: E722 -- reported to the hub; the server survives
                exc_info = sys.exc_info()
                self.loop.handle_error(self, *exc_info)
                if self.is_fatal_error(exc_info[1]):
                    ex = exc_info[1]
                    self.close()
                    sys.stderr.write("ERROR: %s failed with %s\n" % (self, str(ex) or repr(ex)))
                    return
                self._back_off()
                return
            try:
                self.do_handle(*args)
            except:  # noqa: E722 -- as above
                self.loop.handle_error((args[1:], self), *sys.exc_info())
                self._back_off()
                return

    def full(self):
        """True while no more requests should be taken (a given Pool's ``full``
        replaces this)."""
        return False

    def is_fatal_error(self, ex):
        """True if the accept error ``ex`` means the listener cannot be used any more."""
        return isinstance(ex, _SocketError) and ex.args[0] in self.fatal_errors

    # -- reprs and addresses -----------------------------------------------------------

    def __repr__(self):
        return "<%s at %s %s>" % (type(self).__name__, hex(id(self)), self._formatinfo())

    def __str__(self):
        return "<%s %s>" % (type(self).__name__, self._formatinfo())

    def _formatinfo(self):
        if hasattr(self, "socket"):
            try:
                fileno = self.socket.fileno()
            except Exception as ex:
                fileno = str(ex)
            result = "fileno=%s " % fileno
        else:
            result = ""
        try:
            if isinstance(self.address, tuple) and len(self.address) == 2:
                result += "address=%s:%s" % self.address
            else:
                result += "address=%s" % (self.address,)
        except Exception as ex:
            result += str(ex) or "<error>"
        handle = self.__dict__.get("handle")
        if handle is not None:
            try:
                if getattr(handle, "__self__", None) is self:
                    # the repr of a bound method of ours would recurse into this one
                    handle_repr = "<bound method %s.%s of self>" % (type(self).__name__, handle.__name__)
                else:
                    handle_repr = repr(handle)
                result += " handle=" + handle_repr
            except Exception as ex:
                result += str(ex) or "<error>"
        return result

    @property
    def server_host(self):
        """The IP address the server is bound to (a string; None for non-IP sockets)."""
        if isinstance(self.address, tuple):
            return self.address[0]
        return None

    @property
    def server_port(self):
        """The port the server is bound to (an int; None for non-IP sockets)."""
        if isinstance(self.address, tuple):
            return self.address[1]
        return None

    # -- life cycle --------------------------------------------------------------------

    def init_socket(self):
        """Called by ``start()``: create, bind and listen on the socket if the server
        was given an address."""

    @property
    def started(self):
        """True between ``start()`` and ``stop()``/``close()``."""
        return not self._stop_event.is_set()

    def start(self):
        """Start accepting requests (binding the socket first if needed).  Returns at
        once; the hub does the accepting."""
        self.init_socket()
        self._stop_event.clear()
        try:
            self.start_accepting()
        except:  # noqa: E722 -- not started: do not leave the socket open
            self.close()
            raise

    def close(self):
        """Stop accepting and close the listening socket (handlers keep running)."""
        self._stop_event.set()
        try:
            self.stop_accepting()
        finally:
            try:
                self.socket.close()
            except Exception:
                pass
            finally:
                # The server keeps no reference to what a closed server does not need;
                # ``closed`` is the absence of ``socket``, as in gevent.
                for name in ("socket", "handle", "_handle", "_spawn", "full"):
                    self.__dict__.pop(name, None)
                if self.pool is not None:
                    self.pool._semaphore.unlink(self._start_accepting_if_started)

    @property
    def closed(self):
        """True once the listening socket is closed (or before one was given)."""
        return not hasattr(self, "socket")

    def stop(self, timeout=None):
        """Close the listener; with a pool, wait up to ``timeout`` seconds (default
        ``stop_timeout``) for its handlers, then kill those still running.  Without a
        pool, running handlers are left to finish."""
        self.close()
        if timeout is None:
            timeout = self.stop_timeout
        if self.pool:
            self.pool.join(timeout=timeout)
            self.pool.kill(block=True, timeout=1)

    def serve_forever(self, stop_timeout=None):
        """Start the server unless it is started, then block until it is stopped
        (``stop()``/``close()`` from elsewhere), and stop it (``stop_timeout`` as
        ``stop()``'s timeout) -- also when this greenlet is killed."""
        if not self.started:
            self.start()
        try:
            self._stop_event.wait()
        finally:
            # in a greenlet of its own: this one may be dying from a kill
            Greenlet.spawn(self.stop, timeout=stop_timeout).join()


def _split_host(host):
    if host.startswith("[") and host.endswith("]"):
        return AF_INET6, host[1:-1]
    return AF_INET, host


def _parse_address(address):
    if isinstance(address, tuple):
        if not address[0] or ":" in address[0]:
            return AF_INET6, address
        return AF_INET, address
    if (isinstance(address, str) and ":" not in address) or isinstance(address, int):
        # a bare port: every address, both families where the system allows
        return AF_INET6, ("", int(address))
    if not isinstance(address, str):
        raise TypeError("Expected tuple or string, got %s" % type(address))
    host, port = address.rsplit(":", 1)
    family, host = _split_host(host)
    if host == "*":
        host = ""
    return family, (host, int(port))


def parse_address(address):
    """``(family, address)`` for a server address: ``(host, port)``, ``'host:port'``,
    ``'[ipv6]:port'``, ``'*:port'``, ``':port'``, or a port (str or int)."""
    try:
        return _parse_address(address)
    except ValueError as ex:
        raise ValueError("Failed to parse address %r: %s" % (address, ex))
