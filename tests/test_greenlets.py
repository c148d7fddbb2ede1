"""Greenlet: spawning, outcome, get/join, kill/throw, links, naming and repr,
subclassing, errors reaching the hub, per-greenlet exception state and context.

Written against gevent's API with stolon's names; the suite also passes against
gevent 26.9 with the names switched (except tests marked ``stolon_only``).
"""
import contextvars
import gc
import re
import sys
import threading

import pytest

import stolon
from stolon import Greenlet, GreenletExit, Timeout, getcurrent
from stolon.hub import LoopExit

RawGreenlet = type(getcurrent())
GreenletError = RawGreenlet.error


def _finish_all():
    """Run every greenlet that is ready to run (those spawned so far included)."""
    stolon.sleep(0)
    stolon.sleep(0)


@pytest.fixture
def errors():
    """Records what reaches the hub's handle_error (instead of printing it)."""
    hub = stolon.get_hub()
    seen = []
    hub.handle_error = lambda context, typ, value, tb: seen.append((context, typ, value, tb))
    try:
        yield seen
    finally:
        del hub.handle_error


# -- spawning and outcome ------------------------------------------------------------------

def test_spawn_returns_a_started_greenlet_of_the_hub():
    g = stolon.spawn(lambda: 42)
    assert isinstance(g, Greenlet)
    assert isinstance(g, RawGreenlet)
    assert g.parent is stolon.get_hub()
    assert g.started and bool(g)
    assert not g.ready() and not g.dead and g.value is None
    assert g.get() == 42
    assert g.ready() and g.dead and g.successful()
    assert not g and not g.started
    assert g.value == 42 and g.exception is None and g.exc_info is None


def test_arguments_are_passed_and_released_after_the_run():
    g = stolon.spawn(lambda a, b, c=0: (a, b, c), 1, 2, c=3)
    assert g.args == (1, 2) and g.kwargs == {"c": 3}
    assert g.get() == (1, 2, 3)
    assert g.args == () and g.kwargs == {}


def test_unstarted_greenlet_is_not_started_ready_or_dead():
    g = Greenlet(lambda: 1)
    assert not g and not g.started and not g.ready() and not g.dead
    g.start()
    g.start()       # a second start does nothing
    assert g.get() == 1


def test_greenlet_without_run_does_nothing():
    g = stolon.spawn()
    assert g.get() is None and g.successful()


def test_spawned_greenlets_start_in_spawn_order():
    order = []
    for i in range(20):
        stolon.spawn(order.append, i)
    stolon.sleep(0)
    assert order == list(range(20))


def test_start_later_and_spawn_later_wait_their_time():
    order = []
    stolon.spawn_later(0.02, order.append, "late")
    Greenlet(order.append, "later").start_later(0.01)
    g = Greenlet.spawn_later(0, order.append, "now")
    stolon.spawn(order.append, "first")
    g.join()
    stolon.sleep(0.04)
    assert order == ["first", "now", "later", "late"]


def test_error_is_recorded_and_reaches_the_hub(errors):
    def fail():
        raise ValueError("boom")
    g = stolon.spawn(fail)
    g.join()
    assert g.ready() and g.dead and not g.successful()
    assert isinstance(g.exception, ValueError) and g.value is None
    typ, value, tb = g.exc_info
    assert typ is ValueError and value is g.exception and tb is not None
    assert len(errors) == 1
    context, typ, value, tb = errors[0]
    assert context is g and typ is ValueError and value is g.exception and tb is not None


def test_error_is_printed_with_traceback_and_the_hub_goes_on(capsys):
    def fail():
        raise ValueError("printed")
    g = stolon.spawn(fail)
    g.join()
    stolon.sleep(0.001)
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: printed" in err
    assert re.search(r"<Greenlet at 0x[0-9a-f]+: fail> failed with ValueError", err)


def test_get_reraises_with_the_original_traceback(errors):
    def inner():
        raise KeyError("k")
    g = stolon.spawn(inner)
    with pytest.raises(KeyError) as info:
        g.get()
    assert info.value is g.exception
    assert "inner" in [entry.name for entry in info.traceback]
    with pytest.raises(KeyError):
        g.get()     # again, now ready


def test_greenletexit_counts_as_success_and_is_not_printed(capsys):
    def leave():
        raise GreenletExit("bye")
    g = stolon.spawn(leave)
    value = g.get()
    assert isinstance(value, GreenletExit) and value is g.value
    assert g.successful() and g.exception is None
    assert capsys.readouterr().err == ""


