"""stolon's tunables: ``stolon.config`` (gevent's ``gevent.config``).

``config`` is the one ``Config``.  Each setting is read on first use: from the
environment variable ``STOLON_<KEY>`` if it is set, else from gevent's ``GEVENT_<KEY>``
(so a deployment configured for gevent keeps its configuration), else the default.
Assigning in code (``config.loop = 'poll'`` or ``config.set('loop', 'poll')``)
validates the value and replaces it; do it before stolon uses the setting: most are
read when a hub makes its loop, thread pool or resolver, so they apply to hubs (and
helpers) made afterwards.  ``python -m stolon._config`` prints every setting with
its description.

Importable settings (``loop``, ``resolver``, ``threadpool``, ``fileobject``,
``format_context``) take an object, a dotted name (``'package.module.name'``), one of
the setting's short names, or a list of those (comma-separated in the environment)
tried in order until one imports.
"""
import os

__all__ = ["config", "Config"]

#: Every setting class, in the order they are defined (``Config`` makes one of each).
ALL_SETTINGS = []


def _register(cls):
    ALL_SETTINGS.append(cls)
    return cls


# -- validation and conversion ----------------------------------------------------------

def validate_invalid(value):
    raise ValueError("Not a valid value: %r" % (value,))


def validate_bool(value):
    """A boolean; the environment's ``1``, ``true``, ``on`` and ``yes`` are true,
    ``0``, ``false``, ``off``, ``no`` and the empty string false (in any case)."""
    if isinstance(value, str):
        text = value.lower().strip()
        if text in ("1", "true", "on", "yes"):
            return True
        if text in ("0", "false", "off", "no", ""):
            return False
        raise ValueError("Invalid boolean string: %r" % (value,))
    return bool(value)


def validate_anything(value):
    return value


class Setting:
    """One tunable.  ``get()`` reads the environment the first time and keeps what it
    found; ``set(value)`` converts, validates and keeps ``value``."""

    name = None
    #: gevent's environment variable (``GEVENT_...``); stolon's is the same name with
    #: ``STOLON_`` in front instead, and is read first.
    gevent_environment_key = None
    default = None
    document = True
    validate = staticmethod(validate_invalid)

    @property
    def environment_key(self):
        return "STOLON_" + self.gevent_environment_key[len("GEVENT_"):]

    def _convert(self, value):
        # environment strings (and strings set in code) may list values: a,b,c
        if isinstance(value, str):
            return value.split(",")
        return value

    def _default(self):
        environ = os.environ
        for key in (self.environment_key, self.gevent_environment_key):
            if key in environ:
                return self._convert(environ[key])
        return self._convert(self.default)

    def get(self):
        if "value" in self.__dict__:
            return self.value
        self.value = self.validate(self._default())
        return self.value

    def set(self, value):
        self.value = self.validate(self._convert(value))
        self._changed()

    def _changed(self):
        """Tell whoever caches this setting that it changed."""

    def help(self):
        """The setting's description, its default and its environment variables."""
        import inspect
        text = inspect.cleandoc(type(self).__doc__ or "")
        if isinstance(self, ImportableSetting):
            text += ("\n\nGiven as an object (in code), a dotted name, or a list of those "
                     "tried in order (comma-separated in the environment).")
            if self.shortnames:
                text += " Short names: %s." % (", ".join(self.shortnames),)
        validator_doc = getattr(self.validate, "__doc__", None)
        if validator_doc and not isinstance(self, ImportableSetting):
            text += "\n\n" + inspect.cleandoc(validator_doc)
        text += "\n\nDefault: %r." % (self.default,)
        text += "\n\nEnvironment: %s, else %s." % (self.environment_key,
                                                  self.gevent_environment_key)
        return text


class _BoolSetting(Setting):
    validate = staticmethod(validate_bool)
    _convert = staticmethod(validate_anything)


class _PositiveNumberSetting(Setting):

    def validate(self, value):
        if value is not None and value <= 0:
            raise ValueError("Must be positive")
        return value


class _FloatSetting(_PositiveNumberSetting):
    """A positive number of seconds; 0 (or an empty variable) means None."""

    def _convert(self, value):
        return float(value) if value else None


class _ByteCountSetting(_PositiveNumberSetting):
    """A positive number of bytes; in the environment it may end in ``kb``, ``mb``
    or ``gb`` (any case)."""

    _UNITS = (("kb", 1024), ("mb", 1024 ** 2), ("gb", 1024 ** 3))

    def _convert(self, value):
        if not isinstance(value, str):
            return value
        if not value:
            return None
        text = value.lower()
        for suffix, size in self._UNITS:
            if text.endswith(suffix):
                return int(text[:-2]) * size
        return int(text)


