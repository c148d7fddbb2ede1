"""stolon.time: the ``time`` module with a cooperative ``sleep`` (gevent's
``gevent.time``): ``sleep`` parks the calling greenlet, every other name is the
stdlib's own object.  ``stolon.monkey.patch_time()`` puts this ``sleep`` into ``time``.
"""
import time as _stdlib_time

from stolon.hub import sleep

__implements__ = ["sleep"]
__all__ = __implements__

globals().update({name: value for name, value in vars(_stdlib_time).items()
                  if not name.startswith("__") and name not in __implements__})
