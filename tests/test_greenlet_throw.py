"""greenlet.throw(): argument validation and where the exception ends up."""
import sys

import pytest

from stolon import greenlet, getcurrent, GreenletExit


class SomeError(Exception):
    pass


def to_parent(*args):
    return getcurrent().parent.switch(*args)


def catcher():
    """Suspends once; reports what was thrown into it."""
    try:
        to_parent("ready")
    except BaseException as e:  # noqa: B902
        return ("caught", type(e), e.args, e.__traceback__ is not None)
    return "not thrown"


def suspended(fn=catcher):
    g = greenlet(fn)
    assert g.switch() == "ready"
    return g


# ---------------------------------------------------------------- forms of the arguments

@pytest.mark.parametrize("args, typ, eargs", [
    ((KeyError,), KeyError, ()),
    ((KeyError, "m"), KeyError, ("m",)),
    ((KeyError, ("a", "b")), KeyError, ("a", "b")),
    ((KeyError, KeyError("z")), KeyError, ("z",)),
    ((KeyError("i"),), KeyError, ("i",)),
    ((KeyError("i"), None), KeyError, ("i",)),
    ((ValueError, 3), ValueError, (3,)),
    ((GreenletExit,), GreenletExit, ()),
    ((SomeError, None, None), SomeError, ()),
])
def test_throw_argument_forms(args, typ, eargs):
    g = suspended()
    assert g.throw(*args) == ("caught", typ, eargs, True)
    assert g.dead


def test_throw_class_then_continue():
    def f():
        try:
            to_parent("ok")
        except RuntimeError:
            to_parent("ok")
            return
        to_parent("fail")
    g = greenlet(f)
    assert g.switch() == "ok"
    assert g.throw(RuntimeError) == "ok"
    assert g
    assert g.switch() is None
    assert g.dead


def test_throw_value_message():
    def f():
        try:
            to_parent()
        except RuntimeError as e:
            return str(e)
    for args in [(RuntimeError("ciao"),), (RuntimeError, "ciao")]:
        g = greenlet(f)
        g.switch()
        assert g.throw(*args) == "ciao"


def test_throw_same_instance_is_raised():
    exc = SomeError("x")

    def f():
        try:
            to_parent()
        except SomeError as e:
            return e
    g = greenlet(f)
    g.switch()
    assert g.throw(exc) is exc


def test_throw_with_traceback_keeps_it():
    try:
        raise ZeroDivisionError("q")
    except ZeroDivisionError:
        tb = sys.exc_info()[2]
    origin = tb.tb_frame

    def f():
        try:
            to_parent()
        except ZeroDivisionError as e:
            frames = []
            t = e.__traceback__
            while t is not None:
                frames.append(t.tb_frame)
                t = t.tb_next
            return frames
    g = greenlet(f)
    g.switch()
    frames = g.throw(ZeroDivisionError, ZeroDivisionError("q"), tb)
    assert origin in frames


def test_throw_takes_no_keyword_arguments():
    g = suspended()
    with pytest.raises(TypeError):
        g.throw(typ=KeyError)
    assert g and not g.dead
    assert g.throw()[1] is GreenletExit


# ---------------------------------------------------------------- validation (exact messages)

def test_third_argument_must_be_traceback():
    g = suspended()
    with pytest.raises(TypeError) as exc:
        g.throw(Exception, Exception(), object())
    assert str(exc.value) == "throw() third argument must be a traceback object"
    assert g and not g.dead


def test_third_argument_must_be_traceback_on_current():
    with pytest.raises(TypeError) as exc:
        getcurrent().throw(Exception, Exception(), 5)
    assert str(exc.value) == "throw() third argument must be a traceback object"


def test_instance_with_separate_value():
    g = suspended()
    with pytest.raises(TypeError) as exc:
        g.throw(Exception(), BaseException())
    assert str(exc.value) == "instance exception may not have a separate value"
    assert g and not g.dead


@pytest.mark.parametrize("bad, name", [
    ("abc", "str"), (5, "int"), (object, "type"), (None, "NoneType"), ([], "list"),
])
def test_not_throwable(bad, name):
    g = suspended()
    with pytest.raises(TypeError) as exc:
        g.throw(bad)
    assert str(exc.value) == "exceptions must be classes, or instances, not %s" % name
    assert g and not g.dead


def test_validation_errors_do_not_start_unstarted():
    ran = []
    g = greenlet(lambda: ran.append(1))
    with pytest.raises(TypeError):
        g.throw("nope")
    assert not g and not g.dead and ran == []
    g.switch()
    assert ran == [1]


# ---------------------------------------------------------------- suspended targets

def test_uncaught_throw_propagates_to_parent():
    g = suspended(lambda: to_parent("ready"))
    with pytest.raises(SomeError):
        g.throw(SomeError)
    assert g.dead


