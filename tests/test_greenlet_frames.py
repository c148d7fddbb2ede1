"""gr_frame, the frame chain of a greenlet, generators, and the per-greenlet
exception state (sys.exc_info)."""
import sys
import traceback

import pytest

from stolon import greenlet, getcurrent


def to_parent(*args):
    return getcurrent().parent.switch(*args)


# ---------------------------------------------------------------- gr_frame

def test_gr_frame_is_switching_frame_of_suspended_greenlet():
    def f1():
        f = sys._getframe(0)
        assert f.f_back is None
        getcurrent().parent.switch(f)
        return "meaning of life"
    g = greenlet(f1)
    assert g.gr_frame is None
    frame = g.switch()
    assert frame is g.gr_frame
    assert g
    assert g.switch() == "meaning of life"
    assert not g
    assert g.gr_frame is None


def test_gr_frame_none_while_running():
    g = greenlet(lambda: getcurrent().gr_frame)
    assert g.switch() is None


def test_gr_frame_chain_ends_at_run_frame():
    main = getcurrent()

    def outer():
        inner()

    def inner():
        main.switch(sys._getframe(0))

    hub = greenlet(outer)
    hub.switch()
    # run something else so nothing of hub's stack is still in place
    greenlet(lambda: None).switch()
    assert hub.gr_frame is not None
    assert hub.gr_frame.f_code.co_name == "inner"
    assert hub.gr_frame.f_back is not None
    assert hub.gr_frame.f_back.f_code.co_name == "outer"
    assert hub.gr_frame.f_back.f_back is None
    hub.switch()
    assert hub.dead


def test_frames_always_exposed_after_stack_is_clobbered():
    main = getcurrent()

    def outer():
        inner(sys._getframe(0))

    def inner(frame):
        main.switch(frame)

    gr = greenlet(outer)
    frame = gr.switch()
    greenlet(lambda: None).switch()
    assert frame.f_code.co_name == "outer"
    assert frame.f_back is None
    gr.switch()


def test_suspended_main_greenlet_frame_is_the_switching_frame():
    main = getcurrent()
    here = sys._getframe(0)

    def body():
        return main.gr_frame
    assert greenlet(body).switch() is here


def test_suspended_frame_locals_and_lineno():
    def body():
        marker = "local value"  # noqa: F841
        getcurrent().parent.switch()
        return "done"
    g = greenlet(body)
    g.switch()
    f = g.gr_frame
    assert f.f_code.co_name == "body"
    assert f.f_locals["marker"] == "local value"
    lines = [ln for ln in range(f.f_code.co_firstlineno, f.f_code.co_firstlineno + 5)]
    assert f.f_lineno in lines
    assert g.switch() == "done"


def test_frame_chain_through_nested_c_calls():
    # sorted(key=...) puts C frames between the Python frames.
    def recurse(v):
        if v > 0:
            out = []
            sorted([v], key=lambda x: out.append(recurse(x - 1)))
            return out[0] * v
        return getcurrent().parent.switch()

    gr = greenlet(recurse)
    gr.switch(3)
    names = []
    frame = gr.gr_frame
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    assert names[0] == "recurse"
    assert names[-1] == "recurse"
    assert names.count("recurse") == 4
    assert names.count("<lambda>") == 3
    assert gr.switch(10) == 60


def test_extract_stack_inside_greenlet_ends_at_run():
    def run_fn():
        return [fs.name for fs in traceback.extract_stack()]
    names = greenlet(run_fn).switch()
    assert names == ["run_fn"]


def test_traceback_of_exception_in_greenlet():
    def deep():
        raise KeyError("deep")

    def run_fn():
        deep()
    with pytest.raises(KeyError) as exc:
        greenlet(run_fn).switch()
    names = [fs.name for fs in traceback.extract_tb(exc.value.__traceback__)]
    assert names[-2:] == ["run_fn", "deep"]


# ---------------------------------------------------------------- generators

