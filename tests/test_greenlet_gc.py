"""Garbage collection and the GreenletExit thrown into a suspended greenlet
when its last reference goes away."""
import gc
import sys
import weakref

import pytest

from conftest import glet_run_script
from stolon import greenlet, getcurrent, GreenletExit

KILL_MSG = "Killing the greenlet because all references have vanished."


class SomeError(Exception):
    pass


def to_parent(*args):
    return getcurrent().parent.switch(*args)


def fmain(seen):
    try:
        to_parent()
    except BaseException:
        seen.append(sys.exc_info()[0])
        raise
    raise SomeError


# ---------------------------------------------------------------- kill on last reference

def test_dealloc_throws_greenletexit():
    seen = []
    g1 = greenlet(fmain)
    g2 = greenlet(fmain)
    g1.switch(seen)
    g2.switch(seen)
    assert seen == []
    del g1
    gc.collect()
    assert seen == [GreenletExit]
    del g2
    gc.collect()
    assert seen == [GreenletExit, GreenletExit]


def test_dealloc_greenletexit_message_and_control_returns():
    got = []

    def body():
        try:
            to_parent()
        except GreenletExit as e:
            got.append((type(e), e.args))
            raise
    g = greenlet(body)
    g.switch()
    del g
    assert got == [(GreenletExit, (KILL_MSG,))]


def test_dealloc_finally_runs():
    seen = []

    def body():
        try:
            to_parent()
        finally:
            seen.append("finally")
    g = greenlet(body)
    g.switch()
    g = None
    assert seen == ["finally"]


def test_dealloc_sets_parent_to_current_greenlet():
    hub = greenlet(lambda: None)
    main = getcurrent()
    result = []

    def worker():
        try:
            main.switch()
        except GreenletExit:
            result.append(getcurrent().parent)
            result.append(getcurrent())
            hub.switch()

    g = greenlet(worker, parent=hub)
    g.switch()
    del g  # killed from main: its parent becomes main, not hub
    assert result
    assert result[0] is main
    # The worker resurrected itself (result holds it) and switched to hub, which
    # finished and returned to main. The kill's temporary parent is undone.
    assert result[1].parent is hub
    del result[:]


def test_dealloc_from_inside_another_greenlet_parent_is_that_greenlet():
    main = getcurrent()
    seen = []
    holder = []

    def victim():
        try:
            main.switch()
        except GreenletExit:
            seen.append(getcurrent().parent)
            raise

    g = greenlet(victim)
    g.switch()
    holder.append(g)
    del g

    def killer():
        holder.clear()
        return getcurrent()

    k = greenlet(killer)
    assert k.switch() is k
    assert seen == [k]


def test_dealloc_other_exception_goes_to_unraisablehook():
    events = []

    def run():
        try:
            to_parent()
        except GreenletExit:
            raise SomeError from None

    g = greenlet(run)
    g.switch()
    old_hook = sys.unraisablehook
    sys.unraisablehook = events.append
    try:
        del g
    finally:
        sys.unraisablehook = old_hook
    assert len(events) == 1
    assert isinstance(events[0].exc_value, SomeError)
    assert isinstance(events[0].object, greenlet)
    assert events[0].object.dead


def test_dealloc_keeps_current_exception():
    def body():
        try:
            to_parent()
        except GreenletExit:
            raise
    g = greenlet(body)
    g.switch()
    try:
        raise KeyError("outer")
    except KeyError:
        del g
        assert sys.exc_info()[0] is KeyError


def test_dealloc_switch_returning_value_is_lost_not_delivered():
    main = getcurrent()

    def body():
        try:
            to_parent()
        except GreenletExit:
            return "ignored"
    g = greenlet(body)
    g.switch()
    del g
    assert getcurrent() is main


def test_resurrected_greenlet_stays_alive():
    main = getcurrent()
    keep = []

    def body():
        try:
            main.switch()
        except GreenletExit:
            keep.append(getcurrent())
            main.switch("resurrected")
        return "finished later"

    g = greenlet(body)
    g.switch()
    ref = weakref.ref(g)
    del g
    assert len(keep) == 1
    assert ref() is keep[0]
    assert keep[0] and not keep[0].dead
    assert keep[0].switch() == "finished later"
    del keep[:]
    gc.collect()
    assert ref() is None


