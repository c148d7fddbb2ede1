"""stolon._socketcommon: what stolon.socket shares with the stdlib and with other
cooperative modules, without the socket class itself.

- The stdlib ``socket`` module's names (constants, exceptions, enums, plain functions
  such as ``inet_aton`` or ``getdefaulttimeout``), re-exported unchanged.
- Waiting on a file descriptor: ``wait``, ``wait_read``, ``wait_write``,
  ``wait_readwrite``, ``cancel_wait`` and its default error ``cancel_wait_ex``.
- Name resolution (``__dns__``): each function asks ``get_hub().resolver`` (gevent's
  contract: a resolver object with the stdlib's function names; the hub makes its
  thread-pool resolver on first use).
"""
import socket as _stdlib
from errno import EBADF

from stolon.exceptions import ConcurrentObjectUseError
from stolon.hub import get_hub
from stolon.timeout import Timeout

#: Stdlib names stolon.socket replaces with cooperative versions.
__dns__ = ["getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
           "getnameinfo", "getfqdn"]
# SocketType stays the stdlib's (_socket.socket, the base of every socket, stolon's
# included): gevent replaces it with its class, which makes isinstance() false for
# sockets made before patching or by C code
__implements__ = ["create_connection", "socket", "fromfd", "socketpair",
                  "create_server"] + __dns__
#: Names stolon.socket adds to the stdlib's.
__extensions__ = ["cancel_wait", "wait_read", "wait_write", "wait_readwrite"]

# Everything else the stdlib exports is the stdlib's own object.
__imports__ = [name for name in _stdlib.__all__
               if name not in __implements__ and hasattr(_stdlib, name)]
globals().update((name, getattr(_stdlib, name)) for name in __imports__)

error = _stdlib.error
timeout = _stdlib.timeout
AddressFamily = _stdlib.AddressFamily
SocketKind = _stdlib.SocketKind

_NONE = object()
_IN_USE = "This socket is already used by another greenlet: %r"


class cancel_wait_ex(error):
    """What a greenlet waiting on a socket gets when another greenlet closes it."""

    def __init__(self):
        error.__init__(self, EBADF, "File descriptor was closed in another greenlet")


def cancel_wait(watcher, error=cancel_wait_ex):
    """Throw ``error`` into the greenlet waiting on ``watcher``, if any (from the hub,
    at the next turn of the loop)."""
    get_hub().cancel_wait(watcher, error)


# -- waiting on watchers and file descriptors --------------------------------------------

def wait_on_watcher(watcher, timeout=None, timeout_exc=_NONE, hub=None):
    """Park the current greenlet until ``watcher`` fires.  With a ``timeout``,
    ``timeout_exc`` is raised when it expires (by default ``socket.timeout('timed
    out')``; otherwise interpreted as ``Timeout``'s ``exception``).  A watcher that
    somebody already waits on raises ``ConcurrentObjectUseError``."""
    callback = watcher.callback
    if callback is not None:
        raise ConcurrentObjectUseError(_IN_USE % (callback,))
    if hub is None:
        hub = get_hub()
    if timeout is None:
        hub.wait(watcher)
        return
    if timeout_exc is _NONE:
        timeout_exc = _stdlib.timeout("timed out")
    timer = Timeout._start_new_or_dummy(timeout, timeout_exc)
    try:
        hub.wait(watcher)
    finally:
        timer.cancel()


wait = wait_on_watcher


def _wait_fd(fileno, events, timeout, timeout_exc):
    hub = get_hub()
    watcher = hub.loop.io(fileno, events)
    try:
        wait_on_watcher(watcher, timeout, timeout_exc, hub)
    finally:
        watcher.close()


def wait_read(fileno, timeout=None, timeout_exc=_NONE):
    """Park the current greenlet until ``fileno`` is readable (see ``wait``)."""
    _wait_fd(fileno, 1, timeout, timeout_exc)


def wait_write(fileno, timeout=None, timeout_exc=_NONE, event=_NONE):
    """Park the current greenlet until ``fileno`` is writable (see ``wait``).
    ``event`` is accepted and ignored, as in gevent."""
    _wait_fd(fileno, 2, timeout, timeout_exc)


def wait_readwrite(fileno, timeout=None, timeout_exc=_NONE, event=_NONE):
    """Park the current greenlet until ``fileno`` is readable or writable."""
    _wait_fd(fileno, 3, timeout, timeout_exc)


# -- name resolution ---------------------------------------------------------------------

def _resolver():
    return get_hub().resolver


def _as_enum(value, enum_type):
    try:
        return enum_type(value)
    except ValueError:
        return value


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """Resolve ``host`` and ``port`` into ``(family, type, proto, canonname,
    sockaddr)`` tuples, as the stdlib (families and types as its enums)."""
    return [(_as_enum(af, AddressFamily), _as_enum(kind, SocketKind), pr, canonname, sockaddr)
            for af, kind, pr, canonname, sockaddr
            in _resolver().getaddrinfo(host, port, family, type, proto, flags)]


def gethostbyname(hostname):
    """The IPv4 address of ``hostname`` as a string."""
    return _resolver().gethostbyname(hostname)


def gethostbyname_ex(hostname):
    """``(hostname, aliases, addresses)`` for ``hostname``."""
    return _resolver().gethostbyname_ex(hostname)


def gethostbyaddr(ip_address):
    """``(hostname, aliases, addresses)`` for an address (or a name)."""
    return _resolver().gethostbyaddr(ip_address)


def getnameinfo(sockaddr, flags):
    """``(host, port)`` for a socket address."""
    return _resolver().getnameinfo(sockaddr, flags)


def getfqdn(name=""):
    """The fully qualified name of ``name`` (the local host when empty or a wildcard
    address): the first of the canonical name and its aliases that contains a dot,
    else the canonical name; ``name`` itself when it cannot be looked up."""
    name = name.strip()
    if not name or name in ("0.0.0.0", "::"):
        name = _stdlib.gethostname()
    try:
        hostname, aliases, _ = gethostbyaddr(name)
    except error:
        return name
    for candidate in [hostname] + list(aliases):
        if (b"." if isinstance(candidate, bytes) else ".") in candidate:
            return candidate
    return hostname
