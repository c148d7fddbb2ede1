"""stolon.select: cooperative ``select()`` and ``poll()`` (gevent.select).

Every name of the standard ``select`` module is here too; ``select`` and ``poll``
are replaced by versions that block only the calling greenlet.  Both wait the same
way: one io watcher per file descriptor on the hub's loop, at the highest priority;
a watcher that fires records its file and stops; the first one schedules a single
wake-up of the waiting greenlet from a loop callback, so every file found ready in
the same loop iteration is in the result.  However the wait ends (readiness,
timeout, an exception thrown into the greenlet), every watcher, the timer and the
pending wake-up are stopped and closed before returning.

As in gevent, ``select()`` watches only for reading and writing (``xlist`` is
checked by the first, non-blocking pass only) and ``poll()`` reports ``POLLIN``,
``POLLOUT`` and ``POLLNVAL`` (errors and hang-ups come back as readable and/or
writable, per the registered mask).
"""
import select as __select__
from errno import EBADF
from select import POLLIN, POLLNVAL, POLLOUT

from stolon._waiter import Waiter
from stolon.hub import get_hub, sleep
from stolon.loop import ERROR, EVENTS, MAXPRI, READ, WRITE

__implements__ = ["select", "poll"]
__all__ = ["error"] + __implements__

#: ``select.error``, which is ``OSError``.
error = __select__.error

for _name in dir(__select__):
    if not _name.startswith("__") and _name not in __all__:
        globals()[_name] = getattr(__select__, _name)
del _name

_original_select = __select__.select
# The loop feeds this bit (with READ and WRITE) to the watchers of an fd it cannot
# watch.
_EV_ERROR = ERROR
_NONE = object()


