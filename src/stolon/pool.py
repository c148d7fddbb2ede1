"""stolon.pool: groups of greenlets, and pools that bound their number (gevent.pool's API).

A ``Group`` tracks greenlets until they finish (each member is rawlinked to the group,
which forgets it when it dies), can wait for all of them (``join``) or kill them all
(``kill``).  A ``Pool`` is a group with a semaphore of ``size`` slots: a member holds
one slot from ``add`` until it finishes, so ``spawn`` blocks while the pool is full and
never more than ``size`` members run at once.

Both offer the ``apply``/``map``/``imap`` family of ``multiprocessing.Pool``.  ``imap``
and ``imap_unordered`` return iterators that are themselves greenlets: one spawns the
tasks (through the group's ``spawn``, so a pool's bound applies) while the caller
consumes the results, in input order or in completion order.
"""
from functools import partial

from stolon._core import GreenletExit, getcurrent
from stolon._greenlet import Greenlet, joinall
from stolon.event import Event
from stolon.hub import kill as _kill
from stolon.lock import DummySemaphore, Semaphore
from stolon.queue import Full as _QueueFull
from stolon.queue import UnboundQueue
from stolon.timeout import Timeout

__all__ = ["Group", "Pool", "PoolFull"]


class GroupMappingMixin:
    """The ``apply``/``map``/``imap`` family, written in terms of a few hooks that a
    class using it provides: ``spawn(func, *args, **kwargs)`` (returns an object with
    ``get`` and ``rawlink``), ``_apply_immediately()`` (should ``apply`` just call the
    function here?), ``_apply_async_use_greenlet()`` (would ``spawn`` block now?) and
    ``_apply_async_cb_spawn(callback, result)``."""

    __slots__ = ()

    def apply_cb(self, func, args=None, kwds=None, callback=None):
        """``apply(func, args, kwds)``, then, unless it raised, run ``callback`` on the
        result (for groups and pools, in a new greenlet that is not tracked)."""
        result = self.apply(func, args, kwds)
        if callback is not None:
            self._apply_async_cb_spawn(callback, result)
        return result

    def apply_async(self, func, args=None, kwds=None, callback=None):
        """Start ``func(*args, **kwds)`` and return the greenlet running it, without
        ever blocking: when the group is full, an untracked greenlet waits for room.
        ``callback(result)`` runs once it succeeds."""
        if args is None:
            args = ()
        if kwds is None:
            kwds = {}
        if self._apply_async_use_greenlet():
            return Greenlet.spawn(self.apply_cb, func, args, kwds, callback)
        glet = self.spawn(func, *args, **kwds)
        if callback is not None:
            glet.link(_PassValue(callback))
        return glet

    def apply(self, func, args=None, kwds=None):
        """Run ``func(*args, **kwds)`` in the group and return its result (or raise its
        exception).  From a greenlet of this group, ``func`` runs right here: waiting
        for room in a full pool from inside it could deadlock."""
        if args is None:
            args = ()
        if kwds is None:
            kwds = {}
        if self._apply_immediately():
            return func(*args, **kwds)
        return self.spawn(func, *args, **kwds).get()

    def _map_in_order(self, func, iterable):
        return [glet.get() for glet in [self.spawn(func, item) for item in iterable]]

    def map(self, func, iterable):
        """``[func(item) for item in iterable]``, computed in the group's greenlets."""
        return Greenlet.spawn(self._map_in_order, func, iterable).get()

    def map_cb(self, func, iterable, callback=None):
        result = self.map(func, iterable)
        if callback is not None:
            callback(result)
        return result

    def map_async(self, func, iterable, callback=None):
        """Like ``map``, in a new greenlet which is returned; ``callback(result)``
        runs when it is done."""
        return Greenlet.spawn(self.map_cb, func, iterable, callback)

    def _imap(self, cls, func, iterables, kwargs):
        maxsize = kwargs.pop("maxsize", None)
        if kwargs:
            raise TypeError("Unsupported keyword arguments")
        return cls.spawn(func, zip(*iterables), spawn=self.spawn, maxsize=maxsize,
                         _zipped=True)

    def imap(self, func, *iterables, **kwargs):
        """imap(func, *iterables, maxsize=None) -> iterator

        ``map(func, *iterables)`` computed in parallel in this group's greenlets,
        yielding results in input order.  ``maxsize``: at most that many finished
        results wait for the reader; beyond that, the tasks pause."""
        return self._imap(IMap, func, iterables, kwargs)

    def imap_unordered(self, func, *iterables, **kwargs):
        """imap_unordered(func, *iterables, maxsize=None) -> iterator

        As ``imap``, but results come in the order the tasks finish."""
        return self._imap(IMapUnordered, func, iterables, kwargs)


