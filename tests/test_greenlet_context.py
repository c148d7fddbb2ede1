"""contextvars: each greenlet runs in its own context (gr_context)."""
import gc
import sys
from contextvars import Context, ContextVar, copy_context
from functools import partial

import pytest

from stolon import greenlet, getcurrent

ID_VAR = ContextVar("glet_ctx_id", default=None)
VAR = ContextVar("glet_ctx_var", default=None)


def to_parent(*args):
    return getcurrent().parent.switch(*args)


def in_new_context(fn):
    """Run the test body in a fresh copy of the context (isolates ContextVar sets)."""
    def wrapper(*a, **k):
        return copy_context().run(fn, *a, **k)
    wrapper.__name__ = fn.__name__
    return wrapper


# ---------------------------------------------------------------- initial context

@in_new_context
def test_new_greenlet_starts_with_empty_context():
    ID_VAR.set("main value")

    def body():
        return ID_VAR.get(), getcurrent().gr_context
    g = greenlet(body)
    assert g.gr_context is None
    value, ctx_inside = g.switch()
    assert value is None
    assert ctx_inside is None  # nothing set yet inside: still no context object


@in_new_context
def test_set_inside_greenlet_creates_its_context_and_does_not_leak_out():
    ID_VAR.set(0)

    def body():
        ID_VAR.set(1)
        to_parent(getcurrent().gr_context)
        return ID_VAR.get()
    g = greenlet(body)
    ctx = g.switch()
    assert isinstance(ctx, Context)
    assert ctx[ID_VAR] == 1
    assert g.gr_context is ctx
    assert ID_VAR.get() == 0
    assert g.switch() == 1
    assert ID_VAR.get() == 0
    assert g.dead
    assert g.gr_context is ctx  # readable after death


@in_new_context
def test_main_greenlet_gr_context_is_running_context():
    ID_VAR.set("m")
    ctx = getcurrent().gr_context
    assert isinstance(ctx, Context)
    assert ctx[ID_VAR] == "m"


# ---------------------------------------------------------------- propagation modes

def _increment(greenlet_id, callback, counts, expect):
    if expect is None:
        assert ID_VAR.get() is None
    else:
        assert ID_VAR.get() == expect
    ID_VAR.set(greenlet_id)
    for _ in range(2):
        counts[ID_VAR.get()] += 1
        callback()


def _check_context(propagate_by):
    ID_VAR.set(0)
    callback = getcurrent().switch
    counts = dict((i, 0) for i in range(5))
    expect = {"share": None, "set": 0, "run": 0, None: None}
    lets = []
    for i in range(1, 5):
        fn = partial(_increment, greenlet_id=i, callback=callback, counts=counts,
                     expect=(i - 1 if propagate_by == "share" else expect[propagate_by]))
        if propagate_by == "run":
            fn = partial(copy_context().run, fn)
        lets.append(greenlet(fn))
    for let in lets:
        if propagate_by == "set":
            let.gr_context = copy_context()
        elif propagate_by == "share":
            let.gr_context = getcurrent().gr_context

    for _ in range(2):
        counts[ID_VAR.get()] += 1
        for let in lets:
            let.switch()
    for let in (reversed(lets) if propagate_by == "run" else lets):
        let.switch()
    for let in lets:
        assert let.dead
        if propagate_by == "run":
            assert let.gr_context is None
        else:
            assert let.gr_context is not None
    if propagate_by == "share":
        assert counts == {0: 1, 1: 1, 2: 1, 3: 1, 4: 6}
    else:
        assert set(counts.values()) == {2}


@pytest.mark.parametrize("mode", ["run", "set", None, "share"])
def test_context_propagation(mode):
    copy_context().run(_check_context, mode)


# ---------------------------------------------------------------- Context.run across switches

def test_context_run_across_switches_nests_like_a_stack():
    let1 = greenlet(copy_context().run)
    let2 = greenlet(copy_context().run)
    let1.switch(getcurrent().switch)
    let2.switch(getcurrent().switch)
    let1.switch()
    let2.switch()
    assert let1.dead and let2.dead


def test_attribute_contexts_switch_freely():
    let1 = greenlet(getcurrent().switch)
    let2 = greenlet(getcurrent().switch)
    let1.gr_context = copy_context()
    let2.gr_context = copy_context()
    let1.switch()
    let2.switch()
    let1.switch()
    let2.switch()
    assert let1.dead and let2.dead


