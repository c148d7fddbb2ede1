"""The libraries under test: stolon (the subject) and its anchors.

A case names libraries by these keys; this module imports them once, reads
their versions and says why one is unavailable (so the report can print
"greenlet not installed" instead of a ratio).
"""
import importlib
import os

SUBJECT = "stolon"

# key -> (module to import, distribution name for the version, install hint)
KNOWN = {
    "stolon": ("stolon", "stolon", "pip install stolon"),
    "greenlet": ("greenlet", "greenlet", "pip install greenlet"),
    "gevent": ("gevent", "gevent", "pip install gevent"),
    "asyncio": ("asyncio", None, "part of Python"),
    "uvloop": ("uvloop", "uvloop", "pip install uvloop"),
}


class Library:
    def __init__(self, name, module=None, version=None, reason=None):
        self.name = name
        self.module = module      # the imported module, or None
        self.version = version
        self.reason = reason      # why it is unavailable, or None

    @property
    def available(self):
        return self.module is not None

    def import_root(self):
        """The sys.path entry this library was imported from.

        A child process (memory probe) gets it on PYTHONPATH, so it imports
        the very same copy even if this process found it by a path tweak.
        """
        path = getattr(self.module, "__file__", None)
        if not path:
            return None
        depth = self.module.__name__.count(".") + 1
        if os.path.basename(path).startswith("__init__."):
            depth += 1
        for _ in range(depth):
            path = os.path.dirname(path)
        return path

    def as_dict(self):
        return {"version": self.version, "available": self.available, "reason": self.reason}


_cache = {}


def load(name):
    """Import a library by key; never raises (unavailability is a result)."""
    if name not in _cache:
        _cache[name] = _load(name)
    return _cache[name]


def _load(name):
    modname, dist, hint = KNOWN.get(name, (name, name, f"pip install {name}"))
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:
        if exc.name == modname.split(".")[0]:
            return Library(name, reason=f"not installed ({hint})")
        return Library(name, reason=f"import failed: {exc}")
    return Library(name, module, _version(module, dist))


def _version(module, dist):
    if dist is None:    # a standard library module: Python's own version
        import platform

        return platform.python_version()
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        from importlib.metadata import version as dist_version

        return dist_version(dist)
    except Exception:  # no metadata: running from a source tree
        return "unknown"
