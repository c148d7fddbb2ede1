"""stolon.hub: the hub, a greenlet per thread that runs that thread's loop.

Every greenlet that waits parks in a Waiter and switches to its thread's hub; the hub
runs the loop, whose callbacks switch back into whichever greenlet is ready.  When the
loop runs out of referenced watchers while somebody waits, the hub throws ``LoopExit``
into its parent (the greenlet that created it, normally the thread's main greenlet).

Exceptions that escape callbacks go to ``Hub.handle_error``: printed with their
traceback, never stopping the loop; ``SYSTEM_ERROR`` (KeyboardInterrupt, SystemExit,
SystemError) is raised in the main greenlet instead.
"""
import sys
import threading
import time
import traceback
import weakref
from _thread import get_ident as _get_thread_ident

from stolon import _core
from stolon._config import config as _config
from stolon._config import make_loop as _make_loop
from stolon._core import GreenletExit, HubBase, _get_hub, _set_hub, getcurrent, greenlet, sleep
from stolon._waiter import Waiter
from stolon.exceptions import (BlockingSwitchOutError, ConcurrentObjectUseError, HubDestroyed,
                               InvalidSwitchError, InvalidThreadUseError, LoopExit)

__all__ = ["Hub", "get_hub", "Waiter", "LoopExit", "sleep", "idle", "spawn_raw", "kill",
           "reinit", "getswitchinterval", "setswitchinterval", "BlockingSwitchOutError",
           "InvalidSwitchError", "ConcurrentObjectUseError", "InvalidThreadUseError",
           "HubDestroyed", "signal"]


class _Local(threading.local):
    loop = None     # a loop a destroyed hub left for the next hub of this thread


_local = _Local()
# the main thread's OS id, taken before monkey patching can change threading.get_ident
MAIN_THREAD_IDENT = _get_thread_ident()


def get_hub():
    """The current thread's hub, created on first use."""
    hub = _get_hub()
    if hub is None:
        hub = Hub()
        _set_hub(hub)
    return hub


def set_hub(hub):
    """Make ``hub`` (or None) the current thread's hub."""
    _set_hub(hub)


class _StderrUnlessAssigned:
    """``Hub.exception_stream``: ``sys.stderr`` as it is when read, unless the instance
    assigns its own (a false value disables printing; ``del`` restores the default).
    A non-data descriptor, so an instance attribute wins."""

    def __get__(self, hub, owner=None):
        return self if hub is None else sys.stderr


# Every hub not yet collected, so that another thread can find the hub of a greenlet it
# must wake (few hubs: one per thread that has used stolon).
_live_hubs = weakref.WeakSet()


