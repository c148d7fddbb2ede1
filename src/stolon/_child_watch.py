"""Watching child processes so they are reaped cooperatively, and only by us.

``watch(pid, callback, loop, ref)`` records the pid in a process-wide table and starts a
child watcher on ``loop``: the loop calls ``waitpid`` on watched pids only, so children
that other code waits for are never stolen.  When the child terminates,
``callback(watcher)`` runs in the hub, then the SIGCHLD hook of ``stolon.signal``.  The
table keeps the child's ``(pid, status)`` until ``stolon.os.waitpid`` collects it (or
``KEEP_UNCOLLECTED`` seconds pass), unless the callback collects the status itself
(``collected_by_callback``: a ``Popen``, which reaps its own child as the stdlib's
does).

Child watchers need SIGCHLD, which belongs to one loop at a time; stolon gives it to the
default loop (the main thread's).  A hub with another loop (a native thread's) waits
for its children with a blocking ``waitpid(pid, 0)`` in its thread pool instead, and its
callbacks receive the table entry (which has ``pid``, ``rpid`` and ``rstatus`` like a
watcher).  gevent raises ``TypeError('child watchers are only available on the default
loop')`` there.

A forked child starts with an empty table: its parent's children are not its own.
"""
import os
import time

from stolon.event import Event
from stolon.hub import get_hub, getcurrent, sleep

__all__ = ["watch", "watched", "collect", "oldest_exited", "wait_any_exit", "WatchedChild",
           "sigchld_hook", "KEEP_UNCOLLECTED", "deliver_pending_exit", "with_sigchld_released"]

#: seconds an exited child waits in the table for ``waitpid`` before it is dropped
KEEP_UNCOLLECTED = 60.0

#: called in the hub after each watched child terminated (``stolon.signal`` sets it)
sigchld_hook = None

watched = {}        # pid -> WatchedChild, while running and until collected
_exited = {}        # pid -> WatchedChild: the terminated ones of `watched`, oldest first
_any_exit = None    # an Event for waitpid(-1, 0), made while someone waits


class WatchedChild:
    """One watched child: ``pid``; once it terminated ``rpid``, ``rstatus`` and
    ``finished_at`` (``time.time()``), else ``finished_at`` is None."""

    __slots__ = ("pid", "rpid", "rstatus", "finished_at", "callback", "watcher",
                 "collected_by_callback", "_exit")

    def __init__(self, pid, callback, collected_by_callback):
        self.pid = pid
        self.rpid = 0
        self.rstatus = 0
        self.finished_at = None
        self.callback = callback
        self.watcher = None
        self.collected_by_callback = collected_by_callback
        self._exit = None

    def wait_exit(self):
        """Park the current greenlet until the child has terminated; returns
        ``(rpid, rstatus)``."""
        if self.finished_at is None:
            if self._exit is None:
                self._exit = Event()
            _wait_keeping_loop_alive(self._exit)
        return self.rpid, self.rstatus

    # what a callback may call on a watcher; the table entry has nothing to release
    def stop(self):
        pass

    close = stop


def _noop():
    pass


def _wait_keeping_loop_alive(event):
    # The child's watcher may be unreferenced (fork_and_watch's default), and a
    # greenlet parked on an Event alone would then end the loop with LoopExit: a
    # referenced watcher that never fires keeps it running while we wait.
    keepalive = get_hub().loop.async_()
    keepalive.start(_noop)
    try:
        event.wait()
    finally:
        keepalive.close()


def wait_any_exit():
    """Park the current greenlet until some watched child terminates."""
    global _any_exit
    if _any_exit is None:
        _any_exit = Event()
    _wait_keeping_loop_alive(_any_exit)


def oldest_exited():
    """The entry of the watched child that terminated first and is not collected yet,
    or None."""
    for child in _exited.values():
        return child
    return None


def collect(child):
    """Take ``child`` out of the table: its status has been returned."""
    if watched.get(child.pid) is child:
        del watched[child.pid]
    if _exited.get(child.pid) is child:
        del _exited[child.pid]