def test_generator_resumed_in_other_greenlet():
    main = getcurrent()

    def gen():
        yield getcurrent()
        yield getcurrent()
    it = gen()
    assert next(it) is main
    g = greenlet(lambda: next(it))
    assert g.switch() is g


def test_generator_inside_greenlet_switches_while_suspended():
    seen = []

    def gen():
        for i in range(3):
            seen.append(i)
            yield i

    def consume():
        for i in gen():
            to_parent(i)
        return "end"
    g = greenlet(consume)
    assert [g.switch() for _ in range(4)] == [0, 1, 2, "end"]
    assert seen == [0, 1, 2]


def test_switch_from_inside_generator_body():
    def gen():
        x = yield 1
        to_parent(("inside gen", x))
        yield 2

    def run_fn():
        it = gen()
        a = next(it)
        b = it.send("sent")
        return a, b
    g = greenlet(run_fn)
    assert g.switch() == ("inside gen", "sent")
    assert g.switch() == (1, 2)


def test_greenlet_based_generator_pattern():
    class GenLike:
        def __init__(self, fn):
            self.fn = fn

        def __iter__(self):
            return self

        def __next__(self):
            self.parent = getcurrent()
            result = self.g.switch()
            if self.g.dead:
                raise StopIteration
            return result

        def start(self):
            self.g = greenlet(self._run)
            return self

        def _run(self):
            self.fn(lambda v: self.parent.switch(v))

    def produce(emit):
        for i in range(5):
            emit(i * i)
    assert list(GenLike(produce).start()) == [0, 1, 4, 9, 16]


# ---------------------------------------------------------------- exception state

def test_exc_info_is_per_greenlet():
    def f():
        try:
            raise ValueError("fun")
        except ValueError:
            exc_info = sys.exc_info()
            greenlet(h).switch()
            assert exc_info == sys.exc_info()
            return "ok"

    def h():
        assert sys.exc_info() == (None, None, None)
    assert greenlet(f).switch() == "ok"


def test_parent_exc_info_not_visible_in_new_greenlet():
    try:
        raise KeyError("main handling")
    except KeyError:
        got = greenlet(sys.exc_info).switch()
        assert sys.exc_info()[0] is KeyError
    assert got == (None, None, None)


def test_suspended_in_except_block_keeps_its_exception():
    def body():
        try:
            raise IndexError("in g")
        except IndexError:
            to_parent(sys.exc_info()[0])
            return sys.exc_info()[0]
    g = greenlet(body)
    assert g.switch() is IndexError
    assert sys.exc_info() == (None, None, None)
    try:
        raise KeyError
    except KeyError:
        assert g.switch() is IndexError
        assert sys.exc_info()[0] is KeyError


def test_bare_raise_without_exception_in_new_greenlet():
    def body():
        try:
            raise  # noqa: PLE0704
        except RuntimeError as e:
            return str(e)
    try:
        raise KeyError
    except KeyError:
        msg = greenlet(body).switch()
    assert msg == "No active exception to reraise"


def test_exception_context_not_chained_across_greenlets():
    def body():
        raise ValueError("child")
    try:
        raise KeyError("parent")
    except KeyError:
        with pytest.raises(ValueError) as exc:
            greenlet(body).switch()
    assert exc.value.__context__ is None


def test_interleaved_exception_handling():
    log = []

    def a():
        try:
            raise KeyError("a")
        except KeyError:
            gb.switch()
            log.append(("a", sys.exc_info()[0]))
        log.append(("a after", sys.exc_info()[0]))

    def b():
        try:
            raise ValueError("b")
        except ValueError:
            ga.switch()
            log.append(("b", sys.exc_info()[0]))

    ga, gb = greenlet(a), greenlet(b)
    ga.switch()
    gb.switch()
    assert log == [("a", KeyError), ("a after", None), ("b", ValueError)]
    assert sys.exc_info() == (None, None, None)
