"""stolon.lock: Semaphore, BoundedSemaphore, DummySemaphore, RLock (gevent.lock), and
Lock, the ``threading.Lock``-shaped lock (gevent keeps it as ``gevent.thread.LockType``).

Semaphores wake waiters in FIFO order and each wake-up hands over one unit.  They may be
shared between threads: a release from any thread wakes the owning hub's waiters, and
a greenlet of another thread (with or without a hub of its own) may acquire.
"""
import threading
from _thread import RLock as _NativeRLock
from _thread import allocate_lock as _allocate_native_lock
from _thread import get_ident
from time import monotonic

from stolon._abstract_linkable import AbstractLinkable
from stolon._core import getcurrent
from stolon.exceptions import InvalidThreadUseError, LoopExit
from stolon.hub import _get_hub, get_hub, sleep, spawn_raw
from stolon.timeout import Timeout

__all__ = ["Semaphore", "BoundedSemaphore", "DummySemaphore", "RLock"]

_UNSET = object()
_MULTI = object()


class _ReleaseNativeLock:
    """A link that releases a native lock: how a thread with no hub waits."""

    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def __call__(self, _):
        self.lock.release()


class Semaphore(AbstractLinkable):
    """``Semaphore(value=1, hub=None)``: a counter of available units; ``acquire()``
    takes one, blocking while there are none, and ``release()`` gives one back (any
    greenlet may release, and more often than it acquired).  A context manager."""

    __slots__ = ("counter", "_multithreaded")

    def __init__(self, value=1, hub=None):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        AbstractLinkable.__init__(self, hub)
        self.counter = value
        self._notify_all = False
        self._multithreaded = _UNSET
        # steps across threads must not interleave (the GIL alone does not make a
        # Python method atomic); dropped around every switch (see _abstract_linkable)
        self._lock = _NativeRLock()

    def __str__(self):
        return "<%s at 0x%x counter=%s _links[%s]>" % (type(self).__name__, id(self), self.counter,
                                                       len(self._links))

    def locked(self):
        """True if ``acquire()`` would block."""
        return self.counter <= 0

    def ready(self):
        """True if ``acquire()`` would not block."""
        return self.counter > 0

    def release(self):
        """Give back one unit and schedule the wake-up of the next waiter.  Returns the
        new counter."""
        with self._lock:
            self.counter += 1
            self._check_and_notify()
            return self.counter

    def _notify_links(self):
        with self._lock:
            AbstractLinkable._notify_links(self)

    def _wait_return_value(self, waited, wait_success):
        return wait_success if waited else True

    def wait(self, timeout=None):
        """Block until a unit is available or ``timeout`` passes, without taking it.
        Returns the counter (which may be 0 again if other waiters took the unit)."""
        with self._lock:
            if self.counter > 0:
                return self.counter
            self._wait(timeout)
            return self.counter

    def acquire(self, blocking=True, timeout=None):
        """Take one unit; returns True.  If none is available: False at once when
        ``blocking`` is false, else block, for at most ``timeout`` seconds (False when
        it expires)."""
        with self._lock:
            return self._acquire(blocking, timeout)

    def _acquire(self, blocking, timeout):
        ident = get_ident()
        if self._multithreaded is _UNSET:
            self._multithreaded = ident
        elif self._multithreaded != ident:
            self._multithreaded = _MULTI
        foreign = None
        try:
            # no hub is created here: a semaphore may be used before any hub exists
            self._capture_hub(False)
        except InvalidThreadUseError as ex:
            foreign = ex.args
            if not self.counter and blocking:
                return self._acquire_from_other_thread(foreign, timeout)
        if self.counter > 0:
            self.counter -= 1
            return True
        if not blocking:
            return False
        if self._multithreaded is not _MULTI and self.hub is None:
            self.hub = get_hub()
        if self.hub is None and foreign is None:
            # held by another thread that has no hub either
            return self._acquire_from_other_thread((None, None, getcurrent()), timeout)
        try:
            success = self._wait(timeout)
        except LoopExit as ex:
            if self.counter:
                success = True
            else:
                args = ex.args
                if len(args) == 3 and args[1].main_hub:
                    raise
                # the unit can only come from another thread: wait for it there
                return self._acquire_from_other_thread((self.hub, _get_hub(), getcurrent()), timeout)
        if not success:
            return False
        self.counter -= 1
        return True

    def __enter__(self):
        self.acquire()

    def __exit__(self, typ, value, tb):
        self.release()

    # -- acquiring a semaphore owned by another thread -----------------------------

    def _handle_unswitched_notifications(self, unswitched):
        # A waiter of another thread will be notified by that thread's own round;
        # switching it from here later could land after it already got the unit.
        self._links.extend(unswitched)

    def _add_link(self, link):
        if self._notifier is None:
            self.rawlink(link)
        else:
            if self._arrived is None:
                self._arrived = []
            self._arrived.append(link)

    def _acquire_from_other_thread(self, foreign, timeout):
        owning_hub, this_hub, current = foreign[:3]
        if owning_hub is None and this_hub is None:
            return self._acquire_without_hubs(timeout)
        if this_hub is None:
            return self._acquire_in_owning_hub(owning_hub, timeout)
        return self._acquire_with_two_hubs(this_hub, current, timeout)

    def _acquire_with_two_hubs(self, hub, current, timeout):
        # Our hub keeps running while we wait: the releaser's notification sends an
        # async watcher of our loop, whose callback switches back into us.
        watcher = hub.loop.async_()
        send = watcher.send_ignoring_arg
        watcher.start(current.switch, self)
        try:
            with Timeout._start_new_or_dummy(timeout) as timer:
                try:
                    while True:
                        if self.counter > 0:
                            self.counter -= 1
                            return True
                        self._add_link(send)
                        self._switch_to_hub(hub)
                        if self._acquire(False, None):
                            return True
                except Timeout as ex:
                    if ex is not timer:
                        raise
                    return False
        finally:
            self._quiet_unlink_all(send)
            watcher.stop()
            watcher.close()

    def _acquire_in_owning_hub(self, owning_hub, timeout):
        # This thread has no hub: let a greenlet of the owning hub acquire for us, and
        # wait for its answer on a native lock.
        done = _allocate_native_lock()
        done.acquire()
        results = []
        owning_hub.loop.run_callback_threadsafe(spawn_raw, self._acquire_for_other_thread,
                                                results, timeout, done)
        state = self._lock._release_save()
        try:
            done.acquire()
        finally:
            self._lock._acquire_restore(state)
        return results[0]

    def _acquire_for_other_thread(self, results, timeout, done):
        try:
            results.append(self.acquire(True, timeout))
        except BaseException:
            results.append(False)
            raise
        finally:
            done.release()

    def _acquire_without_hubs(self, timeout):
        wakeup = _allocate_native_lock()
        wakeup.acquire()
        deadline = None if timeout is None else monotonic() + timeout
        link = _ReleaseNativeLock(wakeup)
        while True:
            self._add_link(link)
            state = self._lock._release_save()
            try:
                if deadline is None:
                    woken = wakeup.acquire()
                else:
                    woken = wakeup.acquire(True, max(deadline - monotonic(), 0.0))
            finally:
                self._lock._acquire_restore(state)
            self._quiet_unlink_all(link)
            if woken and self._acquire(False, None):
                return True
            if deadline is not None and monotonic() >= deadline:
                return False


