"""stolon: cooperative concurrency with a C core.

The greenlet primitive (``stolon.greenlet``) has greenlet 3.x's semantics: code written
for greenlet ports by changing the import.  The cooperative layer has gevent's API:
code written for gevent ports with ``import stolon as gevent``.

``stolon.greenlet`` is the greenlet type, as greenlet's module has it; the module of
the Greenlet class is imported as ``stolon.greenlet`` as well (``from stolon.greenlet
import Greenlet``, as from ``gevent.greenlet``), without taking that attribute over.
"""
import sys

from stolon._core import _C_API, GreenletExit, error, getcurrent, gettrace, greenlet, settrace
from stolon._config import config
from stolon.hub import (get_hub, getswitchinterval, idle, kill, reinit, setswitchinterval, sleep,
                        spawn_raw)
from stolon.timeout import Timeout, with_timeout
from stolon import _greenlet
from stolon._greenlet import Greenlet, joinall, killall, spawn, spawn_later
from stolon._hub_primitives import iwait, wait
from stolon.os import fork
from stolon.signal import signal_handler

sys.modules.setdefault("stolon.greenlet", _greenlet)

__version__ = "0.1.0"
version_info = (0, 1, 0, "final", 0)

__all__ = ["config", "greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace",
           "get_hub", "getswitchinterval", "setswitchinterval", "idle", "kill", "reinit",
           "sleep", "spawn_raw", "Timeout", "with_timeout", "Greenlet", "spawn", "spawn_later",
           "joinall", "killall", "wait", "iwait", "fork", "signal_handler"]
