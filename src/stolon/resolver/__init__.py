"""stolon.resolver: the name resolvers a hub can use (gevent's ``gevent.resolver``).

- ``stolon.resolver.thread.Resolver``: each lookup runs the C library's function in a
  thread of the hub's pool (the default: ``Hub.resolver`` makes one on first use).
- ``stolon.resolver.dns.Resolver``: a stub resolver in Python that asks the
  nameservers of resolv.conf (or of its ``nameservers`` argument) itself, over
  stolon's cooperative sockets, after the hosts file; no threads (config name
  ``'dns'``, and gevent's ``'ares'`` and ``'dnspython'``).
- ``stolon.resolver.blocking.Resolver``: the C library's functions called directly,
  in the calling thread (not cooperative: a slow lookup stops every greenlet).

A hub takes another resolver by assignment: ``get_hub().resolver = Resolver()``.
"""
from _socket import gaierror as _gaierror, herror as _herror


def quiet_lookup_errors(hub):
    """Add the stdlib's lookup errors to ``hub.NOT_ERROR`` (once): a failed lookup
    is an answer, not a bug, and the hub need not print it."""
    if _gaierror not in hub.NOT_ERROR:
        hub.NOT_ERROR += (_gaierror, _herror)