class BoundedSemaphore(Semaphore):
    """A Semaphore that raises ValueError when released more often than acquired."""

    __slots__ = ("_initial_value",)

    _OVER_RELEASE_ERROR = ValueError

    def __init__(self, *args, **kwargs):
        Semaphore.__init__(self, *args, **kwargs)
        self._initial_value = self.counter

    def release(self):
        """Like ``Semaphore.release()``; raises ValueError on over-release."""
        with self._lock:
            if self.counter >= self._initial_value:
                raise self._OVER_RELEASE_ERROR("Semaphore released too many times")
            counter = Semaphore.release(self)
            if counter == self._initial_value:
                # nobody holds it: free it to be owned by whichever thread waits next
                self.hub = None
            return counter

    def _at_fork_reinit(self):
        Semaphore._at_fork_reinit(self)
        self.counter = self._initial_value


class Lock(BoundedSemaphore):
    """``threading.Lock``'s API on a BoundedSemaphore(1) (gevent.thread.LockType):
    ``acquire(blocking=True, timeout=-1)``; releasing an unlocked Lock raises
    RuntimeError; a failed non-blocking acquire yields to other greenlets so that
    spin loops make progress."""

    __slots__ = ()

    _OVER_RELEASE_ERROR = RuntimeError
    _TIMEOUT_MAX = threading.TIMEOUT_MAX

    def __init__(self):
        BoundedSemaphore.__init__(self)

    def __init_subclass__(cls):
        raise TypeError

    def acquire(self, blocking=True, timeout=-1):
        if timeout == -1:
            timeout = None
        if not blocking and timeout is not None:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout is not None:
            if timeout < 0:
                raise ValueError("timeout value must be strictly positive")
            if timeout > self._TIMEOUT_MAX:
                raise OverflowError("timeout value is too large")
        try:
            acquired = BoundedSemaphore.acquire(self, blocking, timeout)
        except LoopExit:
            if blocking:
                raise
            acquired = False
        if not acquired and not blocking and getcurrent() is not _get_hub():
            sleep()
        return acquired

    def __enter__(self):
        return self.acquire()


