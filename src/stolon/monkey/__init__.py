"""stolon.monkey: make the standard library cooperative, in place (gevent.monkey).

Patch as early as possible, in the main thread, while the program is single-threaded,
ideally before any other import::

    from stolon import monkey
    monkey.patch_all()

``patch_all()`` calls every ``patch_*`` function below that its arguments enable; each
replaces attributes of a standard module with those of the stolon module of the same
name, remembering the originals (``get_original``, ``is_module_patched``,
``is_object_patched``, ``saved``).  Patching is idempotent: calling again patches only
what was not patched yet.  ``python -m stolon.monkey script.py`` runs a script
after ``patch_all()`` (see ``main``).

Events and plugins, as gevent's: ``patch_all`` sends ``GeventWillPatchAllEvent``
(``DoNotPatch`` cancels the call), a will/did pair of module events per patched
module, then ``GeventDidPatchBuiltinModulesEvent`` (the time to patch third-party
libraries) and ``GeventDidPatchAllEvent``, to ``stolon.events`` subscribers and to
the entry points of gevent's groups (``gevent.plugins.monkey.will_patch_all``, ...)
and stolon's twins (``stolon.plugins.monkey...``).  A ``patch_*`` function whose
patch a subscriber vetoes with ``DoNotPatch`` returns False.
"""
import functools
import sys

from stolon.monkey import _module
from stolon.monkey._module import BadImplements, is_do_not_patch, notify_patch, patch_module
from stolon.monkey._module import patch_stdlib_module as _patch_module
from stolon.monkey._state import (MonkeyPatchWarning, get_original, is_anything_patched,
                                  is_module_patched, is_object_patched, patch_item,
                                  remove_item, saved)
from stolon.monkey._state import issue_warnings as _issue_warnings
from stolon.monkey._state import queue_warning as _queue_warning

__all__ = ["patch_all", "patch_builtins", "patch_dns", "patch_os", "patch_queue",
           "patch_select", "patch_selectors", "patch_signal", "patch_socket", "patch_ssl", "patch_subprocess",
           "patch_sys", "patch_thread", "patch_time", "get_original", "is_module_patched",
           "is_object_patched", "patch_module", "main", "MonkeyPatchWarning"]


def _vetoed_as_false(patched):
    # a patch_* function returns None when it patched, False when it was vetoed
    return False if patched is None else None


def _ignores_do_not_patch(patch):
    # a DoNotPatch that escapes a patch (from a did-patch subscriber) ends just that
    # patch, which then returns False
    @functools.wraps(patch)
    def patch_unless_vetoed(*args, **kwargs):
        try:
            return patch(*args, **kwargs)
        except BaseException as exc:
            if is_do_not_patch(exc):
                return False
            raise
    return patch_unless_vetoed


@_ignores_do_not_patch
def patch_time():
    """Replace ``time.sleep`` with ``stolon.time.sleep`` (``stolon.sleep``)."""
    return _vetoed_as_false(_patch_module("time"))


@_ignores_do_not_patch
def patch_thread(threading=True, _threading_local=True, Event=True, logging=True,
                 existing_locks=True, _warnings=None):
    """Make threads greenlets: patch ``_thread`` from ``stolon.thread`` and, with
    ``threading``, ``threading`` from ``stolon.threading`` (plus ``threading.Event``
    with ``Event``, and ``logging``'s locks with ``logging`` if logging is imported);
    with ``_threading_local``, ``_threading_local.local`` becomes ``stolon.local.local``.
    With ``existing_locks`` (and a single running thread), RLocks and import locks held
    now get the current greenlet as owner, and ``concurrent.futures``' fork lock is
    replaced.

    Using ``multiprocessing`` queues (and so ``ProcessPoolExecutor``) after this hangs,
    as it does under gevent.  ``_thread`` and ``threading`` are patched together or not
    at all: a ``DoNotPatch`` for either (from its will-patch event) makes this return
    False with both untouched (gevent would patch ``_thread`` alone, and the interpreter
    could then not exit)."""
    from stolon.monkey._thread_patch import patch_thread_modules
    pending = [] if _warnings is None else _warnings
    # as gevent, the did-patch events of _thread and threading wait until the threads
    # are all set up (and name the modules 'thread' and 'threading')
    deferred = _module.defer_did_events()
    try:
        patched = patch_thread_modules(threading=threading, _threading_local=_threading_local,
                                       Event=Event, logging=logging,
                                       existing_locks=existing_locks, _warnings=pending)
    finally:
        _module.stop_deferring_did_events()
    _module.send_did_events(deferred, pending)
    if _warnings is None:
        _issue_warnings(pending)
    if not patched:
        return False


