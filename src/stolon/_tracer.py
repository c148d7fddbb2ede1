"""The greenlet switch tracers behind the monitor thread's blocking detector and
``stolon.util.assert_switches``.

``GreenletTracer()`` installs itself with ``stolon.settrace`` in the calling thread (a
greenlet trace function belongs to one thread) and, on every switch there, counts the
switch and remembers the greenlet switched to; whatever trace function was installed
before keeps receiving every event.  Another thread (the monitor) asks ``did_block(hub)``
once a period: a greenlet other than the hub that has run through the whole period
without switching is blocking that hub's loop.

``SwitchTimer`` also times the stretches the traced thread spends without switching
(or, ``hub_only``, without running the hub), for ``assert_switches(max_blocking_time)``.
``blocking_report`` writes the report both give for a blocked greenlet.

A tracer only costs anything while installed: with the monitor off, switches do not
call into Python at all.
"""
import sys
import time
import traceback

from stolon._core import getcurrent, gettrace, settrace
from stolon.monkey import get_original

# the OS thread's id (sys._current_frames' key), also under monkey patching
_get_thread_ident = get_original("_thread", "get_ident")

__all__ = ["GreenletTracer", "SwitchTimer", "blocking_report"]


def blocking_report(hub, greenlet, reporter, current_thread_ident=None):
    """The lines that report ``greenlet`` as blocking ``hub``'s thread: who reports it,
    the stack of that thread now, and ``stolon.util.format_run_info()`` (whose own
    thread is ``current_thread_ident``, if given)."""
    from stolon.util import format_run_info
    lines = ["=" * 80,
             "\n%s : Greenlet %s appears to be blocked" % (
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), greenlet),
             "    Reported by %r" % (reporter,)]
    frame = sys._current_frames().get(hub.thread_ident)
    if frame is None:
        stack = "Unknown: No thread found for hub %r\n" % (hub,)
    else:
        stack = "".join(traceback.format_stack(frame))
    del frame
    lines.append("Blocked Stack (for thread id %s):" % (hex(hub.thread_ident),))
    lines.append(stack)
    lines.append("Info:")
    lines.extend(format_run_info(greenlet_stacks=False, current_thread_ident=current_thread_ident))
    return lines


class GreenletTracer:
    """Counts the greenlet switches of the thread that created it (see the module)."""

    __slots__ = ("switch_count", "active_greenlet", "previous_trace_function",
                 "thread_ident", "_killed")

    def __init__(self):
        #: Switches since the last ``did_block``; the monitor thread resets it.
        self.switch_count = 0
        #: The greenlet last switched to; None after an event that is not a switch or
        #: a throw, or after ``ignore_current_greenlet_blocking``.
        self.active_greenlet = None
        #: The OS thread traced.
        self.thread_ident = _get_thread_ident()
        self._killed = False
        #: The trace function installed before this one, called after it.
        self.previous_trace_function = settrace(self)

    def __call__(self, event, args):
        previous = self.previous_trace_function
        if self._killed:
            self._uninstall()
        else:
            self.switch_count += 1
            self.active_greenlet = args[1] if event == "switch" or event == "throw" else None
        if previous is not None:
            previous(event, args)

    def kill(self):
        """Stop tracing: the previous trace function is installed again.  A trace
        function belongs to its thread, so from another thread this only marks the
        tracer, which steps aside at the traced thread's next switch.  While a tracer
        installed after this one still calls it, it stays in the chain and only passes
        the events on."""
        if self._killed:
            return
        self._killed = True
        if _get_thread_ident() == self.thread_ident:
            self._uninstall()

    def _uninstall(self):
        if gettrace() is self:
            previous = self.previous_trace_function
            self.previous_trace_function = None
            settrace(previous)

    def did_block(self, hub):
        """The greenlet (not ``hub``) that has run without switching since the previous
        call, or None.  Called from the monitor thread: the count it resets may race
        with a switch in the traced thread, which at worst hides one period's block."""
        active = self.active_greenlet
        switched = self.switch_count
        self.switch_count = 0
        if switched or active is None or active is hub:
            return None
        return active

    def ignore_current_greenlet_blocking(self):
        """Do not report the greenlet running now (until the next switch)."""
        self.active_greenlet = None

    def monitor_current_greenlet_blocking(self):
        """Watch the greenlet running now again (when called in the traced thread)."""
        self.active_greenlet = getcurrent()


class SwitchTimer(GreenletTracer):
    """A ``GreenletTracer`` that also keeps ``longest``: the longest stretch, in seconds,
    that the traced thread ran greenlets other than ``hub`` without switching to
    another greenlet, or, with ``hub_only``, without switching into the hub.  The
    stretch running when it is asked counts too (``longest_until_now``)."""

    __slots__ = ("hub", "hub_only", "longest", "_since")

    def __init__(self, hub, hub_only=False):
        self.hub = hub
        self.hub_only = hub_only
        self.longest = 0.0
        #: when the stretch now running began (None: the hub runs)
        self._since = time.perf_counter()
        GreenletTracer.__init__(self)

    def __call__(self, event, args):
        was_running = self.active_greenlet
        GreenletTracer.__call__(self, event, args)
        if self._killed:
            return
        target = args[1] if event == "switch" or event == "throw" else None
        hub = self.hub
        if self.hub_only and target is not hub and was_running is not hub:
            return      # from one greenlet to another, outside the hub: one stretch
        now = time.perf_counter()
        self._end_stretch(now)
        self._since = None if target is hub else now

    def _end_stretch(self, now):
        since = self._since
        if since is not None and now - since > self.longest:
            self.longest = now - since

    def longest_until_now(self):
        """``longest``, counting the stretch that is running now."""
        self._end_stretch(time.perf_counter())
        return self.longest
