"""stolon._waiter: Waiter, the one way a greenlet parks in the hub and is woken.

A waiter is a one-shot slot.  ``get()`` parks the current greenlet in the hub unless a
value or an exception arrived first; ``switch(value)`` / ``throw(*exc)`` (called from
the hub, usually as a watcher's callback) resume it or, if nobody waits yet, store the
outcome for the next ``get()``.  Only the hub may switch into a waiting greenlet, which
is what makes a wake-up from anywhere else detectable.
"""
import sys

from stolon._core import getcurrent
from stolon.exceptions import ConcurrentObjectUseError

__all__ = ["Waiter", "MultipleWaiter"]

_NONE = object()


class Waiter:
    __slots__ = ("hub", "greenlet", "value", "_exception")

    def __init__(self, hub=None):
        if hub is None:
            from stolon.hub import get_hub
            hub = get_hub()
        self.hub = hub
        self.greenlet = None
        self.value = None
        self._exception = _NONE

    def clear(self):
        self.greenlet = None
        self.value = None
        self._exception = _NONE

    def __str__(self):
        if self._exception is _NONE:
            return "<%s greenlet=%s>" % (type(self).__name__, self.greenlet)
        if self._exception is None:
            return "<%s greenlet=%s value=%r>" % (type(self).__name__, self.greenlet, self.value)
        return "<%s greenlet=%s exc_info=%r>" % (type(self).__name__, self.greenlet, self.exc_info)

    def ready(self):
        """True once a value or an exception has been stored."""
        return self._exception is not _NONE

    def successful(self):
        return self._exception is None

    @property
    def exc_info(self):
        return None if self._exception is _NONE else self._exception

    def _check_hub(self):
        if getcurrent() is not self.hub:
            raise AssertionError("Can only use Waiter.switch method from the Hub greenlet")

    def switch(self, value):
        """Wake the waiting greenlet with ``value`` (or store it)."""
        waiting = self.greenlet
        if waiting is None:
            self.value = value
            self._exception = None
            return
        self._check_hub()
        try:
            waiting.switch(value)
        except:  # noqa: E722 -- whatever the woken greenlet raised belongs to the hub
            self.hub.handle_error(waiting.switch, *sys.exc_info())

    def switch_args(self, *args):
        return self.switch(args)

    def throw(self, *throw_args):
        """Raise ``throw_args`` in the waiting greenlet (or store them)."""
        waiting = self.greenlet
        if waiting is None:
            self._exception = throw_args
            return
        self._check_hub()
        try:
            waiting.throw(*throw_args)
        except:  # noqa: E722
            self.hub.handle_error(waiting.throw, *sys.exc_info())

    def get(self):
        """The stored value, or park until one arrives (exceptions are raised here)."""
        if self._exception is not _NONE:
            if self._exception is None:
                return self.value
            getcurrent().throw(*self._exception)
        if self.greenlet is not None:
            raise ConcurrentObjectUseError("This Waiter is already used by %r" % (self.greenlet,))
        self.greenlet = getcurrent()
        try:
            return self.hub.switch()
        finally:
            self.greenlet = None

    def __call__(self, source):
        """A link callback: deliver a finished greenlet's or result's outcome."""
        if source.exception is None:
            self.switch(source.value)
        else:
            self.throw(source.exception)


class MultipleWaiter(Waiter):
    """A waiter that collects every value it is switched, in order; ``get()``
    returns them one at a time (used by ``iwait``)."""

    __slots__ = ("_values",)

    def __init__(self, hub=None):
        Waiter.__init__(self, hub)
        self._values = []

    def switch(self, value):
        self._values.append(value)
        Waiter.switch(self, True)

    def get(self):
        if not self._values:
            Waiter.get(self)
            Waiter.clear(self)
        return self._values.pop(0)
