"""The hub's monitor thread (gevent's periodic monitoring thread): the blocking
detector, the memory monitor, added monitoring functions, kill, destroy and fork.

The same file runs against gevent 26.9 (names switched) as a cross-check.  Tests leave
the main hub without a monitor: the ``monitor_on`` fixture kills the one a test
started and restores every setting it changed.
"""
import gc
import io
import os
import sys
import threading
import time
import warnings
import weakref

import pytest

import stolon
import stolon.events
from stolon import config
from stolon import _monitor
from stolon.events import (EventLoopBlocked, MemoryUsageThresholdExceeded,
                           MemoryUsageUnderThreshold, PeriodicMonitorThreadStartedEvent)

from conftest import glet_run_script, live_object_count, open_fd_count

try:
    from stolon import gettrace
except ImportError:     # the gevent cross-check: gevent leaves it to greenlet
    from greenlet import gettrace

UNDER_GEVENT = stolon.__name__ != "st" + "olon"

_SETTINGS = ("monitor_thread", "max_blocking_time", "print_blocking_reports",
             "max_memory_usage", "memory_monitor_period")


def os_thread_count():
    """This process's OS threads (Linux): the monitor has no threading.Thread."""
    return len(os.listdir("/proc/self/task"))


def thread_runs(ident):
    """Whether the native thread ``ident`` still runs Python code."""
    return ident in sys._current_frames()