def test_greenletexit_did_not_kill_is_reported():
    proc = glet_run_script("""
        from stolon import greenlet, getcurrent, GreenletExit
        main = getcurrent()
        def stubborn():
            while True:
                try:
                    main.switch()
                except GreenletExit:
                    print("caught GreenletExit", flush=True)
        g = greenlet(stubborn)
        g.switch()
        del g
        print("after del", flush=True)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["caught GreenletExit", "after del"]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("GreenletExit did not kill")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("GreenletExit did not kill <")
    assert lines[0].endswith(" suspended active started>")


def test_unstarted_and_dead_greenlets_die_quietly():
    ran = []
    g = greenlet(lambda: ran.append(1))
    del g
    g = greenlet(lambda: ran.append(2))
    g.switch()
    del g
    assert ran == [2]


# ---------------------------------------------------------------- collectability

def test_dead_circular_ref_collected():
    o = weakref.ref(greenlet(getcurrent).switch())
    gc.collect()
    assert o() is None
    assert not gc.garbage


def test_circular_unstarted_greenlet_collected():
    class Circular(greenlet):
        self_ref = None
    o = Circular()
    o.self_ref = o
    o = weakref.ref(o)
    gc.collect()
    assert o() is None
    assert not gc.garbage


def test_inactive_greenlet_with_bound_run_collected():
    class Inactive(greenlet):
        def __init__(self):
            greenlet.__init__(self, run=self.run)

        def run(self):
            pass
    o = weakref.ref(Inactive())
    gc.collect()
    assert o() is None
    assert not gc.garbage


def test_dead_greenlet_in_cycle_made_while_running_collected():
    # (A list, not an instance __dict__: on Python < 3.11 a dict that gets a
    # running greenlet inserted stays untracked, because a running greenlet
    # reports itself as not collectable at that moment.)
    class Obj:
        pass

    def body():
        me = getcurrent()
        x = Obj()
        x.cycle = [x, me]
        me.cycle = [me, x]
        return weakref.ref(x)
    g = greenlet(body)
    xref = g.switch()
    gref = weakref.ref(g)
    del g
    gc.collect()
    assert gref() is None and xref() is None


def test_suspended_greenlet_in_cycle_is_not_collected():
    # A suspended (active, non-main) greenlet is not collectable: the cycle
    # through its suspended frame keeps it (greenlet docs/greenlet_gc.rst).
    def body():
        me = getcurrent()  # noqa: F841  (the frame references the greenlet)
        to_parent()
    g = greenlet(body)
    g.switch()
    ref = weakref.ref(g)
    del g
    gc.collect()
    alive = ref()
    assert alive is not None and alive
    alive.throw()  # clean up: kill it explicitly
    assert alive.dead
    del alive
    gc.collect()
    assert ref() is None


def test_weakref_callback_and_clearing_on_dead():
    calls = []
    g = greenlet(lambda: None)
    g.switch()
    r = weakref.ref(g, calls.append)
    del g
    gc.collect()
    assert r() is None
    assert calls == [r]


def test_weakref_inside_kill_sees_none():
    seen = []

    def worker():
        try:
            to_parent()
        finally:
            seen.append(gref())
    g = greenlet(worker)
    g.switch()
    g2 = greenlet(lambda: None, g)
    gref = weakref.ref(g2)
    g2 = None
    assert seen == []
    del g
    assert seen == [None]


def test_frame_locals_released_when_greenlet_finishes():
    class Tracked:
        pass
    refs = []

    def body():
        obj = Tracked()
        refs.append(weakref.ref(obj))
        to_parent()
    g = greenlet(body)
    g.switch()
    assert refs[0]() is not None
    g.switch()
    assert g.dead
    gc.collect()
    assert refs[0]() is None


def test_finalizer_on_greenlet_attribute_during_kill():
    class WithFinalizer:
        def __del__(self):
            pass
    array = []
    parent = getcurrent()
    seen = []

    def body():
        getcurrent().obj = WithFinalizer()
        try:
            parent.switch()
        except GreenletExit:
            seen.append("exit")
        finally:
            del getcurrent().obj
    g = greenlet(body)
    g.array = array
    array.append(g)
    g.switch()
    ref = weakref.ref(g)
    del array
    del g
    getcurrent()
    gc.collect()
    # the greenlet is suspended in a cycle (g -> array -> g), so it is not
    # collectable and nothing was thrown into it.
    assert seen == []
    assert ref() is not None
    ref().throw()  # clean up explicitly
    assert seen == ["exit"]
    gc.collect()
    assert ref() is None


def test_subclass_refcount_not_leaked_by_kill():
    class G(greenlet):
        pass
    glets = []

    def body():
        try:
            to_parent()
        except GreenletExit:
            glets.append(getcurrent())

    initial = sys.getrefcount(G)
    for _ in range(10):
        G(body).switch()
    del glets[:]
    gc.collect()
    assert sys.getrefcount(G) == initial


@pytest.mark.parametrize("n", [1, 100])
def test_gc_collect_while_greenlets_suspended(n):
    gs = []
    for _ in range(n):
        g = greenlet(lambda: to_parent())
        g.switch()
        gs.append(g)
    gc.collect()
    for g in gs:
        g.switch()
        assert g.dead


def test_gc_collect_inside_greenlet():
    def body():
        gc.collect()
        x = to_parent("suspended")
        gc.collect()
        return x
    g = greenlet(body)
    assert g.switch() == "suspended"
    gc.collect()
    assert g.switch("done") == "done"


def test_starter_is_not_kept_alive_by_the_greenlet_it_started():
    # g1 starts g2, which switches to main: g1 is suspended and, once dropped,
    # must be killed and freed; the running g2 holds no reference to it.
    main = getcurrent()
    g2 = greenlet(lambda: main.switch())
    g1 = greenlet(lambda: g2.switch())
    g1.switch()
    ref = weakref.ref(g1)
    del g1
    gc.collect()
    assert ref() is None
    assert g2 and not g2.dead