class Group(GroupMappingMixin):
    """The greenlets that were added and have not finished yet, with no limit on
    their number.  ``Group(greenlets)`` starts with those.  ``len``, ``in`` and
    iteration look at the members; an empty group is false.  ``greenlet_class`` is
    what ``spawn`` creates."""

    greenlet_class = Greenlet

    def __init__(self, *args):
        if len(args) > 1:
            raise TypeError("Group() takes at most one iterable of greenlets")
        self.greenlets = set()
        # the members already being killed, so that kill() kills each only once
        self.dying = set()
        self._empty_event = Event()
        self._empty_event.set()
        for glet in (args[0] if args else ()):
            Group.add(self, glet)

    def __repr__(self):
        return "<%s at 0x%x %s>" % (type(self).__name__, id(self), self.greenlets)

    def __len__(self):
        return len(self.greenlets)

    def __contains__(self, item):
        return item in self.greenlets

    def __iter__(self):
        return iter(self.greenlets)

    def add(self, greenlet):
        """Track ``greenlet`` until it finishes (best added before it starts)."""
        rawlink = getattr(greenlet, "rawlink", None)
        if rawlink is not None:     # a plain greenlet (the main one, say) cannot link
            rawlink(self._discard)
        self.greenlets.add(greenlet)
        self._empty_event.clear()

    def _discard(self, greenlet):
        self.greenlets.discard(greenlet)
        self.dying.discard(greenlet)
        if not self.greenlets:
            self._empty_event.set()

    def discard(self, greenlet):
        """Stop tracking ``greenlet``."""
        self._discard(greenlet)
        unlink = getattr(greenlet, "unlink", None)
        if unlink is not None:
            unlink(self._discard)

    def start(self, greenlet):
        """Add the unstarted ``greenlet``, then start it."""
        self.add(greenlet)
        greenlet.start()

    def spawn(self, *args, **kwargs):
        """Create a ``greenlet_class(*args, **kwargs)``, add and start it; return it."""
        greenlet = self.greenlet_class(*args, **kwargs)
        self.start(greenlet)
        return greenlet

    def join(self, timeout=None, raise_error=False):
        """Wait until the group has been empty at least once; True if it was, False
        if ``timeout`` passed first.  ``raise_error``: then raise the exception of a
        member (one present when the call began) that failed."""
        greenlets = list(self.greenlets) if raise_error else ()
        result = self._empty_event.wait(timeout=timeout)
        for greenlet in greenlets:
            if getattr(greenlet, "exception", None) is not None:
                reraise = getattr(greenlet, "_raise_exception", None)
                if reraise is not None:
                    reraise()
                raise greenlet.exception
        return result

    def kill(self, exception=GreenletExit, block=True, timeout=None):
        """Kill every member; with ``block``, wait (at most ``timeout`` seconds) until
        the group is empty, killing again any member added meanwhile."""
        timer = Timeout._start_new_or_dummy(timeout)
        try:
            while self.greenlets:
                for greenlet in list(self.greenlets):
                    if greenlet in self.dying:
                        continue
                    kill = getattr(greenlet, "kill", None)
                    if kill is None:
                        _kill(greenlet, exception)
                    else:
                        kill(exception, block=False)
                    self.dying.add(greenlet)
                if not block:
                    break
                joinall(list(self.greenlets))
        except Timeout as ex:
            if ex is not timer:
                raise
        finally:
            timer.cancel()

    def killone(self, greenlet, exception=GreenletExit, block=True, timeout=None):
        """Kill ``greenlet`` if it is a member not being killed already; with
        ``block``, wait for it (at most ``timeout`` seconds)."""
        if greenlet not in self.dying and greenlet in self.greenlets:
            greenlet.kill(exception, block=False)
            self.dying.add(greenlet)
            if block:
                greenlet.join(timeout)

    def full(self):
        """Whether ``add`` would block: never, for a group."""
        return False

    def wait_available(self, timeout=None):
        """Wait until a member can be added: at once, for a group."""

    def _apply_immediately(self):
        return getcurrent() in self

    def _apply_async_cb_spawn(self, callback, result):
        Greenlet.spawn(callback, result)

    def _apply_async_use_greenlet(self):
        return self.full()


class PoolFull(_QueueFull):
    """Raised by ``Pool.add`` when no slot came free (at once, or in time)."""


class Pool(Group):
    """A group of at most ``size`` running greenlets (``None``: no limit; ``0``: no
    greenlet can ever be added).  ``greenlet_class`` replaces the class that ``spawn``
    creates."""

    def __init__(self, size=None, greenlet_class=None):
        if size is not None and size < 0:
            raise ValueError("size must not be negative: %r" % (size,))
        Group.__init__(self)
        self.size = size
        if greenlet_class is not None:
            self.greenlet_class = greenlet_class
        self._semaphore = DummySemaphore(size) if size is None else Semaphore(size)

    def wait_available(self, timeout=None):
        """Wait (at most ``timeout`` seconds) until a slot is free; return how many
        are free."""
        return self._semaphore.wait(timeout=timeout)

    def full(self):
        """True if ``add`` would block now."""
        return self.free_count() <= 0

    def free_count(self):
        """About how many greenlets could be added without blocking (1 if unbounded)."""
        if self.size is None:
            return 1
        return max(0, self.size - len(self))

    def start(self, greenlet, *args, **kwargs):
        """start(greenlet, blocking=True, timeout=None): ``add``, then start it."""
        self.add(greenlet, *args, **kwargs)
        greenlet.start()

    def add(self, greenlet, blocking=True, timeout=None):
        """Track ``greenlet`` (best unstarted), taking a slot; if none is free, wait
        for one (``blocking``, at most ``timeout`` seconds) or raise ``PoolFull``."""
        if not self._semaphore.acquire(blocking=blocking, timeout=timeout):
            raise PoolFull()
        try:
            Group.add(self, greenlet)
        except:  # noqa: E722 -- whatever went wrong, the slot was not used
            self._semaphore.release()
            raise

    def _discard(self, greenlet):
        # a slot is held by each member: give it back only for a member (discarding
        # twice, or something never added, must not raise the bound)
        if greenlet in self.greenlets:
            Group._discard(self, greenlet)
            self._semaphore.release()


