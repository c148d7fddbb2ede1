"""Copying a stolon module's attributes over a standard module's.

A source module names what it replaces in ``__implements__`` (and, if the standard
module's name differs from its own, names that in ``__target__``).  It may define the
hooks gevent's modules define, so that modules written for either work here:

* ``_gevent_will_monkey_patch(target_module, items, warn)`` and
  ``_gevent_did_monkey_patch(target_module, items, warn)``, called before and after
  the attributes are copied (``warn(message)`` queues a MonkeyPatchWarning);
* ``_gevent_do_monkey_patch(request)``, which does the copying itself instead; the
  ``PatchRequest`` it gets has ``target_module``, ``source_module``, ``items``,
  ``patch_kwargs``, ``default_patch_items()``, ``remove_item()`` and ``get_original``.

Around the copy, ``stolon.events`` subscribers and plugins get gevent's events: a
``GeventWillPatchModuleEvent`` after the *will* hook (``DoNotPatch`` from either
leaves the module unpatched) and a ``GeventDidPatchModuleEvent`` after the *did* hook.
"""
import importlib
import sys

from stolon.monkey._state import get_original, patch_item, queue_warning, remove_item

__all__ = ["patch_module", "PatchRequest", "BadImplements", "will_patch_stdlib_modules"]


def notify_patch(event, _warnings=None):
    """Send a monkey-patching event to ``stolon.events`` subscribers and plugins (they
    may raise ``DoNotPatch``); ``event._warnings`` is the list of pending warnings."""
    from stolon.events import notify_and_call_entry_points
    event._warnings = _warnings
    notify_and_call_entry_points(event)


def is_do_not_patch(exc):
    """Whether ``exc`` is a ``stolon.events.DoNotPatch``."""
    events = sys.modules.get("stolon.events")      # it exists only once that is imported
    return events is not None and isinstance(exc, events.DoNotPatch)


# While a list, patch_stdlib_module appends (name, source, target) to it instead of
# sending the did-patch event: patch_thread sends those once it is all done.
_deferred_did_events = None


def defer_did_events():
    """Start collecting did-patch events instead of sending them; returns the list
    that collects them, for ``send_did_events``."""
    global _deferred_did_events
    _deferred_did_events = []
    return _deferred_did_events


def stop_deferring_did_events():
    global _deferred_did_events
    _deferred_did_events = None


def send_did_events(deferred, _warnings=None):
    """Send the did-patch events collected in ``deferred``, in order."""
    if deferred:
        from stolon.events import GeventDidPatchModuleEvent
        for name, source, target in deferred:
            notify_patch(GeventDidPatchModuleEvent(name, source, target), _warnings)


class BadImplements(AttributeError):
    """The source module has no usable ``__implements__`` and no items were given."""

    def __init__(self, module):
        AttributeError.__init__(self, "Module %r has a bad or missing value for __implements__"
                                % (module,))


class PatchRequest:
    """What one ``patch_module`` call asks for, as given to a source module's
    ``_gevent_do_monkey_patch``."""

    get_original = staticmethod(get_original)

    def __init__(self, target_module, source_module, items, patch_kwargs):
        self.target_module = target_module
        self.source_module = source_module
        self.items = items
        self.patch_kwargs = patch_kwargs or {}

    def __repr__(self):
        return "<%s target=%r source=%r items=%r kwargs=%r>" % (
            type(self).__name__, self.target_module, self.source_module, self.items,
            self.patch_kwargs)

    def default_patch_items(self):
        """Copy every item from the source module to the target module."""
        target, source = self.target_module, self.source_module
        for name in self.items:
            patch_item(target, name, getattr(source, name))

    def remove_item(self, target_module, *items):
        """Delete ``items`` from ``target_module`` (or, given only names, from the
        target module), recording the originals."""
        if isinstance(target_module, str):
            items = (target_module,) + items
            target_module = self.target_module
        for name in items:
            remove_item(target_module, name)


