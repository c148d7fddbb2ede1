"""The ``_C_API`` capsule: greenlet.h's table of 12 pointers, driven with ctypes.

Table order (greenlet.h, GREENLET_VERSION "1.0.0"): 0 type, 1 error, 2
GreenletExit, 3 New(run, parent), 4 GetCurrent(), 5 Throw(g, typ, val, tb),
6 Switch(g, args, kwargs), 7 SetParent(g, p), 8 MAIN(g), 9 STARTED(g),
10 ACTIVE(g), 11 GetParent(g).  The capsule's name is read from the capsule.
"""
import ctypes
import struct
import sys

import pytest

import stolon
from stolon import greenlet, getcurrent, GreenletExit, error

api = ctypes.pythonapi
api.PyCapsule_GetName.restype = ctypes.c_char_p
api.PyCapsule_GetName.argtypes = [ctypes.py_object]
api.PyCapsule_GetPointer.restype = ctypes.c_void_p
api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
api.PyCapsule_IsValid.restype = ctypes.c_int
api.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]

OBJ = ctypes.py_object
PTR = ctypes.c_void_p  # for arguments that may be NULL (pass None)


def table():
    cap = stolon._C_API
    name = api.PyCapsule_GetName(cap)
    assert api.PyCapsule_IsValid(cap, name) == 1
    return ctypes.cast(api.PyCapsule_GetPointer(cap, name), ctypes.POINTER(ctypes.c_void_p))


def fn(index, restype, *argtypes):
    return ctypes.PYFUNCTYPE(restype, *argtypes)(table()[index])


New = lambda run, parent: fn(3, OBJ, OBJ, PTR)(run, None if parent is None else id(parent))  # noqa: E731
GetCurrent = lambda: fn(4, OBJ)()  # noqa: E731
Throw = lambda g, typ, val=None, tb=None: fn(5, OBJ, OBJ, OBJ, PTR, PTR)(  # noqa: E731
    g, typ, None if val is None else id(val), None if tb is None else id(tb))
Switch = lambda g, args=None, kwargs=None: fn(6, OBJ, OBJ, PTR, PTR)(  # noqa: E731
    g, None if args is None else id(args), None if kwargs is None else id(kwargs))
SetParent = lambda g, p: fn(7, ctypes.c_int, OBJ, OBJ)(g, p)  # noqa: E731
MAIN = lambda g: fn(8, ctypes.c_int, OBJ)(g)  # noqa: E731
STARTED = lambda g: fn(9, ctypes.c_int, OBJ)(g)  # noqa: E731
ACTIVE = lambda g: fn(10, ctypes.c_int, OBJ)(g)  # noqa: E731


def GetParent(g):
    p = fn(11, ctypes.c_void_p, OBJ)(g)
    if not p:
        return None
    obj = ctypes.cast(p, ctypes.py_object).value
    ctypes.pythonapi.Py_DecRef(ctypes.py_object(obj))  # GetParent returned a new reference
    return obj


def to_parent(*args):
    return getcurrent().parent.switch(*args)


def test_capsule_type():
    assert type(stolon._C_API).__name__ == "PyCapsule"
    assert api.PyCapsule_GetName(stolon._C_API).endswith(b"_C_API")


def test_table_objects():
    t = table()
    assert t[0] == id(greenlet)
    assert t[1] == id(error)
    assert t[2] == id(GreenletExit)
    for i in range(3, 12):
        assert t[i], "entry %d is NULL" % i


@pytest.mark.skipif(struct.calcsize("P") != 8, reason="64-bit layout")
def test_struct_prefix_is_greenlet_h_layout():
    # greenlet.h: PyObject_HEAD; weakreflist; dict; pimpl.  stolon keeps the same
    # prefix but embeds its state where greenlet has the pimpl pointer (one
    # allocation per greenlet instead of two), so __basicsize__ is larger: C code
    # that subclasses the struct must be rebuilt against stolon (docs/migration.md).
    assert greenlet.__weakrefoffset__ == 16
    assert greenlet.__dictoffset__ == 24
    assert greenlet.__basicsize__ >= 40


def test_get_current():
    assert GetCurrent() is getcurrent()
    g = greenlet(lambda: GetCurrent())
    assert g.switch() is g


def test_new_and_switch():
    g = New(lambda *a, **k: (a, k), None)
    assert type(g) is greenlet
    assert g.parent is getcurrent()
    assert Switch(g, (1, 2), {"x": 3}) == ((1, 2), {"x": 3})
    assert g.dead


def test_new_with_parent():
    p = greenlet(lambda v: ("parent got", v))
    g = New(lambda: "child", p)
    assert g.parent is p
    assert Switch(g, ()) == ("parent got", "child")


def test_switch_null_args_is_empty_tuple_and_value_rules():
    g = greenlet(lambda: to_parent(to_parent()))
    assert Switch(g) == ()
    assert Switch(g, (5,)) == 5


def test_switch_non_dict_kwargs_ignored():
    g = greenlet(lambda *a, **k: (a, k))
    assert Switch(g, (1,), [("not", "a dict")]) == ((1,), {})


def test_throw():
    def body():
        try:
            to_parent()
        except KeyError as e:
            return ("caught", e.args)
    g = greenlet(body)
    g.switch()
    assert Throw(g, KeyError, "v") == ("caught", ("v",))
    g = greenlet(lambda: to_parent())
    g.switch()
    assert isinstance(Throw(g, GreenletExit), GreenletExit)
    assert g.dead


def test_throw_error_propagates_to_caller():
    g = greenlet(lambda: to_parent())
    g.switch()
    with pytest.raises(ValueError):
        Throw(g, ValueError)
    assert g.dead


def test_switch_error_propagates_to_caller():
    g = greenlet(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        Switch(g, ())


def test_set_and_get_parent():
    p = greenlet()
    g = greenlet()
    assert SetParent(g, p) == 0
    assert g.parent is p
    assert GetParent(g) is p
    assert GetParent(getcurrent()) is None


def test_set_parent_errors():
    g = greenlet()
    with pytest.raises(ValueError, match="cyclic parent chain"):
        SetParent(g, g)
    with pytest.raises(TypeError):
        SetParent(g, object())


def test_state_predicates():
    main = getcurrent()
    assert (MAIN(main), STARTED(main), ACTIVE(main)) == (1, 1, 1)
    g = greenlet(lambda: to_parent())
    assert (MAIN(g), STARTED(g), ACTIVE(g)) == (0, 0, 0)
    g.switch()
    assert (MAIN(g), STARTED(g), ACTIVE(g)) == (0, 1, 1)
    g.switch()
    assert (MAIN(g), STARTED(g), ACTIVE(g)) == (0, 1, 0)


def test_switch_through_c_api_inside_greenlets():
    main = getcurrent()

    def body(x):
        return Switch(main, (x * 2,)) + 1
    g = New(body, None)
    assert Switch(g, (21,)) == 42
    assert Switch(g, (9,)) == 10
    assert g.dead


def test_refcounts_flat_through_c_api():
    args = ("a",)
    kwargs = {"k": 1}
    g = greenlet(lambda *a, **k: None)
    before = sys.getrefcount(args), sys.getrefcount(kwargs)
    for _ in range(100):
        g = New(lambda *a, **k: (a, k), None)
        Switch(g, args, kwargs)
    assert (sys.getrefcount(args), sys.getrefcount(kwargs)) == before