def _gmctime():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Hub(HubBase):
    """A greenlet that runs the loop.  ``Hub(loop=None, default=None)``: ``loop`` is a
    ``stolon.loop.loop`` or a backend name (by default ``stolon.config.loop`` and
    ``libev_backend`` choose); ``default`` selects the default loop (true by default
    in the main thread only)."""

    SYSTEM_ERROR = (KeyboardInterrupt, SystemExit, SystemError)
    NOT_ERROR = (GreenletExit, SystemExit)
    threadpool_size = 10
    name = ""
    #: The hub's monitor thread (a ``stolon._monitor.PeriodicMonitoringThread``) once
    #: ``start_periodic_monitoring_thread()`` started it.
    periodic_monitoring_thread = None

    def __init__(self, loop=None, default=None):
        HubBase.__init__(self)
        # the OS thread's id even after monkey patching made threading.get_ident a greenlet's
        self.thread_ident = _get_thread_ident()
        if loop is None or isinstance(loop, str):
            reuse = _local.loop
            if reuse is not None and loop is None and not reuse.destroyed:
                _local.loop = None
                loop = reuse
            else:
                if default is None:
                    default = _get_thread_ident() == MAIN_THREAD_IDENT
                loop = _make_loop(loop, default=bool(default))
        self.loop = loop
        self._threadpool = None
        self._resolver = None
        _live_hubs.add(self)

    @property
    def main_hub(self):
        """Whether this is the main thread's hub."""
        return self.thread_ident == MAIN_THREAD_IDENT

    # -- the thread pool and the resolver (lazy: most programs never need them) ------

    @property
    def loop_class(self):
        """What makes a new hub's loop (``stolon.config.loop``)."""
        return _config.loop

    @property
    def threadpool_class(self):
        """The class of the hub's thread pool (``stolon.config.threadpool``)."""
        return _config.threadpool

    @property
    def resolver_class(self):
        """The class of the hub's resolver (``stolon.config.resolver``)."""
        return _config.resolver

    @property
    def threadpool(self):
        """The hub's thread pool, created on first use (``threadpool_size`` threads at
        most, a ``threadpool_class``)."""
        pool = self._threadpool
        if pool is None:
            pool = self._threadpool = self.threadpool_class(
                self.threadpool_size, hub=self,
                idle_task_timeout=_config.threadpool_idle_task_timeout)
        return pool

    @threadpool.setter
    def threadpool(self, value):
        self._threadpool = value

    @threadpool.deleter
    def threadpool(self):
        self._threadpool = None

    @property
    def resolver(self):
        """The DNS resolver the socket functions use, created on first use (a
        ``resolver_class``)."""
        resolver = self._resolver
        if resolver is None:
            resolver = self._resolver = self.resolver_class(hub=self)
        return resolver

    @resolver.setter
    def resolver(self, value):
        self._resolver = value

    @resolver.deleter
    def resolver(self):
        self._resolver = None

    # -- errors ------------------------------------------------------------------------

    exception_stream = _StderrUnlessAssigned()

    def handle_error(self, context, type, value, tb):
        """Print the error (unless it is one of ``NOT_ERROR``); raise ``SYSTEM_ERROR``
        and errors without a context in the main greenlet."""
        if isinstance(value, str):
            value = type(value)
        if value is None and type is not None:
            value = type()
        if type is not None and not issubclass(type, self.NOT_ERROR):
            self.print_exception(context, type, value, tb)
        if context is None or (type is not None and issubclass(type, self.SYSTEM_ERROR)):
            self.handle_system_error(type, value, tb)

    def handle_system_error(self, type, value, tb=None):
        current = getcurrent()
        if current is self or current is self.parent or self.loop is None:
            self.parent.throw(type, value, tb)
            return
        # life may go on after the main greenlet handles it: come back here then
        cb = None
        try:
            cb = self.loop.run_callback(current.switch)
        except Exception:
            traceback.print_exc(file=self.exception_stream)
        try:
            self.parent.throw(type, value, tb)
        finally:
            if cb is not None:
                cb.stop()

    def print_exception(self, context, type, value, tb):
        stream = self.exception_stream
        if not stream:
            return
        try:
            self._write_report(stream, context, type, value, tb)
        except Exception as failure:
            # Writing the report failed: with no file descriptor left, say, a
            # traceback cannot read source lines (nor import what it needs).  The
            # hub must go on: the error's one line, if even that can be written.
            where = context if isinstance(context, str) else context.__class__.__name__
            try:
                stream.write("%s failed with %s: %s (no traceback: %s)\n"
                             % (where, getattr(type, "__name__", type), value, failure))
            except Exception:
                pass

    def _write_report(self, stream, context, type, value, tb):
        traceback.print_exception(type, value, tb, file=stream)
        del tb
        stream.write(_gmctime())
        if context is None:
            stream.write("\n")
            return
        if not isinstance(context, str):
            try:
                context = self.format_context(context)
            except Exception:
                traceback.print_exc(file=stream)
                context = repr(context)
        stream.write(" %s failed with %s\n\n" % (context, getattr(type, "__name__", "exception")))

    def format_context(self, context):
        # read at the first error, not when the hub is made: the default,
        # pprint.saferepr, pulls in dataclasses and inspect (in 3.11 a third of
        # stolon's import time)
        return _config.format_context(context)

    # -- switching and waiting ---------------------------------------------------------

    def switch_out(self):
        raise BlockingSwitchOutError("Impossible to call blocking function in the event loop callback")

    def cancel_wait(self, watcher, error, close_watcher=False):
        """Throw ``error`` into whoever waits on ``watcher`` (from a callback)."""
        if watcher.callback is not None:
            self.loop.run_callback(self._cancel_wait, watcher, error, close_watcher)
        elif close_watcher:
            watcher.close()

    def _cancel_wait(self, watcher, error, close_watcher):
        active = watcher.active
        cb = watcher.callback
        if close_watcher:
            watcher.close()
        if not active or cb is None:
            return
        # hub.wait() leaves its Waiter as the callback; a Python start() a bound method
        waiter = cb if isinstance(cb, Waiter) else getattr(cb, "__self__", None)
        if waiter is not None:
            waiter.throw(error)

    # -- running -----------------------------------------------------------------------

    def run(self):
        if self is not getcurrent():
            raise AssertionError("Do not call Hub.run() directly")
        self.start_periodic_monitoring_thread()
        while True:
            loop = self.loop
            loop.error_handler = self
            try:
                loop.run()
            except GreenletExit:
                raise
            except BaseException:
                # a system error from a callback or a signal handler, or an error
                # handler that failed: the main greenlet gets it, and the hub lives on
                # (a dead hub would turn every later switch to it into a switch to
                # its parent); the loop resumes when somebody switches back in
                loop.error_handler = None
                self.parent.throw(*sys.exc_info())
                continue
            finally:
                loop.error_handler = None
            loop = None
            self.parent.throw(LoopExit("This operation would block forever", self, []))

    def start_periodic_monitoring_thread(self):
        """Start the hub's monitor thread if ``stolon.config.monitor_thread`` is true and
        it is not running yet (the hub does when it starts running; call it from the
        hub's thread).  The main hub's also watches memory use.  Sends
        ``PeriodicMonitorThreadStartedEvent``; returns the monitor, or None."""
        if self.periodic_monitoring_thread is None and _config.monitor_thread:
            from stolon._monitor import PeriodicMonitoringThread
            from stolon.events import PeriodicMonitorThreadStartedEvent, notify_and_call_entry_points
            monitor = self.periodic_monitoring_thread = PeriodicMonitoringThread(self)
            if self.main_hub:
                monitor.install_monitor_memory_usage()
            notify_and_call_entry_points(PeriodicMonitorThreadStartedEvent(monitor))
        return self.periodic_monitoring_thread

    def join(self, timeout=None):
        """Run the loop until it has nothing left to do (True) or ``timeout`` passes
        (False).  Only from the hub's parent."""
        if getcurrent() is not self.parent:
            raise AssertionError("only possible from the MAIN greenlet")
        if self.dead:
            return True
        waiter = Waiter(self)
        timer = None
        if timeout is not None:
            timer = self.loop.timer(max(timeout, 0.0), ref=False)
            timer.start(waiter.switch, None)
        try:
            try:
                waiter.get()
            except LoopExit:
                return True
        finally:
            if timer is not None:
                timer.close()
        return False

    def destroy(self, destroy_loop=None):
        """End the hub's run() and release its resources; the loop is destroyed unless it
        is the default loop (kept for the thread's next hub)."""
        if self.loop is None:
            return
        if destroy_loop is None:
            destroy_loop = not self.loop.default
        if self.periodic_monitoring_thread is not None:
            self.periodic_monitoring_thread.kill()
            self.periodic_monitoring_thread = None
        if self._threadpool is not None:
            self._threadpool.kill()
            self._threadpool = None
        if self._resolver is not None:
            self._resolver.close()
            self._resolver = None
        if self and getcurrent() is not self:
            try:
                self.throw(HubDestroyed(destroy_loop))
            except LoopExit:
                pass
            except _core.error:
                pass    # the hub belongs to another thread; its frames may leak
        if destroy_loop:
            self.loop.destroy()
        else:
            _local.loop = self.loop
        self.loop = None
        if _get_hub() is self:
            _set_hub(None)

    def __repr__(self):
        if self.loop is None:
            info = "destroyed"
        else:
            try:
                info = "%s pending=%s" % (self.loop.backend, self.loop.pendingcnt)
            except Exception:
                info = "destroyed loop"
        return "<%s %r at 0x%x %s thread_ident=0x%x>" % (type(self).__name__, self.name, id(self), info,
                                                         self.thread_ident)


