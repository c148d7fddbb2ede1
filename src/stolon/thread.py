"""stolon.thread: the standard ``_thread`` module with greenlets for threads
(gevent.thread).  ``stolon.monkey.patch_thread()`` copies ``__implements__`` into
``_thread``; programs should spawn greenlets with ``stolon.spawn`` instead of using
this module directly.

A "thread" here is a ``stolon.Greenlet`` of the current OS thread: its identifier is
``id()`` of the greenlet, locks are ``stolon.lock.Lock`` (a failed wait switches to
other greenlets instead of blocking the OS thread) and ``_local`` is greenlet-local.
From Python 3.13 on, ``threading`` starts and joins threads through handles
(``start_joinable_thread``, ``_ThreadHandle``, ``_make_thread_handle``); the handle
here follows a greenlet instead of an OS thread.
"""
import sys
import _thread as __thread__
from weakref import ref

from stolon._core import GreenletExit, getcurrent
from stolon._greenlet import Greenlet
from stolon.event import Event
from stolon.hub import sleep
from stolon.local import local as _local
from stolon.lock import Lock

__target__ = "_thread"

_HANDLES = sys.version_info[:2] >= (3, 13)

__implements__ = ["allocate_lock", "get_ident", "exit", "LockType", "stack_size",
                  "start_new_thread", "_local"]
if _HANDLES:
    __implements__ += ["start_joinable_thread", "lock", "_ThreadHandle", "_make_thread_handle"]

# The native identifier of the OS thread stays meaningful to other processes and C
# libraries, so it is not replaced; neither are the names below.
__imports__ = [name for name in ("error", "TIMEOUT_MAX", "allocate", "exit_thread",
                                 "interrupt_main", "start_new", "get_native_id",
                                 "daemon_threads_allowed", "RLock", "set_name")
               if hasattr(__thread__, name)]
for _name in __imports__:
    globals()[_name] = getattr(__thread__, _name)
del _name

error = __thread__.error

#: ``_thread.LockType``: a cooperative ``threading.Lock`` (not subclassable).
LockType = Lock
allocate_lock = lock = Lock


def get_ident(gr=None):
    """The identifier of greenlet ``gr`` (the current one by default): its ``id()``."""
    if gr is None:
        try:
            gr = getcurrent()
        except RuntimeError:
            # very late in interpreter shutdown there may be no current greenlet
            gr = None
    return id(gr)


def _spawn(function, args=(), kwargs=None):
    if kwargs is None:
        return Greenlet.spawn(function, *args)
    return Greenlet.spawn(function, *args, **kwargs)


def start_new_thread(function, args=(), kwargs=None):
    """Run ``function(*args, **kwargs)`` in a new greenlet; returns its identifier."""
    return get_ident(_spawn(function, args, kwargs))


def start_joinable_thread(function, handle=None, daemon=True):
    """Run ``function()`` in a new greenlet and return the ``_ThreadHandle`` that
    follows it (``handle`` if given, which must be a fresh one).  ``daemon`` is
    accepted for the signature: ``stolon.monkey`` makes ``threading._shutdown`` wait
    for the non-daemon ``threading.Thread`` objects itself."""
    if handle is None:
        handle = _ThreadHandle()
    elif not isinstance(handle, _ThreadHandle):
        raise TypeError("handle must be a stolon.thread._ThreadHandle")
    elif handle._had_greenlet:
        raise RuntimeError("thread already started")
    handle._set_greenlet(_spawn(function))
    return handle


class _ThreadHandle:
    """``_thread._ThreadHandle`` for a greenlet: ``ident``, ``is_done()``,
    ``join(timeout)`` and ``_set_done()``.  It keeps only a weak reference to the
    greenlet, so that a finished thread's greenlet can be collected."""

    __slots__ = ("_greenlet_ref", "_had_greenlet", "_done", "__weakref__")

    def __init__(self, *_args, **_kwargs):
        # the stdlib's constructor also takes and ignores any arguments
        self._greenlet_ref = None
        self._had_greenlet = False
        self._done = None

    def _set_greenlet(self, glet):
        self._greenlet_ref = ref(glet)
        self._had_greenlet = True

    def _get_greenlet(self):
        glet_ref = self._greenlet_ref
        return None if glet_ref is None else glet_ref()

    @property
    def ident(self):
        """The identifier of the greenlet, or None once it is gone."""
        glet = self._get_greenlet()
        return None if glet is None else get_ident(glet)

    def is_done(self):
        """True once the greenlet finished or ``_set_done()`` was called."""
        glet = self._get_greenlet()
        return glet is None or glet.dead

    def join(self, timeout=-1):
        """Wait until the thread is done, at most ``timeout`` seconds (-1 or None:
        no limit)."""
        if not self._had_greenlet:
            raise RuntimeError("thread not started")
        glet = self._get_greenlet()
        if glet is None or glet.dead:
            return
        if glet is getcurrent():
            raise RuntimeError("Cannot join current thread")
        if timeout == -1:
            timeout = None
        join = getattr(glet, "join", None)
        if join is not None:
            join(timeout)
            return
        # a raw greenlet: a thread's main greenlet, done only when _set_done() says so
        done = self._done
        if done is None:
            done = self._done = Event()
        done.wait(timeout)

    def _set_done(self, enter_hub=True):
        """Mark the thread done (``threading._shutdown`` does this for the main
        thread), waking whoever joins it; with ``enter_hub``, let them run now."""
        if not self._had_greenlet:
            raise RuntimeError("thread not started")
        self._greenlet_ref = None
        if self._done is not None:
            self._done.set()
        if enter_hub:
            sleep()

    def __repr__(self):
        return "<%s.%s at 0x%x greenlet=%r>" % (type(self).__module__, type(self).__name__,
                                                id(self), self._get_greenlet())


def _make_thread_handle(*_args):
    """A handle following the current greenlet (3.13's ``threading`` makes one for
    the main and dummy threads, passing their identifier)."""
    handle = _ThreadHandle()
    handle._set_greenlet(getcurrent())
    return handle


def exit():
    """Leave the current "thread": raise GreenletExit."""
    raise GreenletExit


_native_stack_size = __thread__.stack_size


def stack_size(size=None):
    """The OS thread stack size; it can grow but never shrinks, since every greenlet
    of the thread runs on that stack."""
    if size is None:
        return _native_stack_size()
    if size > _native_stack_size():
        return _native_stack_size(size)
    if size == 0:
        return 0
    if size < 32768:
        raise ValueError(size)
    return _native_stack_size()


__all__ = [name for name in __implements__ if name != "_local"] + __imports__
