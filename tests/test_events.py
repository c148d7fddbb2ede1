"""stolon.events: gevent's events, their subscribers, and the monkey-patching events
and entry-point plugins.

Validated against gevent (names switched); tests marked "stolon only" check stolon's
own plugin groups and its cheap path when nobody listens."""
import os
import sys
import textwrap

import pytest

import stolon
from stolon import events

from conftest import glet_run_script

STOLON = stolon.__name__        # "gevent" in the cross-check copy
# spelled so that the name switch of the cross-check keeps it
stolon_only = pytest.mark.skipif(STOLON != "st" + "olon", reason="stolon only")

try:
    import zope.interface
except ImportError:
    zope = None


def run(code, env=None, pythonpath=None):
    extra = dict(env or {})
    if pythonpath:
        extra["PYTHONPATH"] = os.pathsep.join([pythonpath] + [p for p in sys.path if p])
    result = glet_run_script(code % {"pkg": STOLON}, env=extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


# -- the events ---------------------------------------------------------------------------

def test_event_attributes_and_reprs():
    e = events.GeventPatchEvent("src", "tgt")
    assert (e.source, e.target) == ("src", "tgt")
    assert repr(e) == "<GeventPatchEvent source='src' target='tgt' at %x>" % id(e)
    will = events.GeventWillPatchModuleEvent("socket", "src", "tgt", ["socket"])
    assert (will.module_name, will.target_item_names) == ("socket", ["socket"])
    did = events.GeventDidPatchModuleEvent("socket", "src", "tgt")
    assert did.module_name == "socket"
    args = {"socket": True, "os": False}
    kwargs = {"mylib": 1}
    all_event = events.GeventWillPatchAllEvent(args, kwargs)
    assert all_event.patch_all_arguments == args
    assert all_event.patch_all_arguments is not all_event.patch_all_arguments
    assert all_event.patch_all_kwargs == kwargs
    assert (all_event.source, all_event.target) == (None, None)
    assert all_event.will_patch_module("socket") is True
    assert all_event.will_patch_module("os") is False
    assert all_event.will_patch_module("nothing") is None
    assert repr(all_event) == "<GeventWillPatchAllEvent %r at %x>" % (args, id(all_event))
    for cls in (events.GeventDidPatchBuiltinModulesEvent, events.GeventDidPatchAllEvent):
        assert isinstance(cls(args, kwargs), events.GeventDidPatchEvent)
    assert issubclass(events.DoNotPatch, BaseException)
    assert not issubclass(events.DoNotPatch, Exception)


def test_monitor_events():
    blocked = events.EventLoopBlocked("g", 0.5, ["line"], hub="hub")
    assert (blocked.greenlet, blocked.blocking_time, blocked.info, blocked.hub) == (
        "g", 0.5, ["line"], "hub")
    assert events.EventLoopBlocked("g", 1, []).hub is None
    over = events.MemoryUsageThresholdExceeded(200, 100, (1, 2))
    assert repr(over) == "<MemoryUsageThresholdExceeded used=200 max=100 details=(1, 2)>"
    under = events.MemoryUsageUnderThreshold(50, 100, (1,), 300)
    assert (under.mem_usage, under.max_allowed, under.max_memory_usage) == (50, 100, 300)
    assert repr(under).startswith("<MemoryUsageUnderThreshold used=50 max=100")
    assert events.PeriodicMonitorThreadStartedEvent("m").monitor == "m"


def test_entry_point_names():
    prefix = "gevent.plugins."
    assert events.GeventWillPatchAllEvent.ENTRY_POINT_NAME == prefix + "monkey.will_patch_all"
    assert events.GeventWillPatchModuleEvent.ENTRY_POINT_NAME == prefix + "monkey.will_patch_module"
    assert events.GeventDidPatchModuleEvent.ENTRY_POINT_NAME == prefix + "monkey.did_patch_module"
    assert (events.GeventDidPatchBuiltinModulesEvent.ENTRY_POINT_NAME
            == prefix + "monkey.did_patch_builtins")
    assert events.GeventDidPatchAllEvent.ENTRY_POINT_NAME == prefix + "monkey.did_patch_all"
    assert (events.PeriodicMonitorThreadStartedEvent.ENTRY_POINT_NAME
            == prefix + "hub.periodic_monitor_thread_started")


def test_interface_names_exist():
    for name in events.__all__:
        assert getattr(events, name) is not None
    assert issubclass(events.IGeventWillPatchModuleEvent, events.IGeventWillPatchEvent)
    assert issubclass(events.IGeventDidPatchAllEvent, events.IGeventPatchEvent)


@pytest.mark.skipif(zope is None, reason="zope.interface is not installed")
def test_zope_interfaces():
    assert isinstance(events.IEventLoopBlocked, zope.interface.interface.InterfaceClass)
    cases = [
        (events.IGeventWillPatchAllEvent, events.GeventWillPatchAllEvent({}, {})),
        (events.IGeventWillPatchEvent, events.GeventWillPatchModuleEvent("m", 1, 2, [])),
        (events.IGeventDidPatchModuleEvent, events.GeventDidPatchModuleEvent("m", 1, 2)),
        (events.IEventLoopBlocked, events.EventLoopBlocked(None, 1, [])),
        (events.IMemoryUsageUnderThreshold, events.MemoryUsageUnderThreshold(1, 2, 3, 4)),
        (events.IPeriodicMonitorThreadStartedEvent,
         events.PeriodicMonitorThreadStartedEvent(None)),
    ]
    for interface, event in cases:
        assert interface.providedBy(event), (interface, event)
    assert not events.IGeventDidPatchEvent.providedBy(events.GeventWillPatchAllEvent({}, {}))
    from zope.event import subscribers
    assert events.subscribers is subscribers


# -- subscribers -------------------------------------------------------------------------

@pytest.fixture
def subscribers():
    saved = list(events.subscribers)
    yield events.subscribers
    events.subscribers[:] = saved


def test_notify_calls_subscribers_in_order(subscribers):
    seen = []
    subscribers.append(lambda e: seen.append(("a", e)))
    subscribers.append(lambda e: seen.append(("b", e)))
    events.notify("event")
    assert seen == [("a", "event"), ("b", "event")]


def test_a_raising_subscriber_stops_delivery(subscribers):
    seen = []

    def fail(event):
        raise ValueError(event)
    subscribers.extend([fail, seen.append])
    with pytest.raises(ValueError, match="boom"):
        events.notify("boom")
    assert seen == []


# -- the monkey-patching events ------------------------------------------------------------

_RECORD = """
import %(pkg)s.events as events
from %(pkg)s import monkey
log = []
def record(event):
    log.append(event)
events.subscribers.append(record)
"""


def test_patch_all_events_in_order():
    lines = run(_RECORD + """
result = monkey.patch_all(mylib_option=1)
print(result)
for e in log:
    print(type(e).__name__, getattr(e, "module_name", "-"))
first = log[0]
print(first.patch_all_kwargs, first.will_patch_module("socket"), first.will_patch_module("sys"))
will = log[1]
print(will.source.__name__, will.target.__name__, will.target_item_names == will.source.__implements__)
""")
    assert lines[0] == "True"
    names = lines[1:-2]
    modules = ["os", ("_thread", "threading", "thread", "threading"), "time", "socket", "select",
               "selectors", "ssl", "subprocess", "signal", "queue"]
    expected = ["GeventWillPatchAllEvent -"]
    for module in modules:
        if isinstance(module, tuple):
            expected += ["GeventWillPatchModuleEvent %s" % module[0],
                         "GeventWillPatchModuleEvent %s" % module[1],
                         "GeventDidPatchModuleEvent %s" % module[2],
                         "GeventDidPatchModuleEvent %s" % module[3]]
        else:
            expected += ["GeventWillPatchModuleEvent %s" % module,
                         "GeventDidPatchModuleEvent %s" % module]
    expected += ["GeventDidPatchBuiltinModulesEvent -", "GeventDidPatchAllEvent -"]
    assert names == expected
    assert lines[-2] == "{'mylib_option': 1} True False"
    assert lines[-1] == "%s.os os True" % STOLON


def test_do_not_patch_vetoes_patch_all():
    lines = run(_RECORD + """
def veto(event):
    if isinstance(event, events.GeventWillPatchAllEvent):
        raise events.DoNotPatch
events.subscribers.append(veto)
import socket, time
original = socket.socket
print(monkey.patch_all())
print(socket.socket is original, monkey.is_module_patched("time"), len(log))
""")
    assert lines == ["False", "True False 1"]


def test_do_not_patch_vetoes_one_module():
    lines = run(_RECORD + """
def veto(event):
    if isinstance(event, events.GeventWillPatchModuleEvent) and event.module_name == "socket":
        raise events.DoNotPatch
events.subscribers.insert(0, veto)
import socket
original = socket.socket
print(monkey.patch_all())
print(socket.socket is original, monkey.is_module_patched("time"))
print([e.module_name for e in log if isinstance(e, events.GeventDidPatchModuleEvent)
       and e.module_name in ("socket", "time")])
""")
    assert lines == ["True", "True True", "['time']"]


@stolon_only
@pytest.mark.parametrize("vetoed", ["_thread", "threading"])
def test_vetoing_either_thread_module_leaves_both_unpatched(vetoed):
    # gevent patches _thread before it asks about threading, and then hangs at exit
    lines = run(_RECORD + """
def veto(event):
    if isinstance(event, events.GeventWillPatchModuleEvent) and event.module_name == %(vetoed)r:
        raise events.DoNotPatch
events.subscribers.insert(0, veto)
print(monkey.patch_thread())
print(monkey.is_module_patched("thread"), monkey.is_module_patched("threading"))
print([type(e).__name__ for e in log])
""".replace("%(vetoed)r", repr(vetoed)))
    # the veto stops the vetoed event's delivery, so the recorder sees only the ones before
    expected_wills = ["GeventWillPatchModuleEvent"] * (0 if vetoed == "_thread" else 1)
    assert lines == ["False", "False False", repr(expected_wills)]


@stolon_only   # gevent's patch_* functions return None when vetoed
def test_a_vetoed_patch_function_returns_false():
    lines = run(_RECORD + """
def veto(event):
    if isinstance(event, events.GeventWillPatchModuleEvent):
        raise events.DoNotPatch
events.subscribers.insert(0, veto)
for name in ("time", "socket", "select", "queue", "os", "ssl"):
    print(name, getattr(monkey, "patch_" + name)(), monkey.is_module_patched(name))
""")
    assert lines == ["%s False False" % name for name in ("time", "socket", "select", "queue", "os", "ssl")]


def test_patch_module_private_switches_turn_hooks_and_events_off():
    lines = run(_RECORD + """
import types
calls = []
source = types.ModuleType("source")
source.value = 1
source._gevent_will_monkey_patch = lambda *args: calls.append("will hook")
source._gevent_did_monkey_patch = lambda *args: calls.append("did hook")
target = types.ModuleType("target")
print(monkey.patch_module(target, source, items=["value"], _call_hooks=False,
                          _notify_will_subscribers=False), target.value)
print(calls, [type(e).__name__ for e in log])
""")
    assert lines == ["True 1", "[] ['GeventDidPatchModuleEvent']"]


def test_do_not_patch_from_a_did_event_ends_that_patch():
    lines = run(_RECORD + """
def veto(event):
    if isinstance(event, events.GeventDidPatchModuleEvent):
        raise events.DoNotPatch
events.subscribers.append(veto)
print(monkey.patch_time(), monkey.is_module_patched("time"))
""")
    assert lines == ["False True"]


def test_a_raising_subscriber_stops_patch_all():
    result = glet_run_script("""
import %(pkg)s.events as events
from %(pkg)s import monkey
def fail(event):
    if isinstance(event, events.GeventDidPatchBuiltinModulesEvent):
        raise ValueError("from a subscriber")
events.subscribers.append(fail)
try:
    monkey.patch_all()
except ValueError as e:
    print("raised", e, monkey.is_module_patched("socket"))
""" % {"pkg": STOLON})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["raised from a subscriber True"]


def _write_plugin(tmp_path, groups):
    (tmp_path / "myplugin.py").write_text(textwrap.dedent("""
        def report(event):
            print("plugin", type(event).__name__, flush=True)
        """))
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("".join(
        "[%s]\nreport = myplugin:report\n\n" % group for group in groups))
    return str(tmp_path)


def test_entry_point_plugins_are_called_after_subscribers(tmp_path):
    path = _write_plugin(tmp_path, ["gevent.plugins.monkey.will_patch_all",
                                    "gevent.plugins.monkey.did_patch_builtins"])
    lines = run("""
import %(pkg)s.events as events
from %(pkg)s import monkey
events.subscribers.append(lambda e: isinstance(e, (events.GeventWillPatchAllEvent,
    events.GeventDidPatchBuiltinModulesEvent)) and print("subscriber", type(e).__name__))
monkey.patch_all()
""", pythonpath=path)
    assert lines == ["subscriber GeventWillPatchAllEvent", "plugin GeventWillPatchAllEvent",
                     "subscriber GeventDidPatchBuiltinModulesEvent",
                     "plugin GeventDidPatchBuiltinModulesEvent"]


@stolon_only
def test_stolon_plugin_groups(tmp_path):
    # a plugin in both gevent's group and stolon's twin is called once
    path = _write_plugin(tmp_path, ["stolon.plugins.monkey.did_patch_all",
                                    "gevent.plugins.monkey.did_patch_all",
                                    "stolon.plugins.monkey.will_patch_module"])
    lines = run("""
from stolon import monkey
monkey.patch_time()
monkey.patch_all(time=False)
""", pythonpath=path)
    assert lines.count("plugin GeventDidPatchAllEvent") == 1
    assert lines[0] == "plugin GeventWillPatchModuleEvent"


@stolon_only
def test_patch_all_stays_cheap_without_listeners():
    # gevent's own entry point (installed beside stolon in some environments) is not
    # called, and nothing makes patch_all import importlib.metadata or zope.interface
    lines = run("""
import sys
from stolon import monkey
monkey.patch_all()
print("importlib.metadata" in sys.modules, "zope.interface" in sys.modules,
      "gevent" in sys.modules)
""")
    assert lines == ["False False False"]


@stolon_only
def test_declared_plugin_groups_skip_gevents_own():
    groups = set()
    events._add_plugin_groups(textwrap.dedent("""
        [gevent.plugins.monkey.will_patch_all]
        signal_os_incompat = gevent.monkey:_subscribe_signal_os
        [console_scripts]
        x = mod:main
        [stolon.plugins.monkey.did_patch_all]
        # a comment
        mine = mypkg.plug:handler
        """), groups)
    assert groups == {"stolon.plugins.monkey.did_patch_all"}
