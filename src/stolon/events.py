"""stolon.events: the events stolon publishes, and their subscribers (gevent.events).

At a few interesting moments (monkey patching, and the monitor thread's findings)
stolon builds an event object and hands it to every callable in ``subscribers``, in
order, then to the setuptools entry points registered for that kind of event.  A
subscriber that raises stops the delivery: the exception propagates to the code that
sent the event, and later subscribers do not see it.  A subscriber to a *will patch*
event may raise ``DoNotPatch`` to veto that patch.

When ``zope.event`` is installed, ``subscribers`` and ``notify`` are its own, so that
one list serves both (and gevent plugins written against it); otherwise they are this
module's.  The ``I...`` names are the events' interfaces: ``zope.interface``
interfaces when it is installed, plain marker classes otherwise.  They are built on
first use, so that importing this module (which every ``patch_all`` does) stays cheap.

Entry points: an event whose class has ``ENTRY_POINT_NAME`` (gevent's group name, such
as ``'gevent.plugins.monkey.will_patch_all'``) is also passed to each entry point of
that group and of stolon's twin group (``'stolon.plugins.monkey.will_patch_all'``),
one call per distinct entry point, after the subscribers.  gevent's own entry points
(whose code is in the ``gevent`` package) are skipped: they belong to gevent's
machinery.  Installed distributions are looked over once per process, without
importing ``importlib.metadata`` unless one of them declares such an entry point.
"""
import os
import sys
import threading

__all__ = [
    "subscribers",
    # the monitor thread
    "IEventLoopBlocked",
    "EventLoopBlocked",
    "IMemoryUsageThresholdExceeded",
    "MemoryUsageThresholdExceeded",
    "IMemoryUsageUnderThreshold",
    "MemoryUsageUnderThreshold",
    # the hub
    "IPeriodicMonitorThread",
    "IPeriodicMonitorThreadStartedEvent",
    "PeriodicMonitorThreadStartedEvent",
    # monkey patching
    "IGeventPatchEvent",
    "GeventPatchEvent",
    "IGeventWillPatchEvent",
    "DoNotPatch",
    "GeventWillPatchEvent",
    "IGeventDidPatchEvent",
    "IGeventWillPatchModuleEvent",
    "GeventWillPatchModuleEvent",
    "IGeventDidPatchModuleEvent",
    "GeventDidPatchModuleEvent",
    "IGeventWillPatchAllEvent",
    "GeventWillPatchAllEvent",
    "IGeventDidPatchBuiltinModulesEvent",
    "GeventDidPatchBuiltinModulesEvent",
    "IGeventDidPatchAllEvent",
    "GeventDidPatchAllEvent",
]

try:
    from zope.event import notify, subscribers
except ImportError:
    #: The callables that receive every event, in order (``zope.event.subscribers``
    #: itself when zope.event is installed).  Each takes the event as its only argument.
    subscribers = []

    def notify(event):
        """Pass ``event`` to each subscriber in turn; an exception stops the delivery."""
        for subscriber in subscribers:
            subscriber(event)


def notify_and_call_entry_points(event):
    """``notify(event)``, then call each entry point registered for the event's group."""
    notify(event)
    group = getattr(event, "ENTRY_POINT_NAME", None)
    if group is None:
        return
    plugins = _plugins_by_group.get(group)
    if plugins is None:
        plugins = _plugins_by_group[group] = _find_plugins(group)
    for plugin in plugins:
        plugin.load()(event)


# -- the events ------------------------------------------------------------------------

class PeriodicMonitorThreadStartedEvent:
    """A hub started its monitor thread; ``monitor`` is that thread's
    ``IPeriodicMonitorThread`` (add monitoring functions to it here)."""

    ENTRY_POINT_NAME = "gevent.plugins.hub.periodic_monitor_thread_started"

    def __init__(self, monitor):
        self.monitor = monitor


class EventLoopBlocked:
    """The monitor thread saw ``hub``'s loop blocked for about ``blocking_time``
    seconds by ``greenlet``; ``info`` is the report, a list of lines (subscribers may
    add to it).  Sent in the monitor thread."""

    def __init__(self, greenlet, blocking_time, info, *, hub=None):
        self.greenlet = greenlet
        self.blocking_time = blocking_time
        self.info = info
        self.hub = hub


