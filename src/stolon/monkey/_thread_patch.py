"""Patching ``_thread`` and ``threading`` (``patch_thread``).

Copying ``stolon.thread`` and ``stolon.threading`` over the standard modules makes
new threads greenlets.  What already exists needs more care:

* the main thread: its ``Thread`` object is re-keyed in ``threading._active`` under
  the main greenlet's identifier, so that ``current_thread()`` still finds it, and
  what tells joiners that it finished becomes cooperative (before 3.13 its "tstate
  lock", from 3.13 on its thread handle).  The interpreter calls
  ``threading._shutdown()`` at exit; the replacement first wakes the greenlets that
  join the main thread, waits for the non-daemon greenlet threads, puts the native
  lock or handle back and then runs the original;
* locks held at patching time (RLocks, import locks) were taken under the native
  thread identifier, which the owner checks no longer return: their owner becomes
  the current greenlet; ``logging``'s locks are replaced;
* other OS threads already running get a ``join()`` that polls instead of blocking
  the thread that runs every greenlet;
* after ``os.fork()``, the child's ``threading`` needs help (``_fork_hooks``).
"""
import importlib
import sys

from stolon.monkey._fork_hooks import install_fork_hooks
from stolon.monkey._module import patch_stdlib_module, will_patch_stdlib_modules
from stolon.monkey._state import is_object_patched, patch_item, queue_warning

__all__ = ["patch_thread_modules"]

# stolon modules that bind native ``_thread`` functions when imported: they must be
# imported while those are still native.
_NATIVE_THREAD_USERS = ("stolon.hub", "stolon._abstract_linkable", "stolon.lock",
                        "stolon.event", "stolon.queue", "stolon.local", "stolon.threadpool",
                        "stolon.resolver.thread", "stolon.util")


def patch_thread_modules(threading=True, _threading_local=True, Event=True, logging=True,
                         existing_locks=True, _warnings=None):
    """The body of ``stolon.monkey.patch_thread`` (see there); False if a subscriber
    vetoed patching ``_thread`` or ``threading`` (then neither is touched: one
    without the other leaves the interpreter unable to exit)."""
    for name in _NATIVE_THREAD_USERS:
        importlib.import_module(name)
    items = will_patch_stdlib_modules(("thread", "threading") if threading else ("thread",),
                                      _warnings)
    if items is None:
        return False
    threading_mod = importlib.import_module("threading")
    main_thread = threading_mod.main_thread()
    on_main_thread = threading_mod.current_thread() is main_thread
    orig_shutdown = threading_mod._shutdown
    already_patched = is_object_patched("threading", "_shutdown")

    patch_stdlib_module("thread", items["thread"], _warnings=_warnings, _will_done=True)
    if threading:
        if on_main_thread and not already_patched:
            _rekey_main_thread(threading_mod, main_thread)
        patch_stdlib_module("threading", items["threading"], _warnings=_warnings,
                            _will_done=True)
        if Event:
            from stolon.event import Event as CooperativeEvent
            patch_item(threading_mod, "Event", CooperativeEvent)
        if existing_locks:
            _adopt_existing_locks(threading_mod)
        if logging and "logging" in sys.modules:
            _replace_logging_locks(threading_mod)
    if _threading_local:
        from stolon.local import local
        patch_item(importlib.import_module("_threading_local"), "local", local)
    if threading and not already_patched:
        _make_native_joins_poll(threading_mod, main_thread)
        if on_main_thread:
            _patch_shutdown(threading_mod, main_thread, orig_shutdown)
            install_fork_hooks(threading_mod)
        else:
            queue_warning("Monkey-patching not on the main thread; "
                          "threading.main_thread().join() will hang from a greenlet",
                          _warnings)
            _patch_shutdown_elsewhere(threading_mod, main_thread, orig_shutdown)
    return True


def _rekey_main_thread(threading_mod, main_thread):
    from stolon.thread import get_ident
    active = threading_mod._active
    old_ident = main_thread.ident
    new_ident = get_ident()
    main_thread._ident = new_ident
    if active.get(old_ident) is main_thread:
        del active[old_ident]
    active[new_ident] = main_thread


def _adopt_existing_locks(threading_mod):
    # Only safe while no other thread runs: a lock another thread holds must stay its.
    if len(threading_mod.enumerate()) != 1:
        return
    try:
        import concurrent.futures.thread as futures_thread
    except ImportError:
        futures_thread = None
    if getattr(futures_thread, "_global_shutdown_lock", None) is not None:
        # os.register_at_fork acquires it before a fork, which a worker greenlet may do
        # while another greenlet holds it: give the fork handlers a lock nobody holds.
        # Its users read the module global again each time.
        futures_thread._global_shutdown_lock = threading_mod._allocate_lock()
    threading_mod._active_limbo_lock = (threading_mod.RLock()
                                        if _is_reentrant(threading_mod._active_limbo_lock)
                                        else threading_mod._allocate_lock())
    ident = threading_mod.get_ident()
    python_rlock = type(threading_mod.RLock())
    module_lock = getattr(importlib.import_module("importlib._bootstrap"), "_ModuleLock", None)
    import gc
    for obj in gc.get_objects():
        if isinstance(obj, python_rlock):
            if obj._owner is not None:
                obj._owner = ident
        elif module_lock is not None and isinstance(obj, module_lock):
            if obj.owner is not None:
                obj.owner = ident


def _is_reentrant(lock):
    # both RLock types have _is_owned; the plain lock has not
    return hasattr(lock, "_is_owned")


def _replace_logging_locks(threading_mod):
    logging = sys.modules["logging"]
    patch_item(logging, "_lock", threading_mod.RLock())
    for handler_ref in logging._handlerList:
        handler = handler_ref()
        if handler is not None and getattr(handler, "lock", None) is not None:
            handler.lock = threading_mod.RLock()


def _make_native_joins_poll(threading_mod, main_thread):
    from stolon.hub import sleep
    for thread in list(threading_mod._active.values()):
        if thread is not main_thread:
            thread.join = _polling_join(thread, threading_mod, sleep)


def _polling_join(thread, threading_mod, sleep):
    from time import monotonic

    def join(timeout=None):
        """Wait for this OS thread, letting the greenlets run meanwhile."""
        if threading_mod.current_thread() is thread:
            raise RuntimeError("cannot join current thread")
        deadline = None if timeout is None else monotonic() + timeout
        while thread.is_alive():
            if deadline is not None and monotonic() >= deadline:
                return
            sleep(0.01)
    return join


def _patch_shutdown(threading_mod, main_thread, orig_shutdown):
    if sys.version_info[:2] >= (3, 13):
        from stolon.monkey._shutdown import install_handle_shutdown as install
    else:
        from stolon.monkey._shutdown import install_tstate_lock_shutdown as install
    install(threading_mod, main_thread, orig_shutdown)


def _patch_shutdown_elsewhere(threading_mod, main_thread, orig_shutdown):
    # Patched from another OS thread, the main thread keeps its native identifier; at
    # exit the original _shutdown recognises the main thread only by the (patched)
    # get_ident, so give it that identifier first.
    get_ident = threading_mod.get_ident

    def _shutdown():
        patch_item(threading_mod, "_shutdown", orig_shutdown)
        main_thread._ident = get_ident()
        orig_shutdown()
    patch_item(threading_mod, "_shutdown", _shutdown)
