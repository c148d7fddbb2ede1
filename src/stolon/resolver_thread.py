"""stolon.resolver_thread: the old name of ``stolon.resolver.thread`` (gevent keeps
``gevent.resolver_thread`` for code written before 1.3, with a DeprecationWarning)."""
import warnings

from stolon.resolver.thread import Resolver

warnings.warn("stolon.resolver_thread is deprecated; use stolon.resolver.thread",
              DeprecationWarning, stacklevel=2)

__all__ = ["Resolver"]