class DummySemaphore:
    """The Semaphore API with an unlimited counter: nothing ever blocks.  For code
    parameterised on whether a resource is limited."""

    def __init__(self, value=None):
        """``value`` is accepted and ignored."""

    def __str__(self):
        return "<%s>" % type(self).__name__

    def locked(self):
        """Always False."""
        return False

    def ready(self):
        """Always True."""
        return True

    def release(self):
        """Does nothing."""

    def rawlink(self, callback):
        """Does nothing."""

    def unlink(self, callback):
        """Does nothing."""

    def wait(self, timeout=None):
        """Returns 1 at once."""
        return 1

    def acquire(self, blocking=True, timeout=None):
        """Returns True at once."""
        return True

    def __enter__(self):
        pass

    def __exit__(self, typ, val, tb):
        pass


class RLock:
    """A lock the owning greenlet may acquire again; each ``acquire()`` needs its
    ``release()``, and only the owner may release.  A context manager."""

    __slots__ = ("_block", "_owner", "_count", "__weakref__")

    def __init__(self, hub=None):
        self._block = Semaphore(1, hub)
        self._owner = None
        self._count = 0

    def __repr__(self):
        return "<%s at 0x%x _block=%s _count=%r _owner=%r)>" % (type(self).__name__, id(self), self._block,
                                                               self._count, self._owner)

    def acquire(self, blocking=True, timeout=None):
        """Acquire (again, if already the owner); returns whether it was acquired."""
        me = getcurrent()
        if self._owner is me:
            self._count += 1
            return 1
        acquired = self._block.acquire(blocking, timeout)
        if acquired:
            self._owner = me
            self._count = 1
        return acquired

    def __enter__(self):
        return self.acquire()

    def release(self):
        """Undo one ``acquire()``; the last one frees the lock.  RuntimeError if the
        current greenlet does not own it."""
        if self._owner is not getcurrent():
            raise RuntimeError("cannot release un-acquired lock. Owner: %r Current: %r"
                               % (self._owner, getcurrent()))
        self._count -= 1
        if not self._count:
            self._owner = None
            self._block.release()

    def __exit__(self, typ, value, tb):
        self.release()

    def locked(self):
        """True while some greenlet owns it."""
        return self._count > 0

    # for threading.Condition

    def _acquire_restore(self, count_owner):
        count, owner = count_owner
        self._block.acquire()
        self._count = count
        self._owner = owner

    def _release_save(self):
        count = self._count
        owner = self._owner
        self._count = 0
        self._owner = None
        self._block.release()
        return (count, owner)

    def _is_owned(self):
        return self._owner is getcurrent()