def test_get_nonblocking_on_unfinished_raises_timeout():
    g = stolon.spawn(stolon.sleep, 10)
    try:
        with pytest.raises(Timeout):
            g.get(block=False)
        with pytest.raises(Timeout) as info:
            g.get(timeout=0.01)
        assert str(info.value) == "0.01 seconds"
        assert not g.has_links()
    finally:
        g.kill()


def test_join_returns_none_finished_or_not():
    g = stolon.spawn(stolon.sleep, 10)
    try:
        assert g.join(0.005) is None and not g.ready()
        assert g.join(-1) is None and not g.ready()
        assert not g.has_links()
    finally:
        g.kill()
    assert g.join() is None


def test_negative_timeouts_expire_at_once():
    g = stolon.spawn(stolon.sleep, 10)
    try:
        with pytest.raises(Timeout) as info:
            g.get(timeout=-1)
        assert str(info.value) == "-1 seconds"
    finally:
        g.kill(timeout=-1)
    assert stolon.spawn_later(-1, lambda: "ran").get() == "ran"


def test_timeout_from_outside_interrupts_join_and_removes_the_link():
    g = stolon.spawn(stolon.sleep, 10)
    try:
        with Timeout(0.005, False):
            g.join()
            pytest.fail("join() returned")
        assert not g.has_links()
    finally:
        g.kill()


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: stolon.spawn(1), lambda: Greenlet(1),
                                  lambda: stolon.spawn_later(1, 1), lambda: Greenlet.spawn(run=1)])
def test_non_callable_run_is_refused(make):
    with pytest.raises(TypeError) as info:
        make()
    assert str(info.value) == "The run argument or self._run must be callable"


def test_spawn_later_needs_a_function():
    with pytest.raises(TypeError):
        stolon.spawn_later(1)
    with pytest.raises(TypeError):
        Greenlet.spawn_later(1)


def test_non_callable_link_is_refused():
    g = Greenlet(lambda: None)
    for add in (g.rawlink, g.link, g.link_value, g.link_exception):
        with pytest.raises(TypeError) as info:
            add(1)
        assert str(info.value) == "Expected callable: 1"
    assert not g.has_links()


def test_get_on_itself_blocks_forever_as_in_gevent():
    # gevent does not check: the greenlet waits for itself, and with nothing else
    # to run the loop reports that the wait would never end
    g = stolon.spawn(lambda: getcurrent().get())
    try:
        with pytest.raises(LoopExit):
            g.join()
        assert not g.ready()
    finally:
        g.kill()
    assert g.dead


def test_joining_a_greenlet_of_another_thread_raises_greenlet_error():
    box = {}
    started = threading.Event()
    release = threading.Event()

    def thread_main():
        box["g"] = stolon.spawn(stolon.sleep, 10)
        stolon.sleep(0)
        started.set()
        release.wait(10)
        box["g"].kill()

    t = threading.Thread(target=thread_main)
    t.start()
    try:
        started.wait(10)
        g = box["g"]
        with pytest.raises(GreenletError) as info:
            g.join()
        assert "different thread" in str(info.value)
        with pytest.raises(GreenletError):
            g.get()
        assert not g.has_links()
    finally:
        release.set()
        t.join(10)
    assert box["g"].dead


# -- kill and throw ------------------------------------------------------------------------

def test_kill_blocks_until_dead_and_counts_as_success():
    g = stolon.spawn(stolon.sleep, 10)
    stolon.sleep(0)
    assert g.kill() is None
    assert g.dead and g.ready() and g.successful()
    assert isinstance(g.value, GreenletExit)


def test_kill_with_another_exception_records_it(errors):
    g = stolon.spawn(stolon.sleep, 10)
    stolon.sleep(0)
    g.kill(ValueError)
    assert g.dead and isinstance(g.exception, ValueError)
    assert [e[0] for e in errors] == [g]


def test_kill_without_block_returns_at_once():
    g = stolon.spawn(stolon.sleep, 10)
    stolon.sleep(0)
    g.kill(block=False)
    assert not g.dead
    stolon.sleep(0)
    assert g.dead and isinstance(g.value, GreenletExit)


def test_module_kill_is_asynchronous():
    g = stolon.spawn(stolon.sleep, 10)
    stolon.sleep(0)
    stolon.kill(g)
    assert not g.dead
    g.join()
    assert isinstance(g.value, GreenletExit)


def test_unstarted_greenlet_killed_never_runs_but_its_links_run():
    ran, linked = [], []
    g = Greenlet(ran.append, 1)
    g.rawlink(linked.append)
    g.kill()
    assert g.dead and g.ready() and not g and g.successful()
    assert isinstance(g.value, GreenletExit)
    g.start()
    _finish_all()
    assert ran == [] and linked == [g]


