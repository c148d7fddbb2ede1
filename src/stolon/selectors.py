"""stolon.selectors: ``GeventSelector``, a ``selectors`` selector on the hub's loop
(gevent.selectors); ``DefaultSelector`` is the same class.

Every name of the standard ``selectors`` module is here too.  The selector relies on
the rule of ``selectors`` that a file is unregistered before it is closed, so it
keeps one io watcher per registered file from ``register()`` to ``unregister()``
(or ``close()``) instead of building watchers for each ``select()``.  A watcher is
started by ``select()`` and stays started until it fires: it records the events,
stops, and sets an event that ``select()`` waits on.  Readiness that arrives between
two ``select()`` calls is therefore kept for the next one, which returns it without
blocking (after yielding once to other greenlets).
"""
import selectors as __selectors__

from stolon.event import Event
from stolon.hub import get_hub, sleep
from stolon.loop import EVENTS, MAXPRI, READ, WRITE

__implements__ = ["DefaultSelector"]
__extra__ = ["GeventSelector"]
__all__ = __implements__ + __extra__

for _name in dir(__selectors__):
    if not _name.startswith("__") and _name not in __all__:
        globals()[_name] = getattr(__selectors__, _name)
del _name

EVENT_READ = __selectors__.EVENT_READ
EVENT_WRITE = __selectors__.EVENT_WRITE
SelectorKey = __selectors__.SelectorKey
_BaseSelectorImpl = __selectors__._BaseSelectorImpl
_ALL_EVENTS = EVENT_READ | EVENT_WRITE


def _loop_events(events):
    """The loop's mask for a ``selectors`` mask."""
    flags = 0
    if events & EVENT_READ:
        flags = READ
    if events & EVENT_WRITE:
        flags |= WRITE
    return flags


class GeventSelector(_BaseSelectorImpl):
    """A ``selectors.BaseSelector`` whose ``select()`` blocks only the current
    greenlet.  ``GeventSelector(hub=None)``: the hub (by default the hub of the
    thread that first registers a file) whose loop watches the files.

    As ``selectors`` requires, unregister a file (or close the selector) before
    closing the file.
    """

    def __init__(self, hub=None):
        _BaseSelectorImpl.__init__(self)
        self._hub = hub
        self._idle_watchers = {}     # {fd: io watcher}, stopped
        self._started_watchers = {}  # {fd: io watcher}, waiting for readiness
        self._ready_events = {}      # {fd: EVENT_READ|EVENT_WRITE} not yet returned
        self._ready = Event()

    @property
    def hub(self):
        """The hub whose loop this selector uses."""
        hub = self._hub
        if hub is None:
            hub = self._hub = get_hub()
        return hub

    def _check_open(self):
        if self._idle_watchers is None:
            raise ValueError("I/O operation on closed selector")

    def _on_ready(self, revents, fd):
        # revents has READ and WRITE for a descriptor the loop cannot watch (the
        # standard selectors, too, report an error as both); masked by the key later
        watcher = self._started_watchers.pop(fd)
        watcher.stop()
        self._idle_watchers[fd] = watcher
        events = 0
        if revents & READ:
            events = EVENT_READ
        if revents & WRITE:
            events |= EVENT_WRITE
        ready = self._ready_events
        ready[fd] = ready.get(fd, 0) | events
        self._ready.set()

    def register(self, fileobj, events, data=None):
        """Watch ``fileobj`` (an int or an object with ``fileno()``) for ``events``
        (``EVENT_READ``, ``EVENT_WRITE`` or both); returns its ``SelectorKey``.
        ValueError for bad events or a bad or closed descriptor, KeyError if it is
        registered already."""
        self._check_open()
        key = _BaseSelectorImpl.register(self, fileobj, events, data)
        try:
            watcher = self.hub.loop.io(key.fd, _loop_events(events), priority=MAXPRI)
        except OSError as ex:
            _BaseSelectorImpl.unregister(self, fileobj)
            raise ValueError("Invalid file descriptor") from ex
        except BaseException:
            _BaseSelectorImpl.unregister(self, fileobj)
            raise
        self._idle_watchers[key.fd] = watcher
        return key

    def unregister(self, fileobj):
        """Stop watching ``fileobj`` (it may be closed already); returns its key.
        KeyError if it is not registered."""
        key = _BaseSelectorImpl.unregister(self, fileobj)
        fd = key.fd
        watcher = self._started_watchers.pop(fd, None)
        if watcher is None:
            watcher = self._idle_watchers.pop(fd)
        watcher.close()
        self._ready_events.pop(fd, None)
        return key

    def modify(self, fileobj, events, data=None):
        """Change the events and/or data of a registered file; returns the new key.
        Readiness already recorded for events still watched is kept."""
        try:
            key = self._fd_to_key[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError("{!r} is not registered".format(fileobj)) from None
        if events != key.events:
            if (not events) or (events & ~_ALL_EVENTS):
                raise ValueError("Invalid events: {!r}".format(events))
            fd = key.fd
            watcher = self._started_watchers.get(fd)
            if watcher is None:
                watcher = self._idle_watchers[fd]
            watcher.events = _loop_events(events)
            key = key._replace(events=events, data=data)
            self._fd_to_key[fd] = key
        elif data != key.data:
            key = key._replace(data=data)
            self._fd_to_key[key.fd] = key
        return key

    def select(self, timeout=None):
        """Wait until a registered file is ready or ``timeout`` seconds pass (None:
        no limit; 0 or negative: one pass of the loop without blocking).  Returns a
        list of ``(key, events)``.  With nothing registered and no timeout it waits
        for ever, as the standard selectors do."""
        self._check_open()
        if timeout is not None and timeout < 0:
            timeout = 0
        started = self._started_watchers
        idle = self._idle_watchers
        if idle:
            on_ready = self._on_ready
            for fd, watcher in idle.items():
                watcher.start(on_ready, EVENTS, fd)
            started.update(idle)
            idle.clear()
        ready = self._ready
        if ready.is_set():
            # answering from what is recorded is still a scheduling point
            sleep()
        ready.wait(timeout)
        ready.clear()
        ready_events = self._ready_events
        if not ready_events:
            return []
        fd_to_key = self._fd_to_key
        result = []
        for fd, events in ready_events.items():
            key = fd_to_key.get(fd)
            if key is not None:
                events &= key.events
                if events:
                    result.append((key, events))
        ready_events.clear()
        return result

    def close(self):
        """Close every watcher and forget every file; idempotent."""
        for watchers in (self._started_watchers, self._idle_watchers):
            if watchers is not None:
                for watcher in watchers.values():
                    watcher.close()
        self._started_watchers = self._idle_watchers = None
        self._ready_events = {}
        self._hub = None
        _BaseSelectorImpl.close(self)


DefaultSelector = GeventSelector
