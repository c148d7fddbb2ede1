"""greenlet.settrace / gettrace and the interaction with sys.settrace/setprofile."""
import gc
import sys

import pytest

from stolon import greenlet, getcurrent, GreenletExit, settrace, gettrace

pytestmark = pytest.mark.usefixtures("glet_clean_trace")


class SomeError(Exception):
    pass


class Tracer:
    def __init__(self, error_on_trace=False):
        self.actions = []
        self.error_on_trace = error_on_trace

    def __call__(self, *args):
        self.actions.append(args)
        if self.error_on_trace:
            raise SomeError

    def __enter__(self):
        # A collection inside the traced block could free a suspended greenlet
        # left over by another test, and its GreenletExit switches would be
        # traced too: collect first, and keep the collector off meanwhile.
        gc.collect()
        self.gc_was_enabled = gc.isenabled()
        gc.disable()
        self.oldtrace = settrace(self)
        return self.actions

    def __exit__(self, *args):
        settrace(self.oldtrace)
        if self.gc_was_enabled:
            gc.enable()


def test_settrace_returns_previous_and_gettrace():
    assert gettrace() is None
    t1, t2 = Tracer(), Tracer()
    assert settrace(t1) is None
    assert gettrace() is t1
    assert settrace(t2) is t1
    assert gettrace() is t2
    assert settrace(None) is t2
    assert gettrace() is None


def test_set_same_tracer_twice():
    tracer = Tracer()
    with tracer:
        settrace(tracer)
        assert gettrace() is tracer


def test_basic_events():
    main = getcurrent()

    def dummyexc():
        raise SomeError()

    with Tracer() as actions:
        g1 = greenlet(lambda: None)
        g1.switch()
        g2 = greenlet(dummyexc)
        with pytest.raises(SomeError):
            g2.switch()

    assert actions == [
        ("switch", (main, g1)),
        ("switch", (g1, main)),
        ("switch", (main, g2)),
        ("throw", (g2, main)),
    ]


def test_args_are_a_two_tuple():
    with Tracer() as actions:
        greenlet(lambda: None).switch()
    for event, args in actions:
        assert type(event) is str and type(args) is tuple and len(args) == 2


def test_self_switch_is_traced():
    main = getcurrent()
    with Tracer() as actions:
        assert main.switch(1) == 1
    assert actions == [("switch", (main, main))]


def test_throw_events():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    with Tracer() as actions:
        g.switch()
        with pytest.raises(KeyError):
            g.throw(KeyError)
    assert actions == [
        ("switch", (main, g)),
        ("switch", (g, main)),
        ("throw", (main, g)),
        ("throw", (g, main)),
    ]


def test_kill_by_greenletexit_returns_as_switch():
    main = getcurrent()
    k = greenlet(lambda: main.switch())
    k.switch()
    with Tracer() as actions:
        assert isinstance(k.throw(), GreenletExit)
    assert actions == [("throw", (main, k)), ("switch", (k, main))]


def test_throw_into_unstarted_events():
    main = getcurrent()
    u = greenlet(lambda: None)
    with Tracer() as actions:
        u.throw()
    assert actions == [("throw", (main, u)), ("switch", (u, main))]


def test_switch_to_dead_traces_switch_to_ancestor():
    main = getcurrent()
    d = greenlet(lambda: None)
    d.switch()
    with Tracer() as actions:
        d.switch()
    assert actions == [("switch", (main, main))]


def test_kill_on_dealloc_is_traced():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    with Tracer() as actions:
        gid = id(g)
        del g
    assert [(e, id(a[0]), id(a[1])) for e, a in actions] == [
        ("throw", id(main), gid), ("switch", gid, id(main))]


def test_tracer_runs_in_target_after_switch():
    main = getcurrent()
    seen = []

    def tracer(event, args):
        origin, target = args
        seen.append(getcurrent() is target)

    g = greenlet(lambda: main.switch())
    settrace(tracer)
    g.switch()
    g.switch()
    settrace(None)
    assert seen == [True, True, True, True]


def test_exception_in_tracer_removes_tracer_and_is_raised_in_target():
    main = getcurrent()

    def catching():
        try:
            main.switch()
        except SomeError:
            return "caught in target"
    g = greenlet(catching)
    g.switch()
    with Tracer(error_on_trace=True) as actions:
        assert g.switch() == "caught in target"
        assert gettrace() is None
    assert actions == [("switch", (main, g))]
    assert g.dead


