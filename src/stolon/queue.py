"""stolon.queue: queues that pass items between greenlets (gevent.queue's API).

``Queue`` (also ``JoinableQueue``), ``SimpleQueue``, ``PriorityQueue``, ``LifoQueue``,
``UnboundQueue`` and ``Channel``; the exceptions ``Empty`` and ``Full`` are the stdlib
``queue`` module's own, so ``except queue.Empty`` catches ours; ``ShutDown`` is the
stdlib's on Python 3.13+ and our own class before that.

How waiting works (the same algorithm as gevent, so programs see the same order):
items always go into the queue's container.  A greenlet that must wait appends a
Waiter to ``getters`` or ``putters`` (FIFO) and switches to the hub.  Whoever changes
the queue so that a waiter could proceed schedules one hub callback, ``_unlock``,
which moves the items of waiting putters in and resumes waiting getters in turn,
each only while there is an item for it.  A getter takes its item only once it runs,
so a getter that is killed or times out before then leaves the item in the queue.

Inside the hub nothing may wait: ``get`` there can only take what waiting putters
offer and otherwise raises ``Empty``; ``put`` to a full queue raises ``Full``.
"""
import collections
import queue as _stdlib_queue
import sys
import types
from heapq import heapify, heappop, heappush

from stolon._core import getcurrent
from stolon._waiter import Waiter
from stolon.exceptions import InvalidSwitchError
from stolon.hub import get_hub
from stolon.timeout import Timeout

Empty = _stdlib_queue.Empty
Full = _stdlib_queue.Full

__implements__ = ["Queue", "PriorityQueue", "LifoQueue", "SimpleQueue"]
__extensions__ = ["JoinableQueue", "Channel"]
__imports__ = ["Empty", "Full"]

if hasattr(_stdlib_queue, "ShutDown"):
    ShutDown = _stdlib_queue.ShutDown
    __imports__.append("ShutDown")
else:
    class ShutDown(Exception):
        """Raised by ``put`` and ``get`` on a queue that was shut down (the stdlib
        has this class from Python 3.13 on)."""
    __extensions__.append("ShutDown")

__all__ = __implements__ + __extensions__ + __imports__

_NEGATIVE_TIMEOUT = "'timeout' must be a non-negative number"

# How put, get and _unlock reach a queue's container (its ``_inlined`` slot): through
# the hooks, or, when its class keeps the deque hooks, by inlining them, since a
# method call per step is a large part of handing an item over.
# _DEQUE_COUNTING_TASKS inlines Queue._put, which also counts a task.  An instance
# with a __dict__ may override a hook on itself, so such classes use the hooks.  The
# choice is made once per class: a hook assigned to a class after it made its first
# queue is not seen (gevent's own classes refuse such assignments).
_THROUGH_HOOKS = 0
_DEQUE = 1
_DEQUE_COUNTING_TASKS = 2


def _inlining(cls):
    """How instances of ``cls`` reach their container: worked out on the first
    instance and kept in the class's own ``_inlined_hooks``."""
    inlined = cls.__dict__.get("_inlined_hooks")
    if inlined is None:
        if cls.__dictoffset__ or cls._qsize is not SimpleQueue._qsize \
                or cls._get is not SimpleQueue._get or cls._unlock is not SimpleQueue._unlock:
            inlined = _THROUGH_HOOKS
        elif cls._put is SimpleQueue._put:
            inlined = _DEQUE
        elif cls._put is Queue._put:
            inlined = _DEQUE_COUNTING_TASKS
        else:
            inlined = _THROUGH_HOOKS
        cls._inlined_hooks = inlined
    return inlined


def _discard(waiters, waiter):
    """Remove ``waiter`` unless ``_unlock`` (or a shutdown) already took it."""
    try:
        waiters.remove(waiter)
    except ValueError:
        pass


def _park(queue, waiters, entry, waiter, others, timeout, timeout_exc, what):
    """Queue ``entry`` on ``waiters``, have ``_unlock`` run if the other side
    (``others``) waits, and park in ``waiter`` until it is handed over or ``timeout``
    raises ``timeout_exc``; however the wait ends early, the entry leaves the queue."""
    waiters.append(entry)
    timer = None if timeout is None else Timeout._start_new_or_dummy(timeout, timeout_exc)
    try:
        if others:
            queue._schedule_unlock()
        result = waiter.get()
        if result is not waiter:
            raise InvalidSwitchError("Invalid switch into %s: %r" % (what, result))
    except BaseException:
        _discard(waiters, entry)
        raise
    finally:
        if timer is not None:
            timer.cancel()


