"""Dead targets, where results and exceptions go when a greenlet finishes,
and the startup path when ``run`` lookup itself runs code."""
import sys

import pytest

from stolon import greenlet, getcurrent, GreenletExit


class SomeError(Exception):
    pass


def to_parent(*args):
    return getcurrent().parent.switch(*args)


# ---------------------------------------------------------------- switching to dead greenlets

def test_switch_to_dead_goes_to_parent_with_same_args():
    g = greenlet(lambda: None)
    g.switch()
    assert g.dead
    # The parent is the current (main) greenlet: a self-switch, by the usual rules.
    assert g.switch() == ()
    assert g.switch(25) == 25
    assert g.switch(1, 2) == (1, 2)
    assert g.switch(a=1) == {"a": 1}


def test_switch_to_dead_skips_dead_ancestors():
    main = getcurrent()
    got = []

    def alive():
        while True:
            got.append(main.switch("alive ready"))

    a = greenlet(alive)
    assert a.switch() == "alive ready"
    d1 = greenlet(lambda: None, parent=main)
    d1.switch()
    d2 = greenlet(lambda: None, parent=main)
    d2.switch()
    d1.parent = a
    d2.parent = d1
    assert d2.switch("x", y=1) == "alive ready"
    assert got == [((("x",), {"y": 1}))]
    a.throw()


def test_switch_to_dead_starts_unstarted_ancestor():
    seen = []
    unstarted = greenlet(lambda *args: seen.append(args) or "started")
    child = greenlet(lambda: None)
    child.switch()
    child.parent = unstarted
    assert child.switch(1, 2) == "started"
    assert seen == [(1, 2)]
    assert unstarted.dead


def test_switch_to_dead_reparented_to_unstarted_parent_no_args():
    seen = []
    parent_never_started = greenlet(lambda: seen.append(24))
    child = greenlet(lambda: seen.append(42))
    child.switch()
    assert seen == [42]
    child.parent = parent_never_started
    assert child.switch() is None
    assert seen == [42, 24]


def test_uncaught_exception_walks_up_through_dying_parents():
    # The child's error is raised in its suspended parent, which does not catch
    # it and dies too: the error reaches main.
    gp = greenlet(lambda: to_parent("p ready"))
    assert gp.switch() == "p ready"
    g = greenlet(lambda: 1 / 0, parent=gp)
    with pytest.raises(ZeroDivisionError):
        g.switch()
    assert g.dead and gp.dead


# ---------------------------------------------------------------- finishing

def test_result_goes_to_parent_not_to_switcher():
    main = getcurrent()
    log = []

    def parent_body():
        log.append(("parent got", main.switch("parent ready")))

    gp = greenlet(parent_body)
    assert gp.switch() == "parent ready"
    child = greenlet(lambda: "child result", parent=gp)
    # We (main) switch into child; it finishes and returns to gp, which returns to main.
    assert child.switch() is None
    assert log == [("parent got", "child result")]
    assert gp.dead and child.dead


def test_finishing_into_unstarted_parent_starts_it():
    def one_arg(x):
        return (x, 24)
    parent_never_started = greenlet(one_arg)
    child = greenlet(lambda: 42, parent_never_started)
    assert child.switch() == (42, 24)


def test_finishing_into_unstarted_parent_with_no_args_raises_type_error():
    parent_never_started = greenlet(lambda: 13)
    child = greenlet(lambda: 42, parent_never_started)
    with pytest.raises(TypeError):
        child.switch()
    assert child.dead


def test_finishing_into_parent_without_run_raises_attribute_error():
    g1 = greenlet()
    g2 = greenlet(lambda: None, parent=g1)
    with pytest.raises(AttributeError):
        g2.switch()


def test_finishing_into_parent_whose_run_lookup_raises():
    class Parent(greenlet):
        def __getattribute__(self, name):
            if name == "run":
                raise SomeError
            return greenlet.__getattribute__(self, name)

    parent_never_started = Parent()
    seen = []
    child = greenlet(lambda: seen.append(42), parent_never_started)
    with pytest.raises(SomeError):
        child.switch()
    assert seen == [42]
    # Switching to the now-dead child tries the parent again.
    with pytest.raises(SomeError):
        child.switch()
    assert seen == [42]


