"""The replacement of ``threading._shutdown``, which the interpreter calls in the main
thread at exit, for a patched ``threading``.

The original waits for the non-daemon threads through native machinery that knows
nothing of greenlets, and it is also what marks the main thread finished for those
who join it.  The replacement, run once by the main greenlet:

1. marks the main thread finished through its cooperative lock or handle and yields,
   so that greenlets joining the main thread run;
2. lets the non-daemon greenlet threads finish (before 3.13 the original does this
   itself, since its shutdown locks are cooperative; from 3.13 on it is done here,
   after the ``threading`` atexit callbacks that may be what stops them, e.g.
   ``concurrent.futures``' worker shutdown);
3. puts back the native lock or handle and runs the original, which then finds the
   main thread as the interpreter left it and waits for any native threads.

A greenlet that blocks forever ends the wait with LoopExit: exit goes on without it.
"""
import sys

from stolon.exceptions import LoopExit
from stolon.monkey._state import patch_item

__all__ = ["install_tstate_lock_shutdown", "install_handle_shutdown"]


def _yield_to_joiners(main_greenlet):
    from stolon.hub import get_hub, sleep
    try:
        sleep()
    except BaseException:   # the main greenlet has nowhere to pass a kill or a throw
        get_hub().print_exception(main_greenlet, *sys.exc_info())


def install_tstate_lock_shutdown(threading_mod, main_thread, orig_shutdown):
    """Python before 3.13: the main thread's tstate lock becomes a cooperative lock,
    held until exit."""
    from stolon._core import getcurrent
    main_greenlet = getcurrent()
    native_lock = main_thread._tstate_lock
    cooperative_lock = threading_mod._allocate_lock()
    cooperative_lock.acquire()
    main_thread._tstate_lock = cooperative_lock

    def _shutdown():
        patch_item(threading_mod, "_shutdown", orig_shutdown)
        if cooperative_lock.locked():
            cooperative_lock.release()
        _yield_to_joiners(main_greenlet)
        # a joiner that woke up stopped the main thread; the original expects it running
        main_thread._is_stopped = False
        main_thread._tstate_lock = native_lock
        try:
            orig_shutdown()
        except LoopExit:
            pass
    patch_item(threading_mod, "_shutdown", _shutdown)


def _handle_attribute(thread):
    # 3.13.0 calls it _handle; later releases may use _os_thread_handle
    return "_os_thread_handle" if hasattr(thread, "_os_thread_handle") else "_handle"


def _join_non_daemon_threads(threading_mod, main_thread):
    while True:
        # after a fork the child's main thread may be another object
        pending = [thread for thread in threading_mod.enumerate()
                   if not thread.daemon and thread is not main_thread
                   and thread is not threading_mod._main_thread and thread.is_alive()]
        if not pending:
            return
        for thread in pending:
            try:
                thread.join()
            except LoopExit:
                return


def install_handle_shutdown(threading_mod, main_thread, orig_shutdown):
    """Python 3.13 on: the main thread's handle becomes one that follows the main
    greenlet."""
    from stolon._core import getcurrent
    from stolon.thread import _make_thread_handle
    main_greenlet = getcurrent()
    attribute = _handle_attribute(main_thread)
    native_handle = getattr(main_thread, attribute)
    handle = _make_thread_handle()
    setattr(main_thread, attribute, handle)

    def _shutdown():
        patch_item(threading_mod, "_shutdown", orig_shutdown)
        handle._set_done(enter_hub=False)
        _yield_to_joiners(main_greenlet)
        threading_mod._SHUTTING_DOWN = True
        atexits = threading_mod._threading_atexits
        for call in reversed(atexits):
            call()
        del atexits[:]
        _join_non_daemon_threads(threading_mod, main_thread)
        setattr(main_thread, attribute, native_handle)
        orig_shutdown()
    patch_item(threading_mod, "_shutdown", _shutdown)