def _iter_self(queue):
    """Queues are their own iterators."""
    return queue


def _next_until_stop(queue):
    """The next item; the StopIteration class put in the queue ends the iteration."""
    item = queue.get()
    if item is StopIteration:
        raise item
    return item


class ItemWaiter(Waiter):
    """A waiting putter: the Waiter plus the item and queue it waits to put into."""

    __slots__ = ("item", "queue")

    def __init__(self, item, queue):
        Waiter.__init__(self, queue.hub)
        self.item = item
        self.queue = queue

    def put_and_switch(self):
        self.queue._put(self.item)
        self.queue = None
        self.item = None
        return self.switch(self)


class SimpleQueue:
    """``SimpleQueue(maxsize=None, items=())``: a FIFO queue of at most ``maxsize``
    items (``None`` or <= 0: no bound; ``0`` warns, since it once meant a channel).

    ``len(q)`` is ``qsize()``, yet a queue is always true.  Blocked getters and
    putters are served in the order they blocked.  Subclasses may override the
    stdlib's hooks ``_init``, ``_qsize``, ``_put`` and ``_get`` (and ``_peek``).
    """

    __slots__ = ("_maxsize", "getters", "putters", "hub", "_event_unlock", "queue",
                 "__weakref__", "is_shutdown", "_inlined", "_run_callback")

    __class_getitem__ = classmethod(types.GenericAlias)

    def __init__(self, maxsize=None, items=(), _warn_depth=2):
        if maxsize is not None and maxsize <= 0:
            if maxsize == 0:
                import warnings
                warnings.warn("Queue(0) now equivalent to Queue(None); if you want a channel, "
                              "use Channel", DeprecationWarning, stacklevel=_warn_depth)
            maxsize = None
        self._maxsize = -1 if maxsize is None else maxsize
        self.getters = collections.deque()
        self.putters = collections.deque()
        self.hub = get_hub()
        # looked up once: reading hub.loop costs as much as the rest of a put
        self._run_callback = self.hub.loop.run_callback
        self._event_unlock = None
        self.is_shutdown = False
        self.queue = None
        self._inlined = _inlining(type(self))
        # stdlib subclasses define _init(self, maxsize): pass items only when given
        if items:
            self._init(maxsize, items)
        else:
            self._init(maxsize)

    # -- the stdlib's container hooks ---------------------------------------------------

    def _init(self, maxsize, items=()):
        self.queue = self._create_queue(items)

    def _create_queue(self, items=()):
        return collections.deque(items)

    def _qsize(self):
        return len(self.queue)

    def _put(self, item):
        self.queue.append(item)

    def _get(self):
        return self.queue.popleft()

    def _peek(self):
        return self.queue[0]

    # -- size ----------------------------------------------------------------------------

    @property
    def maxsize(self):
        """The bound, or ``None`` for an unbounded queue."""
        return self._maxsize if self._maxsize > 0 else None

    @maxsize.setter
    def maxsize(self, value):
        self._maxsize = -1 if value is None or value <= 0 else value

    def qsize(self):
        """The number of items in the queue."""
        return self._qsize()

    def __len__(self):
        return self._qsize()

    def __bool__(self):
        return True

    def empty(self):
        """True if the queue holds no item."""
        return not self._qsize()

    def full(self):
        """True if the queue holds ``maxsize`` items (never for an unbounded queue)."""
        return self._maxsize > 0 and self._qsize() >= self._maxsize

    def copy(self):
        """A new queue of the same class, bound and items (no waiters)."""
        return type(self)(self.maxsize, self.queue)

    # -- putting -------------------------------------------------------------------------

    def put(self, item, block=True, timeout=None):
        """Put ``item`` in, waiting for a free slot if the queue is full: forever
        (``timeout=None``) or up to ``timeout`` seconds, then ``Full``.  With
        ``block`` false, raise ``Full`` at once instead of waiting."""
        if self.is_shutdown:
            raise ShutDown
        inlined = self._inlined
        if inlined:
            queue = self.queue
            if self._maxsize == -1 or len(queue) < self._maxsize:
                if timeout is not None and block and timeout < 0:
                    raise ValueError(_NEGATIVE_TIMEOUT)
                queue.append(item)
                if inlined == _DEQUE_COUNTING_TASKS:
                    self.unfinished_tasks += 1
                if self.getters and self._event_unlock is None:
                    self._event_unlock = self._run_callback(_UNLOCK_INLINED, self)
                return
        elif self._maxsize == -1 or self._qsize() < self._maxsize:
            if timeout is not None and block and timeout < 0:
                raise ValueError(_NEGATIVE_TIMEOUT)
            self._put(item)
            if self.getters and self._event_unlock is None:
                self._event_unlock = self._run_callback(self._unlock)
            return
        if self.hub is getcurrent():
            self._put_in_hub(item)
        elif block:
            self._wait_to_put(item, timeout)
        else:
            raise Full

    def put_nowait(self, item):
        """``put(item, block=False)``."""
        self.put(item, False)

    def _put_in_hub(self, item):
        # the hub cannot wait, but it can let waiting getters make room
        getters = self.getters
        while getters and self._qsize() and self._qsize() >= self._maxsize:
            getter = getters.popleft()
            getter.switch(getter)
        if self._qsize() < self._maxsize:
            self._put(item)
            return
        raise Full

    def _wait_to_put(self, item, timeout):
        waiter = ItemWaiter(item, self)
        _park(self, self.putters, waiter, waiter, self.getters, timeout, Full, "Queue.put")

    # -- getting -------------------------------------------------------------------------

    def get(self, block=True, timeout=None):
        """Remove and return an item, waiting for one if the queue is empty: forever
        (``timeout=None``) or up to ``timeout`` seconds, then ``Empty``.  With
        ``block`` false, raise ``Empty`` at once instead of waiting."""
        if not self._inlined:
            if not self._qsize():
                self._wait_for_item(block, timeout)
            elif self.putters and self._event_unlock is None:
                self._event_unlock = self._run_callback(self._unlock)
            return self._get()
        if self.queue:
            if self.putters and self._event_unlock is None:
                self._event_unlock = self._run_callback(_UNLOCK_INLINED, self)
        elif timeout is not None or not block or self.is_shutdown or self.hub is getcurrent():
            self._wait_for_item(block, timeout)
        else:
            # _wait_for_item's plain case (block forever, in a greenlet), inlined
            # because a consumer takes it for every item it is handed
            waiter = Waiter(self.hub)
            getters = self.getters
            getters.append(waiter)
            try:
                if self.putters and self._event_unlock is None:
                    self._event_unlock = self._run_callback(_UNLOCK_INLINED, self)
                result = waiter.get()
                if result is not waiter:
                    raise InvalidSwitchError("Invalid switch into Queue.get: %r" % (result,))
            except BaseException:
                _discard(getters, waiter)
                raise
        return self.queue.popleft()

    def get_nowait(self):
        """``get(block=False)``."""
        return self.get(False)

    def peek(self, block=True, timeout=None):
        """Return the next item without removing it; waits as ``get`` does."""
        if not self._qsize():
            self._wait_for_item(block, timeout)
        return self._peek()

    def peek_nowait(self):
        """``peek(block=False)``."""
        return self.peek(False)

    def _wait_for_item(self, block, timeout):
        # the slow path of get() and peek(): the queue is empty
        if self.is_shutdown:
            raise ShutDown
        if timeout is not None and block and timeout < 0:
            raise ValueError(_NEGATIVE_TIMEOUT)
        if self.hub is getcurrent():
            self._make_item_in_hub()
            return
        if not block:
            raise Empty
        waiter = Waiter(self.hub)
        _park(self, self.getters, waiter, waiter, self.putters, timeout, Empty, "Queue.get")

    def _make_item_in_hub(self):
        # the hub cannot wait, but waiting putters can hand it their items
        putters = self.putters
        while putters:
            putters.popleft().put_and_switch()
            if self._qsize():
                return
        raise Empty

    # -- waking waiters ------------------------------------------------------------------

    def _schedule_unlock(self):
        if self._event_unlock is None:
            self._event_unlock = self._run_callback(self._unlock)

    def _unlock(self):
        # A hub callback: each round admits one waiting putter and wakes one waiting
        # getter, while they can proceed.  It counts as scheduled until it returns,
        # so this loop sees whatever the greenlets it resumes do to the queue.
        putters = self.putters
        getters = self.getters
        try:
            while True:
                if putters and (self._maxsize == -1 or self._qsize() < self._maxsize):
                    putter = putters.popleft()
                    try:
                        self._put(putter.item)
                    except BaseException:
                        putter.throw(*sys.exc_info())
                    else:
                        putter.switch(putter)
                    if getters and self._qsize():
                        getter = getters.popleft()
                        getter.switch(getter)
                elif getters and self._qsize():
                    getter = getters.popleft()
                    getter.switch(getter)
                else:
                    return
        finally:
            self._event_unlock = None

    def _unlock_inlined(self):
        # _unlock as put and get schedule it when they inline the hooks: while no
        # putter waits (the usual case) a tight loop wakes getters, then _unlock
        # takes over
        putters = self.putters
        getters = self.getters
        try:
            while not putters:
                if not (getters and self.queue):
                    return
                getter = getters.popleft()
                getter.switch(getter)
            self._unlock()
        finally:
            self._event_unlock = None

    # -- iteration and display -----------------------------------------------------------

    __iter__ = _iter_self
    __next__ = _next_until_stop

    def __repr__(self):
        return "<%s at %s%s>" % (type(self).__name__, hex(id(self)), self._format())

    def __str__(self):
        return "<%s%s>" % (type(self).__name__, self._format())

    def _format(self):
        parts = []
        if self.maxsize is not None:
            parts.append("maxsize=%r" % (self.maxsize,))
        if getattr(self, "queue", None):
            parts.append("queue=%r" % (self.queue,))
        if self.getters:
            parts.append("getters[%s]" % len(self.getters))
        if self.putters:
            parts.append("putters[%s]" % len(self.putters))
        return " " + " ".join(parts) if parts else ""


