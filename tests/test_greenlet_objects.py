"""greenlet as a Python object: subclassing, weak references, copying and
pickling, and bad input of every kind (a clear exception, never a crash)."""
import copy
import gc
import pickle
import weakref
from abc import ABCMeta, abstractmethod

import pytest

import stolon
from stolon import greenlet, getcurrent, GreenletExit, error

TYPE_NAME = "%s.%s" % (greenlet.__module__, greenlet.__name__)
NOT_SERIALIZABLE = "cannot serialize '%s' object" % TYPE_NAME


def to_parent(*args):
    return getcurrent().parent.switch(*args)


# ---------------------------------------------------------------- subclassing

def test_subclass_with_run_and_init():
    class Worker(greenlet):
        def __init__(self, n):
            greenlet.__init__(self)
            self.n = n

        def run(self, x):
            return self.n * x
    w = Worker(6)
    assert w.parent is getcurrent()
    assert w.switch(7) == 42
    assert w.dead


def test_subclass_without_calling_base_init():
    class NoInit(greenlet):
        def __init__(self):
            pass

        def run(self):
            return "ran"
    g = NoInit()
    assert g.parent is getcurrent()
    assert g.switch() == "ran"


def test_new_without_init():
    g = greenlet.__new__(greenlet)
    assert g.parent is getcurrent()
    with pytest.raises(AttributeError):
        g.switch()


def test_new_with_non_subtype():
    with pytest.raises(TypeError):
        greenlet.__new__(int)


def test_init_again_before_start_replaces_run():
    g = greenlet(lambda: 1)
    g.__init__(lambda: 2)
    assert g.switch() == 2


def test_init_again_after_start():
    g = greenlet(lambda: to_parent())
    g.switch()
    with pytest.raises(AttributeError) as exc:
        g.__init__(lambda: 2)
    assert str(exc.value) == "run cannot be set after the start of the greenlet"
    g.switch()


def test_subclass_getcurrent_returns_subclass_instance():
    class Sub(greenlet):
        def run(self):
            return getcurrent()
    s = Sub()
    assert s.switch() is s
    assert type(s) is Sub


def test_subclass_with_slots_and_properties():
    class Sub(greenlet):
        @property
        def doubled(self):
            return self.value * 2

        def run(self):
            self.value = 21
            return self.doubled
    assert Sub().switch() == 42


def test_subclass_with_custom_switch_override():
    class Sub(greenlet):
        def switch(self, *args, **kwargs):
            self.calls = getattr(self, "calls", 0) + 1
            return greenlet.switch(self, *args, **kwargs)
    s = Sub(lambda x: to_parent(x + 1))
    assert s.switch(1) == 2
    assert s.calls == 1


def test_main_greenlet_type_can_be_subclassed():
    main_type = type(getcurrent())
    sub = type("sub", (main_type,), {})
    assert issubclass(sub, greenlet)


def test_abstract_subclasses():
    Abstract = ABCMeta("Abstract", (greenlet,), {"run": abstractmethod(lambda self: None)})

    class Bad(Abstract):
        pass

    class Good(Abstract):
        def run(self):
            return "good"
    assert Good().switch() == "good"
    with pytest.raises(TypeError):
        Bad()


def test_subclass_with_del_runs_on_collection():
    seen = []

    class WithDel(greenlet):
        def __del__(self):
            seen.append("del")
    g = WithDel(lambda: None)
    g.switch()
    del g
    gc.collect()
    assert seen == ["del"]


def test_subclass_instance_is_gc_tracked_and_collectable():
    class Sub(greenlet):
        pass
    s = Sub()
    s.cycle = s
    r = weakref.ref(s)
    del s
    gc.collect()
    assert r() is None


# ---------------------------------------------------------------- weak references

def test_weakref_to_unstarted():
    o = weakref.ref(greenlet())
    gc.collect()
    assert o() is None


def test_weakref_to_dead():
    def make():
        g = greenlet(lambda: None)
        g.switch()
        return g
    o = weakref.ref(make())
    gc.collect()
    assert o() is None


def test_weakref_to_main_and_running():
    main = getcurrent()
    assert weakref.ref(main)() is main
    g = greenlet(lambda: weakref.ref(getcurrent())() is getcurrent())
    assert g.switch() is True


