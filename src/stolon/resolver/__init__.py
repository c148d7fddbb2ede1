"""stolon.resolver: the name resolvers a hub can use (gevent's ``gevent.resolver``).

- ``stolon.resolver.thread.Resolver``: each lookup runs the C library's function in a
  thread of the hub's pool (the default: ``Hub.resolver`` makes one on first use).
- ``stolon.resolver.blocking.Resolver``: the C library's functions called directly,
  in the calling thread (not cooperative: a slow lookup stops every greenlet).

A hub takes another resolver by assignment: ``get_hub().resolver = Resolver()``.
"""