# scheduled with the queue as its argument: a bound method would be one more object
# per hand-off, and keeping one on the queue would make a reference cycle
_UNLOCK_INLINED = SimpleQueue._unlock_inlined


class Queue(SimpleQueue):
    """``Queue(maxsize=None, items=(), unfinished_tasks=None)``: a ``SimpleQueue``
    that counts unfinished tasks (``task_done``, ``join``) and can be shut down.

    Every put adds a task; ``unfinished_tasks`` defaults to ``len(items)``.
    """

    __slots__ = ("unfinished_tasks", "_joiners", "_join_notifier")

    def __init__(self, maxsize=None, items=(), unfinished_tasks=None):
        SimpleQueue.__init__(self, maxsize, items, _warn_depth=3)
        if unfinished_tasks:
            self.unfinished_tasks = unfinished_tasks
        else:
            self.unfinished_tasks = len(items) if items else 0
        self._joiners = []
        self._join_notifier = None

    def copy(self):
        return type(self)(self.maxsize, self.queue, self.unfinished_tasks)

    def _format(self):
        text = SimpleQueue._format(self)
        if self.unfinished_tasks:
            text += " tasks=%s" % (self.unfinished_tasks,)
        return text

    def _put(self, item):
        self.queue.append(item)
        self.unfinished_tasks += 1

    def _did_put_task(self):
        """Count one more unfinished task (for subclasses that override ``_put``)."""
        self.unfinished_tasks += 1

    def task_done(self):
        """Mark one task taken with ``get`` as finished; ``join`` returns once every
        task put in is finished.  ``ValueError`` if called more often than ``put``."""
        if self.unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self.unfinished_tasks -= 1
        if self.unfinished_tasks == 0 and self._joiners and self._join_notifier is None:
            self._join_notifier = self._run_callback(self._notify_joiners)

    def join(self, timeout=None):
        """Wait until every task is finished: True, or False if ``timeout`` seconds
        pass first."""
        if self.unfinished_tasks == 0 and self._join_notifier is None:
            return True
        waiter = Waiter(self.hub)
        self._joiners.append(waiter)
        timer = Timeout._start_new_or_dummy(timeout)
        try:
            waiter.get()
            return True
        except Timeout as ex:
            if ex is not timer:
                raise
            return False
        finally:
            timer.cancel()
            if waiter in self._joiners:
                self._joiners.remove(waiter)

    def _notify_joiners(self):
        # a hub callback: everyone who joined before it ran is released, even if
        # new tasks arrived in between (as an Event notifies all its waiters)
        self._join_notifier = None
        joiners = self._joiners
        self._joiners = []
        for waiter in joiners:
            waiter.switch(None)

    def shutdown(self, immediate=False):
        """Make ``put`` raise ``ShutDown`` from now on, and ``get`` once the queue is
        empty; waiting getters and putters get ``ShutDown`` now.  ``immediate``
        discards the items left (finishing their tasks) so ``get`` raises at once."""
        self.is_shutdown = True
        if immediate:
            while self._qsize():
                self.get()
                self.task_done()
        waiters = list(self.getters)
        if self.putters:
            waiters.extend(self.putters)
            self.putters.clear()
        self.getters.clear()
        run_callback = self._run_callback
        for waiter in waiters:
            run_callback(waiter.throw, ShutDown)