class ImportableSetting(Setting):
    """A setting whose value is an object named by import path or short name."""

    #: short name -> a dotted name, or a function returning the object (raising
    #: ImportError where it is not available)
    shortnames = {}

    def validate(self, value):
        if isinstance(value, type) or callable(value):
            return value
        return self._import_one_of(list(value))

    def _import_one_of(self, candidates):
        if not candidates:
            raise ImportError("Cannot import from empty list")
        for candidate in candidates[:-1]:
            try:
                return self._import_one(candidate)
            except ImportError:
                pass
        return self._import_one(candidates[-1])

    def _import_one(self, path):
        if not isinstance(path, str):
            return path
        path = self.shortnames.get(path.strip(), path.strip())
        if callable(path):
            return path()
        if "." not in path or "/" in path:
            raise ImportError("Cannot import %r. Required format: [package.]module.class. "
                              "Or choose from %r" % (path, list(self.shortnames)))
        from importlib import import_module
        module_name, attr = path.rsplit(".", 1)
        module = import_module(module_name)
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ImportError("Cannot import %r from %r" % (attr, module)) from None

    def get_options(self):
        """Each short name with its object, or the ImportError that getting it raises."""
        options = {}
        for name in self.shortnames:
            try:
                options[name] = self._import_one(name)
            except ImportError as e:
                options[name] = e
        return options


# -- the loop ---------------------------------------------------------------------------

#: the backends of stolon's loop (stolon._core.loop's ``flags``)
LOOP_BACKENDS = ("epoll", "kqueue", "poll")


class BackendLoop:
    """Makes stolon's loop on one backend, called as a loop class is:
    ``(flags=None, default=None)``.  The backend it names wins over ``flags``."""

    __slots__ = ("backend",)

    def __init__(self, backend):
        self.backend = backend

    def __call__(self, flags=None, default=None):
        from stolon._core import loop
        return loop(self.backend, default=default)

    def __eq__(self, other):
        return type(other) is BackendLoop and other.backend == self.backend

    def __hash__(self):
        return hash(self.backend)

    def __repr__(self):
        return "<stolon loop on %r>" % (self.backend,)


_backend_usable_here = {}


def _backend_usable(backend):
    """Whether stolon's loop can use ``backend`` on this system (asked once)."""
    usable = _backend_usable_here.get(backend)
    if usable is None:
        from stolon._core import loop
        try:
            loop(backend, default=False).destroy()
            usable = True
        except ValueError:
            usable = False
        _backend_usable_here[backend] = usable
    return usable


def _backend_loop(backend):
    def make():
        if not _backend_usable(backend):
            raise ImportError("stolon's loop cannot use the %r backend here" % (backend,))
        return BackendLoop(backend)
    return make


@_register
class Loop(ImportableSetting):
    """The loop a new hub runs: a loop class (called as ``cls(flags=..., default=...)``).

    ``'default'`` is stolon's loop on the best backend the system has; ``'epoll'``,
    ``'poll'`` and ``'kqueue'`` are stolon's loop on that backend (ImportError if the
    system lacks it, so a list falls through to the next).  gevent's loop names
    (``'libev-cext'``, ``'libev-cffi'``, ``'libuv-cffi'``, ``'libuv'``) name a loop
    implementation; stolon has one, so they mean ``'default'``."""

    name = "loop"
    gevent_environment_key = "GEVENT_LOOP"
    default = "default"
    shortnames = {"default": "stolon.loop.loop"}
    shortnames.update((backend, _backend_loop(backend)) for backend in LOOP_BACKENDS)
    shortnames.update((name, "stolon.loop.loop")
                      for name in ("libev-cext", "libev-cffi", "libuv-cffi", "libuv"))


@_register
class LibevBackend(Setting):
    """The backend a new hub's loop uses when ``loop`` does not name one: a list of
    names (in any case), of which the first that stolon's loop can use on this
    system (``epoll``, ``kqueue``, ``poll``) is used; libev's other backends and
    flags are ignored, and without a usable name the loop takes the best backend."""

    name = "libev_backend"
    gevent_environment_key = "GEVENT_BACKEND"
    default = None
    validate = staticmethod(validate_anything)


