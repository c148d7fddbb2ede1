"""A hub's monitor thread (gevent's ``gevent._monitor``): a native thread that calls
monitoring functions periodically, started by ``Hub.start_periodic_monitoring_thread()``
when ``stolon.config.monitor_thread`` is true.

Two functions are built in:

* the blocking detector, every ``config.max_blocking_time`` seconds (None pauses it): a
  greenlet other than the hub that ran a whole period without switching blocks the
  loop.  The report (a list of lines: the greenlet, the stack of the hub's thread,
  then ``stolon.util.format_run_info()``) goes in an ``EventLoopBlocked`` event to the
  subscribers of ``stolon.events``, who may extend it, and is then printed on the
  hub's ``exception_stream`` if ``config.print_blocking_reports``.  A greenlet that
  keeps blocking is reported again every period.
* the memory monitor, on the main thread's hub only, every ``memory_monitor_period``
  seconds (2 at least: asking the OS is not cheap): when ``config.max_memory_usage``
  is set and the process uses more (psutil's USS, or RSS where the OS has no USS), a
  ``MemoryUsageThresholdExceeded`` event, again each time the usage grows further;
  once back under the limit, one ``MemoryUsageUnderThreshold``.  Without psutil there
  is no memory monitor: the main hub's monitor warns so (``MonitorWarning``) when it
  starts, as gevent's does.

The thread is started with the original ``_thread.start_new_thread``, so it is a real
OS thread under monkey patching too; it is a daemon thread that holds the hub only
weakly, so it neither keeps the interpreter alive nor the hub, and it stops once the
hub is gone or dead (destroyed, or its thread ended).  ``kill()`` wakes and ends it at
once.  After ``os.fork()``, ``stolon.hub.reinit()`` starts it again in the child.
Monitoring functions run in the monitor thread: they must not use the cooperative
API.
"""
import os
import sys
import time
import traceback
import warnings
import weakref

from stolon._config import config
from stolon._tracer import GreenletTracer, blocking_report
from stolon.events import EventLoopBlocked, MemoryUsageThresholdExceeded, MemoryUsageUnderThreshold
from stolon.events import notify
from stolon.monkey import get_original
# imported here, in the hub's thread, not at the first report in the monitor thread
import stolon.util  # noqa: F401 -- for blocking_report (format_run_info)

__all__ = ["PeriodicMonitoringThread", "MonitorWarning"]

_start_new_thread, _allocate_lock, _get_thread_ident = get_original(
    "_thread", ("start_new_thread", "allocate_lock", "get_ident"))


class MonitorWarning(RuntimeWarning):
    """The category of the monitor thread's warnings."""