def wait_for(predicate, timeout=2.0):
    """Poll ``predicate`` cooperatively (the loop keeps switching meanwhile, so the
    waiting greenlet is never the blocked one); its last value."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        stolon.sleep(0.005)
    return predicate()


def kill_monitor(hub):
    monitor = hub.periodic_monitoring_thread
    if monitor is not None:
        monitor.kill()
        hub.periodic_monitoring_thread = None


@pytest.fixture
def monitor_on():
    """Monitoring enabled, 0.1 s max blocking time, reports not printed (a test that
    turns printing on gets them in the yielded StringIO, the main hub's stream);
    afterwards the main hub's monitor is killed and the settings are back."""
    saved = {name: getattr(config, name) for name in _SETTINGS}
    hub = stolon.get_hub()
    kill_monitor(hub)
    config.monitor_thread = True
    config.max_blocking_time = 0.1
    config.print_blocking_reports = False
    stream = hub.exception_stream = io.StringIO()
    try:
        yield stream
    finally:
        kill_monitor(hub)
        del hub.exception_stream
        for name, value in saved.items():
            setattr(config, name, value)


@pytest.fixture
def subscribed():
    """The events sent while the test runs, as a list."""
    received = []
    stolon.events.subscribers.append(received.append)
    try:
        yield received
    finally:
        stolon.events.subscribers.remove(received.append)


def only(kind, received):
    return [event for event in received if isinstance(event, kind)]


def in_new_thread(function):
    """Run ``function()`` in a new native thread; its result (errors re-raised)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except BaseException as ex:  # re-raised in the test's thread
            outcome["error"] = ex
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- the blocking detector ----------------------------------------------------------------

def test_a_greenlet_that_blocks_is_reported_once(monitor_on, subscribed):
    config.print_blocking_reports = True
    hub = stolon.get_hub()
    monitor = hub.start_periodic_monitoring_thread()
    assert monitor is hub.periodic_monitoring_thread is not None
    reported = threading.Event()
    stolon.events.subscribers.append(
        lambda event: isinstance(event, EventLoopBlocked) and reported.set())

    def blocker():
        # the real sleep: the loop cannot run until the report is out
        deadline = time.monotonic() + 2
        while not reported.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
    try:
        glet = stolon.spawn(blocker)
        glet.join()
    finally:
        del stolon.events.subscribers[-1]
    blocked = only(EventLoopBlocked, subscribed)
    assert len(blocked) == 1, blocked
    event = blocked[0]
    assert event.greenlet is glet
    assert event.hub is hub
    assert event.blocking_time == 0.1
    # the report is printed after the subscribers saw it, line by line
    printed = "".join(line + "\n" for line in event.info)
    assert wait_for(lambda: monitor_on.getvalue() == printed), monitor_on.getvalue()
    header = event.info[1]
    assert header.endswith(" appears to be blocked") and ": Greenlet <" in header
    assert "%x" % id(glet) in header and "blocker" in header
    assert "Reported by" in printed and "PeriodicMonitoringThread" in printed
    assert "Blocked Stack (for thread id %s):" % (hex(hub.thread_ident),) in printed
    stack = event.info[event.info.index("Blocked Stack (for thread id %s):" % (hex(hub.thread_ident),)) + 1]
    assert "in blocker" in stack and "time.sleep(0.01)" in stack
    assert "Info:" in event.info and "* Greenlets" in event.info


def test_no_report_while_the_hub_keeps_switching(monitor_on, subscribed):
    config.print_blocking_reports = True
    hub = stolon.get_hub()
    monitor = hub.start_periodic_monitoring_thread()
    rounds = []
    monitor.add_monitoring_function(rounds.append, 0.05)

    def sleeper():
        for _ in range(60):
            stolon.sleep(0.005)

    def busy():
        # CPU-bound, but never longer than a few milliseconds between switches
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            sum(range(2000))
            stolon.sleep(0)
    stolon.joinall([stolon.spawn(sleeper), stolon.spawn(busy)])
    assert only(EventLoopBlocked, subscribed) == []
    assert monitor_on.getvalue() == ""
    assert len(rounds) >= 2            # the monitor did look meanwhile


def test_an_idle_pool_worker_with_a_hub_is_not_reported(monitor_on, subscribed):
    # a task that uses stolon gives its worker thread a hub, whose monitor then
    # watches that thread; waiting for the next task is not blocking
    pool = stolon.get_hub().threadpool

    def task():
        stolon.sleep(0.01)
        return stolon.get_hub().periodic_monitoring_thread is not None

    try:
        assert pool.apply(task) is True
        stolon.sleep(0.4)       # the worker idles for several monitoring periods
        assert only(EventLoopBlocked, subscribed) == []
    finally:
        pool.kill()
        del stolon.get_hub().threadpool


def test_reports_can_go_unprinted(monitor_on, subscribed):
    config.print_blocking_reports = False
    config.max_blocking_time = 0.05
    hub = stolon.get_hub()
    hub.start_periodic_monitoring_thread()

    def blocker():
        deadline = time.monotonic() + 2
        while not only(EventLoopBlocked, subscribed) and time.monotonic() < deadline:
            time.sleep(0.01)
    stolon.spawn(blocker).join()
    blocked = only(EventLoopBlocked, subscribed)
    assert blocked and blocked[0].blocking_time == 0.05
    stolon.sleep(0.01)
    assert monitor_on.getvalue() == ""


def test_the_monitor_provides_its_interface(monitor_on):
    verify = pytest.importorskip("zope.interface.verify")
    from stolon.events import IPeriodicMonitorThread
    monitor = stolon.get_hub().start_periodic_monitoring_thread()
    assert IPeriodicMonitorThread.providedBy(monitor)
    assert verify.verifyObject(IPeriodicMonitorThread, monitor)


def test_max_blocking_time_is_read_each_round(monitor_on):
    monitor = stolon.get_hub().start_periodic_monitoring_thread()
    assert monitor.monitoring_functions()[0].period == 0.1
    assert monitor.calculate_sleep_time() == 0.1
    config.max_blocking_time = 0.02
    assert monitor.monitoring_functions()[0].period == 0.02
    assert monitor.calculate_sleep_time() == 0.02


def test_ignore_and_monitor_current_greenlet(monitor_on, subscribed):
    config.max_blocking_time = 10   # the thread's own checks stay out of the way
    hub = stolon.get_hub()
    monitor = hub.start_periodic_monitoring_thread()
    stolon.sleep(0)
    # straight after a switch nothing is blocked; a period without one is
    assert monitor.monitor_blocking(hub) is None
    glet, report = monitor.monitor_blocking(hub)
    assert glet is stolon.getcurrent() and report == only(EventLoopBlocked, subscribed)[0].info
    monitor.ignore_current_greenlet_blocking()
    assert monitor.monitor_blocking(hub) is None
    monitor.monitor_current_greenlet_blocking()
    assert monitor.monitor_blocking(hub)[0] is stolon.getcurrent()


def test_a_trace_function_installed_before_still_runs(monitor_on):
    hub = stolon.get_hub()
    assert gettrace() is None
    events = []
    try:
        from stolon import settrace
    except ImportError:     # the gevent cross-check
        from greenlet import settrace
    settrace(lambda event, args: events.append(event))
    try:
        hub.start_periodic_monitoring_thread()
        stolon.sleep(0)
        assert events[-2:] == ["switch", "switch"]
        kill_monitor(hub)
        assert gettrace() is not None
    finally:
        settrace(None)


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent's tracer removed out of order drops the "
                                         "trace function installed before it")
def test_tracers_removed_out_of_order_keep_the_trace_function_before_them():
    from stolon._tracer import GreenletTracer
    from stolon import settrace
    events = []

    def user(event, args):
        events.append(event)

    settrace(user)
    try:
        first = GreenletTracer()
        second = GreenletTracer()       # chains to first, which chains to user
        first.kill()                    # not on top: stays, passing events on
        stolon.sleep(0)
        assert len(events) == 2 and first.switch_count == 0 and second.switch_count == 2
        second.kill()                   # on top: puts first back, which steps aside
        stolon.sleep(0)
        assert len(events) == 4
        assert gettrace() is user
    finally:
        settrace(None)


# -- monitoring functions -----------------------------------------------------------------

def test_add_monitoring_function_runs_periodically_until_removed(monitor_on):
    hub = stolon.get_hub()
    monitor = hub.start_periodic_monitoring_thread()
    calls = []

    def record(arg):
        calls.append((arg, time.monotonic()))
    monitor.add_monitoring_function(record, 0.02)
    assert monitor.monitoring_functions()[-1].function == record
    assert monitor.monitoring_functions()[-1].period == 0.02
    assert wait_for(lambda: len(calls) >= 3)
    assert all(arg is hub for arg, _ in calls)
    assert calls[-1][1] - calls[0][1] >= 0.03       # spread over the periods

    count = len(monitor.monitoring_functions())
    monitor.add_monitoring_function(record, 0.05)   # a new period, not a second entry
    assert len(monitor.monitoring_functions()) == count
    assert monitor.monitoring_functions()[-1].period == 0.05

    monitor.add_monitoring_function(record, None)
    assert len(monitor.monitoring_functions()) == count - 1
    stolon.sleep(0.03)       # a call under way when it was removed may still finish
    stopped_at = len(calls)
    stolon.sleep(0.15)
    assert len(calls) == stopped_at


def test_add_monitoring_function_checks_its_arguments(monitor_on):
    monitor = stolon.get_hub().start_periodic_monitoring_thread()
    with pytest.raises(ValueError):
        monitor.add_monitoring_function(None, 1)
    with pytest.raises(ValueError):
        monitor.add_monitoring_function(lambda hub: None, 0)
    with pytest.raises(ValueError):
        monitor.add_monitoring_function(lambda hub: None, -1)


def test_a_failing_monitoring_function_is_reported(monitor_on):
    hub = stolon.get_hub()
    monitor = hub.start_periodic_monitoring_thread()
    monitor.add_monitoring_function(lambda hub: 1 / 0, 0.01)
    assert wait_for(lambda: "failed with ZeroDivisionError" in monitor_on.getvalue())
    assert "Traceback" in monitor_on.getvalue()
    # the thread ends
    assert wait_for(lambda: not thread_runs(monitor.monitor_thread_ident))
    if not UNDER_GEVENT:
        # deliberate difference: gevent's monitor still claims to run (should_run)
        # and keeps its switch tracer installed after its thread died
        assert not monitor.should_run
        assert gettrace() is None


def test_started_event_lets_subscribers_add_functions(monitor_on):
    seen = []

    def on_start(event):
        if isinstance(event, PeriodicMonitorThreadStartedEvent):
            event.monitor.add_monitoring_function(seen.append, 0.01)
    stolon.events.subscribers.append(on_start)

    def in_thread():
        hub = stolon.get_hub()
        stolon.sleep(0.001)     # the hub starts running, and its monitor
        monitor = hub.periodic_monitoring_thread
        ok = wait_for(lambda: seen)
        hub.destroy(True)
        return hub, monitor, ok
    try:
        hub, monitor, ok = in_new_thread(in_thread)
    finally:
        stolon.events.subscribers.remove(on_start)
    assert ok and seen[0] is hub
    assert not monitor.should_run


def test_no_monitor_unless_configured():
    assert not config.monitor_thread

    def in_thread():
        hub = stolon.get_hub()
        stolon.sleep(0.001)
        try:
            return hub.periodic_monitoring_thread, hub.start_periodic_monitoring_thread(), gettrace()
        finally:
            hub.destroy(True)
    assert in_new_thread(in_thread) == (None, None, None)


# -- the memory monitor -------------------------------------------------------------------

class FakeProcess:
    """What the memory monitor asks psutil for, with the usage a test sets."""

    def __init__(self):
        self.rss = 0

    def memory_full_info(self):
        return self


def test_memory_events_directly(monitor_on, subscribed):
    monitor = stolon.get_hub().start_periodic_monitoring_thread()
    process = FakeProcess()
    monitor._get_process = lambda: process
    config.max_memory_usage = None
    assert monitor.monitor_memory_usage(None) == -1
    config.max_memory_usage = 1000
    process.rss = 500
    assert monitor.monitor_memory_usage(None) is None
    process.rss = 2000
    exceeded = monitor.monitor_memory_usage(None)
    assert isinstance(exceeded, MemoryUsageThresholdExceeded)
    assert (exceeded.mem_usage, exceeded.max_allowed) == (2000, 1000)
    assert exceeded.memory_info is process
    assert monitor.monitor_memory_usage(None) is None     # over, but not growing
    process.rss = 3000
    assert monitor.monitor_memory_usage(None).mem_usage == 3000
    process.rss = 800
    under = monitor.monitor_memory_usage(None)
    assert isinstance(under, MemoryUsageUnderThreshold)
    assert (under.mem_usage, under.max_allowed, under.max_memory_usage) == (800, 1000, 3000)
    assert monitor.monitor_memory_usage(None) is None
    memory_events = [e for e in subscribed
                     if isinstance(e, (MemoryUsageThresholdExceeded, MemoryUsageUnderThreshold))]
    assert memory_events == [exceeded, memory_events[1], under]
    assert isinstance(memory_events[1], MemoryUsageThresholdExceeded)


def test_memory_events_from_the_thread(monitor_on, subscribed):
    config.max_memory_usage = 1000
    config.memory_monitor_period = 0.02
    monitor = stolon.get_hub().start_periodic_monitoring_thread()
    process = FakeProcess()
    monitor._get_process = lambda: process
    monitor.min_memory_monitor_period = 0.01
    monitor.install_monitor_memory_usage()
    process.rss = 2000
    assert wait_for(lambda: only(MemoryUsageThresholdExceeded, subscribed))
    process.rss = 500
    assert wait_for(lambda: only(MemoryUsageUnderThreshold, subscribed))
    stolon.sleep(0.1)
    memory_events = [e for e in subscribed
                     if isinstance(e, (MemoryUsageThresholdExceeded, MemoryUsageUnderThreshold))]
    assert [type(e) for e in memory_events] == [MemoryUsageThresholdExceeded, MemoryUsageUnderThreshold]
    assert [e.mem_usage for e in memory_events] == [2000, 500]


def test_memory_monitor_floor_and_main_hub_only(monitor_on):
    config.memory_monitor_period = 0.5
    monitor = stolon.get_hub().start_periodic_monitoring_thread()
    monitor._get_process = FakeProcess
    monitor.install_monitor_memory_usage()
    assert monitor.monitoring_functions()[-1].period == 2     # never more often

    def in_thread():
        hub = stolon.get_hub()
        stolon.sleep(0.001)
        try:
            return len(hub.periodic_monitoring_thread.monitoring_functions())
        finally:
            hub.destroy(True)
    assert in_new_thread(in_thread) == 1      # the blocking detector only


def test_without_psutil_a_warning_and_no_memory_monitor(monitor_on):
    monitor = stolon.get_hub().start_periodic_monitoring_thread()
    monitor._get_process = lambda: None
    count = len(monitor.monitoring_functions())
    assert not monitor.can_monitor_memory_usage()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.install_monitor_memory_usage()
    assert [(w.category, str(w.message)) for w in caught] == [
        (_monitor.MonitorWarning, "Unable to monitor memory usage. Install psutil.")]
    assert len(monitor.monitoring_functions()) == count


# -- the thread's life --------------------------------------------------------------------

def test_kill_ends_the_thread_and_removes_the_tracer(monitor_on):
    hub = stolon.get_hub()
    monitor = hub.start_periodic_monitoring_thread()
    assert wait_for(lambda: thread_runs(monitor.monitor_thread_ident))
    assert monitor.should_run and gettrace() is not None
    monitor.kill()
    assert not monitor.should_run and gettrace() is None
    assert wait_for(lambda: not thread_runs(monitor.monitor_thread_ident))
    monitor.kill()      # again: nothing to do


def test_destroy_kills_the_monitor(monitor_on):
    def in_thread():
        hub = stolon.get_hub()
        stolon.sleep(0.001)
        monitor = hub.periodic_monitoring_thread
        assert monitor is not None and monitor.hub is hub and gettrace() is not None
        hub.destroy(True)
        return hub, monitor, gettrace()
    hub, monitor, trace = in_new_thread(in_thread)
    assert hub.periodic_monitoring_thread is None
    assert not monitor.should_run and trace is None
    assert wait_for(lambda: not thread_runs(monitor.monitor_thread_ident))


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent's kill() from another thread uninstalls "
                    "the calling thread's trace function, leaving the hub's thread traced")
def test_kill_from_another_thread_untraces_at_the_next_switch(monitor_on):
    def in_thread():
        hub = stolon.get_hub()
        stolon.sleep(0.001)
        monitor = hub.periodic_monitoring_thread
        killer = threading.Thread(target=monitor.kill)
        killer.start()
        killer.join()
        still_traced = gettrace() is not None
        stolon.sleep(0)
        try:
            return monitor.should_run, still_traced, gettrace()
        finally:
            hub.destroy(True)
    assert in_new_thread(in_thread) == (False, True, None)


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent's monitor outlives a thread that ends "
                    "without destroying its hub, and reports that thread blocked")
def test_a_thread_that_ends_ends_its_monitor(monitor_on, subscribed):
    config.max_blocking_time = 0.02

    def in_thread():
        stolon.sleep(0.001)
        return stolon.get_hub().periodic_monitoring_thread
    monitor = in_new_thread(in_thread)
    assert wait_for(lambda: gc.collect() >= 0 and not monitor.should_run)
    assert wait_for(lambda: not thread_runs(monitor.monitor_thread_ident))
    assert only(EventLoopBlocked, subscribed) == []


def test_start_from_another_thread_is_refused(monitor_on):
    hub = stolon.get_hub()
    with pytest.raises(AssertionError):
        in_new_thread(hub.start_periodic_monitoring_thread)
    assert hub.periodic_monitoring_thread is None


def test_no_thread_descriptor_or_object_leak(monitor_on):
    hub = stolon.get_hub()

    def cycle():
        monitor = hub.start_periodic_monitoring_thread()
        monitor.add_monitoring_function(lambda hub: None, 0.01)
        stolon.sleep(0.02)
        kill_monitor(hub)
        return weakref.ref(monitor)
    threads, fds = os_thread_count(), open_fd_count()
    for _ in range(3):
        cycle()
    # (<=: under gevent, killed monitors of earlier tests may still be ending)
    assert wait_for(lambda: os_thread_count() <= threads)
    objects = live_object_count()
    refs = [cycle() for _ in range(10)]
    assert wait_for(lambda: os_thread_count() <= threads)
    # gevent's killed threads let go of their monitor only after their last sleep
    assert wait_for(lambda: gc.collect() >= 0 and [ref() for ref in refs] == [None] * 10)
    assert open_fd_count() == fds
    assert live_object_count() - objects < 50


def test_fork_restarts_the_monitor_in_the_child():
    result = glet_run_script("""
        import os, threading, time, warnings
        import stolon, stolon.os, stolon.events
        from stolon import config
        # 3.12+ warns that forking a process with threads may deadlock
        warnings.simplefilter("ignore", DeprecationWarning)
        config.monitor_thread = True
        config.max_blocking_time = 0.05
        config.print_blocking_reports = False
        hub = stolon.get_hub()
        stolon.sleep(0.001)
        monitor = hub.periodic_monitoring_thread
        pid = stolon.os.fork()
        if pid == 0:
            reported = threading.Event()
            blocked = []
            def on_event(event):
                if isinstance(event, stolon.events.EventLoopBlocked):
                    blocked.append(event.greenlet)
                    reported.set()
            stolon.events.subscribers.append(on_event)
            def blocker():
                deadline = time.monotonic() + 2
                while not reported.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
            glet = stolon.spawn(blocker)
            glet.join()
            print("child", monitor.pid == os.getpid(), monitor.should_run,
                  len(os.listdir("/proc/self/task")), blocked == [glet], flush=True)
            os._exit(0)
        _, status = stolon.os.waitpid(pid, 0)
        print("parent", os.WEXITSTATUS(status), monitor.pid == os.getpid(), monitor.should_run)
    """, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["child True True 2 True", "parent 0 True True"]
    assert result.stderr == ""


def test_a_real_thread_under_monkey_patching():
    result = glet_run_script("""
        from stolon import monkey
        monkey.patch_all()
        import os, sys, time
        import stolon, stolon.events
        from stolon import config
        config.monitor_thread = True
        config.max_blocking_time = 0.05
        config.print_blocking_reports = False
        blocked = []
        stolon.events.subscribers.append(
            lambda event: isinstance(event, stolon.events.EventLoopBlocked)
            and blocked.append(event.greenlet))
        stolon.sleep(0.001)
        monitor = stolon.get_hub().periodic_monitoring_thread
        print(monitor.monitor_thread_ident in sys._current_frames(),
              len(os.listdir("/proc/self/task")))
        # the patched sleep switches: not blocking
        stolon.spawn(time.sleep, 0.2).join()
        print(blocked)
        real_sleep = monkey.get_original("time", "sleep")
        def blocker():
            deadline = time.monotonic() + 2
            while not blocked and time.monotonic() < deadline:
                real_sleep(0.01)
        glet = stolon.spawn(blocker)
        glet.join()
        print(blocked == [glet])
    """, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["True 2", "[]", "True"]
    assert result.stderr == ""


def test_exit_with_the_monitor_running():
    # a daemon thread that never keeps the interpreter alive, even mid-report
    result = glet_run_script("""
        import time
        import stolon
        from stolon import config
        config.monitor_thread = True
        config.max_blocking_time = 0.01
        config.print_blocking_reports = False
        stolon.sleep(0.001)
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            pass
        print("done")
    """, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "done\n", "")