def make_loop(flags=None, default=None):
    """A new loop for a hub: ``config.loop`` called with ``flags`` (a backend name;
    by default the first usable one of ``config.libev_backend``) and ``default``."""
    if flags is None:
        flags = config.libev_backend
    if flags is not None and not isinstance(flags, str):
        names = (str(name).strip().lower() for name in flags)
        flags = next((name for name in names if name in LOOP_BACKENDS and _backend_usable(name)),
                     None)
    return config.loop(flags=flags, default=default)


# -- helpers of the hub -------------------------------------------------------------------

@_register
class Resolver(ImportableSetting):
    """The class of a hub's DNS resolver (called as ``cls(hub=hub)`` when the hub
    first resolves a name).  ``'thread'``: lookups run in the hub's thread pool;
    ``'dns'`` (also gevent's names ``'ares'`` and ``'dnspython'``, whose libraries
    stolon does not need): stolon's own stub resolver, which asks the nameservers
    itself over cooperative sockets; ``'block'``: the C library's functions,
    blocking the calling thread."""

    name = "resolver"
    gevent_environment_key = "GEVENT_RESOLVER"
    default = ["thread", "block"]
    shortnames = {
        "thread": "stolon.resolver.thread.Resolver",
        "block": "stolon.resolver.blocking.Resolver",
        "dns": "stolon.resolver.dns.Resolver",
        "ares": "stolon.resolver.dns.Resolver",
        "dnspython": "stolon.resolver.dns.Resolver",
    }


@_register
class ResolverNameservers(Setting):
    """The nameservers the ``'dns'`` resolver asks instead of resolv.conf's: a list
    of ``'ip'``, ``'ip:port'`` or ``'[ipv6]:port'`` strings (comma-separated in the
    environment); None for resolv.conf's.  Read when a resolver is made.  The
    ``'thread'`` and ``'block'`` resolvers use the C library's configuration."""

    name = "resolver_nameservers"
    gevent_environment_key = "GEVENT_RESOLVER_NAMESERVERS"
    validate = staticmethod(validate_anything)

    def _convert(self, value):
        if isinstance(value, str):
            # commas or spaces, as the resolver's own argument takes them
            return value.replace(",", " ").split() or None
        return value


@_register
class ResolverTimeout(_FloatSetting):
    """Seconds the ``'dns'`` resolver waits for each nameserver on each try (as
    c-ares' timeout, which gevent's ``'ares'`` resolver passes this to); None for
    resolv.conf's ``options timeout`` (5 by default).  Read when a resolver is made."""

    name = "resolver_timeout"
    gevent_environment_key = "GEVENT_RESOLVER_TIMEOUT"


@_register
class Threadpool(ImportableSetting):
    """The class of a hub's thread pool (called as ``cls(hub.threadpool_size,
    hub=hub, idle_task_timeout=config.threadpool_idle_task_timeout)`` on first
    use)."""

    name = "threadpool"
    gevent_environment_key = "GEVENT_THREADPOOL"
    default = "stolon.threadpool.ThreadPool"


@_register
class ThreadpoolIdleTaskTimeout(_FloatSetting):
    """How long, in seconds, a thread of a hub's pool may wait for a task before it
    exits; 0 (None) keeps idle threads forever."""

    name = "threadpool_idle_task_timeout"
    gevent_environment_key = "GEVENT_THREADPOOL_IDLE_TASK_TIMEOUT"
    default = 5.0


@_register
class FormatContext(ImportableSetting):
    """The function a hub's error report uses to show where an error happened (the
    context: usually the greenlet or the callback).  Read when a report is written,
    so that ``pprint`` is imported only on the first error."""

    name = "format_context"
    gevent_environment_key = "GEVENT_FORMAT_CONTEXT"
    default = "pprint.saferepr"


@_register
class FileObject(ImportableSetting):
    """The class ``stolon.fileobject.FileObject`` is, chosen when stolon.fileobject is
    first imported: ``'posix'`` (non-blocking fds waited on by the hub), ``'thread'``
    (calls run in the thread pool) or ``'block'`` (plain blocking calls)."""

    name = "fileobject"
    gevent_environment_key = "GEVENT_FILE"
    default = ["posix", "thread"]
    shortnames = {
        "posix": "stolon.fileobject.FileObjectPosix",
        "thread": "stolon.fileobject.FileObjectThread",
        "block": "stolon.fileobject.FileObjectBlock",
    }

    def set(self, value):
        import sys
        imported = "stolon.fileobject" in sys.modules
        Setting.set(self, value)
        module = None if imported else sys.modules.get("stolon.fileobject")
        if module is not None:
            # validating the value imported stolon.fileobject, which read the old one
            module.FileObject = self.value


