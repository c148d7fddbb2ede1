"""stolon._greenlet: Greenlet, the cooperative task, with spawn, spawn_later, joinall
and killall (imported as ``stolon.greenlet`` too, like ``gevent.greenlet``).

A Greenlet is a ``stolon.greenlet`` whose parent is its thread's hub.  ``start()``
queues its first switch on the loop's callback FIFO, so greenlets spawned in a row
start in spawn order.  When it finishes it records a value or an exception, and the
callbacks registered with ``rawlink``/``link`` are called from one hub callback, in
the order they were added.  An exception that escapes ``run`` goes to the hub's
``handle_error`` (printed; SystemExit and KeyboardInterrupt reach the main greenlet).

``_start_event`` tells where a Greenlet is in its life:

    None               never started
    callback or timer  started: the loop will switch into it
    _START_COMPLETED   run() has begun
    _START_CANCELLED   killed (or thrown into) before it was started

``kill()`` and ``throw()`` before the first switch stop the pending start, so the
greenlet never runs; its outcome (GreenletExit, or the given exception) is recorded
and its links still fire.

Spawning is a hot path (benchmarked against gevent): ``__init__``, ``start``,
``run`` and the link notification do as little as they can.  The state lives in
slots; instances still have a ``__dict__`` (the greenlet type provides it), so
subclasses and users may add attributes as they can on gevent's Greenlet.
"""
import sys
from collections import deque
from heapq import heappop, heappush
from weakref import WeakKeyDictionary
from weakref import ref as wref

from stolon._core import GreenletExit, getcurrent, greenlet
from stolon._hub_primitives import iwait, wait
from stolon._waiter import Waiter
from stolon.exceptions import InvalidSwitchError
from stolon.hub import _get_hub, get_hub
from stolon.timeout import Timeout

__all__ = ["Greenlet", "joinall", "killall", "spawn", "spawn_later"]

_greenlet_throw = greenlet.throw
_greenlet_dead = greenlet.dead.__get__
_sys_exc_info = sys.exc_info

# the outcome of a greenlet that returned (or exited with GreenletExit)
_NO_ERROR = (None, None, None)


class _StartState:
    """Stands in ``_start_event`` once the real start event is over: never pending,
    nothing to stop."""

    __slots__ = ("_what",)
    pending = False
    active = False

    def __init__(self, what):
        self._what = what

    def stop(self):
        pass

    close = stop

    def __repr__(self):
        return "<start %s>" % (self._what,)


_START_COMPLETED = _StartState("completed")
_START_CANCELLED = _StartState("cancelled")


def _run_nothing():
    """The work of a Greenlet created without ``run`` whose class has no ``_run``."""


class _IdentRegistry:
    """Small non-negative integers for live objects of one hub: the smallest free
    number first; a number is free again once its object is gone."""

    __slots__ = ("_registry", "_free")

    def __init__(self):
        self._registry = WeakKeyDictionary()
        self._free = []

    def get_ident(self, obj):
        try:
            return self._registry[obj][0]
        except KeyError:
            pass
        free = self._free
        ident = heappop(free) if free else len(self._registry)
        # the weak reference's callback gives the number back
        self._registry[obj] = (ident, wref(obj, lambda _ref: heappush(free, ident)))
        return ident

    def __len__(self):
        return len(self._registry)


def _ident_registry(hub):
    registry = getattr(hub, "ident_registry", None)
    if registry is None:
        registry = hub.ident_registry = _IdentRegistry()
    return registry


class _GeneratedName:
    """``Greenlet.name``: ``'Greenlet-<minimal_ident>'`` until a name is assigned.  A
    non-data descriptor, so an assigned name (kept in the instance dict) wins."""

    def __get__(self, glet, owner=None):
        if glet is None:
            return self
        return "Greenlet-%d" % (glet.minimal_ident,)


# -- links ---------------------------------------------------------------------------------