def test_default_throw_kills_and_returns_instance():
    g = suspended(lambda: (to_parent("ready"), to_parent("fail")))
    res = g.throw()
    assert isinstance(res, GreenletExit)
    assert type(res) is GreenletExit
    assert g.dead


def test_throw_greenletexit_instance_is_returned_itself():
    exc = GreenletExit("bye")
    g = suspended(lambda: to_parent("ready"))
    assert g.throw(exc) is exc


def test_greenletexit_subclass_is_returned_too():
    class MyExit(GreenletExit):
        pass
    g = suspended(lambda: to_parent("ready"))
    res = g.throw(MyExit)
    assert type(res) is MyExit
    assert g.dead


def test_caught_greenletexit_allows_normal_return():
    def f():
        try:
            to_parent("ready")
        except GreenletExit:
            return "cleanly"
    g = suspended(f)
    assert g.throw() == "cleanly"


def test_finally_runs_on_throw():
    seen = []

    def f():
        try:
            to_parent("ready")
        finally:
            seen.append("finally")
    g = suspended(f)
    g.throw()
    assert seen == ["finally"]


def test_throw_goes_to_original_parent():
    main = getcurrent()

    def f1():
        try:
            main.switch("f1 ready to catch")
        except IndexError:
            return "caught"
        return "normal exit"

    def f2():
        main.switch("from f2")

    # g1 unstarted: the error goes to g1, which starts with it pending and dies.
    g1 = greenlet(f1)
    g2 = greenlet(f2, parent=g1)
    with pytest.raises(IndexError):
        g2.throw(IndexError)
    assert g2.dead and g1.dead

    # g1 waiting in a try: it catches the error raised by unstarted g2.
    g1 = greenlet(f1)
    g2 = greenlet(f2, parent=g1)
    assert g1.switch() == "f1 ready to catch"
    assert g2.throw(IndexError) == "caught"
    assert g2.dead and g1.dead

    # same with g2 suspended.
    g1 = greenlet(f1)
    g2 = greenlet(f2, parent=g1)
    assert g1.switch() == "f1 ready to catch"
    assert g2.switch() == "from f2"
    assert g2.throw(IndexError) == "caught"
    assert g2.dead and g1.dead


def test_throw_into_current_greenlet_raises_here():
    with pytest.raises(SomeError):
        getcurrent().throw(SomeError)

    def body():
        try:
            getcurrent().throw(SomeError("inside"))
        except SomeError as e:
            return str(e)
    assert greenlet(body).switch() == "inside"


def test_throw_from_child_into_parent():
    main = getcurrent()

    def child():
        main.throw(SomeError("from child"))

    with pytest.raises(SomeError, match="from child"):
        greenlet(child).switch()


def test_throw_default_into_current_main_raises_here():
    # Throwing into the running greenlet raises at the call site, even GreenletExit.
    with pytest.raises(GreenletExit):
        getcurrent().throw()
    assert getcurrent()


def test_exception_raised_by_thrower_is_not_left_set():
    g = suspended()
    g.throw(SomeError)
    assert sys.exc_info() == (None, None, None)


# ---------------------------------------------------------------- unstarted targets

def test_throw_unstarted_never_calls_run():
    ran = []
    g = greenlet(lambda: ran.append(1))
    res = g.throw()
    assert isinstance(res, GreenletExit)
    assert ran == []
    assert g.dead


def test_throw_unstarted_other_exception_goes_to_parent():
    ran = []
    g = greenlet(lambda: ran.append(1))
    with pytest.raises(SomeError):
        g.throw(SomeError)
    assert ran == [] and g.dead


def test_throw_unstarted_with_suspended_parent_that_catches():
    def p():
        try:
            to_parent()
        except KeyError:
            return "parent caught"
    gp = greenlet(p)
    gp.switch()
    u = greenlet(lambda: 1, parent=gp)
    assert u.throw(KeyError) == "parent caught"
    assert u.dead and gp.dead


def test_throw_unstarted_without_run_raises_attribute_error():
    g = greenlet()
    with pytest.raises(AttributeError) as exc:
        g.throw(SomeError)
    assert "run" in str(exc.value)


# ---------------------------------------------------------------- dead targets

def test_throw_dead_greenletexit_is_normal_return():
    g = suspended(lambda: to_parent("ready"))
    first = g.throw()
    assert isinstance(first, GreenletExit) and g.dead
    again = g.throw()
    assert isinstance(again, GreenletExit)
    assert again is not first


def test_throw_dead_other_exception_raised_in_ancestor():
    g = greenlet(lambda: None)
    g.switch()
    with pytest.raises(KeyError):
        g.throw(KeyError)


def test_throw_dead_goes_to_suspended_ancestor():
    def p():
        try:
            to_parent()
        except KeyError:
            return "parent caught"
    gp = greenlet(p)
    gp.switch()
    d = greenlet(lambda: None)
    d.switch()
    assert d.dead
    d.parent = gp
    assert d.throw(KeyError) == "parent caught"
    assert gp.dead