@_ignores_do_not_patch
def patch_socket(dns=True, aggressive=True):
    """Replace ``socket.socket`` and the other names of ``stolon.socket.__implements__``
    with the cooperative ones; without ``dns``, leave the name resolution functions
    (``stolon.socket.__dns__``) alone."""
    from stolon import socket
    items = socket.__implements__
    if not dns:
        items = [name for name in items if name not in socket.__dns__]
    if _patch_module("socket", items=items) is None:
        return False
    if aggressive and "ssl" not in socket.__implements__:
        remove_item(sys.modules["socket"], "ssl")


@_ignores_do_not_patch
def patch_dns():
    """Replace the name resolution functions of ``socket`` (``getaddrinfo``,
    ``gethostbyname``, ...) with ones that use the hub's resolver."""
    from stolon import socket
    return _vetoed_as_false(_patch_module("socket", items=socket.__dns__))


@_ignores_do_not_patch
def patch_select(aggressive=True):
    """Replace ``select.select`` and ``select.poll``; with ``aggressive``, remove the
    blocking ``epoll``, ``kqueue``, ``kevent`` and ``devpoll``."""
    def remove_blocking(target):
        for name in ("epoll", "kqueue", "kevent", "devpoll"):
            remove_item(target, name)
    return _vetoed_as_false(_patch_module("select",
                                          _after_copy=remove_blocking if aggressive else None))


@_ignores_do_not_patch
def patch_selectors(aggressive=True):
    """Make ``selectors.DefaultSelector`` ``stolon.selectors.GeventSelector``, and the
    select- and poll-based selectors use the cooperative functions; with
    ``aggressive``, remove ``EpollSelector``, ``KqueueSelector`` and
    ``DevpollSelector``.  ``patch_all(select=...)`` controls this too."""
    from stolon.select import poll, select
    from stolon.selectors import DefaultSelector

    def make_cooperative(selectors):
        select_selector = selectors.SelectSelector
        if hasattr(select_selector, "_select") and not getattr(select_selector._select,
                                                               "_stolon_monkey", False):
            # a plain Python function stored on the class would be bound as a method
            def _select(self, *args, **kwargs):
                return select(*args, **kwargs)
            _select._stolon_monkey = True
            patch_item(select_selector, "_select", _select)
        if aggressive:
            for name in ("EpollSelector", "KqueueSelector", "DevpollSelector"):
                remove_item(selectors, name)
            selectors.DefaultSelector = DefaultSelector
        poll_selector = getattr(selectors, "PollSelector", None)
        if poll_selector is not None and hasattr(poll_selector, "_selector_cls"):
            poll_selector._selector_cls = poll
    return _vetoed_as_false(_patch_module("selectors", _after_copy=make_cooperative))


@_ignores_do_not_patch
def patch_queue():
    """Replace ``queue.Queue``, ``PriorityQueue``, ``LifoQueue`` and ``SimpleQueue``
    with the cooperative queues."""
    return _vetoed_as_false(_patch_module("queue"))


@_ignores_do_not_patch
def patch_os():
    """Patch ``os`` from ``stolon.os`` (``fork``, and ``waitpid`` where it is
    cooperative).  Use it with ``patch_signal`` so that SIGCHLD handling and
    ``waitpid`` agree; ``patch_all`` does both."""
    return _vetoed_as_false(_patch_module("os"))


@_ignores_do_not_patch
def patch_signal():
    """Patch ``signal`` from ``stolon.signal``, so that ``signal.signal`` works with a
    patched ``os``."""
    return _vetoed_as_false(_patch_module("signal"))


@_ignores_do_not_patch
def patch_subprocess():
    """Replace ``subprocess.Popen``, ``call``, ``check_call``, ``check_output``,
    ``run`` ... with the cooperative versions of ``stolon.subprocess``."""
    return _vetoed_as_false(_patch_module("subprocess"))


def _modules_referring_to(obj, excluded_names):
    # module globals (a dict with a __name__) that name obj, and classes derived from it
    import gc
    modules = set()
    subclasses = set()
    for referrer in gc.get_referrers(obj):
        if isinstance(referrer, dict) and "__name__" in referrer:
            if referrer["__name__"] in excluded_names:
                continue
            if any(value is obj for value in referrer.values()):
                modules.add((referrer["__name__"], referrer.get("__file__", "<unknown>")))
        elif (isinstance(referrer, type) and obj in referrer.__bases__
              and not referrer.__module__.startswith("stolon.")):
            subclasses.add(referrer)
    return modules, subclasses


