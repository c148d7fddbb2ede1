"""What a patched ``threading`` needs after ``os.fork()`` in the child.

The stdlib's own after-fork hook (``threading._after_fork``) keeps only the forking
thread and treats every other ``Thread`` as dead.  With greenlets for threads, two
things differ from OS threads, and the hook registered here (it runs after the
stdlib's, which was registered when ``threading`` was imported) deals with them:

* the other thread greenlets were copied into the child and may still run there.
  Their ``Thread`` objects are dead for ``threading``: from 3.13 on their handle
  (which follows the greenlet, not an OS thread) is marked done so that ``join()``
  returns at once, as it does before 3.13; and when such a greenlet ends, the
  ``_delete`` of its ``Thread`` must not remove what ``threading._active`` now holds
  under its identifier (it raised KeyError there);
* the forking greenlet becomes the child's main thread as a real ``_MainThread``, as
  in gevent, also when it was a ``Thread`` or a dummy thread (whose class 3.11.8+,
  3.12.2+ and 3.13 change to ``_MainThread`` in place: harmless here, since stolon's
  dummy threads are fully initialised ``Thread`` objects).
"""
import os
import sys

__all__ = ["install_fork_hooks"]

_HANDLES = sys.version_info[:2] >= (3, 13)


def _nothing():
    """The ``_delete`` of a thread that the fork left behind."""


class _ForkHooks:
    """``os.register_at_fork`` callbacks for one patched ``threading`` module."""

    def __init__(self, threading_mod):
        self.threading_mod = threading_mod
        self.threads_at_fork = None

    def before(self):
        self.threads_at_fork = list(self.threading_mod._active.values())

    def after_in_parent(self):
        self.threads_at_fork = None

    def after_in_child(self):
        threading_mod = self.threading_mod
        threads, self.threads_at_fork = self.threads_at_fork, None
        ident = threading_mod.get_ident()
        current = threading_mod._active.get(ident)
        for thread in threads or ():
            if thread is not current:
                _leave_behind(thread)
        if not isinstance(current, threading_mod._MainThread):
            if current is not None:
                # its greenlet still runs (and can be joined), but when it ends it
                # must leave the new main thread in threading._active
                current._delete = _nothing
            _install_main_thread(threading_mod, ident)


def _leave_behind(thread):
    thread._delete = _nothing
    if _HANDLES:
        from stolon.thread import _ThreadHandle
        for name in ("_os_thread_handle", "_handle"):
            handle = thread.__dict__.get(name)
            if isinstance(handle, _ThreadHandle) and not handle.is_done():
                handle._set_done(enter_hub=False)


def _install_main_thread(threading_mod, ident):
    active = threading_mod._active
    main = threading_mod._MainThread()
    # from 3.13 on, _MainThread registers itself under the native identifier
    if active.get(main._ident) is main and main._ident != ident:
        del active[main._ident]
    main._ident = ident
    active[ident] = main
    threading_mod._main_thread = main


def install_fork_hooks(threading_mod):
    """Register the hooks (once per process, when ``threading`` is patched)."""
    register_at_fork = getattr(os, "register_at_fork", None)
    if register_at_fork is None:
        return
    hooks = _ForkHooks(threading_mod)
    register_at_fork(before=hooks.before, after_in_parent=hooks.after_in_parent,
                     after_in_child=hooks.after_in_child)
