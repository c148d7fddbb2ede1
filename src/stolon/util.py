"""stolon.util: helpers for debugging a program that is stuck (gevent.util's API).

``format_run_info()`` answers "what is everybody doing?": the stack of every thread,
every greenlet that is alive (found through the garbage collector, since there is no
registry of them) arranged as a tree by who spawned whom, and for each hub the state
of its loop and the watchers and callbacks that are waiting on it.  Its output is for
people; its format may change.
"""
import functools
import gc
import pprint
import sys
import threading
import time
import traceback
# the OS thread's id (sys._current_frames' key) even under monkey patching
from _thread import get_ident as _get_thread_ident

from stolon._core import getcurrent, greenlet
from stolon.hub import Hub
from stolon.loop import callback as _callback_type
from stolon.loop import watcher as _watcher_type

__all__ = ["format_run_info", "print_run_info", "GreenletTree", "wrap_errors", "assert_switches"]

_RULE = "*" * 80


class wrap_errors:
    """``wrap_errors(errors, func)``: a callable like ``func`` that returns, instead
    of raising, any exception that is an instance of ``errors`` (a class or a tuple of
    classes).  Its ``str``, ``repr`` and other attributes are those of ``func``."""

    def __init__(self, errors, func):
        self.__errors = errors
        self.__func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args, **kwargs):
        try:
            return self.__func(*args, **kwargs)
        except self.__errors as ex:
            return ex

    def __str__(self):
        return str(self.__func)

    def __repr__(self):
        return repr(self.__func)

    def __getattr__(self, name):
        return getattr(self.__func, name)


def print_run_info(thread_stacks=True, greenlet_stacks=True, limit=None, file=None):
    """Print ``format_run_info()``'s lines to ``file`` (default ``sys.stderr``)."""
    lines = format_run_info(thread_stacks=thread_stacks, greenlet_stacks=greenlet_stacks,
                            limit=limit)
    if file is None:
        file = sys.stderr
    for line in lines:
        print(line, file=file)


def format_run_info(thread_stacks=True, greenlet_stacks=True, limit=None,
                    current_thread_ident=None):
    """A list of text lines describing the threads, the greenlets and the hubs' loops
    of this process.  ``thread_stacks`` / ``greenlet_stacks``: include the stacks of
    threads / of the current thread's greenlets; ``limit``: passed to
    ``traceback.format_stack``; ``current_thread_ident`` marks a thread as CURRENT
    (default: the calling thread)."""
    if current_thread_ident is None:
        current_thread_ident = _get_thread_ident()
    lines = []
    _format_threads(lines, thread_stacks, limit, current_thread_ident)
    objects = gc.get_objects()
    glets = [ob for ob in objects if isinstance(ob, greenlet) and not ob.dead]
    _format_greenlets(lines, glets, greenlet_stacks, limit)
    _format_loops(lines, glets, objects)
    return lines


def _format_threads(lines, thread_stacks, limit, current_thread_ident):
    names = {th.ident: th.name for th in threading.enumerate()}
    lines.append(_RULE)
    lines.append("* Threads")
    for ident, frame in sys._current_frames().items():
        lines.append(_RULE)
        name = names.get(ident)
        if ident == current_thread_ident:
            name = "%s) (CURRENT" % (name,)
        lines.append("Thread 0x%x (%s)\n" % (ident, name))
        if thread_stacks:
            lines.append("".join(traceback.format_stack(frame, limit)))
        else:
            lines.append("\t...stack elided...")
    del frame


def _format_greenlets(lines, glets, greenlet_stacks, limit):
    lines.append(_RULE)
    lines.append("* Greenlets")
    lines.append(_RULE)
    roots, _ = GreenletTree._grow(glets)
    details = {"running_stacks": greenlet_stacks, "running_stack_limit": limit}
    for tree in sorted(roots, key=lambda t: "" if t.is_current_tree else repr(t.greenlet)):
        lines.append("---- Thread boundary")
        # the stacks of other threads' greenlets cannot be read safely from here
        lines.extend(tree.format_lines(
            details if tree.is_current_tree else dict(details, running_stacks=False)))


