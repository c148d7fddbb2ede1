"""stolon.exceptions: the errors of the cooperative layer (gevent's names)."""
from stolon._core import GreenletExit

__all__ = ["LoopExit", "BlockingSwitchOutError", "InvalidSwitchError",
           "ConcurrentObjectUseError", "InvalidThreadUseError", "HubDestroyed"]


class LoopExit(Exception):
    """Raised in a greenlet that waits when the hub's loop has nothing left that could
    wake it: every other greenlet is blocked too, or nothing was started.

    ``args`` is ``(message, hub, handles)`` as in gevent.
    """

    @property
    def hub(self):
        return self.args[1] if len(self.args) > 1 else None

    def __str__(self):
        if len(self.args) < 3:
            return Exception.__str__(self)
        message, hub, handles = self.args[:3]
        text = "%s\n\tHub: %s" % (message, hub)
        if handles:
            text += "\n\tHandles:\n\t\t" + "\n\t\t".join(repr(h) for h in handles)
        return text

    def __repr__(self):
        if len(self.args) == 3:
            return "%s(%r, hub=%r, handles=%d)" % (type(self).__name__, self.args[0], self.args[1],
                                                    len(self.args[2] or ()))
        return Exception.__repr__(self)


class BlockingSwitchOutError(AssertionError):
    """A blocking call was made where blocking is impossible (inside the hub)."""


class InvalidSwitchError(AssertionError):
    """A waiting greenlet was switched into by something other than what it waits for."""


class ConcurrentObjectUseError(AssertionError):
    """Two greenlets tried to wait on an object that only one may wait on."""


class InvalidThreadUseError(RuntimeError):
    """An object bound to one thread's hub was used from another thread."""


class HubDestroyed(GreenletExit):
    """Thrown into a hub by ``Hub.destroy()`` to end its ``run()``."""

    def __init__(self, destroy_loop):
        GreenletExit.__init__(self, destroy_loop)
        self.destroy_loop = destroy_loop
