"""stolon.local: greenlet-local attributes, subclassing rules and lifetime of values."""
import copy
import gc
import threading
import weakref

import pytest

import stolon
from stolon.local import local


class Value:
    """Something that can be weakly referenced, to watch a value die."""


def run_in_greenlet(func, *args):
    g = stolon.spawn(func, *args)
    g.join()
    assert g.successful(), g.exception
    return g.value


def test_attributes_are_per_greenlet():
    data = local()
    data.number = 42

    def other():
        seen = sorted(data.__dict__.items())
        data.number = 11
        return seen, data.number

    assert run_in_greenlet(other) == ([], 11)
    assert data.number == 42
    assert data.__dict__ == {"number": 42}


def test_dict_is_the_current_greenlets():
    data = local()
    assert data.__dict__.setdefault("widgets", []) == []
    assert data.widgets == []
    assert run_in_greenlet(lambda: data.__dict__) == {}


def test_interleaved_greenlets_keep_their_own_values():
    data = local()
    seen = []

    def worker(n):
        data.n = n
        stolon.sleep(0)         # every other worker writes meanwhile
        stolon.sleep(0)
        seen.append((n, data.n))

    stolon.joinall([stolon.spawn(worker, n) for n in range(20)])
    assert seen == [(n, n) for n in range(20)]


def test_missing_attribute_message():
    data = local()
    with pytest.raises(AttributeError, match="object has no attribute 'missing'"):
        data.missing
    data.x = 1
    assert run_in_greenlet(lambda: hasattr(data, "x")) is False


def test_delete_attribute():
    data = local()
    data.x = 1
    del data.x
    assert not hasattr(data, "x")
    with pytest.raises(AttributeError):
        del data.x


def test_dict_attribute_is_read_only():
    data = local()
    with pytest.raises(AttributeError, match="__dict__' is read-only"):
        data.__dict__ = {}
    with pytest.raises(AttributeError, match="__dict__' is read-only"):
        del data.__dict__


def test_arguments_need_an_init():
    with pytest.raises(TypeError) as info:
        local(1, key=2)
    assert info.value.args == ("Initialization arguments are not supported", (1,), {"key": 2})


class Colored(local):
    number = 2
    initialized = False

    def __init__(self, **kw):
        if self.initialized:
            raise SystemError("__init__ called too many times")
        self.initialized = True
        self.__dict__.update(kw)

    def squared(self):
        return self.number ** 2


def test_subclass_init_runs_once_per_greenlet_with_the_same_arguments():
    data = Colored(color="red")
    assert (data.number, data.color, data.squared()) == (2, "red", 4)
    del data.color

    def other():
        items = sorted(data.__dict__.items())
        data.number = 11
        return items, data.number, data.squared()

    assert run_in_greenlet(other) == ([("color", "red"), ("initialized", True)], 11, 121)
    assert data.number == 2
    with pytest.raises(AttributeError, match="'Colored' object has no attribute 'color'"):
        data.color


def test_class_attribute_change_is_seen_where_not_overridden():
    class Defaults(local):
        level = 1

    data = Defaults()
    data.level = 5
    Defaults.level = 7
    assert data.level == 5
    assert run_in_greenlet(lambda: data.level) == 7


def test_slots_are_shared_between_greenlets():
    class Slotted(local):
        __slots__ = ("number",)

    data = Slotted()
    data.number = 42
    data.color = "red"

    def other():
        data.number = 11
        return hasattr(data, "color")

    assert run_in_greenlet(other) is False
    assert data.number == 11
    assert data.color == "red"
    del data.number
    assert not hasattr(data, "number")


def test_property_is_class_level_and_sees_greenlet_values():
    calls = []

    class WithProperty(local):
        @property
        def doubled(self):
            calls.append("get")
            return self.base * 2

        @doubled.setter
        def doubled(self, value):
            calls.append("set")
            self.base = value // 2

    data = WithProperty()
    data.doubled = 10
    assert data.base == 5
    assert data.doubled == 10

    def other():
        data.base = 1
        return data.doubled

    assert run_in_greenlet(other) == 2
    assert data.doubled == 10
    assert calls == ["set", "get", "get", "get"]


