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
"""
import importlib

from stolon.monkey._state import get_original, patch_item, queue_warning, remove_item

__all__ = ["patch_module", "PatchRequest", "BadImplements"]


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


def patch_module(target_module, source_module, items=None, _warnings=None,
                 _patch_kwargs=None):
    """Replace attributes of ``target_module`` with the attributes of the same names
    of ``source_module``: ``items``, or the source's ``__implements__``.  The source's
    hooks (see the module docstring) run around the copy.  Returns True."""
    if items is None:
        items = getattr(source_module, "__implements__", None)
        if items is None:
            raise BadImplements(source_module)
    _call_hook(source_module, "will", target_module, items, _warnings)
    request = PatchRequest(target_module, source_module, items, _patch_kwargs)
    do_patch = getattr(source_module, "_gevent_do_monkey_patch", None)
    if do_patch is None:
        request.default_patch_items()
    else:
        do_patch(request)
    _call_hook(source_module, "did", target_module, items, _warnings)
    return True


def source_and_target(name):
    """``(stolon.<name>, the standard module it patches)``; the stolon module is
    imported first, while the standard one is still unpatched."""
    source = importlib.import_module("stolon." + name)
    target = importlib.import_module(getattr(source, "__target__", name))
    return source, target


def patch_stdlib_module(name, items=None, _warnings=None, _patch_kwargs=None):
    """Patch the standard module ``name`` from ``stolon.<name>``; returns
    ``(source, target)``."""
    source, target = source_and_target(name)
    patch_module(target, source, items=items, _warnings=_warnings, _patch_kwargs=_patch_kwargs)
    return source, target