def test_killing_a_spawned_greenlet_before_it_runs_cancels_the_start(errors):
    ran = []
    g = stolon.spawn(ran.append, 1)
    g.kill(KeyError)
    assert g.dead and isinstance(g.exception, KeyError)
    _finish_all()
    assert ran == []
    assert [e[0] for e in errors] == [g]


def test_kill_never_raises_and_may_be_repeated():
    g = stolon.spawn(lambda: 1)
    g.join()
    g.kill()
    g.kill(ValueError)
    assert g.value == 1 and g.successful()


def test_kill_timeout_gives_up_on_a_stubborn_greenlet():
    def stubborn():
        while True:
            try:
                stolon.sleep(10)
            except GreenletExit:
                pass
    g = stolon.spawn(stubborn)
    stolon.sleep(0)
    try:
        g.kill(timeout=0.01)
        assert not g.dead
    finally:
        g.kill(ValueError, block=False)
        g.join()


def test_kill_with_an_exc_info_triple(errors):
    g = stolon.spawn(stolon.sleep, 10)
    stolon.sleep(0)
    exc = IndexError("triple")
    g.kill((IndexError, exc, None))
    assert g.exception is exc


def test_throw_into_an_unstarted_greenlet_records_the_outcome(errors):
    ran = []
    g = stolon.spawn(ran.append, 1)
    g.throw(ValueError("x"))
    assert g.dead and str(g.exception) == "x"
    _finish_all()
    assert ran == []


def test_kill_from_inside_itself():
    def suicide():
        getcurrent().kill()
        return "not reached"
    g = stolon.spawn(suicide)
    g.join()
    assert isinstance(g.value, GreenletExit)


# -- dead and the exception state of the running greenlet ----------------------------------

def test_running_greenlet_is_not_dead_to_itself():
    seen = []

    def body():
        me = getcurrent()
        seen.append((me.dead, me.ready(), bool(me)))
    stolon.spawn(body).join()
    assert seen == [(False, False, True)]


def test_greenlet_being_started_is_not_dead_to_a_tracer():
    # the tracer runs in the greenlet as it starts, after its start event is spent
    seen = []
    g = Greenlet(lambda: 1)

    def tracer(event, args):
        if args[1] is g and not seen:
            seen.append((event, getcurrent() is g, g.dead, g.ready(), bool(g)))
    old = RawGreenlet.settrace(tracer)
    try:
        g.start()
        g.join()
    finally:
        RawGreenlet.settrace(old)
    assert seen == [("switch", True, False, False, True)]


def test_each_greenlet_has_its_own_exception_state():
    seen = []

    def body():
        seen.append(sys.exc_info())
        try:
            raise ValueError("inner")
        except ValueError:
            stolon.sleep(0)
            seen.append(sys.exc_info()[0])
    try:
        raise KeyError("outer")
    except KeyError:
        g = stolon.spawn(body)
        stolon.sleep(0)
        assert sys.exc_info()[0] is KeyError
        g.join()
        assert sys.exc_info()[0] is KeyError
    assert seen == [(None, None, None), ValueError]


_var = contextvars.ContextVar("_var", default="default")


def test_each_greenlet_starts_with_an_empty_context():
    token = _var.set("main")
    try:
        def body():
            before = _var.get()
            _var.set("child")
            stolon.sleep(0)
            return before, _var.get()
        a, b = stolon.spawn(body), stolon.spawn(body)
        stolon.joinall([a, b])
        assert a.value == b.value == ("default", "child")
        assert _var.get() == "main"
    finally:
        _var.reset(token)


# -- system errors reach the main greenlet -------------------------------------------------

@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_system_errors_are_raised_in_the_main_greenlet(exc, capsys):
    def body():
        raise exc
    g = stolon.spawn(body)
    with pytest.raises(type(exc)) as info:
        g.join()
    assert info.value is exc
    assert g.ready() and g.exception is exc
    stolon.sleep(0)     # back in the hub, the greenlet finishes dying
    assert g.dead
    capsys.readouterr()


# -- links ---------------------------------------------------------------------------------

def test_rawlinks_run_in_the_hub_in_order_after_the_greenlet():
    hub = stolon.get_hub()
    calls = []
    g = stolon.spawn(lambda: calls.append("run"))
    for name in "abc":
        g.rawlink(lambda source, name=name: calls.append((name, source, getcurrent() is hub)))
    assert g.has_links()
    g.join()
    stolon.sleep(0)
    assert calls == ["run", ("a", g, True), ("b", g, True), ("c", g, True)]
    assert not g.has_links()