def _format_loops(lines, glets, objects):
    hubs = [g for g in glets if isinstance(g, Hub) and g.loop is not None]
    lines.append(_RULE)
    lines.append("* Hubs and their loops")
    lines.append(_RULE)
    watchers = [ob for ob in objects if isinstance(ob, _watcher_type)]
    for hub in hubs:
        loop = hub.loop
        lines.append(repr(hub))
        try:
            lines.append(" :    Loop: backend=%s default=%s activecnt=%s pendingcnt=%s iteration=%s"
                         % (loop.backend, loop.default, loop.activecnt, loop.pendingcnt,
                            loop.iteration))
        except Exception as ex:     # a loop that belongs to a busy thread, or destroyed
            lines.append(" :    Loop: unavailable (%r)" % (ex,))
            continue
        for watcher in watchers:
            try:
                if watcher.loop is loop and (watcher.active or watcher.pending):
                    lines.append(" :    " + _describe_watcher(watcher))
            except Exception as ex:     # the dump must go on whatever one watcher does
                lines.append(" :    %s unavailable (%r)" % (type(watcher).__name__, ex))
    pending = [ob for ob in objects if isinstance(ob, _callback_type) and ob.pending]
    if pending:
        lines.append("Pending callbacks (%d):" % len(pending))
        lines.extend(" :    %s args=%s" % (cb.callback, _short(cb.args)) for cb in pending)


def _describe_watcher(watcher):
    state = ("active " if watcher.active else "") + ("pending " if watcher.pending else "")
    return "%s %s%sref=%s callback=%s args=%s" % (
        type(watcher).__name__, state, "" if watcher.ref else "unref'd ",
        watcher.ref, watcher.callback, _short(watcher.args))


def _short(value, width=120):
    text = pprint.saferepr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _stack_lines(stack, limit):
    """Text of a stack given as a frame, or as gevent's frame-like spawning stack, or
    as a list of ``FrameSummary``."""
    if stack is None:
        return []
    if hasattr(stack, "f_code"):
        return "".join(traceback.format_stack(stack, limit)).splitlines()
    return "".join(traceback.format_list(stack)).splitlines()


class GreenletTree:
    """A greenlet and the trees of the greenlets it spawned.  A ``stolon.Greenlet``
    hangs under its ``spawning_greenlet``; other greenlets under their root greenlet
    (the thread's main greenlet).  ``str()`` gives the shape; ``format()`` adds each
    greenlet's parent and stacks."""

    #: The greenlet this tree represents.
    greenlet = None
    #: True for the tree of the current thread's main greenlet.
    is_current_tree = False

    DEFAULT_DETAILS = {"running_stacks": True, "running_stack_limit": None,
                       "spawning_stacks": True}

    def __init__(self, greenlet):
        self.greenlet = greenlet
        self.child_trees = []

    def add_child(self, tree):
        if tree is not self:
            self.child_trees.append(tree)

    @property
    def root(self):
        return self.greenlet.parent is None

    def __getattr__(self, name):
        return getattr(self.greenlet, name)

    @classmethod
    def forest(cls):
        """One tree per thread that has greenlets."""
        return cls._grow(_live_greenlets())[0]

    @classmethod
    def current_tree(cls):
        """The tree of the current thread."""
        return cls._grow(_live_greenlets())[1]

    @classmethod
    def _grow(cls, glets):
        current_root = _root_of(getcurrent())
        trees = {current_root: cls(current_root)}
        trees[current_root].is_current_tree = True
        roots = [trees[current_root]]
        alive = set(glets)
        for glet in glets:
            spawner = _spawner_of(glet)
            if spawner is None or spawner not in alive:
                spawner = _root_of(glet)
            for member in (spawner, glet):
                if member not in trees:
                    trees[member] = cls(member)
                    if member.parent is None:
                        roots.append(trees[member])
            trees[spawner].add_child(trees[glet])
        return roots, trees[current_root]

    def format_lines(self, details=True):
        """The tree as a list of lines; ``details`` is a bool or a dict that overrides
        keys of ``DEFAULT_DETAILS``."""
        if isinstance(details, dict):
            details = dict(self.DEFAULT_DETAILS, **details)
        elif details:
            details = dict(self.DEFAULT_DETAILS)
        else:
            details = {}
        return self._render(details)

    def format(self, details=True):
        return "\n".join(self.format_lines(details))

    def __str__(self):
        return self.format(False)

    def _render(self, details):
        glet = self.greenlet
        lines = [self._label()]
        data = []
        if details:
            data.append("Parent: " + repr(glet.parent))
            if glet and details.get("running_stacks"):
                frame = sys._getframe(1) if glet is getcurrent() else glet.gr_frame
                data.append("Running:")
                data.extend("  " + line for line in
                            _stack_lines(frame, details.get("running_stack_limit")))
            spawned_at = getattr(glet, "spawning_stack", None)
            if spawned_at is not None and details.get("spawning_stacks"):
                data.append("Spawned at:")
                data.extend("  " + line for line in _stack_lines(spawned_at, None))
            tree_locals = getattr(glet, "spawn_tree_locals", None)
            spawner = _spawner_of(glet)
            if tree_locals and tree_locals is not getattr(spawner, "spawn_tree_locals", None):
                data.append("Spawn Tree Locals")
                data.extend(pprint.pformat(tree_locals).splitlines())
        lines.extend(" :    " + line for line in data)
        children = self.child_trees
        for index, child in enumerate(children):
            last = index == len(children) - 1
            child_lines = child._render(details)
            lines.append(" +--- " + child_lines[0])
            lines.extend(("      " if last else " |    ") + line for line in child_lines[1:])
        return lines

    def _label(self):
        glet = self.greenlet
        label = repr(glet)
        if glet:
            return label
        ready = getattr(glet, "ready", None)
        if ready is not None and ready():
            if glet.value is not None:
                return label + "; finished with value " + repr(glet.value)[:30]
            if glet.exception is not None:
                return label + "; finished with exception " + repr(glet.exception)
            return label + "; finished"
        return label + "; not running"


