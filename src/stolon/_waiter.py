"""stolon._waiter: Waiter, the one way a greenlet parks in the hub and is woken.

A waiter is a one-shot slot (``stolon._core.Waiter``, in C because every wait and
wake-up passes through it).  ``get()`` parks the current greenlet in the hub unless a
value or an exception arrived first; ``switch(value)`` / ``throw(*exc)`` (called from
the hub, usually as a watcher's callback) resume it or, if nobody waits yet, store the
outcome for the next ``get()``.  Only the hub may switch into a waiting greenlet, which
is what makes a wake-up from anywhere else detectable.
"""
from stolon._core import Waiter

__all__ = ["Waiter", "MultipleWaiter"]


class MultipleWaiter(Waiter):
    """A waiter that collects every value it is switched, in order; ``get()`` returns
    them one at a time (``iwait`` uses it)."""

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
        # forget the stored wake-up with every value taken, buffered or not, so the
        # next get() parks once the values run out
        Waiter.clear(self)
        return self._values.pop(0)