class SpawnedLink:
    """A link (see ``Greenlet.link``) that calls its callback in a new greenlet whose
    parent is the hub; called from the hub only."""

    __slots__ = ("callback",)

    def __init__(self, callback):
        if not callable(callback):
            raise TypeError("Expected callable: %r" % (callback,))
        self.callback = callback

    def __call__(self, source):
        greenlet(self.callback, get_hub()).switch(source)

    # unlink(callback) must find the wrapper of callback
    def __hash__(self):
        return hash(self.callback)

    def __eq__(self, other):
        return self.callback == getattr(other, "callback", other)

    def __str__(self):
        return str(self.callback)

    def __repr__(self):
        return repr(self.callback)

    def __getattr__(self, name):
        if name == "callback":
            raise AttributeError(name)
        return getattr(self.callback, name)


class SuccessSpawnedLink(SpawnedLink):
    """A SpawnedLink called only if the greenlet succeeded."""

    __slots__ = ()

    def __call__(self, source):
        if source.successful():
            SpawnedLink.__call__(self, source)


class FailureSpawnedLink(SpawnedLink):
    """A SpawnedLink called only if the greenlet failed."""

    __slots__ = ()

    def __call__(self, source):
        if not source.successful():
            SpawnedLink.__call__(self, source)


# -- the Greenlet --------------------------------------------------------------------------

_spawn_callbacks = None
_spawner_ref = wref(getcurrent())
# stolon.config.track_greenlet_tree, read at the first spawn (None: not read yet; the
# setting puts None back when it is assigned)
_track_tree = None
# spawn_tree_locals of a greenlet made while tracking was off (the property gives None)
_UNTRACKED = object()


def _read_track_tree():
    global _track_tree
    from stolon._config import config
    _track_tree = config.track_greenlet_tree
    return _track_tree


