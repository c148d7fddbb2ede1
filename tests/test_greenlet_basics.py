"""greenlet basics: names, states, switching order and value delivery."""
import sys

import pytest

import stolon
from stolon import greenlet, getcurrent, GreenletExit, error, settrace, gettrace


def to_parent(*args, **kwargs):
    return getcurrent().parent.switch(*args, **kwargs)


# ---------------------------------------------------------------- names and types

def test_public_names_are_exported():
    for name in ("greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace", "_C_API"):
        assert hasattr(stolon, name), name


def test_exception_hierarchy():
    assert issubclass(GreenletExit, BaseException)
    assert not issubclass(GreenletExit, Exception)
    assert issubclass(error, Exception)


def test_names_are_also_in_the_type_dict():
    assert greenlet.getcurrent() is getcurrent()
    assert greenlet.GreenletExit is GreenletExit
    assert greenlet.error is error
    assert greenlet.settrace is settrace
    assert greenlet.gettrace is gettrace
    for name in ("getcurrent", "error", "GreenletExit", "settrace", "gettrace"):
        assert name in greenlet.__dict__, name


def test_type_descriptors_present():
    for name in ("switch", "throw", "run", "parent", "gr_frame", "gr_context", "dead",
                 "_stack_saved", "__getstate__", "__dict__"):
        assert name in greenlet.__dict__, name


def test_main_greenlet_has_exact_type_and_no_parent():
    main = getcurrent()
    assert type(main) is greenlet
    assert isinstance(main, greenlet)
    assert main.parent is None
    assert getcurrent() is main


def test_main_greenlet_state():
    main = getcurrent()
    assert bool(main) is True
    assert main.dead is False
    assert main.gr_frame is None
    assert main._stack_saved == 0


def test_type_is_gc_tracked_and_weakrefable():
    import gc
    import weakref
    g = greenlet()
    assert gc.is_tracked(g)
    assert weakref.ref(g)() is g


# ---------------------------------------------------------------- construction

def test_default_parent_is_current():
    g = greenlet()
    assert g.parent is getcurrent()


def test_parent_none_means_default():
    g = greenlet(parent=None)
    assert g.parent is getcurrent()


def test_run_none_is_stored_as_none():
    g = greenlet(run=None)
    assert g.run is None


def test_positional_run_and_parent():
    p = greenlet()
    f = lambda: None  # noqa: E731
    g = greenlet(f, p)
    assert g.run is f
    assert g.parent is p


def test_parent_inside_greenlet_defaults_to_that_greenlet():
    def body():
        return greenlet().parent is getcurrent()
    assert greenlet(body).switch() is True


def test_unstarted_state():
    g = greenlet(lambda: None)
    assert bool(g) is False
    assert g.dead is False
    assert g.gr_frame is None
    assert g._stack_saved == 0


def test_suspended_state():
    g = greenlet(lambda: to_parent())
    g.switch()
    assert bool(g) is True
    assert g.dead is False
    assert g._stack_saved > 0


def test_running_state_seen_from_inside():
    def body():
        me = getcurrent()
        return (bool(me), me.dead, me.gr_frame, me._stack_saved)
    g = greenlet(body)
    assert g.switch() == (True, False, None, 0)


def test_finished_state():
    g = greenlet(lambda: None)
    g.switch()
    assert bool(g) is False
    assert g.dead is True
    assert g.gr_frame is None
    assert g._stack_saved == 0