@_register
class TrackGreenletTree(_BoolSetting):
    """Whether a new Greenlet records who spawned it (``spawning_greenlet``) and
    shares its spawner's ``spawn_tree_locals``; false makes spawning a little faster
    and leaves both None.  Takes effect for greenlets created afterwards."""

    name = "track_greenlet_tree"
    gevent_environment_key = "GEVENT_TRACK_GREENLET_TREE"
    default = True

    def _changed(self):
        import sys
        greenlet_module = sys.modules.get("stolon._greenlet")
        if greenlet_module is not None:
            greenlet_module._track_tree = None     # read again at the next spawn


# -- the monitor thread -------------------------------------------------------------------

@_register
class MonitorThread(_BoolSetting):
    """Whether each hub starts a native thread that watches for a blocked loop and, for
    the main thread's hub, for memory use (see ``max_blocking_time`` and
    ``max_memory_usage``).  Read when a hub starts running, and by each call of
    ``Hub.start_periodic_monitoring_thread()``; turning it off does not stop a monitor
    thread already running (its ``kill()`` does)."""

    name = "monitor_thread"
    gevent_environment_key = "GEVENT_MONITOR_THREAD_ENABLE"
    default = False


@_register
class MaxBlockingTime(_FloatSetting):
    """How often, in seconds, the monitor thread checks that the loop is not blocked: a
    greenlet that ran a whole check period without switching is reported, so a block
    is reported after one to two periods.  Read by the monitor thread before each of
    its rounds (a change applies from the next one); None (or 0) pauses the check."""

    name = "max_blocking_time"
    gevent_environment_key = "GEVENT_MAX_BLOCKING_TIME"
    default = 0.1


@_register
class PrintBlockingReports(_BoolSetting):
    """Whether the monitor thread prints its report of a blocked loop on the hub's
    exception stream (the EventLoopBlocked event is sent either way).  Read at each
    report."""

    name = "print_blocking_reports"
    gevent_environment_key = "GEVENT_MONITOR_PRINT_BLOCKING_REPORTS"
    default = True


@_register
class MonitorMemoryPeriod(_FloatSetting):
    """How often, in seconds, the main hub's monitor thread checks the process's
    memory usage (never more often than every 2 seconds; 0 or an empty variable
    means the default, 5).  Read when that thread starts."""

    name = "memory_monitor_period"
    gevent_environment_key = "GEVENT_MONITOR_MEMORY_PERIOD"
    default = 5

    def _convert(self, value):
        # a period of None would stop the thread's arithmetic (gevent's hub fails so)
        return float(value) if value else float(self.default)


@_register
class MonitorMemoryMaxUsage(_ByteCountSetting):
    """The memory usage, in bytes, above which the main hub's monitor thread sends
    MemoryUsageThresholdExceeded events (psutil measures it; without psutil there are
    none); None (the default) never does.  Read at each check, so it may be set or
    changed while the thread runs."""

    name = "max_memory_usage"
    gevent_environment_key = "GEVENT_MONITOR_MEMORY_MAX"
    default = None


# -- the configuration object ------------------------------------------------------------

class Config:
    """stolon's configuration (``stolon.config``): each setting is an attribute, read
    on first use from the environment and validated when assigned.  ``settings`` maps
    each name to its ``Setting``."""

    def __init__(self):
        object.__setattr__(self, "settings", {cls.name: cls() for cls in ALL_SETTINGS})

    def __getattr__(self, name):
        settings = self.__dict__.get("settings")
        if settings is None or name not in settings:
            raise AttributeError("No configuration setting for: %r" % (name,))
        return settings[name].get()

    def __setattr__(self, name, value):
        if name != "settings" and name in self.settings:
            self.settings[name].set(value)
        else:
            object.__setattr__(self, name, value)

    def set(self, name, value):
        """Assign setting ``name``; AttributeError if there is no such setting."""
        if name not in self.settings:
            raise AttributeError("No configuration setting for: %r" % (name,))
        self.settings[name].set(value)

    def __dir__(self):
        return list(self.settings)

    def print_help(self):
        """Print each setting with its description."""
        for name, setting in self.settings.items():
            print(name)
            for line in setting.help().splitlines():
                print(("    " + line) if line else "")
            print()


config = Config()

if __name__ == "__main__":
    config.print_help()
