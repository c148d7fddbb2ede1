"""greenlets and OS threads: one main greenlet per thread, cross-thread errors,
per-thread settings.  (Deleting greenlets across threads and cleanup at thread
exit, which could crash the interpreter, are in test_greenlet_thread_cleanup.py.)"""
import threading
import time

import pytest

from conftest import glet_settle
from stolon import greenlet, getcurrent, error, settrace, gettrace

EXITED_MSG = "cannot switch to a different thread (which happens to have exited)"


def to_parent(*args):
    return getcurrent().parent.switch(*args)


class Parked:
    """A helper thread that creates greenlets, parks, and runs requests on demand."""

    def __init__(self):
        self.box = {}
        self._ready = threading.Event()
        self._go = threading.Event()
        self._requests = []
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        self.box["main"] = getcurrent()
        g = greenlet(lambda: to_parent("parked"))
        assert g.switch() == "parked"
        self.box["suspended"] = g
        self.box["unstarted"] = greenlet(lambda: None)
        self._ready.set()
        while True:
            self._go.wait(10)
            self._go.clear()
            if not self._requests:
                break
            fn = self._requests.pop()
            try:
                self.box["result"] = fn()
            except BaseException as e:  # noqa: BLE001
                self.box["result"] = e
            self._done.set()

    def start(self):
        self.thread.start()
        assert self._ready.wait(10)
        return self

    def call(self, fn):
        """Run fn() in the helper thread and return its result."""
        self._done.clear()
        self._requests.append(fn)
        self._go.set()
        assert self._done.wait(10)
        return self.box.pop("result")

    def stop(self):
        self._go.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def parked(glet_threads):
    p = Parked().start()
    glet_threads.append(p.thread)
    yield p
    if p.thread.is_alive():
        p.stop()
    p.box.clear()


def cross_thread_msg(current_main, target_main):
    return "Cannot switch to a different thread\n\tCurrent:  %r\n\tExpected: %r" % (
        current_main, target_main)


# ---------------------------------------------------------------- main greenlets

def test_each_thread_has_its_own_main_greenlet(glet_threads):
    main = getcurrent()
    found = []

    def run():
        m = getcurrent()
        found.append((m, type(m), m.parent, getcurrent() is m, bool(m), m.dead))

    for _ in range(3):
        t = threading.Thread(target=run)
        glet_threads.append(t)
        t.start()
        t.join(10)
    assert len(found) == 3
    mains = [f[0] for f in found]
    assert len(set(map(id, mains))) == 3
    assert main not in mains
    for m, typ, parent, same, alive, dead in found:
        assert typ is greenlet and parent is None and same and alive and not dead


def test_greenlets_work_in_many_threads(glet_threads):
    results = []

    def run():
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
        results.append(lst == [0, 1, 2, 3, 4] and g.dead)

    for _ in range(10):
        t = threading.Thread(target=run)
        glet_threads.append(t)
    for t in glet_threads:
        t.start()
    for t in glet_threads:
        t.join(10)
    assert results == [True] * 10


def test_greenlets_suspended_across_blocking_call_in_threads(glet_threads):
    done = []

    def runner(x):
        g = greenlet(lambda: time.sleep(x))
        g.switch()
        done.append(g.dead)

    for x in (0.05, 0.1):
        t = threading.Thread(target=runner, args=(x,))
        glet_threads.append(t)
        t.start()
    for t in glet_threads:
        t.join(10)
    assert done == [True, True]


def test_main_greenlet_of_exited_thread_is_dead(glet_threads):
    box = []
    t = threading.Thread(target=lambda: box.append(getcurrent()))
    glet_threads.append(t)
    t.start()
    t.join(10)
    glet_settle()
    m = box[0]
    for _ in range(3):  # the state must be stable
        assert m.dead
        assert not m
        assert repr(m).endswith(" (thread exited) dead>")


# ---------------------------------------------------------------- cross-thread switching

@pytest.mark.parametrize("which", ["suspended", "unstarted", "main"])
def test_cross_thread_switch_raises_error(parked, which):
    target = parked.box[which]
    with pytest.raises(error) as exc:
        target.switch()
    assert str(exc.value) == cross_thread_msg(getcurrent(), parked.box["main"])


@pytest.mark.parametrize("which", ["suspended", "main"])
def test_cross_thread_throw_raises_error(parked, which):
    with pytest.raises(error) as exc:
        parked.box[which].throw(KeyError)
    assert str(exc.value) == cross_thread_msg(getcurrent(), parked.box["main"])


def test_cross_thread_message_names_this_threads_main_from_a_greenlet(parked):
    main = getcurrent()

    def inner():
        try:
            parked.box["suspended"].switch()
        except error as e:
            return str(e), cross_thread_msg(main, parked.box["main"])
    got, expected = greenlet(inner).switch()
    assert got == expected
    assert "\tCurrent:  <" in got and " suspended active started main>" in got


def test_cross_thread_error_leaves_both_greenlets_usable(parked):
    with pytest.raises(error):
        parked.box["suspended"].switch()
    assert parked.call(lambda: parked.box["suspended"].switch("resumed")) == "resumed"
    assert parked.box["suspended"].dead