def _call_hook(source_module, when, target_module, items, pending):
    hook = getattr(source_module, "_gevent_%s_monkey_patch" % when, None)
    if hook is not None:
        hook(target_module, items, lambda message: queue_warning(message, pending))


def _items_of(source_module, items):
    if items is None:
        items = getattr(source_module, "__implements__", None)
        if items is None:
            raise BadImplements(source_module)
    return items


def _will_patch(target_module, source_module, items, _warnings, call_hook=True, notify=True):
    """The source's will hook, then the will-patch event: False if either raised
    ``DoNotPatch``."""
    try:
        if call_hook:
            _call_hook(source_module, "will", target_module, items, _warnings)
        if notify:
            from stolon.events import GeventWillPatchModuleEvent
            notify_patch(GeventWillPatchModuleEvent(target_module.__name__, source_module,
                                                    target_module, items), _warnings)
    except BaseException as exc:
        if is_do_not_patch(exc):
            return False
        raise
    return True


def patch_module(target_module, source_module, items=None, _warnings=None,
                 _patch_kwargs=None, _notify_will_subscribers=True,
                 _notify_did_subscribers=True, _call_hooks=True, _after_copy=None,
                 _will_done=False):
    """Replace attributes of ``target_module`` with the attributes of the same names
    of ``source_module``: ``items``, or the source's ``__implements__``.  The source's
    hooks and the events (see the module docstring) come around the copy; gevent's
    private switches turn them off (``_call_hooks``, ``_notify_will_subscribers``,
    ``_notify_did_subscribers``), and ``_will_done`` skips the will step, which
    ``will_patch_stdlib_modules`` did.  Returns True, or False if a hook or a
    subscriber raised ``DoNotPatch``."""
    items = _items_of(source_module, items)
    if not _will_done and not _will_patch(target_module, source_module, items, _warnings,
                                          _call_hooks, _notify_will_subscribers):
        return False
    request = PatchRequest(target_module, source_module, items, _patch_kwargs)
    do_patch = getattr(source_module, "_gevent_do_monkey_patch", None)
    if do_patch is None:
        request.default_patch_items()
    else:
        do_patch(request)
    if _after_copy is not None:
        _after_copy(target_module)
    if _call_hooks:
        _call_hook(source_module, "did", target_module, items, _warnings)
    if _notify_did_subscribers:
        from stolon.events import GeventDidPatchModuleEvent
        notify_patch(GeventDidPatchModuleEvent(target_module.__name__, source_module,
                                               target_module), _warnings)
    return True


def source_and_target(name):
    """``(stolon.<name>, the standard module it patches)``; the stolon module is
    imported first, while the standard one is still unpatched."""
    source = importlib.import_module("stolon." + name)
    target = importlib.import_module(getattr(source, "__target__", name))
    return source, target


def will_patch_stdlib_modules(names, _warnings=None):
    """The will step (hook and event) of the standard modules ``names``, all before any
    of them is patched, for modules that only work patched together: ``{name: items}``
    to patch each with (``patch_stdlib_module(name, items, _will_done=True)``), or None
    if one of them was vetoed (then none may be patched)."""
    items_by_name = {}
    for name in names:
        source, target = source_and_target(name)
        items = items_by_name[name] = list(_items_of(source, None))
        if not _will_patch(target, source, items, _warnings):
            return None
    return items_by_name


def patch_stdlib_module(name, items=None, _warnings=None, _patch_kwargs=None,
                        _after_copy=None, _will_done=False):
    """Patch the standard module ``name`` from ``stolon.<name>`` (``_after_copy(target)``
    runs after the copy); returns ``(source, target)``, or None if the patch was vetoed
    (``DoNotPatch``)."""
    source, target = source_and_target(name)
    deferred = _deferred_did_events
    patched = patch_module(target, source, items=items, _warnings=_warnings,
                           _patch_kwargs=_patch_kwargs, _notify_did_subscribers=deferred is None,
                           _after_copy=_after_copy, _will_done=_will_done)
    if not patched:
        return None
    if deferred is not None:
        deferred.append((name, source, target))
    return source, target