def test_finished_by_exception_state():
    g = greenlet(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        g.switch()
    assert g.dead and not g


def test_arbitrary_attributes_and_dict():
    def body():
        getcurrent().answer = 42
    g = greenlet(body)
    assert g.__dict__ == {}
    g.switch()
    assert g.answer == 42
    assert g.__dict__ == {"answer": 42}
    g.__dict__ = g.__dict__
    assert g.__dict__ == {"answer": 42}
    with pytest.raises(TypeError):
        del g.__dict__
    with pytest.raises(TypeError):
        g.__dict__ = 42


def test_main_greenlet_accepts_attributes():
    main = getcurrent()
    main.glet_basics_marker = 1
    try:
        assert getcurrent().glet_basics_marker == 1
    finally:
        del main.glet_basics_marker


# ---------------------------------------------------------------- switching order

def test_simple_ping_pong_order():
    lst = []

    def f():
        lst.append(1)
        to_parent()
        lst.append(3)

    g = greenlet(f)
    lst.append(0)
    g.switch()
    lst.append(2)
    g.switch()
    lst.append(4)
    assert lst == [0, 1, 2, 3, 4]
    assert g.dead


def test_two_children_interleave():
    lst = []

    def f():
        lst.append(1)
        to_parent()
        lst.extend([1, 1])

    g = greenlet(f)
    h = greenlet(f)
    g.switch()
    assert len(lst) == 1
    h.switch()
    assert len(lst) == 2
    h.switch()
    assert len(lst) == 4 and h.dead
    g.switch()
    assert len(lst) == 6 and g.dead


def test_nested_creation_returns_to_creator():
    lst = []

    def inner():
        lst.append("b")
        to_parent()

    def outer():
        lst.append("a")
        greenlet(inner).switch()
        lst.append("c")

    greenlet(outer).switch()
    assert lst == ["a", "b", "c"]


def test_switch_between_siblings_directly():
    main = getcurrent()
    log = []

    def a():
        log.append("a1")
        log.append(gb.switch("from a"))
        log.append("a2")
        return "a done"

    def b(x):
        log.append(("b got", x))
        ga.switch("from b")
        log.append("never")

    ga = greenlet(a)
    gb = greenlet(b)
    assert ga.switch() == "a done"
    assert log == ["a1", ("b got", "from a"), "from b", "a2"]
    assert ga.dead and not gb.dead and gb
    assert getcurrent() is main


def test_getcurrent_inside_greenlet():
    def body():
        return getcurrent()
    g = greenlet(body)
    assert g.switch() is g


def test_long_chain_of_nested_greenlets():
    def level(n):
        if n == 0:
            return 0
        return greenlet(level).switch(n - 1) + 1
    assert greenlet(level).switch(200) == 200


def test_many_suspended_greenlets_resume_in_any_order():
    gs = []
    for i in range(50):
        g = greenlet(lambda i: to_parent(i) * 2)
        assert g.switch(i) == i
        gs.append(g)
    for i, g in reversed(list(enumerate(gs))):
        assert g.switch(i + 1) == (i + 1) * 2
        assert g.dead


# ---------------------------------------------------------------- value delivery

@pytest.mark.parametrize("args, kwargs, expected", [
    ((), {}, ()),
    ((5,), {}, 5),
    ((None,), {}, None),
    (((1,),), {}, (1,)),
    ((1, 2), {}, (1, 2)),
    ((), {"a": 1}, {"a": 1}),
    ((1,), {"a": 2}, ((1,), {"a": 2})),
    ((1, 2), {"a": 3, "b": 4}, ((1, 2), {"a": 3, "b": 4})),
])
def test_switch_value_conventions_to_suspended(args, kwargs, expected):
    g = greenlet(lambda: to_parent(to_parent()))
    g.switch()
    assert g.switch(*args, **kwargs) == expected


@pytest.mark.parametrize("args, kwargs, expected", [
    ((), {}, ()),
    ((5,), {}, 5),
    ((1, 2), {}, (1, 2)),
    ((), {"a": 1}, {"a": 1}),
    ((1,), {"a": 2}, ((1,), {"a": 2})),
])
def test_switch_value_conventions_to_parent(args, kwargs, expected):
    g = greenlet(lambda: to_parent(*args, **kwargs))
    assert g.switch() == expected


def test_empty_switch_returns_empty_tuple_not_none():
    g = greenlet(lambda: to_parent())
    result = g.switch()
    assert result == () and result is not None


def test_first_switch_calls_run_with_args_and_kwargs():
    def run(a, b, *rest, c=None, **kw):
        return (a, b, rest, c, kw)
    assert greenlet(run).switch(1, 2, 3, c=4, d=5) == (1, 2, (3,), 4, {"d": 5})


def test_run_kwargs_only():
    def run(a, b):
        return a * 10 + b
    assert greenlet(run).switch(a=4, b=2) == 42


def test_run_return_value_is_delivered_exactly():
    for value in [None, 0, (1,), (), (1, 2), {"a": 1}, [1], "s"]:
        got = greenlet(lambda v=value: v).switch()
        assert got == value and type(got) is type(value)


def test_run_returning_one_tuple_is_not_unwrapped():
    sentinel = (object(),)
    assert greenlet(lambda: sentinel).switch() is sentinel


def test_first_switch_with_wrong_arguments_raises_in_caller():
    g = greenlet(lambda: None)
    with pytest.raises(TypeError):
        g.switch(1, 2, 3)
    assert g.dead


def test_switch_to_self_returns_own_arguments():
    main = getcurrent()
    assert main.switch() == ()
    assert main.switch(3) == 3
    assert main.switch(1, 2) == (1, 2)
    assert main.switch(a=1) == {"a": 1}
    assert main.switch(1, a=2) == ((1,), {"a": 2})


def test_switch_to_self_inside_greenlet():
    def body():
        me = getcurrent()
        return me.switch("x"), me.switch(), me.switch(1, k=2)
    assert greenlet(body).switch() == ("x", (), ((1,), {"k": 2}))


def test_bound_switch_method_keeps_working():
    g = greenlet(lambda: to_parent(to_parent(1) + 1) + 1)
    sw = g.switch
    assert sw() == 1
    assert sw(10) == 11
    assert sw(20) == 21
    assert g.dead


def test_switch_values_are_not_copied():
    obj = object()
    g = greenlet(lambda x: to_parent(x))
    assert g.switch(obj) is obj
    lst = []
    assert g.switch(lst) is lst


def test_kwargs_dict_is_fresh_each_time():
    kwargs = {"a": 1}
    g = greenlet(lambda **kw: to_parent(**kw))
    got = g.switch(**kwargs)
    assert got == kwargs
    got["b"] = 2
    assert kwargs == {"a": 1}


def test_args_refcounts_do_not_grow():
    args = ("a", "b", "c")
    before = sys.getrefcount(args)
    g = greenlet(lambda *a: to_parent(*a))
    for _ in range(100):
        g.switch(*args)
    assert sys.getrefcount(args) == before


def test_greenlet_refcount_not_leaked_by_switching():
    g = greenlet(lambda: to_parent())
    before = sys.getrefcount(g)
    g.switch()
    g.switch()
    assert g.dead
    assert sys.getrefcount(g) == before


def test_tuple_subclass_with_len_that_switches():
    # The args tuple's __len__ may run Python (and even switch) when it is
    # passed through; the values must still arrive intact.
    class mytuple(tuple):
        def __len__(self):
            getcurrent().switch()
            return tuple.__len__(self)

    args = mytuple()
    kwargs = dict(a=42)

    def switchapply():
        def apply(func, a, k):
            func(*a, **k)
        apply(getcurrent().parent.switch, args, kwargs)

    assert greenlet(switchapply).switch() == kwargs


def test_switch_result_when_child_finishes_while_parent_waits_in_sibling():
    # main -> a; a switches to b (child of main); b finishes -> result goes to main.
    def b():
        return "b-result"

    def a():
        gb = greenlet(b, parent=getcurrent().parent)
        gb.switch()
        return "a never finishes this way"

    ga = greenlet(a)
    assert ga.switch() == "b-result"
    assert ga  # still suspended inside gb.switch()