class _MemoryEvent:
    """What both memory events carry: ``mem_usage`` (bytes used now), ``max_allowed``
    (the configured limit) and ``memory_info`` (psutil's figures)."""

    def __init__(self, mem_usage, max_allowed, memory_info):
        self.mem_usage = mem_usage
        self.max_allowed = max_allowed
        self.memory_info = memory_info

    def __repr__(self):
        return "<%s used=%d max=%d details=%r>" % (type(self).__name__, self.mem_usage,
                                                   self.max_allowed, self.memory_info)


class MemoryUsageThresholdExceeded(_MemoryEvent):
    """The process uses more memory than ``max_memory_usage`` allows, and the usage is
    still growing.  Sent in the monitor thread."""


class MemoryUsageUnderThreshold(_MemoryEvent):
    """Memory usage fell back under the limit after having been over it;
    ``max_memory_usage`` is the usage that was reported then.  Sent in the monitor
    thread."""

    def __init__(self, mem_usage, max_allowed, memory_info, max_usage):
        _MemoryEvent.__init__(self, mem_usage, max_allowed, memory_info)
        self.max_memory_usage = max_usage


class GeventPatchEvent:
    """Something is being monkey-patched: ``source`` holds the replacements,
    ``target`` is what gets patched."""

    def __init__(self, source, target):
        self.source = source
        self.target = target

    def __repr__(self):
        return "<%s source=%r target=%r at %x>" % (type(self).__name__, self.source,
                                                   self.target, id(self))


class DoNotPatch(BaseException):
    """Raised by a subscriber to a *will patch* event: leave that item unpatched."""


class GeventWillPatchEvent(GeventPatchEvent):
    """Sent before a patch; raising ``DoNotPatch`` vetoes it."""


class GeventDidPatchEvent(GeventPatchEvent):
    """Sent after a patch."""


class GeventWillPatchModuleEvent(GeventWillPatchEvent):
    """A standard module is about to be patched: ``module_name`` is its name
    (``target.__name__``); ``target_item_names`` the names to replace (a list that
    may be changed in place, carefully)."""

    ENTRY_POINT_NAME = "gevent.plugins.monkey.will_patch_module"

    def __init__(self, module_name, source, target, items):
        GeventWillPatchEvent.__init__(self, source, target)
        self.module_name = module_name
        self.target_item_names = items


class GeventDidPatchModuleEvent(GeventDidPatchEvent):
    """A standard module has been patched; ``module_name`` names it."""

    ENTRY_POINT_NAME = "gevent.plugins.monkey.did_patch_module"

    def __init__(self, module_name, source, target):
        GeventDidPatchEvent.__init__(self, source, target)
        self.module_name = module_name


class _PatchAllArguments:
    """The ``patch_all`` events: ``patch_all_arguments`` (what this call patches, by
    argument name) and ``patch_all_kwargs`` (its extra keyword arguments), as copies;
    ``source`` and ``target`` are None."""

    def __init__(self, patch_all_arguments, patch_all_kwargs):
        GeventPatchEvent.__init__(self, None, None)
        self._patch_all_arguments = patch_all_arguments
        self._patch_all_kwargs = patch_all_kwargs

    @property
    def patch_all_arguments(self):
        return self._patch_all_arguments.copy()

    @property
    def patch_all_kwargs(self):
        return self._patch_all_kwargs.copy()

    def __repr__(self):
        return "<%s %r at %x>" % (type(self).__name__, self._patch_all_arguments, id(self))


class GeventWillPatchAllEvent(_PatchAllArguments, GeventWillPatchEvent):
    """``patch_all`` is about to patch; raising ``DoNotPatch`` cancels the whole call.
    Module events follow, then ``GeventDidPatchBuiltinModulesEvent`` and
    ``GeventDidPatchAllEvent``."""

    ENTRY_POINT_NAME = "gevent.plugins.monkey.will_patch_all"

    def will_patch_module(self, module_name):
        """The value of ``patch_all``'s argument ``module_name`` in this call (None if
        this call does not set it)."""
        return self._patch_all_arguments.get(module_name)