def _live_greenlets():
    return [ob for ob in gc.get_objects() if isinstance(ob, greenlet) and not ob.dead]


def _root_of(glet):
    while glet.parent is not None:
        glet = glet.parent
    return glet


def _spawner_of(glet):
    """The greenlet that spawned ``glet``, if it is a Greenlet and that one is alive."""
    spawning = getattr(glet, "spawning_greenlet", None)
    return spawning() if spawning is not None else None


# -- assert_switches ------------------------------------------------------------------------

class _FailedToSwitch(AssertionError):
    """The body of an ``assert_switches`` block did not switch (soon enough)."""


class assert_switches:
    """A context manager that fails (``AssertionError``) if its body never switches
    greenlets: a check, for tests and debugging, that code is cooperative.

    ``max_blocking_time``: the body may run without switching, but not for longer than
    this many seconds at a time (each stretch counts, the last one up to the end of
    the block).  ``hub_only``: with ``max_blocking_time``, only switches into the hub
    end a stretch (switching among other greenlets does not let the loop run).

    Nothing is checked if the body raises.  The error's message says how long the
    block took, the limit, and which greenlet blocked, with its stack and the run
    info of ``format_run_info``.  (gevent measures ``max_blocking_time`` differently:
    from the start of the block to its last switch, or to the last entry into the
    hub; a long final stretch can then go unreported.)::

        with assert_switches():
            sock.recv(1)            # parks: passes

        with assert_switches(max_blocking_time=0.1):
            time.sleep(0.5)         # never switches, too long: fails
    """

    hub = None
    tracer = None
    _entered = None

    def __init__(self, max_blocking_time=None, hub_only=False):
        self.max_blocking_time = max_blocking_time
        self.hub_only = hub_only

    def __enter__(self):
        from stolon._tracer import GreenletTracer, SwitchTimer
        from stolon.hub import get_hub
        self.hub = hub = get_hub()
        if self.max_blocking_time:
            self.tracer = SwitchTimer(hub, self.hub_only)
        else:
            self.tracer = GreenletTracer()
        self._entered = time.perf_counter()
        self.tracer.monitor_current_greenlet_blocking()
        return self

    def __exit__(self, typ, value, tb):
        tracer, hub = self.tracer, self.hub
        self.tracer = self.hub = None
        tracer.kill()
        if typ is not None:
            return
        if self.max_blocking_time:
            blocked = tracer.longest_until_now() > self.max_blocking_time
            greenlet = getcurrent()
        else:
            greenlet = tracer.did_block(hub)
            blocked = greenlet is not None
        if not blocked:
            return
        from stolon._tracer import blocking_report
        message = "To the hub" if self.hub_only else "To any greenlet"
        message += " in %.4f seconds" % (time.perf_counter() - self._entered,)
        if self.max_blocking_time:
            message += " (max allowed %.4f seconds)" % (self.max_blocking_time,)
        message += "\n" + "\n".join(blocking_report(hub, greenlet, tracer))
        raise _FailedToSwitch(message)
