"""stolon.local: greenlet-local objects (gevent.local's API).

``local()`` is to greenlets what ``threading.local()`` is to threads: every greenlet
sees its own set of attributes.  Subclasses may take ``__init__`` arguments; ``__init__``
runs again, with the same arguments, the first time each other greenlet touches the
object.  Names in ``__slots__`` and other data descriptors (properties) on a subclass
are class-level and therefore shared by all greenlets, exactly as with threading.local.

Lifetime, the part that is easy to get wrong:

* the object keeps ``{id(greenlet): dict}`` plus a weak reference to each greenlet; the
  weak reference's callback drops that greenlet's dict when the greenlet is collected,
  and a greenlet that offers ``rawlink`` (``stolon.Greenlet``) drops it as soon as it
  finishes;
* each greenlet that used the object holds, in its ``__dict__``, a weak reference to the
  object's bookkeeping; when the local object goes away its callback removes that entry
  (and the link), so neither side keeps the other alive.

The weak references to greenlets are owned by the local's bookkeeping rather than by the
greenlets, so that their callbacks still run when a greenlet dies inside a reference cycle.
"""
from copy import copy
from itertools import count
from weakref import ref

from stolon._core import getcurrent

__all__ = ["local"]

_keys = count()


class _Registry:
    """Per local object: every greenlet's dict, and what is needed to clean up."""

    __slots__ = ("dicts", "greenlet_refs", "key", "args", "kwargs", "shared_names",
                 "__weakref__")

    def __init__(self, args, kwargs, shared_names):
        self.dicts = {}             # id(greenlet) -> that greenlet's attribute dict
        self.greenlet_refs = {}     # id(greenlet) -> weakref to it (callback: forget)
        self.key = "_stolon_local_%d" % next(_keys)
        self.args = args
        self.kwargs = kwargs
        # attribute names that resolve on the class, never in the per-greenlet dict
        self.shared_names = shared_names


class _Forget:
    """Drops one greenlet's dict from a registry: called by the greenlet's weakref
    when it is collected, or as a rawlink when a Greenlet finishes."""

    __slots__ = ("registry_ref", "ident")

    def __init__(self, registry_ref, ident):
        self.registry_ref = registry_ref
        self.ident = ident

    def __call__(self, _unused):
        registry = self.registry_ref()
        if registry is not None:
            registry.dicts.pop(self.ident, None)
            registry.greenlet_refs.pop(self.ident, None)


class _Detach:
    """Called when a local's registry is collected: removes the registry's trace from
    one greenlet that used it."""

    __slots__ = ("greenlet_ref", "key", "forget")

    def __init__(self, greenlet_ref, key, forget):
        self.greenlet_ref = greenlet_ref
        self.key = key
        self.forget = forget

    def __call__(self, _unused):
        glet = self.greenlet_ref()
        if glet is None:
            return
        glet.__dict__.pop(self.key, None)
        unlink = getattr(glet, "unlink", None)
        if unlink is not None:
            unlink(self.forget)


def _new_dict(registry, glet, ident):
    """Create and register the attribute dict of ``glet`` (the current greenlet)."""
    registry_ref = ref(registry)
    forget = _Forget(registry_ref, ident)
    greenlet_ref = ref(glet, forget)
    rawlink = getattr(glet, "rawlink", None)
    if rawlink is not None:
        rawlink(forget)
    glet.__dict__[registry.key] = ref(registry, _Detach(greenlet_ref, registry.key, forget))
    registry.greenlet_refs[ident] = greenlet_ref
    dct = registry.dicts[ident] = {}
    return dct


def _first_use(self, registry, glet):
    """Create the current greenlet's dict, then run ``__init__`` to fill it."""
    dct = _new_dict(registry, glet, id(glet))
    self.__init__(*registry.args, **registry.kwargs)
    return dct


def _shared_names(cls):
    """Names whose class attribute is a data descriptor (slots, properties, ``__dict__``):
    Python resolves those on the class before looking at an instance dict."""
    names = set()
    mro = cls.__mro__
    for name in dir(cls):
        for base in mro:
            if name in base.__dict__:
                kind = type(base.__dict__[name])
                if hasattr(kind, "__set__") or hasattr(kind, "__delete__"):
                    names.add(name)
                break
    return frozenset(names)


class local:
    """An object whose attributes are local to the greenlet that sets them."""

    __slots__ = ("_local__registry",)

    def __new__(cls, *args, **kwargs):
        if (args or kwargs) and cls.__init__ is object.__init__:
            raise TypeError("Initialization arguments are not supported", args, kwargs)
        self = object.__new__(cls)
        shared = _LOCAL_SHARED if cls is local else _shared_names(cls)
        registry = _Registry(args, kwargs, shared)
        _set_registry(self, registry)
        # the creating greenlet's dict exists before __init__ runs, so that __init__
        # fills it instead of triggering a second __init__
        glet = getcurrent()
        _new_dict(registry, glet, id(glet))
        return self

    def __getattribute__(self, name):
        registry = _registry_of(self)
        glet = getcurrent()
        try:
            dct = registry.dicts[id(glet)]
        except KeyError:
            dct = _first_use(self, registry, glet)
        if name in dct and name not in registry.shared_names:
            return dct[name]
        if name == "__dict__":
            return dct
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        if name == "__dict__":
            raise AttributeError("%r object attribute '__dict__' is read-only" % type(self))
        registry = _registry_of(self)
        glet = getcurrent()
        try:
            dct = registry.dicts[id(glet)]
        except KeyError:
            dct = _first_use(self, registry, glet)
        if name in registry.shared_names:
            object.__setattr__(self, name, value)
        else:
            dct[name] = value

    def __delattr__(self, name):
        if name == "__dict__":
            raise AttributeError("%r object attribute '__dict__' is read-only"
                                 % type(self).__name__)
        registry = _registry_of(self)
        glet = getcurrent()
        try:
            dct = registry.dicts[id(glet)]
        except KeyError:
            dct = _first_use(self, registry, glet)
        if name in registry.shared_names:
            object.__delattr__(self, name)
            return
        try:
            del dct[name]
        except KeyError:
            raise AttributeError(name) from None

    def __copy__(self):
        """A new local of the same type whose dict, in the current greenlet only, is a
        shallow copy of this one's."""
        registry = _registry_of(self)
        duplicate = copy(registry.dicts[id(getcurrent())])
        cls = type(self)
        clone = cls(*registry.args, **registry.kwargs)
        _registry_of(clone).dicts[id(getcurrent())] = duplicate
        return clone


_registry_slot = local.__dict__["_local__registry"]
_registry_of = _registry_slot.__get__
_set_registry = _registry_slot.__set__
_LOCAL_SHARED = _shared_names(local)
