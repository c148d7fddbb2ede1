"""stolon.resolver.blocking: a resolver that calls the C library's lookup functions
directly, in the calling thread (gevent's ``gevent.resolver.blocking``).

It is not cooperative: while a lookup waits for a DNS server, every greenlet of the
thread waits too.  It costs the least per lookup, which suits names the system
answers locally (``/etc/hosts``, a caching resolver) and debugging.
"""
import _socket

__all__ = ["Resolver"]


class Resolver:
    """``Resolver(hub=None)``: the stdlib's ``_socket`` lookup functions, unchanged
    (``hub`` is accepted for the resolvers' common signature and not used)."""

    __slots__ = ()

    def __init__(self, hub=None):
        pass

    def close(self):
        """Nothing to release."""

    gethostbyname = staticmethod(_socket.gethostbyname)
    gethostbyname_ex = staticmethod(_socket.gethostbyname_ex)
    getaddrinfo = staticmethod(_socket.getaddrinfo)
    gethostbyaddr = staticmethod(_socket.gethostbyaddr)
    getnameinfo = staticmethod(_socket.getnameinfo)
