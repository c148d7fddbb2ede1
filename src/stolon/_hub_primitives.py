"""stolon._hub_primitives: wait() and iwait(), waiting on several objects at once.

An object can be waited on if it has ``rawlink(callback)`` and ``unlink(callback)``
and calls ``callback(self)`` from the hub once it is ready (Greenlet, Event,
AsyncResult, Semaphore, ...).  iwait links one MultipleWaiter to every object, so the
objects come out in the order they became ready, whichever the iterating greenlet
was doing when they did; an optional timer ends the iteration early.  wait() gives
the same list as ``list(iwait(...))`` but wakes its greenlet only once, at the end
(joinall of many greenlets is a benchmark).  Every link and the timer are removed
once the wait ends, however it ends.
"""
import traceback

from stolon._waiter import MultipleWaiter, Waiter
from stolon.hub import get_hub

__all__ = ["iwait", "wait"]


class _WaitIterator:
    """The iterator iwait() returns; also a context manager that cleans up when the
    caller stops iterating before the end."""

    __slots__ = ("_hub", "_waiter", "_switch", "_timeout", "_objects", "_timer", "_begun",
                 "_count")

    def __init__(self, objects, hub, timeout, count):
        self._hub = hub
        self._waiter = MultipleWaiter(hub)
        self._switch = self._waiter.switch
        self._timeout = timeout
        self._objects = objects
        self._timer = None
        self._begun = False
        # every object is linked even when fewer are wanted: any of them may be first
        self._count = len(objects) if count is None else min(count, len(objects))

    def _begin(self):
        self._begun = True
        switch = self._switch
        for obj in self._objects:
            obj.rawlink(switch)
        if self._timeout is not None:
            # the timer's value is the iterator itself: "time is up"
            self._timer = self._hub.loop.timer(max(self._timeout, 0.0), priority=-1)
            self._timer.start(switch, self)

    def __iter__(self):
        return self

    def __next__(self):
        if not self._begun:
            self._begin()
        if self._count == 0:
            self._cleanup()
            raise StopIteration()
        self._count -= 1
        try:
            item = self._waiter.get()
            if item is self:
                self._cleanup()
                raise StopIteration()
            return item
        except:  # noqa: E722 -- whatever ends the wait (Timeout, kill) ends the iteration
            self._cleanup()
            raise

    def _cleanup(self):
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.close()
        objects = self._objects
        self._objects = ()
        switch = self._switch
        for obj in objects:
            unlink = getattr(obj, "unlink", None)
            if unlink is not None:
                try:
                    unlink(switch)
                except:  # noqa: E722 -- one bad object must not keep the others linked
                    traceback.print_exc()

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        self._cleanup()


def iwait(objects, timeout=None, count=None):
    """Yield the ``objects`` (a sequence with ``len()``) one by one as they become
    ready, until all of them (or ``count``) are, or ``timeout`` seconds pass.  Use it
    in a ``with`` block to release the links when stopping early.  ``objects=None``
    waits for the loop to have nothing left to do (``[hub.join(timeout)]``)."""
    hub = get_hub()
    if objects is None:
        return [hub.join(timeout=timeout)]
    return _WaitIterator(objects, hub, timeout, count)


class _Collector:
    """The link wait() puts on each object: it collects the objects in the order they
    become ready and wakes the waiting greenlet once, when ``count`` are in.  (iwait
    wakes its greenlet for every object; wait() has nothing to do until the end.)"""

    __slots__ = ("ready", "count", "waiter")

    def __init__(self, waiter, count):
        self.ready = []
        self.count = count
        self.waiter = waiter

    def __call__(self, obj):
        ready = self.ready
        ready.append(obj)
        if len(ready) == self.count:
            self.waiter.switch(None)


def wait(objects=None, timeout=None, count=None):
    """The list of ``objects`` that became ready, in the order they did, once all of
    them (or ``count``) are ready or ``timeout`` passed.  ``objects=None``: run the
    loop until it has nothing left to do (True) or ``timeout`` passed (False)."""
    hub = get_hub()
    if objects is None:
        return hub.join(timeout=timeout)
    count = len(objects) if count is None else min(count, len(objects))
    if count == 0:
        return []
    waiter = Waiter(hub)
    collector = _Collector(waiter, count)
    for obj in objects:
        obj.rawlink(collector)
    timer = None
    try:
        if timeout is not None:
            timer = hub.loop.timer(max(timeout, 0.0), priority=-1)
            timer.start(waiter.switch, None)
        waiter.get()
    finally:
        if timer is not None:
            timer.close()
        ready = collector.ready
        if len(ready) < len(objects):
            # those that never came may still hold the link
            for obj in objects:
                unlink = getattr(obj, "unlink", None)
                if unlink is not None:
                    try:
                        unlink(collector)
                    except:  # noqa: E722 -- one bad object must not keep the others linked
                        traceback.print_exc()
    del ready[count:]
    return ready
