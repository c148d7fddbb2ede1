"""stolon.threading: what ``stolon.monkey.patch_thread()`` puts into the standard
``threading`` module so that its threads are greenlets (gevent.threading).

``threading`` keeps its own classes (Condition, Semaphore, Barrier, Timer, ...); they
become cooperative because the primitives they are built from are replaced:
``_allocate_lock``/``Lock`` (stolon's cooperative Lock), ``get_ident`` (the current
greenlet's identifier), ``local`` (greenlet-local), ``_DummyThread`` (below), and how
a thread starts: ``_start_new_thread`` before Python 3.13, ``_start_joinable_thread``
with ``_ThreadHandle``/``_make_thread_handle`` from 3.13 on.  ``_CRLock`` becomes
None so that ``threading.RLock()`` builds its Python RLock on the patched lock.

Before 3.13 a ``Thread`` learns that it finished through its "tstate lock", which
the interpreter releases when the OS thread's state is deleted; a greenlet has no
thread state, so ``Thread`` here releases that lock when its greenlet ends.
"""
import sys
import threading as __threading__
from weakref import ref

from stolon._core import getcurrent
from stolon.hub import sleep as _sleep
from stolon.local import local
from stolon.lock import RLock
from stolon.thread import _make_thread_handle, _ThreadHandle
from stolon.thread import allocate_lock as _allocate_lock
from stolon.thread import get_ident
from stolon.thread import start_joinable_thread as _start_joinable_thread
from stolon.thread import start_new_thread as _start_new_thread

__target__ = "threading"

_HANDLES = sys.version_info[:2] >= (3, 13)

__implements__ = ["local", "_allocate_lock", "Lock", "get_ident", "_DummyThread", "_CRLock"]
if _HANDLES:
    __implements__ += ["_start_joinable_thread", "_ThreadHandle", "_make_thread_handle"]
else:
    __implements__ += ["_start_new_thread", "_set_sentinel", "Thread", "Timer"]

# Importable from here but not copied into ``threading``: the stdlib keeps using its
# own RLock class (on the patched lock), and ``_sleep`` is what ``threading`` would
# use to poll.
__extensions__ = ["RLock", "_sleep", "main_native_thread"]

Lock = _allocate_lock
_CRLock = None
_sleep = _sleep

_NativeDummyThread = __threading__._DummyThread
_NativeThread = __threading__.Thread
_HANDLE_NAME = next((name for name in ("_os_thread_handle", "_handle")
                     if hasattr(__threading__.main_thread(), name)), None)


def main_native_thread():
    """The ``threading`` object of the interpreter's main OS thread."""
    return __threading__.main_thread()


def _forget(ident, thread):
    # after a fork another object (the child's main thread) may hold the identifier
    active = __threading__._active
    if active.get(ident) is thread:
        del active[ident]


class _ForgetWhenCollected:
    """A weak-reference callback that drops a dummy thread from ``threading._active``
    (for raw greenlets, which have no ``rawlink``)."""

    __slots__ = ("ident", "thread_ref")

    def __init__(self, ident, thread):
        self.ident = ident
        self.thread_ref = ref(thread)

    def __call__(self, _ref):
        thread = self.thread_ref()
        if thread is not None:
            _forget(self.ident, thread)


class _DummyThread(_NativeDummyThread):
    """The ``threading.current_thread()`` of a greenlet that no ``Thread`` started.
    It leaves ``threading._active`` when its greenlet finishes, so that a later greenlet
    that happens to get the same ``id()`` does not inherit it."""

    def __init__(self):   # pylint:disable=super-init-not-called
        # the native _DummyThread.__init__ would tie the object's lifetime to the OS
        # thread instead of the greenlet
        _NativeThread.__init__(self, name=__threading__._newname("Dummy-%d"), daemon=True)
        self._started.set()
        self._set_ident()
        if _HANDLE_NAME is not None:
            setattr(self, _HANDLE_NAME, _make_thread_handle(self._ident))
        if getattr(__threading__, "_HAVE_THREAD_NATIVE_ID", False):
            self._set_native_id()
        glet = getcurrent()
        ident = self._ident
        __threading__._active[ident] = self
        rawlink = getattr(glet, "rawlink", None)
        if rawlink is not None:
            rawlink(lambda _glet: _forget(ident, self))
        else:
            self._glet_ref = ref(glet, _ForgetWhenCollected(ident, self))


if not _HANDLES:
    _set_sentinel = _allocate_lock

    class Thread(_NativeThread):
        """``threading.Thread`` whose end is signalled when its greenlet finishes."""

        def _set_tstate_lock(self):
            _NativeThread._set_tstate_lock(self)
            getcurrent().rawlink(self._greenlet_finished)

        def _greenlet_finished(self, _glet):
            lock = self._tstate_lock
            if lock is not None and lock.locked():
                lock.release()
                self._stop()

    class Timer(Thread, __threading__.Timer):
        """``threading.Timer`` on the greenlet ``Thread``."""

__all__ = __implements__ + [name for name in __extensions__ if not name.startswith("_")]