def test_set_parent_of_started_greenlet_to_other_thread(parked):
    g = greenlet(lambda: to_parent())
    g.switch()
    with pytest.raises(ValueError) as exc:
        g.parent = parked.box["unstarted"]
    assert str(exc.value) == "parent cannot be on a different thread"
    assert g.parent is getcurrent()
    g.switch()


def test_unstarted_greenlet_with_foreign_parent_fails_at_switch(parked):
    ran = []
    g = greenlet(lambda: ran.append(1))
    g.parent = parked.box["unstarted"]  # allowed: nothing is fixed before start
    with pytest.raises(error) as exc:
        g.switch()
    assert str(exc.value).startswith("Cannot switch to a different thread\n\tCurrent:  ")
    assert ran == []


def test_reparent_during_startup_to_running_thread(parked):
    class Convoluted(greenlet):
        def __getattribute__(self, name):
            if name == "run":
                self.parent = parked.box["unstarted"]
            return greenlet.__getattribute__(self, name)

    g = Convoluted(lambda: None)
    with pytest.raises(error) as exc:
        g.switch()
    s = str(exc.value)
    assert "Cannot switch to a different thread" in s and "Current" in s and "Expected" in s


def test_switch_into_exited_thread(glet_threads):
    box = {}

    def run():
        box["main"] = getcurrent()
        g = greenlet(lambda: to_parent())
        g.switch()
        box["suspended"] = g
        box["unstarted"] = greenlet(lambda: None)

    t = threading.Thread(target=run)
    glet_threads.append(t)
    t.start()
    t.join(10)
    glet_settle()
    for key in ("suspended", "main", "unstarted"):
        with pytest.raises(error) as exc:
            box[key].switch()
        assert str(exc.value) == EXITED_MSG, key
    with pytest.raises(error) as exc:
        box["suspended"].throw(KeyError)
    assert str(exc.value) == EXITED_MSG
    assert box["suspended"].dead and not box["suspended"]
    assert box["suspended"].gr_frame is None
    assert repr(box["suspended"]).endswith(" (thread exited) dead>")
    # Unstarted greenlets stay unstarted.
    assert not box["unstarted"].dead


def test_reparent_during_startup_to_exited_thread(glet_threads):
    another = []

    def worker():
        g = greenlet(lambda: None)
        another.append(g)
        g.switch()

    t = threading.Thread(target=worker)
    glet_threads.append(t)
    t.start()
    t.join(10)
    glet_settle()

    class Convoluted(greenlet):
        def __getattribute__(self, name):
            if name == "run":
                self.parent = another[0]
            return greenlet.__getattribute__(self, name)

    g = Convoluted(lambda: None)
    with pytest.raises(error) as exc:
        g.switch()
    assert str(exc.value) == EXITED_MSG


# ---------------------------------------------------------------- per-thread settings

def test_settrace_is_per_thread(glet_threads, glet_clean_trace):
    def tracer(event, args):
        pass
    settrace(tracer)
    seen = []

    def run():
        seen.append(gettrace())
        mine = lambda *a: None  # noqa: E731
        settrace(mine)
        seen.append(gettrace() is mine)

    t = threading.Thread(target=run)
    glet_threads.append(t)
    t.start()
    t.join(10)
    assert seen == [None, True]
    assert gettrace() is tracer


def test_gr_context_of_greenlet_running_in_other_thread(glet_threads):
    import contextvars
    running = threading.Event()
    release = threading.Event()
    holder = []

    def run():
        g = getcurrent()
        holder.append(g)
        running.set()
        release.wait(10)

    t = threading.Thread(target=lambda: greenlet(run).switch())
    glet_threads.append(t)
    t.start()
    assert running.wait(10)
    try:
        g = holder[0]
        with pytest.raises(ValueError) as exc:
            g.gr_context  # noqa: B018
        assert str(exc.value) == (
            "cannot get context of a greenlet that is running in a different thread")
        with pytest.raises(ValueError) as exc:
            g.gr_context = contextvars.Context()
        assert str(exc.value) == (
            "cannot set context of a greenlet that is running in a different thread")
    finally:
        release.set()
        t.join(10)
    holder.clear()


def test_many_threads_switching_foreign_greenlets_never_crash(glet_threads):
    greenlets = []
    created = threading.Event()
    stop = threading.Event()
    lock = threading.Lock()

    def creator():
        def body():
            while True:
                to_parent()
        g = greenlet(body)
        g.switch()
        with lock:
            greenlets.append(g)
        created.wait(10)

    def switcher():
        created.wait(10)
        while not stop.is_set():
            for g in list(greenlets):
                try:
                    if not g.dead:
                        g.switch()
                except error:
                    pass

    threads = [threading.Thread(target=creator) for _ in range(4)]
    threads += [threading.Thread(target=switcher) for _ in range(4)]
    glet_threads.extend(threads)
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(greenlets) < 4 and time.monotonic() < deadline:
        time.sleep(0.001)
    created.set()
    for t in threads[:4]:
        t.join(10)
    stop.set()
    for t in threads[4:]:
        t.join(10)
    assert all(g.dead for g in greenlets)
    greenlets.clear()