JoinableQueue = Queue


class UnboundQueue(Queue):
    """A ``Queue`` that never has a bound: ``put`` never waits (and, as in gevent,
    ignores shutdown)."""

    __slots__ = ()

    def __init__(self, maxsize=None, items=(), unfinished_tasks=None):
        if maxsize is not None:
            raise ValueError("UnboundQueue has no maxsize")
        Queue.__init__(self, maxsize, items, unfinished_tasks)
        self.putters = None

    def put(self, item, block=True, timeout=None):
        self._put(item)
        if self.getters and self._event_unlock is None:
            self._event_unlock = self._run_callback(self._unlock)


class PriorityQueue(Queue):
    """A ``Queue`` that hands out its lowest item first (items are typically
    ``(priority, data)`` tuples); initial ``items`` are heapified."""

    __slots__ = ()

    def _create_queue(self, items=()):
        heap = list(items)
        heapify(heap)
        return heap

    def _put(self, item):
        heappush(self.queue, item)
        self.unfinished_tasks += 1

    def _get(self):
        return heappop(self.queue)


class LifoQueue(Queue):
    """A ``Queue`` that hands out the most recently added item first."""

    __slots__ = ()

    def _create_queue(self, items=()):
        return list(items)

    def _get(self):
        return self.queue.pop()

    def _peek(self):
        return self.queue[-1]