def get_fileno(fileobj):
    """The file descriptor of ``fileobj`` (an int or an object with ``fileno()``);
    ValueError if there is none or it is negative (the messages of ``selectors``)."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError("Invalid file object: {!r}".format(fileobj)) from None
    if fd < 0:
        raise ValueError("Invalid file descriptor: {}".format(fd))
    return fd


class _ReadyWait:
    """One blocking wait on io watchers: collects what became ready and wakes the
    waiting greenlet once, from a loop callback queued by the first readiness."""

    __slots__ = ("loop", "waiter", "wakeup", "watchers", "timer")

    def __init__(self, hub):
        self.loop = hub.loop
        self.waiter = Waiter(hub)
        self.wakeup = None
        self.watchers = []
        self.timer = None

    def ready(self):
        if self.wakeup is None:
            self.wakeup = self.loop.run_callback(self.waiter.switch, None)

    def wait(self, timeout):
        """Park until something is ready or ``timeout`` seconds (None: no limit) pass."""
        if timeout is not None:
            # below the watchers' priority: readiness found in the iteration in which
            # the time runs out is still reported; counted from now, not from the
            # loop's cached time
            self.timer = timer = self.loop.timer(timeout)
            timer.start(self.waiter.switch, None, update=True)
        self.waiter.get()

    def close(self):
        for watcher in self.watchers:
            watcher.close()
        self.watchers = []
        if self.timer is not None:
            self.timer.close()
            self.timer = None
        if self.wakeup is not None:
            self.wakeup.stop()


class _SelectWait(_ReadyWait):
    """The wait of one ``select()``: the ready objects, as passed in."""

    __slots__ = ("read", "write")

    def __init__(self, hub):
        _ReadyWait.__init__(self, hub)
        self.read = []
        self.write = []

    def add_read(self, fileobj, watcher):
        watcher.stop()
        self.read.append(fileobj)
        if self.wakeup is None:
            self.ready()

    def add_write(self, fileobj, watcher):
        watcher.stop()
        self.write.append(fileobj)
        if self.wakeup is None:
            self.ready()

    def watch(self, fileobjs, events, callback):
        io = self.loop.io
        append = self.watchers.append
        for fileobj in fileobjs:
            watcher = io(get_fileno(fileobj), events, priority=MAXPRI)
            append(watcher)
            watcher.start(callback, fileobj, watcher)


def select(rlist, wlist, xlist, timeout=None):
    """``select.select`` that blocks only the current greenlet: three lists of the
    objects (ints or objects with ``fileno()``) ready for reading, writing and
    exceptional conditions.  ``timeout`` is in seconds (None: no limit; 0: poll).

    A non-blocking system ``select`` runs first: it raises the standard library's
    errors for bad arguments and closed descriptors, and its answer is returned
    (after yielding once to other greenlets) if something is ready or ``timeout`` is 0.
    Otherwise the greenlet waits on the loop, for ``rlist`` and ``wlist`` only.
    """
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be non-negative")
    # any iterable is accepted, and both passes need them
    if not isinstance(rlist, (list, tuple)):
        rlist = list(rlist)
    if not isinstance(wlist, (list, tuple)):
        wlist = list(wlist)
    result = _original_select(rlist, wlist, xlist, 0)
    if result[0] or result[1] or result[2] or (timeout is not None and timeout == 0):
        # still a scheduling point, as a blocking call would be
        sleep()
        return result
    wait = _SelectWait(get_hub())
    try:
        wait.watch(rlist, READ, wait.add_read)
        wait.watch(wlist, WRITE, wait.add_write)
        wait.wait(timeout)
        return wait.read, wait.write, []
    finally:
        wait.close()


class _PollWait(_ReadyWait):
    """The wait of one ``poll.poll()``: ``{fd: poll flags}`` in the order found."""

    __slots__ = ("events",)

    def __init__(self, hub):
        _ReadyWait.__init__(self, hub)
        self.events = {}

    def add_event(self, revents, fd, watcher):
        watcher.stop()
        if revents & _EV_ERROR:
            flags = POLLNVAL
        else:
            flags = 0
            if revents & READ:
                flags = POLLIN
            if revents & WRITE:
                flags |= POLLOUT
        self.events[fd] = self.events.get(fd, 0) | flags
        if self.wakeup is None:
            self.ready()


class poll:
    """``select.poll`` that blocks only the current greenlet.

    ``register(fd, eventmask)`` with ``POLLIN`` and/or ``POLLOUT`` (``POLLPRI`` is not
    watched); ``poll(timeout)`` in milliseconds returns ``[(fd, flags), ...]`` with
    ``POLLIN``, ``POLLOUT`` or, for a descriptor that is not open, ``POLLNVAL``.
    The object keeps only numbers between calls, so it may be dropped without
    ``unregister()``.
    """

    def __init__(self):
        self.fds = {}   # {fd: READ|WRITE}

    def register(self, fd, eventmask=_NONE):
        """Watch ``fd`` (an int or an object with ``fileno()``) for ``eventmask``
        (default: ``POLLIN | POLLOUT``); registering again replaces the mask."""
        if eventmask is _NONE:
            flags = READ | WRITE
        else:
            flags = 0
            if eventmask & POLLIN:
                flags = READ
            if eventmask & POLLOUT:
                flags |= WRITE
        self.fds[get_fileno(fd)] = flags

    def modify(self, fd, eventmask):
        """Change the mask of ``fd`` (as ``register``)."""
        self.register(fd, eventmask)

    def unregister(self, fd):
        """Stop watching ``fd``; KeyError if it is not registered."""
        del self.fds[get_fileno(fd)]

    def poll(self, timeout=None):
        """Wait for the registered descriptors; ``timeout`` in milliseconds (None or
        negative: no limit; 0: one pass of the loop without blocking).  Returns a
        list of ``(fd, flags)``, empty on timeout."""
        if timeout is not None:
            if timeout < 0:
                timeout = None
            elif timeout:
                timeout /= 1000.0
        wait = _PollWait(get_hub())
        try:
            io = wait.loop.io
            watchers = wait.watchers
            callback = wait.add_event
            for fd, flags in self.fds.items():
                try:
                    watcher = io(fd, flags, priority=MAXPRI)
                except OSError as ex:
                    if ex.errno != EBADF:
                        raise
                    wait.events[fd] = POLLNVAL
                    continue
                watchers.append(watcher)
                watcher.start(callback, EVENTS, fd, watcher)
            if wait.events:
                # a closed descriptor is an answer already: collect the others'
                # readiness in one pass of the loop, without blocking
                timeout = 0
            wait.wait(timeout)
            return list(wait.events.items())
        finally:
            wait.close()