# -- module-level waiting ------------------------------------------------------------------

def idle(priority=0):
    """Park the current greenlet until the loop has nothing else to do."""
    hub = get_hub()
    watcher = hub.loop.idle()
    if priority:
        watcher.priority = priority
    try:
        hub.wait(watcher)
    finally:
        watcher.close()


def spawn_raw(function, *args, **kwargs):
    """Start ``function(*args, **kwargs)`` in a plain greenlet whose parent is the hub
    (no links, no result); returns that greenlet."""
    if not callable(function):
        raise TypeError("function must be callable")
    hub = get_hub()
    if kwargs:
        g = greenlet(lambda: function(*args, **kwargs), hub)
        hub.loop.run_callback(g.switch)
    else:
        g = greenlet(function, hub)
        hub.loop.run_callback(g.switch, *args)
    return g


def kill(greenlet_, exception=GreenletExit):
    """Kill a greenlet asynchronously (a Greenlet's ``kill(block=False)``)."""
    if hasattr(greenlet_, "kill"):
        greenlet_.kill(exception=exception, block=False)
        return
    hub = get_hub()
    if not greenlet_.dead:
        hub.loop.run_callback(greenlet_.throw, exception)


def reinit(hub=None):
    """After ``os.fork()``: rebuild the loop's kernel state in the child."""
    if hub is None:
        hub = _get_hub()
    if hub is None or hub.loop is None:
        return
    hub.loop.reinit()
    # the pool's and the monitor's threads and the resolver's state did not survive a fork
    for helper in (hub._threadpool, hub._resolver, hub.periodic_monitoring_thread):
        on_fork = getattr(helper, "_on_fork", None)
        if on_fork is not None:
            on_fork()


def getswitchinterval():
    return sys.getswitchinterval()


def setswitchinterval(interval):
    sys.setswitchinterval(interval)


# gevent.hub.signal; imported last: stolon.signal needs this module's get_hub
from stolon.signal import signal_handler as signal  # noqa: E402