class Channel:
    """A queue with no room: ``put`` waits until a getter takes the item and ``get``
    until a putter offers one.  ``maxsize`` must be 1 (accepted for code that passes
    it)."""

    __slots__ = ("getters", "putters", "hub", "_event_unlock", "__weakref__")

    __class_getitem__ = classmethod(types.GenericAlias)

    def __init__(self, maxsize=1):
        if maxsize != 1:
            raise ValueError("Channels have a maxsize of 1")
        self.getters = collections.deque()
        self.putters = collections.deque()
        self.hub = get_hub()
        self._event_unlock = None

    def __repr__(self):
        return "<%s at %s %s>" % (type(self).__name__, hex(id(self)), self._format())

    def __str__(self):
        return "<%s %s>" % (type(self).__name__, self._format())

    def _format(self):
        text = ""
        if self.getters:
            text += " getters[%s]" % len(self.getters)
        if self.putters:
            text += " putters[%s]" % len(self.putters)
        return text

    @property
    def balance(self):
        """Waiting putters minus waiting getters."""
        return len(self.putters) - len(self.getters)

    def qsize(self):
        return 0

    def empty(self):
        return True

    def full(self):
        return True

    def put(self, item, block=True, timeout=None):
        """Offer ``item`` and wait until a getter takes it (``Full`` after
        ``timeout`` seconds; ``block=False`` waits one loop turn)."""
        if self.hub is getcurrent():
            if self.getters:
                getter = self.getters.popleft()
                getter.switch(item)
                return
            raise Full
        if not block:
            timeout = 0
        waiter = Waiter(self.hub)
        _park(self, self.putters, (item, waiter), waiter, self.getters, timeout, Full, "Channel.put")

    def put_nowait(self, item):
        self.put(item, False)

    def get(self, block=True, timeout=None):
        """Take an item from a putter, waiting for one (``Empty`` after ``timeout``
        seconds; ``block=False`` waits one loop turn)."""
        if self.hub is getcurrent() and self.putters:
            item, putter = self.putters.popleft()
            self.hub.loop.run_callback(putter.switch, putter)
            return item
        if not block:
            timeout = 0
        waiter = Waiter(self.hub)
        timer = Timeout._start_new_or_dummy(timeout, Empty)
        try:
            self.getters.append(waiter)
            if self.putters:
                self._schedule_unlock()
            return waiter.get()
        except BaseException:
            _discard(self.getters, waiter)
            raise
        finally:
            timer.close()

    def get_nowait(self):
        return self.get(False)

    def _schedule_unlock(self):
        if self._event_unlock is None:
            self._event_unlock = self.hub.loop.run_callback(self._unlock)

    def _unlock(self):
        try:
            while self.putters and self.getters:
                getter = self.getters.popleft()
                item, putter = self.putters.popleft()
                getter.switch(item)
                putter.switch(putter)
        finally:
            self._event_unlock = None

    __iter__ = _iter_self
    __next__ = _next_until_stop