class _PassValue:
    """A link that calls ``callback(value)`` when the greenlet succeeded.  Equal to
    its callback, so ``unlink(callback)`` finds it."""

    __slots__ = ("callback",)

    def __init__(self, callback):
        self.callback = callback

    def __call__(self, source):
        if source.successful():
            self.callback(source.value)

    def __hash__(self):
        return hash(self.callback)

    def __eq__(self, other):
        return self.callback == getattr(other, "callback", other)

    def __repr__(self):
        return repr(self.callback)


class _Failure:
    """A result that is an exception: the task's (or the iterator's own), or the
    StopIteration that ends the results."""

    __slots__ = ("exc", "reraise")

    def __init__(self, exc, reraise=None):
        self.exc = exc
        self.reraise = reraise

    def throw(self):
        if self.reraise is not None:
            self.reraise()
        raise self.exc


# the end of the results; a fresh StopIteration is raised each time
_END = _Failure(None)


class IMapUnordered(Greenlet):
    """An iterator over ``func`` applied to the items of ``iterable``, in the order the
    tasks finish.  It is a greenlet that creates the tasks with ``spawn`` (a group's
    ``spawn``, whose bound then applies).  ``maxsize``: at most that many finished
    results wait for the reader before the tasks pause.  ``_zipped``: the items are
    argument tuples."""

    def __init__(self, func, iterable, spawn, maxsize=None, _zipped=False):
        Greenlet.__init__(self)
        self._func = func
        self._iterable = iterable
        self._spawn_task = spawn
        self._zipped = _zipped
        self._results = UnboundQueue()
        # a bounded queue would still let finished tasks hold their results and
        # let new tasks start: a slot must be taken before a task is spawned
        self._result_slots = Semaphore(maxsize) if maxsize else None
        self._outstanding = 0
        self._spawned = 0
        self._spawning_done = False
        self._exhausted = False
        self.finished = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._exhausted:
            raise StopIteration
        if self._result_slots is not None:
            self._result_slots.release()
        value = self._next_result()
        if type(value) is _Failure:
            if value is _END:
                self._exhausted = True
                raise StopIteration
            value.throw()
        return value

    def _next_result(self):
        return self._results.get()

    def _run(self):
        try:
            func = self._func
            spawn = self._spawn_task
            zipped = self._zipped
            slots = self._result_slots
            for item in self._iterable:
                if slots is not None:
                    slots.acquire()
                index = self._spawned
                self._outstanding += 1
                self._spawned += 1
                task = spawn(func, *item) if zipped else spawn(func, item)
                task.rawlink(self._result_link(index))
        except BaseException as ex:
            self._spawning_done = True
            if not self.finished:
                self.finished = True
                self._results.put(self._wrap(self._spawned, _Failure(ex)))
            raise
        finally:
            self._func = self._iterable = self._spawn_task = None
        self._spawning_done = True
        if self._outstanding <= 0 and not self.finished:
            self.finished = True
            self._results.put(self._wrap(self._spawned, _END))

    def _result_link(self, index):
        return self._on_result

    def _wrap(self, index, value):
        return value

    def _on_result(self, task, index=None):
        # runs in the hub (a rawlink)
        self._outstanding -= 1
        if task.successful():
            value = task.value
        else:
            value = _Failure(task.exception, getattr(task, "_raise_exception", None))
        self._results.put(self._wrap(index, value))
        if self._spawning_done and self._outstanding <= 0 and not self.finished:
            self.finished = True
            self._results.put(self._wrap(self._spawned, _END))


class IMap(IMapUnordered):
    """As ``IMapUnordered``, but results come in the order of the input."""

    def __init__(self, *args, **kwargs):
        self._early = {}    # index -> result that finished before its turn
        self._index = 0
        IMapUnordered.__init__(self, *args, **kwargs)

    def _result_link(self, index):
        return partial(self._on_indexed_result, index)

    def _on_indexed_result(self, index, task):
        self._on_result(task, index)

    def _wrap(self, index, value):
        return (index, value)

    def _next_result(self):
        wanted = self._index
        try:
            value = self._early.pop(wanted)
        except KeyError:
            while True:
                index, value = self._results.get()
                if index == wanted:
                    break
                self._early[index] = value
        self._index = wanted + 1
        return value