def test_weak_value_dictionary():
    d = weakref.WeakValueDictionary()
    g = greenlet(lambda: None)
    d["g"] = g
    assert d["g"] is g
    del g
    gc.collect()
    assert "g" not in d


def test_weakref_proxy():
    g = greenlet(lambda: "via proxy")
    p = weakref.proxy(g)
    assert p.switch() == "via proxy"
    assert p.dead


# ---------------------------------------------------------------- copy and pickle

@pytest.mark.parametrize("op", [copy.copy, copy.deepcopy, pickle.dumps,
                                lambda g: g.__reduce_ex__(2)])
def test_copy_and_pickle_fail(op):
    for g in (greenlet(), getcurrent()):
        with pytest.raises(TypeError) as exc:
            op(g)
        assert str(exc.value) == NOT_SERIALIZABLE


def test_pickle_protocol_0_fails():
    # (protocol < 2 goes through copyreg, which words its own TypeError)
    with pytest.raises(TypeError):
        pickle.dumps(greenlet(), protocol=0)


def test_getstate_raises():
    with pytest.raises(TypeError) as exc:
        greenlet().__getstate__()
    assert str(exc.value) == NOT_SERIALIZABLE


def test_object_holding_greenlet_cannot_be_pickled():
    with pytest.raises(TypeError):
        pickle.dumps({"g": greenlet()})


# ---------------------------------------------------------------- bad input

def test_constructor_bad_parent_type():
    with pytest.raises(TypeError) as exc:
        greenlet(parent=1)
    assert str(exc.value) == "GreenletChecker: Expected any type of greenlet, not int"


@pytest.mark.parametrize("args, kwargs", [
    ((None, None, 3), {}),
    ((), {"foo": 1}),
    ((), {"run": None, "parent": None, "extra": 1}),
])
def test_constructor_bad_arguments(args, kwargs):
    with pytest.raises(TypeError):
        greenlet(*args, **kwargs)


@pytest.mark.parametrize("name", ["switch", "throw"])
def test_unbound_methods_with_wrong_self(name):
    with pytest.raises(TypeError):
        getattr(greenlet, name)(object())


@pytest.mark.parametrize("name", ["dead", "parent", "gr_frame", "gr_context", "run", "_stack_saved"])
def test_descriptors_with_wrong_self(name):
    with pytest.raises(TypeError):
        greenlet.__dict__[name].__get__(object(), type(object()))


@pytest.mark.parametrize("name", ["dead", "gr_frame", "_stack_saved"])
def test_readonly_attributes(name):
    g = greenlet()
    with pytest.raises(AttributeError):
        setattr(g, name, None)


def test_getcurrent_takes_no_arguments():
    with pytest.raises(TypeError):
        getcurrent(1)


def test_settrace_requires_one_argument():
    with pytest.raises(TypeError):
        stolon.settrace()
    with pytest.raises(TypeError):
        stolon.settrace(None, None)
    with pytest.raises(TypeError):
        stolon.gettrace(1)


def test_switch_with_many_arguments():
    g = greenlet(lambda *a, **k: (len(a), len(k)))
    kwargs = {"k%d" % i: i for i in range(1000)}
    assert g.switch(*range(100000), **kwargs) == (100000, 1000)


def test_switch_with_non_string_keyword():
    # Either the call machinery or run(**kwargs) rejects it; never a crash,
    # and the greenlet is not left running or suspended.
    g = greenlet(lambda **k: k)
    with pytest.raises(TypeError):
        g.switch(**{1: 2})
    assert not g


def test_exceptions_usable_directly():
    with pytest.raises(GreenletExit):
        raise GreenletExit("x")
    with pytest.raises(error):
        raise error("y")
    assert GreenletExit("m").args == ("m",)


def test_hash_and_equality_are_identity():
    a, b = greenlet(), greenlet()
    assert a != b and a == a
    assert len({a, b, a}) == 2
    assert hash(a) == hash(a)


def test_greenlet_in_container_dead_and_unstarted_released():
    refs = []
    for _ in range(10):
        g = greenlet(lambda: None)
        refs.append(weakref.ref(g))
        if len(refs) % 2:
            g.switch()
    del g
    gc.collect()
    assert all(r() is None for r in refs)
