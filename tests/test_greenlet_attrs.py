"""The ``run`` and ``parent`` attributes: the rules table, with exact messages."""
import pytest

from stolon import greenlet, getcurrent


def to_parent(*args):
    return getcurrent().parent.switch(*args)


# ---------------------------------------------------------------- run

def test_run_before_start_is_the_callable():
    f = lambda: None  # noqa: E731
    g = greenlet(f)
    assert g.run is f


def test_run_unset_raises_attribute_error():
    with pytest.raises(AttributeError) as exc:
        greenlet().run  # noqa: B018
    assert str(exc.value) == "run"


def test_run_can_be_set_and_deleted_before_start():
    g = greenlet()
    g.run = lambda: "set later"
    assert g.switch() == "set later"

    g = greenlet(lambda: None)
    del g.run
    with pytest.raises(AttributeError) as exc:
        g.run  # noqa: B018
    assert str(exc.value) == "run"


def test_run_replaced_before_start_uses_new_callable():
    g = greenlet(lambda: "old")
    g.run = lambda: "new"
    assert g.switch() == "new"


def test_switch_without_run_raises_attribute_error():
    g = greenlet()
    with pytest.raises(AttributeError) as exc:
        g.switch()
    assert "run" in str(exc.value)


def test_switch_without_run_can_be_retried_after_setting_run():
    g = greenlet()
    with pytest.raises(AttributeError):
        g.switch()
    g.run = lambda x: x * 2
    assert g.switch(21) == 42


def test_run_not_callable_raises_type_error_at_switch():
    g = greenlet(run=42)
    with pytest.raises(TypeError):
        g.switch()


def test_run_is_gone_after_start_and_while_running():
    seen = []

    def body():
        seen.append(hasattr(getcurrent(), "run"))
        to_parent()
    g = greenlet(body)
    g.switch()
    assert seen == [False]
    with pytest.raises(AttributeError) as exc:
        g.run  # noqa: B018
    assert str(exc.value) == "run"
    g.switch()
    assert g.dead
    with pytest.raises(AttributeError) as exc:
        g.run  # noqa: B018
    assert str(exc.value) == "run"


def test_set_run_after_start():
    g = greenlet(lambda: to_parent())
    g.switch()
    with pytest.raises(AttributeError) as exc:
        g.run = lambda: None
    assert str(exc.value) == "run cannot be set after the start of the greenlet"
    g.switch()
    with pytest.raises(AttributeError) as exc:
        g.run = lambda: None
    assert str(exc.value) == "run cannot be set after the start of the greenlet"


def test_del_run_after_start():
    g = greenlet(lambda: None)
    g.switch()
    with pytest.raises(AttributeError) as exc:
        del g.run
    assert str(exc.value) == "run cannot be set after the start of the greenlet"


def test_main_greenlet_has_no_run():
    main = getcurrent()
    with pytest.raises(AttributeError) as exc:
        main.run  # noqa: B018
    assert str(exc.value) == "Main greenlets do not have a run attribute."
    with pytest.raises(AttributeError) as exc:
        main.run = lambda: None
    assert str(exc.value) == "Main greenlets do not have a run attribute."
    assert not hasattr(main, "run")


def test_subclass_run_method_is_used():
    class G(greenlet):
        def run(self, x):
            return ("subclass", x, self is getcurrent())
    assert G().switch(1) == ("subclass", 1, True)


def test_subclass_run_method_shadows_run_argument():
    # ``run`` is looked up by ordinary attribute access, and a method defined in
    # the subclass shadows the base type's ``run`` descriptor (greenlet does this).
    class G(greenlet):
        def run(self):
            return "method"
    assert G(lambda: "argument").switch() == "method"


# ---------------------------------------------------------------- parent

def test_parent_can_be_changed_before_start():
    p = greenlet(lambda x: ("p got", x))
    g = greenlet(lambda: "g result")
    g.parent = p
    assert g.parent is p
    assert g.switch() == ("p got", "g result")


def test_parent_can_be_changed_while_suspended():
    main = getcurrent()
    p = greenlet(lambda x: ("p got", x))
    g = greenlet(lambda: main.switch("suspended") and "finished")
    assert g.switch() == "suspended"
    g.parent = p
    assert g.switch(True) == ("p got", "finished")


def test_parent_can_be_changed_by_itself_while_running():
    main = getcurrent()

    def p(x):
        return ("p got", x)
    gp = greenlet(p)

    def body():
        getcurrent().parent = gp
        return "done"
    assert greenlet(body).switch() == ("p got", "done")
    assert gp.dead
    assert getcurrent() is main


@pytest.mark.parametrize("value", [None, 1, "42", object()])
def test_set_parent_to_non_greenlet(value):
    g = greenlet(lambda: to_parent())
    for _ in range(2):  # unstarted, then suspended
        with pytest.raises(TypeError) as exc:
            g.parent = value
        assert str(exc.value) == (
            "GreenletChecker: Expected any type of greenlet, not " + type(value).__name__)
        g.switch()
    assert g.dead


def test_trivial_cycle():
    g = greenlet(lambda: None)
    with pytest.raises(ValueError) as exc:
        g.parent = g
    assert str(exc.value) == "cyclic parent chain"


def test_deeper_cycle():
    g1, g2, g3 = greenlet(lambda: None), greenlet(lambda: None), greenlet(lambda: None)
    g1.parent = g2
    g2.parent = g3
    with pytest.raises(ValueError) as exc:
        g3.parent = g1
    assert str(exc.value) == "cyclic parent chain"
    assert g3.parent is getcurrent()


def test_cycle_through_running_greenlet():
    def body():
        child = greenlet(lambda: None)
        with pytest.raises(ValueError) as exc:
            getcurrent().parent = child
        return str(exc.value)
    assert greenlet(body).switch() == "cyclic parent chain"


def test_delete_parent():
    g = greenlet(lambda: None)
    with pytest.raises(AttributeError) as exc:
        del g.parent
    assert str(exc.value) == "can't delete attribute"
    assert g.parent is getcurrent()


def test_delete_parent_of_main():
    with pytest.raises(AttributeError) as exc:
        del getcurrent().parent
    assert str(exc.value) == "can't delete attribute"


def test_set_parent_of_main():
    main = getcurrent()
    with pytest.raises(AttributeError) as exc:
        main.parent = greenlet()
    assert str(exc.value) == "cannot set the parent of a main greenlet"
    with pytest.raises(AttributeError) as exc:
        main.parent = main
    assert str(exc.value) == "cannot set the parent of a main greenlet"
    assert main.parent is None


def test_parent_of_dead_greenlet_can_still_be_read_and_set():
    g = greenlet(lambda: None)
    g.switch()
    assert g.parent is getcurrent()
    other = greenlet()
    g.parent = other
    assert g.parent is other


def test_parent_chain_reaches_main():
    main = getcurrent()

    def body():
        chain = []
        cur = getcurrent()
        while cur is not None:
            chain.append(cur)
            cur = cur.parent
        return chain
    inner = greenlet(body)
    outer = greenlet(lambda: inner.switch())
    inner.parent = outer
    chain = outer.switch()
    assert chain == [inner, outer, main]
