"""stolon.os: the ``os`` module with cooperative fork, waitpid and fd I/O, as gevent.os.

- ``fork()`` forks and calls ``stolon.hub.reinit()`` in the child (a working hub there);
  in the parent it starts watching the child (``fork_and_watch``) so that ``waitpid``
  waits for it cooperatively and a ``stolon.signal`` SIGCHLD handler runs.
  ``fork_gevent()`` only forks and reinitialises; ``forkpty`` has the same variants.
- ``waitpid(pid, options)``: cooperative for watched children (``WNOHANG`` answers
  ``(0, 0)`` while one runs); other pids go to ``os.waitpid``.
- ``make_nonblocking``, ``nb_read``, ``nb_write``: I/O on non-blocking fds that parks the
  greenlet in the hub; ``tp_read``, ``tp_write``: blocking I/O in the hub's thread pool.

A plain ``os.fork()`` needs nothing from here either: stolon's loop notices the fork by
itself and rebuilds its kernel state in the child (gevent needs ``reinit()`` there).
Every other name is the ``os`` module's.
"""
import errno as _errno
import os as _os
import warnings as _warnings

from stolon import _child_watch
from stolon.hub import get_hub, reinit

_read = _os.read
_write = _os.write
_waitpid = _os.waitpid
_WNOHANG = _os.WNOHANG
_raw_fork = _os.fork
_raw_forkpty = getattr(_os, "forkpty", None)

#: errnos after which the non-blocking functions wait and try again
ignored_errors = [_errno.EAGAIN, _errno.EINTR]

__implements__ = ["fork", "waitpid"]
__extensions__ = ["fork_gevent", "fork_and_watch", "make_nonblocking", "nb_read", "nb_write",
                  "tp_read", "tp_write"]


def make_nonblocking(fd):
    """Put ``fd`` in non-blocking mode; True if it was blocking (else None)."""
    if _os.get_blocking(fd):
        _os.set_blocking(fd, False)
        return True


def _nb_io(operation, fd, arg, event):
    # operation(fd, arg) until the non-blocking fd takes it, parked on an io watcher
    # for `event` (1: readable, 2: writable) in between
    hub = watcher = None
    try:
        while True:
            try:
                return operation(fd, arg)
            except (BlockingIOError, InterruptedError):
                pass
            if watcher is None:
                hub = get_hub()
                watcher = hub.loop.io(fd, event)
            hub.wait(watcher)
    finally:
        if watcher is not None:
            watcher.close()


def nb_read(fd, n):
    """Read up to ``n`` bytes from the non-blocking ``fd``, parking the greenlet until
    there is something to read; ``b""`` at end of file."""
    return _nb_io(_read, fd, n, 1)


def nb_write(fd, buf):
    """Write some of ``buf`` to the non-blocking ``fd``, parking the greenlet until it
    can take some; returns the number of bytes written."""
    return _nb_io(_write, fd, buf, 2)


def tp_read(fd, n):
    """``os.read(fd, n)`` in the hub's thread pool."""
    return get_hub().threadpool.apply(_read, (fd, n))


def tp_write(fd, buf):
    """``os.write(fd, buf)`` in the hub's thread pool."""
    return get_hub().threadpool.apply(_write, (fd, buf))


# -- child processes -----------------------------------------------------------------------

def _quiet_fork(raw_fork):
    # 3.12+ warns about forking while threads run (the hub's thread pool may)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", DeprecationWarning)
        return raw_fork()


def fork_gevent():
    """``os.fork()``, then ``stolon.hub.reinit()`` in the child.  The parent does not
    watch the child: use ``fork()``/``fork_and_watch()`` to ``waitpid`` for it
    cooperatively."""
    pid = _quiet_fork(_raw_fork)
    if not pid:
        reinit()
    return pid