@_ignores_do_not_patch
def patch_ssl(_warnings=None, _first_time=True):
    """Patch ``ssl`` from ``stolon.ssl`` (``SSLContext``, ``SSLSocket``, the wrapping
    functions).  Only useful with ``patch_socket``.  Patch before ``ssl`` is imported:
    otherwise a MonkeyPatchWarning names the modules that already took the original
    ``SSLContext`` (they stay unpatched)."""
    ssl_before = sys.modules.get("ssl")
    original_context = getattr(ssl_before, "SSLContext", None) if _first_time else None
    if _patch_module("ssl", _warnings=_warnings) is None:
        return False
    if original_context is None:
        return None
    modules, subclasses = _modules_referring_to(
        original_context, ("ssl", "stolon.ssl", "stolon._ssl", "stolon._sslcommon"))
    if not (modules or subclasses):
        return
    message = ("Monkey-patching ssl after ssl has already been imported may lead to "
               "errors, including RecursionError. Please monkey-patch earlier. "
               "See https://github.com/gevent/gevent/issues/1016. ")
    if modules:
        message += "Modules that had direct imports (NOT patched): %s. " % (
            ["%s (%s)" % module for module in sorted(modules)],)
    if subclasses:
        message += "Subclasses (NOT patched): %s. " % ([str(cls) for cls in subclasses],)
    _queue_warning(message, _warnings)


@_ignores_do_not_patch
def patch_sys(stdin=True, stdout=True, stderr=True):
    """Does nothing, as in gevent: cooperative standard streams hang the interpreter at
    exit.  ``patch_all`` never calls it."""


@_ignores_do_not_patch
def patch_builtins():
    """Does nothing: Python 3's imports already take per-module locks."""


@_ignores_do_not_patch
def patch_contextvars():
    """Does nothing: every greenlet has its own ``contextvars`` context."""


_PATCH_ALL_SETTINGS = "_stolon_saved_patch_all_module_settings"


def _settings_to_apply(settings, pending):
    """The settings of this ``patch_all`` call that add to what earlier calls did."""
    done = saved.setdefault(_PATCH_ALL_SETTINGS, {})
    first_time = not done
    if not first_time and done != settings:
        _queue_warning("Patching more than once will result in the union of all True"
                       " parameters being patched", pending)
    to_apply = {}
    for name, value in settings.items():
        if name not in done:
            to_apply[name] = done[name] = value
        elif value and not done[name]:
            to_apply[name] = done[name] = True
    return first_time, to_apply


def patch_all(socket=True, dns=True, time=True, select=True, thread=True, os=True, ssl=True,
              subprocess=True, sys=False, aggressive=True, Event=True, builtins=True,
              signal=True, queue=True, contextvars=True, **kwargs):
    """Do every patch that the arguments enable (all but ``sys`` by default).  Calling
    again only adds patches (a MonkeyPatchWarning says so if the arguments differ);
    nothing is ever unpatched.  ``kwargs`` are for plugins: the patch_all events carry
    them.  Returns True if anything was patched, False if a subscriber cancelled the
    call, None if there was nothing left to patch."""
    settings = dict(socket=socket, dns=dns, time=time, select=select, thread=thread, os=os,
                    ssl=ssl, subprocess=subprocess, sys=sys, aggressive=aggressive,
                    Event=Event, builtins=builtins, signal=signal, queue=queue,
                    contextvars=contextvars)
    pending = []
    first_time, to_apply = _settings_to_apply(settings, pending)
    if not to_apply:
        _issue_warnings(pending)
        return None
    from stolon import events
    try:
        notify_patch(events.GeventWillPatchAllEvent(to_apply, kwargs), pending)
    except events.DoNotPatch:
        return False
    enabled = to_apply.get
    if enabled("signal") and not enabled("os"):
        _queue_warning("Patching signal but not os will result in SIGCHLD handlers"
                       " installed after this not being called and os.waitpid may not"
                       " function correctly if stolon.subprocess is used. This may raise an"
                       " error in the future.", pending)
    # order matters: thread before time (threading's own imports need the real sleep)
    if enabled("os"):
        patch_os()
    if enabled("thread"):
        patch_thread(Event=settings["Event"], _warnings=pending)
    if enabled("time"):
        patch_time()
    if enabled("socket"):
        patch_socket(dns=settings["dns"], aggressive=settings["aggressive"])
    if enabled("select"):
        patch_select(aggressive=settings["aggressive"])
        patch_selectors(aggressive=settings["aggressive"])
    if enabled("ssl"):
        patch_ssl(_warnings=pending, _first_time=first_time)
    if enabled("subprocess"):
        patch_subprocess()
    if enabled("signal"):
        patch_signal()
    if enabled("queue"):
        patch_queue()
    notify_patch(events.GeventDidPatchBuiltinModulesEvent(to_apply, kwargs), pending)
    notify_patch(events.GeventDidPatchAllEvent(to_apply, kwargs), pending)
    _issue_warnings(pending)
    return True


def __getattr__(name):
    # main lives in its own module, imported only when asked for
    if name == "main":
        from stolon.monkey._main import main
        return main
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