class Greenlet(greenlet):
    """``Greenlet(run=None, *args, **kwargs)``: a greenlet that will run
    ``run(*args, **kwargs)`` (or ``self._run(*args, **kwargs)``, for subclasses) in the
    hub once started, and keeps its outcome: ``value``, ``exception``, ``get()``.

    Attributes: ``args``, ``kwargs``, ``value``, ``name``, ``minimal_ident``,
    ``spawning_greenlet`` (a weak reference to the greenlet that created it),
    ``spawn_tree_locals`` (a dict shared down the spawn tree; children of a main
    greenlet get their own); both are None when ``stolon.config.track_greenlet_tree``
    is off.  ``spawning_stack`` is never captured (None), as in gevent with that
    setting off: walking the stack would double the cost of a spawn.
    """

    # The links: the first one waits in _link, later ones in the _links deque (made
    # when needed); a new link goes to _link only when both are empty, so the order
    # of addition is kept.  Most greenlets have at most one link (a join), and a
    # deque per greenlet would cost as much as a tenth of a spawn (allocation and
    # garbage collector work).
    __slots__ = ("_run", "args", "kwargs", "value", "_start_event", "_notifier",
                 "_link", "_links", "_exc_info", "spawning_greenlet", "_spawn_tree_locals")

    spawning_stack = None
    name = _GeneratedName()
    # rarely set (by repr() and minimal_ident): class defaults, not slots
    _formatted_info = None
    _ident = None

    def __init__(self, run=None, *args, **kwargs):
        global _spawner_ref
        hub = _get_hub()
        if hub is None:
            hub = get_hub()
        # greenlet.__init__ would only set the parent (and parse arguments to do it)
        self.parent = hub
        if run is None:
            try:
                run = self._run
            except AttributeError:     # plain Greenlet(): nothing to run
                run = self._run = _run_nothing
        else:
            self._run = run
        if not callable(run):
            raise TypeError("The run argument or self._run must be callable")
        self.args = args
        self.kwargs = kwargs
        self.value = None
        self._start_event = None
        self._notifier = None
        self._link = None
        self._links = None
        self._exc_info = None
        track = _track_tree
        if track is None:
            track = _read_track_tree()
        if not track:
            self.spawning_greenlet = None
            self._spawn_tree_locals = _UNTRACKED
            return
        spawner = getcurrent()
        spawner_ref = _spawner_ref
        if spawner_ref() is not spawner:
            # greenlets come in batches from one spawner: its weak reference is reused
            spawner_ref = _spawner_ref = wref(spawner)
        self.spawning_greenlet = spawner_ref
        tree_locals = getattr(spawner, "spawn_tree_locals", None)
        if tree_locals is None and spawner.parent is not None:
            # a main greenlet's children each start a tree; anybody else shares theirs
            tree_locals = spawner.spawn_tree_locals = {}
        self._spawn_tree_locals = tree_locals

    @property
    def spawn_tree_locals(self):
        """A dict shared by the greenlets of one spawn tree."""
        tree_locals = self._spawn_tree_locals
        if tree_locals is None:
            tree_locals = self._spawn_tree_locals = {}
        elif tree_locals is _UNTRACKED:
            return None
        return tree_locals

    @spawn_tree_locals.setter
    def spawn_tree_locals(self, value):
        self._spawn_tree_locals = value

    # -- identity ----------------------------------------------------------------------

    @property
    def minimal_ident(self):
        """A small non-negative integer, unique among the live greenlets of this hub
        (reused after a greenlet is gone)."""
        ident = self._ident
        if ident is None:
            ident = self._ident = _ident_registry(self.parent).get_ident(self)
        return ident

    @property
    def loop(self):
        """The loop of the hub this greenlet runs in."""
        return self.parent.loop

    def __repr__(self):
        if self._ident is None and "name" not in self.__dict__:
            name = " "
        else:
            name = ' "%s" ' % (self.name,)
        info = self._formatinfo()
        if info:
            return "<%s%sat %s: %s>" % (type(self).__name__, name, hex(id(self)), info)
        return "<%s%sat %s>" % (type(self).__name__, name, hex(id(self)))

    def _formatinfo(self):
        info = self._formatted_info
        if info is not None:
            return info
        try:
            func = self._run
        except AttributeError:      # finished: the function was let go
            func = _run_nothing
        bound_to = getattr(func, "__self__", None)
        if bound_to is self or func is _run_nothing:
            info = "_run"
        elif bound_to is not None:
            info = repr(func)
        else:
            info = getattr(func, "__name__", "") or repr(func)
        args = [repr(arg)[:50] for arg in self.args]
        args.extend("%s=%s" % (key, repr(value)[:50]) for key, value in self.kwargs.items())
        if args:
            info += "(" + ", ".join(args) + ")"
        # kept: once the greenlet finishes, its function and arguments are let go
        self._formatted_info = info
        return info

    # -- state -------------------------------------------------------------------------

    def __bool__(self):
        """Started and not finished."""
        return self._start_event is not None and self._exc_info is None

    @property
    def started(self):
        return bool(self)

    @property
    def dead(self):
        """True once it will not run again: finished, or killed before it started."""
        event = self._start_event
        if event is None or event is _START_COMPLETED:
            return _greenlet_dead(self)
        if event is not _START_CANCELLED and (event.pending or getattr(event, "active", False)):
            return False
        # killed before it started, or its start was stopped: it never runs.  While
        # the loop switches into it, its start event is already spent.
        return getcurrent() is not self

    def ready(self):
        """True once it has finished (or will never run)."""
        return self._exc_info is not None or self.dead

    def successful(self):
        """True if it finished without an error (GreenletExit counts as success)."""
        return self._exc_info is not None and self._exc_info[1] is None

    @property
    def exception(self):
        """The exception it finished with, or None."""
        return self._exc_info[1] if self._exc_info is not None else None

    @property
    def exc_info(self):
        """``(type, value, traceback)`` of the exception it finished with, or None."""
        exc_info = self._exc_info
        if exc_info is not None and exc_info[0] is not None:
            return exc_info
        return None

    def _raise_exception(self):
        _, value, tb = self._exc_info
        raise value.with_traceback(tb)

    # -- starting ----------------------------------------------------------------------

    def start(self):
        """Schedule it to run in this turn of the loop (once; later calls do nothing)."""
        if self._start_event is None:
            if _spawn_callbacks is not None:
                _call_spawn_callbacks(self)
            self._start_event = self.parent.loop.run_callback(self.switch)

    def start_later(self, seconds):
        """Schedule it to run ``seconds`` from now (once; later calls do nothing)."""
        if self._start_event is None:
            if _spawn_callbacks is not None:
                _call_spawn_callbacks(self)
            timer = self._start_event = self.parent.loop.timer(max(seconds, 0.0))
            timer.start(self.switch)

    @staticmethod
    def add_spawn_callback(callback):
        """Call ``callback(greenlet)`` whenever a Greenlet is started (at most once per
        callback, in no particular order)."""
        global _spawn_callbacks
        if _spawn_callbacks is None:
            _spawn_callbacks = set()
        _spawn_callbacks.add(callback)

    @staticmethod
    def remove_spawn_callback(callback):
        """Undo ``add_spawn_callback`` (nothing happens if it was not added)."""
        global _spawn_callbacks
        if _spawn_callbacks is not None:
            _spawn_callbacks.discard(callback)
            if not _spawn_callbacks:
                _spawn_callbacks = None

    @classmethod
    def spawn(cls, *args, **kwargs):
        """``spawn(function, *args, **kwargs)``: a new started Greenlet."""
        g = cls(*args, **kwargs)
        g.start()
        return g

    @classmethod
    def spawn_later(cls, seconds, *args, **kwargs):
        """``spawn_later(seconds, function, *args, **kwargs)``: a new Greenlet that
        starts ``seconds`` from now."""
        if cls is Greenlet and not args and "run" not in kwargs:
            raise TypeError("")
        g = cls(*args, **kwargs)
        g.start_later(seconds)
        return g

    # -- running -----------------------------------------------------------------------

    def run(self):
        event = self._start_event
        self._start_event = _START_COMPLETED
        if event is not None:
            # a direct switch() may come before the queued start: that must not run it again
            event.close()
        try:
            result = self._run(*self.args, **self.kwargs)
        except:  # noqa: E722 -- every outcome is recorded; errors go to the hub
            self._report_error(_sys_exc_info())
        else:
            # _report_result() and _free(), inlined: every greenlet ends here
            self._exc_info = _NO_ERROR
            self.value = result
            if (self._link is not None or self._links) and self._notifier is None:
                self._notifier = self.parent.loop.run_callback(self._notify_links)
        finally:
            try:
                del self._run
            except AttributeError:
                pass
            self.args = ()
            self.kwargs.clear()

    def _free(self):
        # the function and its arguments may be big; a finished greenlet lets go of them
        try:
            del self._run
        except AttributeError:
            pass
        self.args = ()
        self.kwargs.clear()

    def _report_result(self, result):
        self._exc_info = _NO_ERROR
        self.value = result
        if (self._link is not None or self._links) and self._notifier is None:
            self._notifier = self.parent.loop.run_callback(self._notify_links)

    def _report_error(self, exc_info):
        if isinstance(exc_info[1], GreenletExit):
            self._report_result(exc_info[1])
            return
        self._exc_info = exc_info
        hub = self.parent
        if (self._link is not None or self._links) and self._notifier is None:
            self._notifier = hub.loop.run_callback(self._notify_links)
        hub.handle_error(self, *exc_info)

    # -- killing -----------------------------------------------------------------------

    def _cancel_start(self):
        event = self._start_event
        if event is None:
            event = self._start_event = _START_CANCELLED
        event.close()

    def _handle_death_before_start(self, args):
        # throw() or kill() before the first switch: record the outcome run() never will
        if self._exc_info is not None or not self.dead:
            return
        if len(args) == 1:
            arg = args[0]
            if isinstance(arg, type) and issubclass(arg, BaseException):
                args = (arg, arg(), None)
            else:
                args = (type(arg), arg, None)
        elif not args:
            args = (GreenletExit, GreenletExit(), None)
        if not issubclass(args[0], BaseException):
            args = (BaseException, BaseException(args), None)
        self._report_error(args)

    def _maybe_kill_before_start(self, exception):
        """Cancel a start that has not happened; True if it is dead now (its outcome
        then recorded and its links scheduled)."""
        self._cancel_start()
        dead = self.dead
        if dead:
            self._free()    # a greenlet that survives its kill keeps its function
            if isinstance(exception, tuple) and len(exception) == 3:
                self._handle_death_before_start(exception)
            else:
                self._handle_death_before_start((exception,))
        return dead

    def throw(self, *args):
        """Raise an exception in it now (from the hub only; elsewhere use ``kill``).  An
        unstarted greenlet never runs; its outcome is the exception."""
        self._cancel_start()
        try:
            if not self.dead:
                _greenlet_throw(self, *args)
        finally:
            self._handle_death_before_start(args)

    def kill(self, exception=GreenletExit, block=True, timeout=None):
        """Raise ``exception`` (a class, an instance, or an exc_info triple) in it from
        the hub.  ``block``: wait until it is dead or ``timeout`` passes.  Never
        raises; an unstarted greenlet never runs, but its links still fire."""
        if self._maybe_kill_before_start(exception) or self.ready():
            return
        waiter = Waiter() if block else None
        self.parent.loop.run_callback(_kill, self, exception, waiter)
        if waiter is not None:
            waiter.get()
            self.join(timeout)

    # -- waiting -----------------------------------------------------------------------

    def get(self, block=True, timeout=None):
        """Its return value, or raise the exception it finished with; waits (at most
        ``timeout``, then Timeout) unless ``block`` is false (then Timeout at once)."""
        if not self.ready():
            if not block:
                raise Timeout()
            self._park_until_ready(timeout, "get", quiet=False)
        if self.ready():
            if self.successful():
                return self.value
            self._raise_exception()

    def join(self, timeout=None):
        """Wait until it finishes or ``timeout`` passes; returns None either way."""
        if not self.ready():
            self._park_until_ready(timeout, "join", quiet=True)

    def _park_until_ready(self, timeout, caller, quiet):
        """Link the current greenlet and park it in the hub until this one finishes or
        ``timeout`` passes; the expiry is raised unless ``quiet``.  Woken any other
        way, the link goes with the exception."""
        switch = getcurrent().switch
        self.rawlink(switch)
        timer = Timeout._start_new_or_dummy(timeout)
        try:
            result = self.parent.switch()
            if result is not self:
                raise InvalidSwitchError("Invalid switch into Greenlet.%s(): %r" % (caller, result))
        except Timeout as ex:
            self.unlink(switch)
            if not quiet or ex is not timer:
                raise
        except:  # noqa: E722
            self.unlink(switch)
            raise
        finally:
            timer.cancel()

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        if typ is None:
            try:
                self.join()
            finally:
                self.kill()
        else:
            self.kill((typ, value, tb))

    # -- links -------------------------------------------------------------------------

    def has_links(self):
        """True if a callback waits for it to finish."""
        return self._link is not None or bool(self._links)

    def rawlink(self, callback):
        """Call ``callback(self)`` from the hub once it has finished (at once, in the
        next loop turn, if it already has).  The callback must not raise."""
        if not callable(callback):
            raise TypeError("Expected callable: %r" % (callback,))
        links = self._links
        if links:
            links.append(callback)
        elif self._link is None:
            self._link = callback
        elif links is None:
            self._links = deque((callback,))
        else:
            links.append(callback)
        if self._notifier is None:
            # finished already?  A start still pending answers no without the dead
            # property (waiting for a just-spawned greenlet is the common case)
            event = self._start_event
            if (self._exc_info is not None
                    or (event is not None and not event.pending and self.dead)):
                self._notifier = self.parent.loop.run_callback(self._notify_links)

    def link(self, callback, SpawnedLink=SpawnedLink):
        """Call ``callback(self)`` in a new greenlet once it has finished."""
        self.rawlink(SpawnedLink(callback))

    def link_value(self, callback, SpawnedLink=SuccessSpawnedLink):
        """Like ``link``, only if it finished successfully."""
        self.link(callback, SpawnedLink=SpawnedLink)

    def link_exception(self, callback, SpawnedLink=FailureSpawnedLink):
        """Like ``link``, only if it finished with an error."""
        self.link(callback, SpawnedLink=SpawnedLink)

    def unlink(self, callback):
        """Remove a callback added by ``link`` or ``rawlink`` (if it is there)."""
        link = self._link
        if link is not None and (link is callback or link == callback):
            self._link = None
            return
        links = self._links
        if links and callback in links:
            links.remove(callback)

    def unlink_all(self):
        """Remove every callback."""
        self._link = None
        if self._links:
            self._links.clear()

    def _notify_links(self):
        self._notifier = None
        # a link may add or remove links: take them one at a time, oldest first
        while True:
            link = self._link
            if link is not None:
                self._link = None
            else:
                links = self._links
                if not links:
                    return
                link = links.popleft()
            try:
                link(self)
            except:  # noqa: E722
                self.parent.handle_error((link, self), *_sys_exc_info())