def fork_and_watch(callback=None, loop=None, ref=False, fork=fork_gevent):
    """Fork with ``fork`` and, in the parent, watch the child: ``waitpid`` then waits
    for it cooperatively and ``callback(watcher)`` runs in the hub when it exits (the
    watcher has ``pid``, ``rpid`` and ``rstatus``).  ``ref=False``: the watcher does
    not keep the loop running.  Returns what ``fork`` returned (0 in the child)."""
    pid = fork()
    if pid:
        _child_watch.watch(pid, callback, loop, ref)
    return pid


def fork(*args, **kwargs):
    """Fork a child that has a working hub, and watch it in the parent (the arguments
    are ``fork_and_watch``'s)."""
    return fork_and_watch(*args, **kwargs)


if _raw_forkpty is not None:
    def forkpty_gevent():
        """``os.forkpty()``, then ``reinit()`` in the child; returns ``(pid, master_fd)``
        (the master fd is left blocking)."""
        pid, master_fd = _quiet_fork(_raw_forkpty)
        if not pid:
            reinit()
        return pid, master_fd

    def forkpty_and_watch(callback=None, loop=None, ref=False, forkpty=forkpty_gevent):
        """``fork_and_watch`` with ``forkpty``: returns ``(pid, master_fd)``."""
        pid, master_fd = forkpty()
        if pid:
            _child_watch.watch(pid, callback, loop, ref)
        return pid, master_fd

    def forkpty(*args, **kwargs):
        """``forkpty_and_watch``: the child has a working hub, the parent watches it."""
        return forkpty_and_watch(*args, **kwargs)

    __implements__.append("forkpty")
    __extensions__ += ["forkpty_gevent", "forkpty_and_watch"]


if hasattr(_os, "posix_spawn"):
    # captured now: a patched os module has these very functions as its own
    _raw_posix_spawn = _os.posix_spawn
    _raw_posix_spawnp = _os.posix_spawnp

    def posix_spawn(*args, **kwargs):
        """``os.posix_spawn``, and the child is watched (see ``waitpid``)."""
        pid = _raw_posix_spawn(*args, **kwargs)
        _child_watch.watch(pid)
        return pid

    def posix_spawnp(*args, **kwargs):
        """``os.posix_spawnp``, and the child is watched (see ``waitpid``)."""
        pid = _raw_posix_spawnp(*args, **kwargs)
        _child_watch.watch(pid)
        return pid

    __implements__ += ["posix_spawn", "posix_spawnp"]


def waitpid(pid, options):
    """``os.waitpid`` that waits cooperatively for children forked by ``fork`` (or
    ``posix_spawn``, ``stolon.subprocess``) of this module.

    For a watched ``pid``: ``WNOHANG`` gives ``(0, 0)`` while it runs; otherwise the
    greenlet parks until it exits.  ``pid == -1`` returns the watched child that exited
    first, or with ``options == 0`` parks until a watched child exits (if there is
    any).  Anything else is ``os.waitpid`` (which blocks the thread).  A status is
    returned once: the first call that gets it takes it out of the table.  A
    ``stolon.subprocess.Popen`` reaps its own child, as the stdlib's does (gevent's
    ``waitpid`` can return the status of a ``Popen``'s child too)."""
    watched = _child_watch.watched
    if pid == -1:
        while True:
            child = _child_watch.oldest_exited()
            if child is not None:
                _child_watch.collect(child)
                return child.rpid, child.rstatus
            if options != 0 or not watched:
                return _waitpid(pid, options)
            _child_watch.wait_any_exit()
    child = watched.get(pid) if pid > 0 else None
    if child is None:
        return _waitpid(pid, options)
    if child.finished_at is None and options & _WNOHANG:
        return 0, 0
    result = child.wait_exit()
    _child_watch.collect(child)
    return result


__imports__ = [name for name in dir(_os)
               if not name.startswith("__") and name not in globals()]
globals().update((name, getattr(_os, name)) for name in __imports__)

__all__ = __implements__ + __extensions__
