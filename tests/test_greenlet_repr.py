"""repr() of greenlets in each state: ``<T object at 0x.. (otid=0x..)`` + state words."""
import re
import threading

from conftest import glet_settle
from stolon import greenlet, getcurrent

TYPE_NAME = "%s.%s" % (greenlet.__module__, greenlet.__name__)
HEAD = r"<%s object at 0x[0-9a-f]+ \(otid=0x(?:[0-9a-f]+|\(nil\))\)"


def head(type_name=TYPE_NAME):
    return HEAD % re.escape(type_name)


def otid(r):
    return re.search(r"\(otid=(0x[^)]*\)?)\)", r).group(1)


def to_parent(*args):
    return getcurrent().parent.switch(*args)


def test_main_while_running():
    r = repr(getcurrent())
    assert re.fullmatch(head() + " current active started main>", r), r


def test_main_while_suspended():
    main = getcurrent()
    r = greenlet(lambda: repr(main)).switch()
    assert re.fullmatch(head() + " suspended active started main>", r), r


def test_unstarted():
    r = repr(greenlet())
    assert re.fullmatch(head() + " pending>", r), r


def test_running_child():
    g = greenlet(lambda: repr(getcurrent()))
    r = g.switch()
    assert re.fullmatch(head() + " current active started>", r), r


def test_suspended_child():
    g = greenlet(lambda: to_parent())
    g.switch()
    r = repr(g)
    assert re.fullmatch(head() + " suspended active started>", r), r
    g.switch()


def test_dead():
    g = greenlet(lambda: None)
    g.switch()
    r = repr(g)
    assert re.fullmatch(head() + " dead>", r), r
    for word in ("suspended", "started", "active", "pending", "current"):
        assert word not in r


def test_address_is_id():
    g = greenlet()
    assert repr(g).startswith("<%s object at 0x%x " % (TYPE_NAME, id(g)))


def test_otid_is_the_same_for_greenlets_of_one_thread():
    main = getcurrent()
    g = greenlet(lambda: to_parent())
    g.switch()
    assert otid(repr(g)) == otid(repr(main))
    assert otid(repr(g)) not in ("0x0", "0x(nil)")
    g.switch()


def test_subclass_repr_uses_its_name():
    class MyGreenlet(greenlet):
        pass
    r = repr(MyGreenlet())
    assert re.fullmatch(head("MyGreenlet") + " pending>", r), r


def test_repr_and_str_are_str():
    g_dead = greenlet(lambda: None)
    g_dead.switch()
    for g in (g_dead, greenlet(lambda: None), getcurrent()):
        assert isinstance("%s" % (g,), str)
        assert isinstance("%r" % (g,), str)
        assert str(g) == repr(g)


def test_main_of_other_thread(glet_threads):
    main = getcurrent()
    out = {}

    def run():
        out["original_main"] = repr(main)
        out["main_glet"] = getcurrent()
        out["thread_main"] = repr(out["main_glet"])

    t = threading.Thread(target=run)
    glet_threads.append(t)
    t.start()
    t.join(10)
    assert out["original_main"].endswith(" suspended active started main>")
    assert out["thread_main"].endswith(" current active started main>")
    assert otid(out["original_main"]) != otid(out["thread_main"])
    glet_settle()
    for _ in range(3):  # stable: repr must not change state
        assert out["main_glet"].dead
        r = repr(out["main_glet"])
        assert re.fullmatch(head() + r" \(thread exited\) dead>", r), r


def test_suspended_greenlet_of_exited_thread(glet_threads):
    box = []

    def run():
        g = greenlet(lambda: to_parent())
        g.switch()
        box.append(g)

    t = threading.Thread(target=run)
    glet_threads.append(t)
    t.start()
    t.join(10)
    glet_settle()
    r = repr(box[0])
    assert re.fullmatch(head() + r" \(thread exited\) dead>", r), r
    box.clear()
