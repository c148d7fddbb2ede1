"""stolon.resolver.thread: the thread resolver (gevent's default resolver, ``'thread'``).

Each lookup runs the C library's own function (``_socket.getaddrinfo`` and friends,
which honour ``/etc/hosts``, nsswitch and the rest of the system's configuration) in
a thread of the hub's pool, so the calling greenlet waits while the others keep
running.  Errors are the stdlib's (``socket.gaierror``, ``socket.herror``), raised in
the calling greenlet.  Results are what ``_socket`` returns (plain integers for
families and types; the socket module turns them into enums).

``Hub.resolver`` makes one per hub on first use (of ``stolon.config.resolver``'s class).
"""
import _socket
import weakref

from stolon.hub import get_hub
from stolon.resolver import quiet_lookup_errors
from stolon.resolver._fqdn import getfqdn as _getfqdn

__all__ = ["Resolver"]

_gethostbyname = _socket.gethostbyname
_gethostbyname_ex = _socket.gethostbyname_ex
_getaddrinfo = _socket.getaddrinfo
_gethostbyaddr = _socket.gethostbyaddr
_getnameinfo = _socket.getnameinfo


class Resolver:
    """``Resolver(hub=None)``: name lookups run in ``hub``'s thread pool (the current
    thread's hub by default): the pool the hub has at the time of each lookup, so a
    pool killed and replaced (``del hub.threadpool``) is not used again."""

    __slots__ = ("_hub",)

    def __init__(self, hub=None):
        if hub is None:
            hub = get_hub()
        # weakly: the hub keeps its resolver
        self._hub = weakref.ref(hub)
        quiet_lookup_errors(hub)

    def __repr__(self):
        return "<%s.%s at 0x%x pool=%r>" % (type(self).__module__, type(self).__name__,
                                            id(self), self.pool)

    @property
    def pool(self):
        """The hub's thread pool, where the lookups run."""
        hub = self._hub()
        if hub is None:
            raise RuntimeError("the hub of this resolver is gone")
        return hub.threadpool

    def close(self):
        """Nothing to release: the pool belongs to the hub."""

    def gethostbyname(self, *args):
        return self.pool.apply(_gethostbyname, args)

    def gethostbyname_ex(self, *args):
        return self.pool.apply(_gethostbyname_ex, args)

    def getaddrinfo(self, *args, **kwargs):
        return self.pool.apply(_getaddrinfo, args, kwargs)

    def gethostbyaddr(self, *args, **kwargs):
        return self.pool.apply(_gethostbyaddr, args, kwargs)

    def getnameinfo(self, *args, **kwargs):
        return self.pool.apply(_getnameinfo, args, kwargs)

    def getfqdn(self, name=""):
        """``socket.getfqdn`` through this resolver's ``gethostbyaddr``."""
        return _getfqdn(self.gethostbyaddr, name)