@in_new_context
def test_context_run_inside_greenlet_is_current_context():
    ctx = Context()

    def inside():
        VAR.set("in ctx.run")
        return getcurrent().gr_context
    g = greenlet(lambda: ctx.run(inside))
    assert g.switch() is ctx
    assert ctx[VAR] == "in ctx.run"


# ---------------------------------------------------------------- assignment

@in_new_context
def test_context_assignment_while_running():
    ID_VAR.set(None)

    def target():
        assert ID_VAR.get() is None
        assert gr.gr_context is None
        ID_VAR.set(1)
        assert isinstance(gr.gr_context, Context)
        assert ID_VAR.get() == 1
        assert gr.gr_context[ID_VAR] == 1

        old_context = gr.gr_context
        gr.gr_context = None  # assign None while running
        assert ID_VAR.get() is None
        assert gr.gr_context is None
        ID_VAR.set(2)
        assert isinstance(gr.gr_context, Context)
        assert ID_VAR.get() == 2
        assert gr.gr_context[ID_VAR] == 2

        new_context = gr.gr_context
        to_parent((old_context, new_context))

        assert ID_VAR.get() == 1
        gr.gr_context = new_context  # assign non-None while running
        assert ID_VAR.get() == 2

        to_parent()
        assert ID_VAR.get() is None
        assert gr.gr_context is None
        gr.gr_context = old_context
        assert ID_VAR.get() == 1

        to_parent()
        assert ID_VAR.get() is None
        assert gr.gr_context is None

    gr = greenlet(target)
    with pytest.raises(AttributeError, match="can't delete context attribute"):
        del gr.gr_context
    assert gr.gr_context is None
    old_context, new_context = gr.switch()
    assert new_context is gr.gr_context
    assert old_context[ID_VAR] == 1
    assert new_context[ID_VAR] == 2
    assert new_context.run(ID_VAR.get) == 2
    gr.gr_context = old_context  # assign non-None while suspended
    gr.switch()
    assert gr.gr_context is new_context
    gr.gr_context = None  # assign None while suspended
    gr.switch()
    assert gr.gr_context is old_context
    gr.gr_context = None
    gr.switch()
    assert gr.gr_context is None
    assert gr.dead

    gr = None
    gc.collect()
    assert sys.getrefcount(old_context) == 2
    assert sys.getrefcount(new_context) == 2


def test_context_can_be_set_after_death():
    g = greenlet(lambda: None)
    g.switch()
    ctx = Context()
    g.gr_context = ctx
    assert g.gr_context is ctx
    g.gr_context = None
    assert g.gr_context is None


def test_context_wrong_type():
    g = greenlet()
    for bad in (object(), 1, {}, "ctx"):
        with pytest.raises(TypeError) as exc:
            g.gr_context = bad
        assert str(exc.value) == "greenlet context must be a contextvars.Context or None"


def test_context_delete():
    g = greenlet()
    with pytest.raises(AttributeError) as exc:
        del g.gr_context
    assert str(exc.value) == "can't delete context attribute"


@in_new_context
def test_context_shared_object_between_greenlets():
    ctx = Context()
    results = []

    def body(n):
        VAR.set(n)
        to_parent()
        results.append(VAR.get())

    a, b = greenlet(body), greenlet(body)
    a.gr_context = ctx
    b.gr_context = ctx
    a.switch("a")
    b.switch("b")
    a.switch()
    b.switch()
    assert results == ["b", "b"]
    assert ctx[VAR] == "b"


@in_new_context
def test_main_context_restored_after_switching():
    VAR.set("main")
    main_ctx = getcurrent().gr_context

    def body():
        VAR.set("child")
        to_parent()
        VAR.set("child2")

    g = greenlet(body)
    g.switch()
    assert VAR.get() == "main"
    assert getcurrent().gr_context is main_ctx
    g.switch()
    assert VAR.get() == "main"
    assert g.gr_context[VAR] == "child2"


@in_new_context
def test_context_var_tokens_reset_inside_greenlet():
    def body():
        tok = VAR.set("x")
        to_parent(VAR.get())
        VAR.reset(tok)
        return VAR.get()
    g = greenlet(body)
    assert g.switch() == "x"
    assert g.switch() is None