class GeventDidPatchBuiltinModulesEvent(_PatchAllArguments, GeventDidPatchEvent):
    """``patch_all`` has patched the standard modules: the moment to patch
    third-party libraries."""

    ENTRY_POINT_NAME = "gevent.plugins.monkey.did_patch_builtins"


class GeventDidPatchAllEvent(_PatchAllArguments, GeventDidPatchEvent):
    """``patch_all`` is done, including what subscribers patched."""

    ENTRY_POINT_NAME = "gevent.plugins.monkey.did_patch_all"


# -- the interfaces, built on first use -----------------------------------------------

_INTERFACE_NAMES = frozenset(name for name in __all__ if name[0] == "I" and name[1].isupper())
_interfaces_lock = threading.Lock()


def __getattr__(name):
    if name in _INTERFACE_NAMES:
        with _interfaces_lock:
            if name not in globals():
                _declare_interfaces()
        return globals()[name]
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


class _Attribute:
    """Documents an interface attribute where zope.interface is missing."""

    def __init__(self, doc):
        self.__doc__ = doc


class _Marker:
    """The root of the interfaces where zope.interface is missing."""


def _declare_interfaces():
    try:
        from zope.interface import Attribute, Interface, classImplements
    except ImportError:
        Attribute, Interface, classImplements = _Attribute, _Marker, None

    class IPeriodicMonitorThread(Interface):
        """A hub's monitor thread."""

        def add_monitoring_function(function, period):
            """Call ``function(hub)`` about every ``period`` seconds, in the monitor
            thread (it must not use the cooperative API); a function already added
            gets the new period; a ``period`` of None removes it; ``period`` must be
            positive otherwise."""

    class IPeriodicMonitorThreadStartedEvent(Interface):
        """A hub started its monitor thread."""
        monitor = Attribute("The IPeriodicMonitorThread that started.")

    class IEventLoopBlocked(Interface):
        """The loop was blocked (sent in the monitor thread)."""
        greenlet = Attribute("The greenlet that seemed to block the loop.")
        blocking_time = Attribute("About how long, in seconds, the loop has been blocked.")
        info = Attribute("The report: a list of lines, which subscribers may extend.")
        hub = Attribute("The blocked hub, or None.")

    class IMemoryUsageThresholdExceeded(Interface):
        """Memory usage went over the limit and keeps growing (sent in the monitor
        thread)."""
        mem_usage = Attribute("The process's memory usage, in bytes.")
        max_allowed = Attribute("The configured limit, in bytes.")
        memory_info = Attribute("psutil's memory figures.")

    class IMemoryUsageUnderThreshold(Interface):
        """Memory usage fell back under the limit (sent in the monitor thread)."""
        mem_usage = Attribute("The process's memory usage, in bytes.")
        max_allowed = Attribute("The configured limit, in bytes.")
        max_memory_usage = Attribute("The usage reported by the previous "
                                     "IMemoryUsageThresholdExceeded event.")
        memory_info = Attribute("psutil's memory figures.")

    class IGeventPatchEvent(Interface):
        """The root of the monkey-patching events."""
        source = Attribute("What holds the replacements.")
        target = Attribute("What gets patched.")

    class IGeventWillPatchEvent(IGeventPatchEvent):
        """Before a patch; raising DoNotPatch vetoes it."""

    class IGeventDidPatchEvent(IGeventPatchEvent):
        """After a patch."""

    class IGeventWillPatchModuleEvent(IGeventWillPatchEvent):
        """Before a standard module is patched."""
        module_name = Attribute("The module's name (target.__name__).")
        target_item_names = Attribute("The names to replace; may be changed in place.")

    class IGeventDidPatchModuleEvent(IGeventDidPatchEvent):
        """After a standard module was patched."""
        module_name = Attribute("The module's name.")

    class IGeventWillPatchAllEvent(IGeventWillPatchEvent):
        """Before patch_all patches anything; raising DoNotPatch cancels it."""
        patch_all_arguments = Attribute("patch_all's arguments for this call (a copy).")
        patch_all_kwargs = Attribute("patch_all's extra keyword arguments (a copy).")

        def will_patch_module(module_name):
            """Whether this call patches ``module_name``."""

    class IGeventDidPatchBuiltinModulesEvent(IGeventDidPatchEvent):
        """After patch_all patched the standard modules."""
        patch_all_arguments = Attribute("patch_all's arguments for this call (a copy).")
        patch_all_kwargs = Attribute("patch_all's extra keyword arguments (a copy).")

    class IGeventDidPatchAllEvent(IGeventDidPatchEvent):
        """After patch_all finished."""

    interfaces = dict(locals())
    del interfaces["Attribute"], interfaces["Interface"], interfaces["classImplements"]
    if classImplements is not None:
        implementations = (
            (PeriodicMonitorThreadStartedEvent, IPeriodicMonitorThreadStartedEvent),
            (EventLoopBlocked, IEventLoopBlocked),
            (MemoryUsageThresholdExceeded, IMemoryUsageThresholdExceeded),
            (MemoryUsageUnderThreshold, IMemoryUsageUnderThreshold),
            (GeventPatchEvent, IGeventPatchEvent),
            (GeventWillPatchEvent, IGeventWillPatchEvent),
            (GeventDidPatchEvent, IGeventDidPatchEvent),
            (GeventWillPatchModuleEvent, IGeventWillPatchModuleEvent),
            (GeventDidPatchModuleEvent, IGeventDidPatchModuleEvent),
            (GeventWillPatchAllEvent, IGeventWillPatchAllEvent),
            (GeventDidPatchBuiltinModulesEvent, IGeventDidPatchBuiltinModulesEvent),
            (GeventDidPatchAllEvent, IGeventDidPatchAllEvent),
        )
        for cls, interface in implementations:
            classImplements(cls, interface)
    globals().update(interfaces)