# ---------------------------------------------------------------- exceptions when finishing

def test_uncaught_exception_raised_in_parent():
    g = greenlet(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        g.switch()
    assert g.dead


def test_uncaught_exception_raised_in_suspended_parent_switch():
    def child_raises():
        raise SomeError("child")

    def parent_body():
        try:
            greenlet(child_raises).switch()
        except SomeError as e:
            return ("parent caught", str(e))
    assert greenlet(parent_body).switch() == ("parent caught", "child")


def test_exception_propagates_to_reassigned_parent():
    seen = []

    def fmain():
        try:
            to_parent()
        except BaseException:
            seen.append(sys.exc_info()[0])
            raise
        raise SomeError

    g1 = greenlet(fmain)
    g2 = greenlet(fmain)
    g1.switch()
    g2.switch()
    g2.parent = g1
    assert seen == []
    # g2 raises SomeError into g1, which re-raises it into main.
    with pytest.raises(SomeError):
        g2.switch()
    assert seen == [SomeError]
    assert g1.dead and g2.dead
    assert g2.switch() == ()
    assert g2.switch(25) == 25
    assert seen == [SomeError]


def test_send_exception_through_child():
    seen = []

    def fmain():
        try:
            to_parent()
        except BaseException:
            seen.append(sys.exc_info()[0])
            raise

    g1 = greenlet(fmain)
    g1.switch()

    def crasher(exc):
        raise exc
    with pytest.raises(KeyError):
        greenlet(crasher, parent=g1).switch(KeyError)
    assert seen == [KeyError]


def test_greenletexit_from_run_becomes_return_value():
    exc = GreenletExit("done")

    def body():
        raise exc
    assert greenlet(body).switch() is exc


def test_greenletexit_subclass_from_run_becomes_return_value():
    class MyExit(GreenletExit):
        pass

    def body():
        raise MyExit("x")
    res = greenlet(body).switch()
    assert type(res) is MyExit


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, StopIteration, GeneratorExit])
def test_special_base_exceptions_propagate_like_others(exc_type):
    def body():
        raise exc_type("from greenlet")
    g = greenlet(body)
    with pytest.raises(exc_type):
        g.switch()
    assert g.dead


def test_exception_chain_and_traceback_preserved():
    def inner_fn():
        try:
            raise KeyError("inner")
        except KeyError:
            raise SomeError("outer")  # noqa: B904

    with pytest.raises(SomeError) as exc:
        greenlet(inner_fn).switch()
    assert isinstance(exc.value.__context__, KeyError)
    names = []
    tb = exc.value.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "inner_fn" in names


# ---------------------------------------------------------------- run lookup that runs code

def test_getattribute_raising_and_catching_does_not_lose_thrown_exception():
    class G(greenlet):
        def __getattribute__(self, name):
            try:
                raise Exception  # noqa: TRY002
            except Exception:  # noqa: BLE001
                pass
            return greenlet.__getattribute__(self, name)

    g = G(lambda: None)
    with pytest.raises(SomeError):
        g.throw(SomeError())


def test_recursive_startup_switch_inside_run_lookup():
    # The first lookup of ``run`` switches back into the greenlet itself (starting
    # it from inside its own startup); greenlet then treats the outer startup as
    # a plain switch.
    class Convoluted(greenlet):
        def __init__(self):
            greenlet.__init__(self)
            self.count = 0

        def __getattribute__(self, name):
            if name == "run" and self.count == 0:
                self.count = 1
                self.switch(43)
            return greenlet.__getattribute__(self, name)

        def run(self, value):
            while True:
                self.parent.switch(value)

    g = Convoluted()
    assert g.switch(42) == 43
    assert g
    # Clean up: kill the loop so nothing stays suspended.
    g.throw()
    assert g.dead


def test_dealloc_switch_args_not_lost():
    seen = []

    def worker():
        value = to_parent()
        del worker_ref[0]
        initiator.parent = getcurrent().parent
        try:
            to_parent(value)
        finally:
            seen.append(getcurrent())

    def initiator_fn():
        return 42

    worker_ref = [greenlet(worker)]
    worker_ref[0].switch()
    initiator = greenlet(initiator_fn, worker_ref[0])
    value = initiator.switch()
    assert seen
    assert value == 42