def _call_spawn_callbacks(glet):
    for callback in _spawn_callbacks:
        callback(glet)


def _kill(glet, exception, waiter):
    # a loop callback of Greenlet.kill()
    try:
        if isinstance(exception, tuple) and len(exception) == 3:
            glet.throw(*exception)
        else:
            glet.throw(exception)
    except:  # noqa: E722
        glet.parent.handle_error(glet, *_sys_exc_info())
    if waiter is not None:
        waiter.switch(None)


spawn = Greenlet.spawn
spawn_later = Greenlet.spawn_later


# -- groups of greenlets -------------------------------------------------------------------

def joinall(greenlets, timeout=None, raise_error=False, count=None):
    """Wait for the ``greenlets`` (a sequence with ``len()``) to finish, at most
    ``timeout`` seconds, or until ``count`` of them have.  Returns those that finished,
    in the order they did.  ``raise_error``: raise the first error met instead."""
    if not raise_error:
        return wait(greenlets, timeout=timeout, count=count)
    done = []
    # the with block unlinks the others when an error ends the wait early
    with iwait(greenlets, timeout=timeout, count=count) as ready:
        for glet in ready:
            if getattr(glet, "exception", None) is not None:
                if hasattr(glet, "_raise_exception"):
                    glet._raise_exception()
                raise glet.exception
            done.append(glet)
    return done


