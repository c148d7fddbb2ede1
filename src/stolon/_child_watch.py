"""Watching child processes so they are reaped cooperatively, and only by us.

``watch(pid, callback, loop, ref)`` records the pid in a process-wide table and starts a
child watcher on ``loop``: the loop calls ``waitpid`` on watched pids only, so children
that other code waits for are never stolen.  When the child terminates, the table keeps
its ``(pid, status, time)`` until ``stolon.os.waitpid`` collects it (or a minute passes),
``callback(watcher)`` runs in the hub, then the SIGCHLD hook of ``stolon.signal``.

Child watchers need SIGCHLD, which belongs to one loop at a time; stolon gives it to the
default loop (the main thread's).  A hub with another loop (a native thread's) waits
for its children with a blocking ``waitpid(pid, 0)`` in its thread pool instead, and its
callbacks receive the table entry (which has ``pid``, ``rpid`` and ``rstatus`` like a
watcher).  gevent raises ``TypeError('child watchers are only available on the default
loop')`` there.
"""
import os
import time

from stolon.hub import Waiter, get_hub

__all__ = ["watch", "watched", "wait_any_exit", "WatchedChild", "sigchld_hook", "KEEP_UNCOLLECTED"]

#: seconds an exited child waits in the table for ``waitpid`` before it is dropped
KEEP_UNCOLLECTED = 60.0

#: called in the hub after each watched child terminated (``stolon.signal`` sets it)
sigchld_hook = None

watched = {}        # pid -> WatchedChild, while running and until collected


class WatchedChild:
    """One watched child: ``pid``; once it terminated ``rpid``, ``rstatus`` and
    ``finished_at`` (``time.time()``), else ``finished_at`` is None."""

    __slots__ = ("pid", "rpid", "rstatus", "finished_at", "callback", "watcher", "_exit_waiters")

    def __init__(self, pid, callback):
        self.pid = pid
        self.rpid = 0
        self.rstatus = 0
        self.finished_at = None
        self.callback = callback
        self.watcher = None
        self._exit_waiters = None

    def wait_exit(self):
        """Park the current greenlet until the child has terminated; returns
        ``(rpid, rstatus)``."""
        if self.finished_at is None:
            if self.watcher is not None and self.watcher.active:
                # a watcher of our own, referenced: the child's may not keep the loop
                # running, and it reports to every watcher of the pid at once.  (Once
                # the child's watcher stopped, its report is queued: a new watcher
                # would only hear ECHILD, so wait for that report instead.)
                return _wait_for_any_of([self.pid])
            from stolon.event import Event
            if self._exit_waiters is None:
                self._exit_waiters = Event()
            self._exit_waiters.wait()
        return self.rpid, self.rstatus

    # what a callback may call on a watcher; the table entry has nothing to release
    def stop(self):
        pass

    close = stop


def _wait_for_any_of(pids):
    """Park until one of ``pids`` (children of the default loop) terminates; returns
    its ``(rpid, rstatus)``."""
    hub = get_hub()
    loop = hub.loop
    waiter = Waiter(hub)
    watchers = []
    try:
        for pid in pids:
            watcher = loop.child(pid)
            watcher.start(waiter.switch, watcher)
            watchers.append(watcher)
        fired = waiter.get()
        return fired.rpid, fired.rstatus
    finally:
        for watcher in watchers:
            watcher.close()


def wait_any_exit():
    """Park the current greenlet until some watched child terminates; returns its
    ``(rpid, rstatus)``, or None when it was not watched by the default loop."""
    children = watched.values()
    if all(c.watcher is not None and c.watcher.active for c in children):
        return _wait_for_any_of([c.pid for c in children])
    global _any_exit
    from stolon.event import Event
    if _any_exit is None:
        _any_exit = Event()
    _any_exit.wait()
    return None


_any_exit = None    # an Event for waitpid(-1, 0) on children of other loops


def watch(pid, callback=None, loop=None, ref=False):
    """Start watching child ``pid`` (see the module docstring); returns its entry."""
    if loop is None:
        loop = get_hub().loop
    earlier = watched.get(pid)
    if earlier is not None and earlier.watcher is not None:
        # watched twice (a patched os.posix_spawn under the stdlib's Popen): the
        # newer watcher reports for both
        if callback is None:
            callback = earlier.callback
        earlier.watcher.close()
        earlier.watcher = None
    child = WatchedChild(pid, callback)
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
    waiters, child._exit_waiters = child._exit_waiters, None
    any_exit, _any_exit = _any_exit, None
    try:
        if child.callback is not None:
            child.callback(report)
        if sigchld_hook is not None:
            sigchld_hook()
        _forget_uncollected(child.finished_at - KEEP_UNCOLLECTED)
    finally:
        child.callback = None
        if waiters is not None:
            waiters.set()
        if any_exit is not None:
            any_exit.set()


def _forget_uncollected(oldest_allowed):
    # a program that never calls waitpid must not grow the table forever
    stale = [pid for pid, c in watched.items()
             if c.finished_at is not None and c.finished_at < oldest_allowed]
    for pid in stale:
        del watched[pid]