# -- entry points ---------------------------------------------------------------------

_PLUGIN_GROUP_PREFIXES = ("gevent.plugins.", "stolon.plugins.")
_plugins_by_group = {}      # group -> the entry points to call, found on first use
_declared = []              # [the plugin groups declared by installed distributions]


def _is_gevents_own(value):
    module = value.split(":", 1)[0].strip()
    return module == "gevent" or module.startswith("gevent.")


def _find_plugins(group):
    groups = [group]
    if group.startswith("gevent."):
        groups.append("stolon." + group[len("gevent."):])
    if not _declared:
        _declared.append(_declared_plugin_groups())
    declared = _declared[0]
    if declared is not None:
        groups = [name for name in groups if name in declared]
        if not groups:
            return ()
    from importlib import metadata
    found = []
    seen = set()
    for name in groups:
        for entry_point in _entry_points(metadata, name):
            value = entry_point.value
            if value not in seen and not _is_gevents_own(value):
                seen.add(value)
                found.append(entry_point)
    return tuple(found)


def _entry_points(metadata, group):
    if sys.version_info >= (3, 10):
        return metadata.entry_points(group=group)
    return metadata.entry_points().get(group, ())


class _CannotTell(Exception):
    pass


def _declared_plugin_groups():
    """The plugin groups (gevent's and stolon's) that some distribution on sys.path
    declares an entry point in, read from the ``entry_points.txt`` files directly; None
    where that reading could miss some (zip archives on sys.path, or distributions
    that another finder provides): importlib.metadata must look then."""
    groups = set()
    try:
        for path in _entry_point_files():
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, ValueError):
                continue
            _add_plugin_groups(text, groups)
    except _CannotTell:
        return None
    return groups


def _entry_point_files():
    from importlib.machinery import PathFinder
    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            raise _CannotTell
    for entry in sys.path:
        directory = entry or os.curdir
        if not isinstance(directory, str):
            raise _CannotTell
        try:
            names = os.listdir(directory)
        except NotADirectoryError:
            raise _CannotTell from None
        except OSError:
            continue
        if directory.endswith(".egg"):
            yield os.path.join(directory, "EGG-INFO", "entry_points.txt")
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                yield os.path.join(directory, name, "entry_points.txt")


def _add_plugin_groups(text, groups):
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            section = line.strip("[]").strip()
        elif (section is not None and section.startswith(_PLUGIN_GROUP_PREFIXES)
              and "=" in line and not _is_gevents_own(line.split("=", 1)[1])):
            groups.add(section)