def _killall_and_report(greenlets, exception, waiter):
    # a loop callback of killall(block=True): tells who survived the exception
    survivors = []
    for glet in greenlets:
        if not glet.dead:
            try:
                glet.throw(exception)
            except:  # noqa: E722
                glet.parent.handle_error(glet, *_sys_exc_info())
            if not glet.dead:
                survivors.append(glet)
    waiter.switch(survivors)


def _killall(greenlets, exception):
    # a loop callback of killall(block=False)
    for glet in greenlets:
        if not glet.dead:
            try:
                glet.throw(exception)
            except:  # noqa: E722
                glet.parent.handle_error(glet, *_sys_exc_info())


def killall(greenlets, exception=GreenletExit, block=True, timeout=None):
    """Raise ``exception`` in every greenlet of ``greenlets`` (an iterable; Greenlets
    and raw greenlets of this thread's hub).  Unstarted Greenlets never run.
    ``block``: wait until all are dead (those that survive the exception are joined);
    with ``timeout``, raise Timeout if that takes longer."""
    need_killed = []
    for glet in greenlets:
        cancel = getattr(glet, "_maybe_kill_before_start", None)
        if cancel is None or not cancel(exception):
            need_killed.append(glet)
    if not need_killed:
        return
    loop = get_hub().loop
    if not block:
        loop.run_callback(_killall, need_killed, exception)
        return
    waiter = Waiter()
    loop.run_callback(_killall_and_report, need_killed, exception, waiter)
    timer = Timeout._start_new_or_dummy(timeout)
    try:
        survivors = waiter.get()
        if survivors:
            joinall(survivors, raise_error=False)
    finally:
        timer.cancel()
