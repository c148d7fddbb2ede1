"""stolon.config: gevent's ``gevent.config`` (settings read lazily from the environment,
validated when assigned, taking effect where gevent's do).

Validated against gevent (names switched); tests marked "stolon only" use stolon's
loop backends, stolon's STOLON_ variables or deliberate differences."""
import os
import sys
import textwrap

import pytest

import stolon
from stolon import config
from stolon._config import Config

from conftest import glet_run_script

STOLON = stolon.__name__        # "gevent" in the cross-check copy
# stolon's deliberate differences and extensions (spelled so the name switch keeps it)
stolon_only = pytest.mark.skipif(STOLON != "st" + "olon", reason="stolon only")


def fresh_config(monkeypatch, **environ):
    """A new Config (nothing read yet) over an environment without the settings'
    variables, plus ``environ``."""
    for key in list(os.environ):
        if key.startswith(("GEVENT", "STOLON_")):
            monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return Config()


@pytest.fixture
def restore_config():
    """The global config's settings as they were, after the test."""
    saved = {name: dict(setting.__dict__) for name, setting in config.settings.items()}
    yield config
    for name, setting in config.settings.items():
        setting.__dict__.clear()
        setting.__dict__.update(saved[name])
    greenlet_module = getattr(stolon, "_greenlet", None)
    if hasattr(greenlet_module, "_track_tree"):
        greenlet_module._track_tree = None     # read the restored setting again


def new_hub():
    return stolon.hub.Hub(default=False)


# -- reading ----------------------------------------------------------------------------

def test_defaults(monkeypatch):
    c = fresh_config(monkeypatch)
    assert c.track_greenlet_tree is True
    assert c.monitor_thread is False
    assert c.print_blocking_reports is True
    assert c.max_blocking_time == 0.1
    assert c.memory_monitor_period == 5
    assert c.max_memory_usage is None
    assert c.threadpool_idle_task_timeout == 5.0
    assert c.libev_backend is None
    assert c.resolver.__module__ == STOLON + ".resolver.thread"
    assert c.threadpool.__module__ == STOLON + ".threadpool"
    assert c.threadpool.__name__ == "ThreadPool"
    assert c.fileobject.__name__ == "FileObjectPosix"
    import pprint
    assert c.format_context is pprint.saferepr


def test_environment_scalars(monkeypatch):
    c = fresh_config(monkeypatch, GEVENT_TRACK_GREENLET_TREE="0",
                     GEVENT_MONITOR_THREAD_ENABLE="Yes",
                     GEVENT_MONITOR_PRINT_BLOCKING_REPORTS="off",
                     GEVENT_MAX_BLOCKING_TIME="0.25", GEVENT_MONITOR_MEMORY_PERIOD="2",
                     GEVENT_MONITOR_MEMORY_MAX="3mb",
                     GEVENT_THREADPOOL_IDLE_TASK_TIMEOUT="1.5", GEVENT_BACKEND="poll")
    assert c.track_greenlet_tree is False
    assert c.monitor_thread is True
    assert c.print_blocking_reports is False
    assert c.max_blocking_time == 0.25
    assert c.memory_monitor_period == 2.0
    assert c.max_memory_usage == 3 * 1024 * 1024
    assert c.threadpool_idle_task_timeout == 1.5
    assert c.libev_backend == ["poll"]


def test_environment_importables(monkeypatch):
    c = fresh_config(monkeypatch, GEVENT_RESOLVER="block", GEVENT_FILE="thread",
                     GEVENT_THREADPOOL="collections.OrderedDict",
                     GEVENT_FORMAT_CONTEXT="no_such_module.f,builtins.ascii")
    assert c.resolver.__module__ == STOLON + ".resolver.blocking"
    assert c.fileobject.__name__ == "FileObjectThread"
    import collections
    assert c.threadpool is collections.OrderedDict
    assert c.format_context is ascii


def test_environment_is_read_on_first_use_and_kept(monkeypatch):
    c = fresh_config(monkeypatch)
    monkeypatch.setenv("GEVENT_MAX_BLOCKING_TIME", "0.5")
    assert c.max_blocking_time == 0.5
    monkeypatch.setenv("GEVENT_MAX_BLOCKING_TIME", "0.75")
    assert c.max_blocking_time == 0.5


def test_bad_environment_value_raises_when_read(monkeypatch):
    c = fresh_config(monkeypatch, GEVENT_MONITOR_THREAD_ENABLE="maybe")
    with pytest.raises(ValueError, match="Invalid boolean string: 'maybe'"):
        c.monitor_thread


@stolon_only
def test_stolon_variables_come_first(monkeypatch):
    # stolon only: STOLON_<KEY> before gevent's GEVENT_<KEY>
    c = fresh_config(monkeypatch, STOLON_RESOLVER="block", GEVENT_RESOLVER="thread",
                     STOLON_FILE="block", STOLON_MONITOR_MEMORY_MAX="2kb",
                     GEVENT_MONITOR_MEMORY_MAX="1kb")
    assert c.resolver.__module__ == "stolon.resolver.blocking"
    assert c.fileobject.__name__ == "FileObjectBlock"
    assert c.max_memory_usage == 2048
    setting = c.settings["resolver"]
    assert (setting.environment_key, setting.gevent_environment_key) == ("STOLON_RESOLVER",
                                                                         "GEVENT_RESOLVER")