def test_data_descriptor_wins_over_the_greenlet_dict():
    class ReadOnly(local):
        @property
        def name(self):
            return "from property"

    data = ReadOnly()
    data.__dict__["name"] = "from dict"
    assert data.name == "from property"
    with pytest.raises(AttributeError):
        data.name = "x"
    with pytest.raises(AttributeError):
        del data.name


def test_greenlet_value_hides_a_method_only_in_that_greenlet():
    data = Colored()
    data.squared = lambda: "shadowed"
    assert data.squared() == "shadowed"
    assert run_in_greenlet(lambda: data.squared()) == 4


def test_static_and_class_methods():
    class Methods(local):
        @staticmethod
        def static(x):
            return x + 1

        @classmethod
        def klass(cls):
            return cls.__name__

    data = Methods()
    assert data.static(1) == 2
    assert data.klass() == "Methods"
    assert run_in_greenlet(lambda: (data.static(2), data.klass())) == (3, "Methods")


def test_getattr_hook_of_a_subclass():
    class Fallback(local):
        def __getattr__(self, name):
            return "fallback:" + name

    data = Fallback()
    data.real = 1
    assert data.real == 1
    assert data.other == "fallback:other"
    assert run_in_greenlet(lambda: data.real) == "fallback:real"


def test_copy_duplicates_the_current_greenlets_values():
    data = Colored(color="blue")
    data.items = [1]
    clone = copy.copy(data)
    assert type(clone) is Colored
    assert (clone.color, clone.items, clone.initialized) == ("blue", [1], True)
    assert clone.items is data.items
    clone.color = "green"
    assert data.color == "blue"


def test_threads_see_their_own_values():
    data = local()
    data.x = "main"
    seen = []
    thread = threading.Thread(target=lambda: seen.append(getattr(data, "x", None)))
    thread.start()
    thread.join()
    assert seen == [None]
    assert data.x == "main"


def test_value_dropped_when_greenlet_finishes():
    data = local()
    refs = []

    def keep():
        value = Value()
        refs.append(weakref.ref(value))
        data.value = value

    g = stolon.spawn(keep)
    g.join()
    stolon.sleep(0)             # let the hub finish notifying g's links
    gc.collect()
    assert refs[0]() is None
    assert g.dead                # the greenlet object itself is still referenced


def test_value_dropped_when_raw_greenlet_is_collected():
    data = local()
    refs = []

    def keep():
        value = Value()
        refs.append(weakref.ref(value))
        data.value = value

    g = stolon.spawn_raw(keep)
    stolon.sleep(0)
    assert g.dead
    assert refs[0]() is not None
    del g
    gc.collect()
    assert refs[0]() is None


def test_values_dropped_when_local_is_collected():
    data = local()
    value = Value()
    ref = weakref.ref(value)
    data.value = value
    del value
    gc.collect()
    before = set(stolon.getcurrent().__dict__)
    other = local()
    other.x = 1
    del other
    gc.collect()
    assert set(stolon.getcurrent().__dict__) == before
    del data
    gc.collect()
    assert ref() is None


def test_local_collected_while_greenlet_still_runs():
    box = [Colored()]
    refs = []

    def holder():
        box[0].value = Value()
        refs.append(weakref.ref(box[0].value))
        stolon.sleep(0.01)

    g = stolon.spawn(holder)
    stolon.sleep(0)
    assert refs[0]() is not None
    box.clear()
    gc.collect()
    assert refs[0]() is None
    g.join()
    assert g.successful()


def test_many_locals_in_one_long_lived_greenlet_do_not_accumulate():
    def churn():
        me = stolon.getcurrent()
        start = len(me.__dict__)
        for _ in range(50):
            data = local()
            data.x = 1
            del data
        gc.collect()
        return len(me.__dict__) - start

    assert run_in_greenlet(churn) == 0