def test_rawlink_after_finish_still_runs():
    g = stolon.spawn(lambda: 5)
    g.join()
    seen = []
    g.rawlink(lambda source: seen.append(source.value))
    assert seen == []
    stolon.sleep(0)
    assert seen == [5]


def test_link_runs_each_callback_in_its_own_greenlet():
    hub = stolon.get_hub()
    seen = []

    def callback(source):
        me = getcurrent()
        seen.append((source, me is not hub, type(me) is RawGreenlet, me.parent is hub))
        stolon.sleep(0)     # may block: it is not the hub
    g = stolon.spawn(lambda: 1)
    g.link(callback)
    g.link(callback)
    g.join()
    _finish_all()
    assert seen == [(g, True, True, True)] * 2


def test_link_value_and_link_exception_pick_the_outcome(errors):
    seen = []
    ok = stolon.spawn(lambda: 1)
    bad = stolon.spawn(lambda: 1 / 0)
    for g in (ok, bad):
        g.link_value(lambda s: seen.append(("value", s)))
        g.link_exception(lambda s: seen.append(("exception", s)))
    stolon.joinall([ok, bad])
    _finish_all()
    assert sorted(seen, key=repr) == sorted([("value", ok), ("exception", bad)], key=repr)


def test_unlink_and_unlink_all():
    seen = []

    def a(s):
        seen.append("a")

    def b(s):
        seen.append("b")
    g = stolon.spawn(lambda: 1)
    g.rawlink(a)
    g.link(b)
    g.unlink(a)
    g.unlink(b)         # finds the link() wrapper of b
    g.unlink(a)         # absent: nothing happens
    assert not g.has_links()
    g.rawlink(a)
    g.rawlink(b)
    g.unlink_all()
    g.join()
    _finish_all()
    assert seen == []


def test_links_keep_their_order_through_unlinks():
    seen = []

    def make(name):
        return lambda source: seen.append(name)
    a, b, c, d, e = (make(name) for name in "abcde")
    g = stolon.spawn(lambda: 1)
    g.rawlink(a)
    g.rawlink(b)
    g.unlink(a)
    g.rawlink(c)
    g.unlink(c)
    g.rawlink(d)
    g.unlink(b)
    g.unlink(d)
    assert not g.has_links()
    g.rawlink(e)
    g.rawlink(a)
    g.join()
    stolon.sleep(0)
    assert seen == ["e", "a"]


def test_a_failing_link_is_reported_and_the_others_still_run(errors):
    seen = []

    def bad(source):
        raise ZeroDivisionError

    g = stolon.spawn(lambda: 1)
    g.rawlink(bad)
    g.rawlink(seen.append)
    g.join()
    stolon.sleep(0)
    assert seen == [g]
    assert len(errors) == 1
    (context, typ, _, _), = errors
    assert context == (bad, g) and typ is ZeroDivisionError


def test_a_link_may_add_links():
    seen = []

    def first(source):
        seen.append(1)
        source.rawlink(lambda _: seen.append(2))
    g = stolon.spawn(lambda: 1)
    g.rawlink(first)
    g.join()
    _finish_all()
    assert seen == [1, 2]


# -- subclassing ---------------------------------------------------------------------------

class Doubler(Greenlet):
    def __init__(self, x):
        Greenlet.__init__(self)
        self.x = x
        self.extra = "kept"

    def _run(self):
        return self.x * 2


def test_subclass_with_run_method_and_attributes():
    g = Doubler.spawn(21)
    assert g.get() == 42
    assert g.extra == "kept" and g.__dict__["x"] == 21
    assert re.fullmatch(r"<Doubler at 0x[0-9a-f]+: _run>", repr(g))


def test_subclass_run_argument_wins_over_the_method():
    class Sub(Greenlet):
        def _run(self):
            return "method"
    assert Sub.spawn(lambda: "argument").get() == "argument"
    assert Sub.spawn().get() == "method"


def test_subclass_spawn_later_needs_no_function():
    class Sub(Greenlet):
        def _run(self):
            return "later"
    assert Sub.spawn_later(0.001).get() == "later"


def test_plain_greenlet_takes_attributes():
    g = Greenlet(lambda: 1)
    g.anything = 1
    assert g.anything == 1 and g.__dict__["anything"] == 1