def _this_process():
    """A psutil ``Process`` for this process, or None without psutil (or access)."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        process = psutil.Process()
        process.memory_full_info()
    except psutil.Error:
        return None
    return process


class _Entry:
    """A monitoring function, its period and when it last ran (monotonic seconds)."""

    __slots__ = ("function", "period", "last_run")

    def __init__(self, function, period):
        self.function = function
        self.period = period
        self.last_run = 0.0

    def __repr__(self):
        return "<%s %r every %ss>" % (type(self).__name__, self.function, self.period)


class PeriodicMonitoringThread:
    """``PeriodicMonitoringThread(hub)``: start monitoring ``hub`` (see the module).
    Create it in the hub's thread, whose greenlet switches it traces."""

    #: How long the thread sleeps when no function wants to run.
    inactive_sleep_time = 2.0
    #: The shortest sleep between two rounds, whatever the periods.
    min_sleep_time = 0.005
    #: The shortest period of the memory monitor.
    min_memory_monitor_period = 2

    def __init__(self, hub):
        if _get_thread_ident() != hub.thread_ident:
            raise AssertionError("the monitor thread must be started in its hub's thread")
        self._hub_ref = weakref.ref(hub, self._on_hub_gone)
        #: False once killed: the thread ends.
        self.should_run = True
        self._greenlet_tracer = GreenletTracer()
        self._blocking_entry = _Entry(self.monitor_blocking, config.max_blocking_time)
        # entries are only ever replaced as a whole list, so the thread can walk the
        # one it got while another thread adds or removes functions
        self._entries = [self._blocking_entry]
        self._sleep_time = self._shortest_period()
        # the thread sleeps by waiting for this lock; kill() releases it to wake it
        self._wakeup = _allocate_lock()
        self._wakeup.acquire()
        self._memory_exceeded = 0       # the usage last reported over the limit, or 0
        self.pid = os.getpid()
        #: The OS thread id of the monitor thread.
        self.monitor_thread_ident = 0
        self.monitor_thread_ident = _start_new_thread(self._run, ())

    @property
    def hub(self):
        """The hub monitored, or None once it is gone."""
        return self._hub_ref()

    # -- the functions ---------------------------------------------------------------

    def monitoring_functions(self):
        """The entries (``function``, ``period``, ``last_run``) the thread runs; the
        blocking detector's first, its period following ``config.max_blocking_time``."""
        period = config.max_blocking_time
        if self._blocking_entry.period != period:
            self._blocking_entry.period = period
            self._sleep_time = self._shortest_period()
        return self._entries

    def add_monitoring_function(self, function, period):
        """Call ``function(hub)`` in the monitor thread about every ``period`` seconds;
        a function already added gets the new period; a ``period`` of None removes
        it.  ``ValueError`` if ``function`` is not callable or ``period`` not
        positive."""
        if not callable(function):
            raise ValueError("function must be callable")
        if period is None:
            entries = [e for e in self._entries if e.function != function]
        elif period <= 0:
            raise ValueError("Period must be positive.")
        else:
            entries = list(self._entries)
            for entry in entries:
                if entry.function == function:
                    entry.period = period
                    break
            else:
                entries.append(_Entry(function, period))
        self._entries = entries
        self._sleep_time = self._shortest_period()

    def _shortest_period(self):
        periods = [e.period for e in self._entries if e.period and e.period > 0]
        return min(periods) if periods else 0

    def calculate_sleep_time(self):
        """How long the thread sleeps before its next round."""
        shortest = self._sleep_time
        if shortest <= 0:
            return self.inactive_sleep_time
        return max(shortest, self.min_sleep_time)

    # -- the thread ------------------------------------------------------------------

    def _run(self):
        try:
            wakeup = self._wakeup
            while self.should_run:
                self.monitoring_functions()     # follow max_blocking_time
                if wakeup.acquire(True, self.calculate_sleep_time()):
                    break                       # kill() woke us
                hub = self._hub_ref()
                if hub is None or hub.dead:
                    self.kill()
                    break
                now = time.monotonic()
                for entry in self._entries:
                    period = entry.period
                    if period and period > 0 and entry.last_run + period <= now:
                        entry.last_run = now
                        entry.function(hub)
                    if not self.should_run:
                        break
                del hub                         # do not keep the hub while sleeping
        except SystemExit:
            self.kill()
        except BaseException:
            self.kill()
            # interpreter shutdown tears down modules under this daemon thread: quiet then
            if sys is not None and sys.stderr is not None and not sys.is_finalizing():
                hub = self._hub_ref()
                if hub is not None:
                    hub.print_exception(self, *sys.exc_info())
                else:
                    traceback.print_exc()

    def kill(self):
        """Stop monitoring: the thread ends (woken at once) and the switch tracer goes
        (at once in the hub's thread, at its next switch from another)."""
        if not self.should_run:
            return
        self.should_run = False
        self._greenlet_tracer.kill()
        try:
            self._wakeup.release()
        except RuntimeError:
            pass    # a concurrent kill() released it first

    def _on_hub_gone(self, _ref):
        self.kill()

    def _on_fork(self):
        """Called by ``stolon.hub.reinit()``: in a forked child, where only the forking
        thread survives, start the thread again."""
        pid = os.getpid()
        if pid == self.pid:
            return
        self.pid = pid
        self.__dict__.pop("_get_process", None)     # it measured the parent
        if self.should_run:
            # a fresh lock: the parent's monitor thread was waiting on the old one
            self._wakeup = _allocate_lock()
            self._wakeup.acquire()
            self.monitor_thread_ident = _start_new_thread(self._run, ())

    # -- the blocking detector ---------------------------------------------------------

    def monitor_blocking(self, hub):
        """Report a greenlet that ran without switching since the previous call:
        returns ``(greenlet, report)`` then, else None."""
        greenlet = self._greenlet_tracer.did_block(hub)
        if greenlet is None:
            return None
        report = self._blocking_report(hub, greenlet)
        # subscribers see the report first and may add to it
        notify(EventLoopBlocked(greenlet, config.max_blocking_time, report, hub=hub))
        return self._show_blocking_report(hub, report, greenlet)

    def _blocking_report(self, hub, greenlet):
        return blocking_report(hub, greenlet, self, self.monitor_thread_ident)

    def _show_blocking_report(self, hub, report, greenlet):
        stream = hub.exception_stream
        if config.print_blocking_reports and stream:
            # one line at a time: one huge write could fail as a reentrant print
            for line in report:
                print(line, file=stream)
        return greenlet, report

    def ignore_current_greenlet_blocking(self):
        """Do not report the greenlet running now in the hub's thread as blocking
        (until its next switch): for a thread that is meant to block, as a pool
        worker waiting for its next task."""
        self._greenlet_tracer.ignore_current_greenlet_blocking()

    def monitor_current_greenlet_blocking(self):
        """Undo ``ignore_current_greenlet_blocking`` (in the hub's thread)."""
        self._greenlet_tracer.monitor_current_greenlet_blocking()

    # -- the memory monitor ------------------------------------------------------------

    def _get_process(self):
        """The psutil ``Process`` whose memory is measured, or None (found once)."""
        process = _this_process()
        self._get_process = lambda: process
        return process

    def can_monitor_memory_usage(self):
        """Whether psutil can measure this process."""
        return self._get_process() is not None

    def install_monitor_memory_usage(self):
        """Add the memory monitor, or warn (``MonitorWarning``) that psutil is
        missing."""
        if not self.can_monitor_memory_usage():
            warnings.warn("Unable to monitor memory usage. Install psutil.", MonitorWarning)
            return
        self.add_monitoring_function(self.monitor_memory_usage,
                                     max(config.memory_monitor_period,
                                         self.min_memory_monitor_period))

    def monitor_memory_usage(self, _hub):
        """Compare the memory usage with ``config.max_memory_usage`` and send the
        event that the change calls for; returns it (None if none, -1 when no limit
        is set)."""
        limit = config.max_memory_usage
        if not limit:
            return -1
        info = self._get_process().memory_full_info()
        usage = getattr(info, "uss", 0) or info.rss
        event = None
        if usage > limit:
            if usage > self._memory_exceeded:
                event = MemoryUsageThresholdExceeded(usage, limit, info)
                notify(event)
            self._memory_exceeded = usage
        else:
            if self._memory_exceeded:
                event = MemoryUsageUnderThreshold(usage, limit, info, self._memory_exceeded)
                notify(event)
            self._memory_exceeded = 0
        return event

    def __repr__(self):
        return "<%s at 0x%x in thread 0x%x for %r>" % (
            type(self).__name__, id(self), self.monitor_thread_ident, self._hub_ref())


def _declare_interface():
    # gevent's monitor provides IPeriodicMonitorThread; only zope.interface can say so
    try:
        from zope.interface import classImplements
    except ImportError:
        return
    from stolon.events import IPeriodicMonitorThread
    classImplements(PeriodicMonitoringThread, IPeriodicMonitorThread)


_declare_interface()