def test_exception_in_tracer_disables_tracing():
    main = getcurrent()
    g = greenlet(lambda: main.switch())
    g.switch()
    with Tracer(error_on_trace=True) as actions:
        with pytest.raises(SomeError):
            g.switch()
        assert gettrace() is None
    assert actions == [("switch", (main, g))]


def test_exception_in_tracer_on_first_switch_run_never_runs():
    ran = []
    g = greenlet(lambda: ran.append(1))
    with Tracer(error_on_trace=True):
        with pytest.raises(SomeError):
            g.switch()
        assert gettrace() is None
    assert ran == []
    assert g.dead
    g.switch()  # dead: goes to the parent (us), run still never runs
    assert ran == []


def test_noncallable_tracer_fails_the_switch():
    settrace(5)
    assert gettrace() == 5
    with pytest.raises(TypeError):
        getcurrent().switch()
    assert gettrace() is None


def test_tracer_can_switch_state_is_consistent_after():
    # The tracer may itself use greenlets: nested switches are traced too,
    # but must not be re-entered into the tracer recursively forever.
    main = getcurrent()
    events = []

    def tracer(event, args):
        events.append(event)

    settrace(tracer)
    gs = [greenlet(lambda: main.switch()) for _ in range(3)]
    for g in gs:
        g.switch()
    for g in gs:
        g.switch()
    settrace(None)
    assert events == ["switch"] * 12
    assert all(g.dead for g in gs)


def test_python_tracing_suspended_during_greenlet_tracer():
    seen = []

    def pytrace(frame, event, arg):
        seen.append(frame.f_code.co_name)
        return pytrace

    def helper_in_tracer():
        return None

    def gtracer(event, args):
        helper_in_tracer()

    settrace(gtracer)
    sys.settrace(pytrace)
    try:
        greenlet(lambda: None).switch()
    finally:
        sys.settrace(None)
        settrace(None)
    assert "gtracer" not in seen
    assert "helper_in_tracer" not in seen
    assert "<lambda>" in seen


# ---------------------------------------------------------------- sys.setprofile is thread-wide

def tpt_callback():
    return 42


class PyProfiler:
    def __init__(self):
        self.actions = []

    def __call__(self, frame, event, arg):
        self.actions.append((event, frame.f_code.co_name))

    def __enter__(self):
        self.old = sys.getprofile()
        sys.setprofile(self)
        return self.actions

    def __exit__(self, *args):
        sys.setprofile(self.old)


def test_profile_set_in_greenlet_stays_after_switch():
    prof = PyProfiler()

    def run():
        prof.__enter__()
        return tpt_callback()

    try:
        assert greenlet(run).switch() == 42
        tpt_callback()
    finally:
        prof.__exit__()
    calls = [a for a in prof.actions if a[0] == "call"]
    assert calls.count(("call", "tpt_callback")) == 2


def test_profile_sees_greenlet_run_frames():
    def run():
        return tpt_callback()

    prof = PyProfiler()
    with prof:
        greenlet(run).switch()
    assert ("call", "run") in prof.actions
    assert ("call", "tpt_callback") in prof.actions
    assert ("return", "run") in prof.actions


def test_profile_removed_in_other_greenlet_is_removed_everywhere():
    prof = PyProfiler()
    g1 = g2 = None

    def g1_run():
        prof.__enter__()
        tpt_callback()
        g2.switch()
        tpt_callback()  # not profiled: g2 removed the profiler
        return 42

    def g2_run():
        tpt_callback()
        sys.setprofile(None)
        tpt_callback()
        g1.switch()

    g1 = greenlet(g1_run)
    g2 = greenlet(g2_run)
    assert g1.switch() == 42
    sys.setprofile(None)
    calls = [a for a in prof.actions if a == ("call", "tpt_callback")]
    assert len(calls) == 2


def test_sys_settrace_set_in_greenlet_stays_after_switch():
    # sys.settrace is thread-wide: greenlet does not swap it per greenlet.
    seen = []

    def pytrace(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)
        return None

    def run():
        sys.settrace(pytrace)
        return "set"

    try:
        assert greenlet(run).switch() == "set"
        assert sys.gettrace() is pytrace
        tpt_callback()
    finally:
        sys.settrace(None)
    assert "tpt_callback" in seen