def deliver_pending_exit(child, loop):
    """From a greenlet: if SIGCHLD has arrived and the loop has not read it, let the
    loop run until it has delivered ``child``'s exit (if that was it)."""
    if loop.sig_pending and getcurrent() is not get_hub():
        # one iteration reads the signal and queues the child's callback, behind the
        # timer that resumes us: if it is still queued, yield once more to run it
        sleep(0.00001)
        watcher = child.watcher
        if watcher is not None and watcher.pending:
            sleep(0)


def with_sigchld_released(set_disposition):
    """Call ``set_disposition()``, which sets the process's SIGCHLD disposition, with
    the table's watchers stopped, then start them again: the loop hands SIGCHLD back
    when its last child watcher stops and takes it again (keeping what was set, to
    restore when it is done) when one starts.  Watchers made outside this module keep
    SIGCHLD in the loop's hands, and ``set_disposition`` then replaces its handler."""
    running = [c for c in watched.values() if c.watcher is not None and c.watcher.active]
    for child in running:
        child.watcher.stop()
    try:
        return set_disposition()
    finally:
        # starting looks for children that exited meanwhile
        for child in running:
            child.watcher.start(_on_watcher, child, child.watcher)


def watch(pid, callback=None, loop=None, ref=False, collected_by_callback=False):
    """Start watching child ``pid`` (see the module docstring); returns its entry."""
    if loop is None:
        loop = get_hub().loop
    earlier = watched.get(pid)
    if earlier is not None:
        if earlier.watcher is not None:
            # watched twice (a patched os.posix_spawn under the stdlib's Popen): the
            # newer watcher reports for both
            if callback is None:
                callback = earlier.callback
            earlier.watcher.close()
        collect(earlier)
    child = WatchedChild(pid, callback, collected_by_callback)
    watched[pid] = child
    if loop.default:
        watcher = child.watcher = loop.child(pid, ref=ref)
        watcher.start(_on_watcher, child, watcher)
    else:
        get_hub().threadpool.spawn(_blocking_waitpid, pid).rawlink(
            lambda result: _finished(child, result.value, child))
    return child


def _blocking_waitpid(pid):
    try:
        return os.waitpid(pid, 0)
    except ChildProcessError:
        return (pid, 0)     # as a child watcher reports a pid that is not ours


def _on_watcher(child, watcher):
    try:
        _finished(child, (watcher.rpid, watcher.rstatus), watcher)
    finally:
        watcher.close()
        child.watcher = None


def _finished(child, result, report):
    global _any_exit
    child.rpid, child.rstatus = result
    child.finished_at = time.time()
    if child.collected_by_callback:
        collect(child)
    elif watched.get(child.pid) is child:
        _exited[child.pid] = child
    exit_waiters, child._exit = child._exit, None
    any_exit, _any_exit = _any_exit, None
    try:
        if child.callback is not None:
            child.callback(report)
        if sigchld_hook is not None:
            sigchld_hook()
        _forget_uncollected(child.finished_at - KEEP_UNCOLLECTED)
    finally:
        child.callback = None
        if exit_waiters is not None:
            exit_waiters.set()
        if any_exit is not None:
            any_exit.set()


def _forget_uncollected(oldest_allowed):
    # a program that never calls waitpid must not grow the table forever; _exited is
    # in order of termination, so only the stale entries are looked at
    while _exited:
        child = oldest_exited()
        if child.finished_at >= oldest_allowed:
            return
        collect(child)


def _forget_the_parents_children():
    # In a forked child the parent's children are not ours: their watchers would
    # report ECHILD (status 0) and waitpid(-1) would return their pids.
    global _any_exit
    for child in watched.values():
        if child.watcher is not None:
            child.watcher.close()
            child.watcher = None
    watched.clear()
    _exited.clear()
    _any_exit = None


os.register_at_fork(after_in_child=_forget_the_parents_children)