def test_context_manager_joins_then_kills():
    with stolon.spawn(lambda: 7) as g:
        pass
    assert g.value == 7
    with pytest.raises(RuntimeError):
        with stolon.spawn(stolon.sleep, 10) as g:
            stolon.sleep(0)
            raise RuntimeError("body failed")
    assert g.dead and isinstance(g.exception, RuntimeError)


# -- names, idents, repr, spawn tree -------------------------------------------------------

def f(*args, **kwargs):
    return None


def test_repr_shows_function_and_arguments():
    g = Greenlet(f, 1, "two", k=[3])
    assert re.fullmatch(r"<Greenlet at 0x[0-9a-f]+: f\(1, 'two', k=\[3\]\)>", repr(g))
    assert hex(id(g)) in repr(g)
    long = Greenlet(f, "x" * 100)
    assert "'" + "x" * 49 + ")" in repr(long)


def test_repr_is_kept_after_the_run_releases_the_function():
    g = Greenlet(f, 1)
    before = repr(g)
    g.start()
    g.join()
    assert repr(g) == before


def test_repr_shows_the_name_once_known():
    g = Greenlet(f)
    assert g.name == "Greenlet-%d" % g.minimal_ident
    assert re.fullmatch(r'<Greenlet "Greenlet-\d+" at 0x[0-9a-f]+: f>', repr(g))
    g.name = "worker"
    assert g.name == "worker"
    assert re.fullmatch(r'<Greenlet "worker" at 0x[0-9a-f]+: f>', repr(g))


def test_minimal_idents_are_unique_and_reused_once_free():
    gc.collect()
    gs = [Greenlet(f) for _ in range(10)]
    idents = [g.minimal_ident for g in gs]
    assert len(set(idents)) == 10 and min(idents) >= 0
    assert [g.minimal_ident for g in gs] == idents
    freed = idents[3]
    del gs[3]
    gc.collect()
    assert Greenlet(f).minimal_ident == freed


def test_spawning_greenlet_and_spawn_tree_locals():
    main = getcurrent()
    seen = {}

    def child():
        me = getcurrent()
        me.spawn_tree_locals["key"] = "shared"
        grandchild = stolon.spawn(lambda: getcurrent().spawn_tree_locals.get("key"))
        seen["grandchild"] = grandchild.get()
        seen["spawner"] = grandchild.spawning_greenlet() is me
    a, b = stolon.spawn(child), stolon.spawn(lambda: None)
    stolon.joinall([a, b])
    assert a.spawning_greenlet() is main
    assert seen == {"grandchild": "shared", "spawner": True}
    # children of a main greenlet do not share: each starts a tree
    assert a.spawn_tree_locals is not b.spawn_tree_locals


def test_greenlets_spawned_by_a_raw_greenlet_share_its_tree_locals():
    box = {}

    def raw_body():
        a, b = stolon.spawn(lambda: None), stolon.spawn(lambda: None)
        box["shared"] = a.spawn_tree_locals is b.spawn_tree_locals
        box["raw"] = a.spawn_tree_locals is getcurrent().spawn_tree_locals
        stolon.joinall([a, b])
    raw = stolon.spawn_raw(raw_body)
    while not raw.dead:
        stolon.sleep(0.001)
    assert box == {"shared": True, "raw": True}


def test_spawn_callbacks_see_each_started_greenlet():
    seen = []
    Greenlet.add_spawn_callback(seen.append)
    try:
        g = stolon.spawn(f)
        h = Greenlet(f)
        h.start_later(0.001)
    finally:
        Greenlet.remove_spawn_callback(seen.append)
    Greenlet.remove_spawn_callback(seen.append)     # absent: nothing happens
    stolon.joinall([g, h])
    assert seen == [g, h]


# -- stolon.greenlet: the greenlet type, and the module of Greenlet ------------------------

@pytest.mark.stolon_only
def test_stolon_only_greenlet_attribute_is_the_type_and_module_imports():
    # gevent.greenlet is a module; stolon.greenlet must stay greenlet's type
    from stolon._core import greenlet as core_greenlet
    from stolon.greenlet import Greenlet as imported, joinall, killall  # noqa: F401
    assert stolon.greenlet is core_greenlet
    assert imported is Greenlet
    assert sys.modules["stolon.greenlet"].Greenlet is Greenlet


def test_a_greenlet_that_survives_kill_keeps_its_function_and_arguments():
    def stubborn(n):
        while True:
            try:
                stolon.sleep(1)
            except stolon.GreenletExit:
                return n

    g = stolon.spawn(stubborn, 7)
    stolon.sleep(0)
    before = repr(g)
    g.kill(block=False)
    assert repr(g) == before            # still running: nothing was released yet
    assert g.get(timeout=1) == 7
