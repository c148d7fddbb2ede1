"""What has been patched: the originals of every replaced attribute, and the queries
and helpers built on them.  Kept free of stolon imports, so that any stolon module can
use ``get_original`` at import time."""
import warnings

__all__ = ["saved", "is_module_patched", "is_object_patched", "is_anything_patched",
           "get_original", "patch_item", "remove_item", "MonkeyPatchWarning"]

#: module name -> {attribute name: the original value}, e.g.
#: ``{"time": {"sleep": <built-in function sleep>}}``.  The first original recorded
#: for a name is kept, so patching twice never loses it.
saved = {}

_MISSING = object()


class MonkeyPatchWarning(RuntimeWarning):
    """The category of the warnings this package issues."""


def is_module_patched(mod_name):
    """Whether standard module ``mod_name`` (e.g. ``"socket"``) has been patched."""
    return mod_name in saved


def is_object_patched(mod_name, item_name):
    """Whether attribute ``item_name`` of module ``mod_name`` has been replaced."""
    return mod_name in saved and item_name in saved[mod_name]


def is_anything_patched():
    """Whether this process patched anything."""
    return bool(saved)


def _originals(mod_name, item_names):
    originals = saved.get(mod_name, {})
    module = None
    values = []
    for name in item_names:
        if name in originals:
            values.append(originals[name])
            continue
        if module is None:
            module = __import__(mod_name)
        values.append(getattr(module, name))
    return values


def get_original(mod_name, item_name):
    """The original (unpatched) value of ``mod_name.item_name``; the current value if it
    was never patched.

    ``mod_name`` may be a sequence of module names to try in turn (the first that
    imports answers for every item); ``item_name`` may be a sequence of names, and the
    result is then the list of their values."""
    mod_names = [mod_name] if isinstance(mod_name, str) else list(mod_name)
    unpack = isinstance(item_name, str)
    item_names = [item_name] if unpack else item_name
    for name in mod_names:
        try:
            values = _originals(name, item_names)
        except ImportError:
            if name is mod_names[-1]:
                raise
        else:
            return values[0] if unpack else values
    raise ImportError("no module to get %r from" % (item_name,))


def _save(module, attr, value):
    saved.setdefault(module.__name__, {}).setdefault(attr, value)


def patch_item(module, attr, newitem):
    """Set ``module.attr`` to ``newitem``, recording the original (if any) first."""
    olditem = getattr(module, attr, _MISSING)
    if olditem is not _MISSING:
        _save(module, attr, olditem)
    setattr(module, attr, newitem)


def remove_item(module, attr):
    """Delete ``module.attr`` (if present), recording the original first."""
    olditem = getattr(module, attr, _MISSING)
    if olditem is _MISSING:
        return
    _save(module, attr, olditem)
    delattr(module, attr)


def queue_warning(message, pending):
    """Issue ``message`` as a MonkeyPatchWarning once patching is done: appended to
    ``pending`` (a list that ``issue_warnings`` empties), or now if it is None."""
    if pending is None:
        issue_warnings([message], stacklevel=5)
    else:
        pending.append(message)


def issue_warnings(pending, stacklevel=3):
    """Warn with every message of ``pending``; ``stacklevel`` is counted from here and
    should point at the caller of the public patch function."""
    for message in pending:
        warnings.warn(message, MonkeyPatchWarning, stacklevel=stacklevel)