def test_environment_reaches_the_hub_and_fileobject():
    result = glet_run_script("""
        import %(pkg)s
        from %(pkg)s.fileobject import FileObject
        hub = %(pkg)s.get_hub()
        print(FileObject.__name__, type(hub.resolver).__module__, hub.loop.backend)
        """ % {"pkg": STOLON}, env={"GEVENT_FILE": "block", "GEVENT_RESOLVER": "block",
                                    "GEVENT_BACKEND": "poll"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FileObjectBlock", STOLON + ".resolver.blocking", "poll"]


@stolon_only
@pytest.mark.parametrize("loop_env", [{"STOLON_LOOP": "poll"}, {"GEVENT_LOOP": "poll"},
                                      {"GEVENT_LOOP": "kqueue,poll"},
                                      {"GEVENT_LOOP": "libev-cext", "GEVENT_BACKEND": "poll"}])
def test_loop_from_environment(loop_env):
    # stolon only: stolon's backend names (gevent's loop names mean stolon's loop)
    result = glet_run_script("""
        import stolon
        print(stolon.get_hub().loop.backend)
        """, env=loop_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["poll"]


# -- assigning and validating -------------------------------------------------------------

def test_set_converts_and_validates(monkeypatch):
    c = fresh_config(monkeypatch)
    c.monitor_thread = "on"
    assert c.monitor_thread is True
    c.set("max_memory_usage", "10MB")
    assert c.max_memory_usage == 10 * 1024 * 1024
    c.max_blocking_time = "0.5"
    assert c.max_blocking_time == 0.5
    c.threadpool_idle_task_timeout = 0      # a false value means None, as in gevent
    assert c.threadpool_idle_task_timeout is None
    c.format_context = ["no.such_module.f", "builtins.ascii"]
    assert c.format_context is ascii
    c.format_context = "builtins.repr,builtins.ascii"
    assert c.format_context is repr
    c.threadpool = dict
    assert c.threadpool is dict


@pytest.mark.parametrize("name, value, error, message", [
    ("monitor_thread", "maybe", ValueError, "Invalid boolean string: 'maybe'"),
    ("max_blocking_time", -1, ValueError, "Must be positive"),
    ("memory_monitor_period", "x", ValueError, "could not convert string to float"),
    ("max_memory_usage", -5, ValueError, "Must be positive"),
    ("max_memory_usage", "lots", ValueError, "invalid literal"),
    ("threadpool_idle_task_timeout", -1, ValueError, "Must be positive"),
    ("format_context", "repr", ImportError,
     r"Cannot import 'repr'. Required format: \[package.\]module.class"),
    ("format_context", "a/b.c", ImportError, "Cannot import 'a/b.c'"),
    ("format_context", "builtins.no_such_name", ImportError, "Cannot import 'no_such_name' from"),
    ("threadpool", "no_such_module.Pool", ImportError, "no_such_module"),
    ("threadpool", [], ImportError, "Cannot import from empty list"),
    ("resolver", "bogus", ImportError, "Cannot import 'bogus'"),
    ("loop", "bogus", ImportError, "Cannot import 'bogus'"),
    ("loop", 42, TypeError, "not iterable"),
])
def test_invalid_values(monkeypatch, name, value, error, message):
    c = fresh_config(monkeypatch)
    before = c.settings[name].get()
    with pytest.raises(error, match=message):
        c.set(name, value)
    assert c.settings[name].get() is before


def test_unknown_settings(monkeypatch):
    c = fresh_config(monkeypatch)
    with pytest.raises(AttributeError, match="No configuration setting for: 'nope'"):
        c.nope
    with pytest.raises(AttributeError, match="No configuration setting for: 'nope'"):
        c.set("nope", 1)
    c.nope = 1      # like gevent: not a setting, so a plain attribute
    assert c.nope == 1
    assert {"loop", "resolver", "threadpool", "fileobject", "track_greenlet_tree",
            "monitor_thread", "max_blocking_time", "max_memory_usage"} <= set(dir(c))


def test_print_help(monkeypatch, capsys):
    fresh_config(monkeypatch).print_help()
    out = capsys.readouterr().out
    for name in ("loop", "resolver", "threadpool", "fileobject", "max_memory_usage"):
        assert "\n%s\n" % name in "\n" + out
    assert "GEVENT_FILE" in out


@stolon_only
def test_stolon_short_names(monkeypatch):
    # stolon only: gevent's ares and dnspython resolvers are stolon's dns resolver;
    # stolon's loop backends
    c = fresh_config(monkeypatch)
    from stolon.resolver.dns import Resolver as DNSResolver
    for name in ("dns", "ares", "dnspython", "nosuch.module,dnspython"):
        c.resolver = name
        assert c.resolver is DNSResolver
    from stolon.loop import loop, supported_backends
    for name in ("default", "libev-cext", "libuv", "libev-cffi", "libuv-cffi"):
        c.loop = name
        assert c.loop is loop
    c.loop = "poll"
    assert c.loop.backend == "poll"
    for name in {"epoll", "kqueue"} - set(supported_backends()):
        with pytest.raises(ImportError, match="cannot use the %r backend" % name):
            c.loop = name
    assert c.loop.backend == "poll"


@stolon_only
def test_callables_are_accepted(monkeypatch):
    # stolon only: gevent documents "the callable object itself" but only takes
    # classes (a function raises TypeError there)
    c = fresh_config(monkeypatch)
    c.format_context = ascii
    assert c.format_context is ascii


# -- effects ------------------------------------------------------------------------------

@stolon_only
def test_loop_setting_makes_new_hubs_loops(restore_config):
    # stolon only: 'poll' is a stolon backend name
    config.loop = "poll"
    hub = new_hub()
    try:
        assert hub.loop.backend == "poll"
    finally:
        hub.destroy(destroy_loop=True)


@pytest.mark.skipif(stolon.__name__ != "st" + "olon", reason="stolon backend names")
def test_libev_backend_takes_the_first_name_this_system_can_use(restore_config):
    # one of kqueue and epoll exists (the other not); names are read in any case
    first = "epoll" if sys.platform.startswith("linux") else "kqueue"
    for names, expected in (("kqueue,epoll", first), ("epoll,kqueue", first), (" POLL", "poll"),
                            ("select,poll", "poll")):
        config.libev_backend = names
        hub = new_hub()
        try:
            assert hub.loop.backend == expected, names
        finally:
            hub.destroy(destroy_loop=True)


@pytest.mark.skipif(stolon.__name__ != "st" + "olon", reason="gevent's hub fails on a None period")
def test_memory_monitor_period_zero_means_the_default(restore_config):
    config.memory_monitor_period = 0
    assert config.memory_monitor_period == 5.0
    config.memory_monitor_period = "3"
    assert config.memory_monitor_period == 3.0


def test_libev_backend_setting(restore_config):
    config.libev_backend = "poll"
    hub = new_hub()
    try:
        assert hub.loop.backend == "poll"
    finally:
        hub.destroy(destroy_loop=True)


def test_resolver_setting(restore_config):
    config.resolver = "block"
    hub = new_hub()
    try:
        assert type(hub.resolver).__module__ == STOLON + ".resolver.blocking"
        assert hub.resolver is hub.resolver
    finally:
        hub.destroy(destroy_loop=True)


def test_threadpool_setting(restore_config):
    from stolon.threadpool import ThreadPool

    class MyPool(ThreadPool):
        pass
    config.threadpool = MyPool
    config.threadpool_idle_task_timeout = 2.5
    hub = new_hub()
    try:
        pool = hub.threadpool
        assert type(pool) is MyPool
        assert pool.hub is hub
        assert pool.maxsize == hub.threadpool_size
        assert pool._idle_task_timeout == 2.5
    finally:
        hub.destroy(destroy_loop=True)


def test_format_context_setting(restore_config):
    config.format_context = "builtins.ascii"
    hub = new_hub()
    try:
        assert hub.format_context("\xe9") == ascii("\xe9")
    finally:
        hub.destroy(destroy_loop=True)


def test_track_greenlet_tree_setting(restore_config):
    config.track_greenlet_tree = False
    g = stolon.Greenlet(lambda: None)
    assert g.spawning_greenlet is None
    assert g.spawn_tree_locals is None
    config.track_greenlet_tree = True
    g = stolon.Greenlet(lambda: None)
    assert g.spawning_greenlet() is stolon.getcurrent()
    assert isinstance(g.spawn_tree_locals, dict)


def test_fileobject_setting_in_code():
    result = glet_run_script(textwrap.dedent("""
        import %(pkg)s
        %(pkg)s.config.fileobject = "thread"
        from %(pkg)s.fileobject import FileObject, FileObjectThread
        print(FileObject is FileObjectThread)
        """ % {"pkg": STOLON}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]


def test_python_m_config_prints_help():
    result = glet_run_script("""
        import runpy
        runpy.run_module("%s._config", run_name="__main__")
        """ % STOLON)
    assert result.returncode == 0, result.stderr
    assert "threadpool_idle_task_timeout" in result.stdout


@stolon_only
def test_resolver_nameservers_split_on_commas_or_spaces(monkeypatch):
    # as the dns resolver's own nameservers argument takes them
    c = fresh_config(monkeypatch, GEVENT_RESOLVER_NAMESERVERS="10.0.0.1, 10.0.0.2 10.0.0.3:54")
    assert c.resolver_nameservers == ["10.0.0.1", "10.0.0.2", "10.0.0.3:54"]
    assert fresh_config(monkeypatch, STOLON_RESOLVER_NAMESERVERS=" ").resolver_nameservers is None
    assert fresh_config(monkeypatch, STOLON_RESOLVER_TIMEOUT="2.5").resolver_timeout == 2.5
