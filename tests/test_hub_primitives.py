"""spawn, joinall, killall, wait, iwait and sleep: ordering, counts, timeouts, cleanup
of links, and flat object counts over many spawn/join cycles.

Written against gevent's API with stolon's names; the suite also passes against
gevent 26.9 with the names switched.
"""
import gc
import sys

import pytest

import stolon
from stolon import GreenletExit, Timeout, getcurrent
from stolon.hub import LoopExit


def _sleeper(seconds, result):
    stolon.sleep(seconds)
    return result


class Flag:
    """A minimal object with the wait protocol (rawlink/unlink, links called from the
    hub), to check that wait and iwait ask nothing more of the objects."""

    def __init__(self):
        self._links = []
        self.is_set = False

    def rawlink(self, callback):
        self._links.append(callback)
        if self.is_set:
            stolon.get_hub().loop.run_callback(self._notify)

    def unlink(self, callback):
        if callback in self._links:
            self._links.remove(callback)

    def set(self):
        self.is_set = True
        stolon.get_hub().loop.run_callback(self._notify)

    def _notify(self):
        links, self._links = self._links, []
        for link in links:
            link(self)


# -- spawn and sleep ordering --------------------------------------------------------------

def test_sleep_zero_lets_every_spawned_greenlet_run_first_in_order():
    order = []

    def worker(name):
        order.append(name)
        stolon.sleep(0)
        order.append(name + "'")
    for name in "abc":
        stolon.spawn(worker, name)
    order.append("main")
    stolon.sleep(0)
    order.append("main'")
    stolon.sleep(0)
    assert order == ["main", "a", "b", "c", "main'", "a'", "b'", "c'"]


def test_timed_sleeps_wake_in_time_order():
    order = []

    def nap(seconds):
        stolon.sleep(seconds)
        order.append(seconds)
    gs = [stolon.spawn(nap, d) for d in (0.03, 0.01, 0.02)]
    stolon.sleep(0.015)
    order.append("main")
    stolon.joinall(gs)
    assert order == [0.01, "main", 0.02, 0.03]


def test_spawn_later_orders_by_delay_then_spawn_order():
    order = []
    gs = [stolon.spawn_later(d, order.append, name)
          for d, name in ((0.02, "c"), (0.01, "a"), (0.01, "b"), (0, "now"))]
    stolon.joinall(gs)
    assert order == ["now", "a", "b", "c"]


# -- joinall -------------------------------------------------------------------------------

def test_joinall_returns_the_greenlets_in_the_order_they_finished():
    a = stolon.spawn(_sleeper, 0.02, "a")
    b = stolon.spawn(_sleeper, 0.01, "b")
    c = stolon.spawn(lambda: "c")
    done = stolon.joinall([a, b, c])
    assert done == [c, b, a]
    assert [g.value for g in done] == ["c", "b", "a"]


def test_joinall_with_timeout_returns_those_done_and_unlinks_the_rest():
    fast = stolon.spawn(lambda: 1)
    slow = stolon.spawn(_sleeper, 10, None)
    try:
        assert stolon.joinall([fast, slow], timeout=0.01) == [fast]
        assert not slow.has_links()
        assert stolon.joinall([slow], timeout=-1) == []
        assert stolon.joinall([slow], timeout=0) == []
    finally:
        slow.kill()


def test_joinall_count_stops_early():
    gs = [stolon.spawn(_sleeper, d, d) for d in (0.03, 0.001, 0.002)]
    assert [g.value for g in stolon.joinall(gs, count=2)] == [0.001, 0.002]
    assert not gs[0].ready() and not gs[0].has_links()
    assert stolon.joinall(gs, count=0) == []
    stolon.joinall(gs)


def test_joinall_of_nothing_and_of_finished_greenlets():
    assert stolon.joinall([]) == []
    g = stolon.spawn(lambda: 1)
    g.join()
    assert stolon.joinall([g, g]) == [g, g]


def test_joinall_raise_error_raises_the_first_error(capsys):
    def fail():
        raise ValueError("first")
    ok = stolon.spawn(lambda: 1)
    bad = stolon.spawn(fail)
    later = stolon.spawn(_sleeper, 0.01, 2)
    with pytest.raises(ValueError, match="first"):
        stolon.joinall([later, bad, ok], raise_error=True)
    assert stolon.joinall([later, ok], raise_error=True) == [ok, later]
    capsys.readouterr()


@pytest.mark.stolon_only
def test_stolon_only_joinall_raise_error_unlinks_the_rest(capsys):
    # gevent leaves its link on the greenlets not yet finished; stolon removes it
    bad = stolon.spawn(lambda: 1 / 0)
    later = stolon.spawn(_sleeper, 0.01, 2)
    with pytest.raises(ZeroDivisionError):
        stolon.joinall([later, bad], raise_error=True)
    assert not later.has_links()
    later.join()
    capsys.readouterr()


def test_joinall_is_interrupted_by_an_outer_timeout():
    g = stolon.spawn(_sleeper, 10, None)
    try:
        with Timeout(0.005, False):
            stolon.joinall([g])
            pytest.fail("joinall returned")
        assert not g.has_links()
    finally:
        g.kill()


# -- killall -------------------------------------------------------------------------------

def test_killall_kills_every_greenlet_and_waits():
    gs = [stolon.spawn(_sleeper, 10, i) for i in range(5)]
    stolon.sleep(0)
    stolon.killall(gs)
    assert all(g.dead and isinstance(g.value, GreenletExit) for g in gs)


def test_killall_unstarted_greenlets_never_run_but_links_fire():
    ran, linked = [], []
    gs = [stolon.spawn(ran.append, i) for i in range(3)]
    for g in gs:
        g.rawlink(linked.append)
    stolon.killall(gs)
    stolon.sleep(0)
    assert ran == [] and linked == gs
    assert all(g.dead for g in gs)


def test_killall_without_block_kills_later():
    gs = [stolon.spawn(_sleeper, 10, i) for i in range(3)]
    stolon.sleep(0)
    assert stolon.killall(gs, block=False) is None
    assert not any(g.dead for g in gs)
    stolon.sleep(0)
    assert all(g.dead for g in gs)


def test_killall_with_another_exception(capsys):
    gs = [stolon.spawn(_sleeper, 10, i) for i in range(2)]
    stolon.sleep(0)
    stolon.killall(gs, exception=KeyError)
    assert all(isinstance(g.exception, KeyError) for g in gs)
    capsys.readouterr()


def test_killall_joins_those_that_survive_the_first_exception():
    def survivor():
        try:
            stolon.sleep(10)
        except GreenletExit:
            stolon.sleep(0.005)
            return "cleaned up"
    g = stolon.spawn(survivor)
    stolon.sleep(0)
    stolon.killall([g])
    assert g.dead and g.value == "cleaned up"


def test_killall_timeout_raises_when_greenlets_hold_on():
    def stubborn():
        while True:
            try:
                stolon.sleep(10)
            except GreenletExit:
                pass
    g = stolon.spawn(stubborn)
    stolon.sleep(0)
    try:
        with pytest.raises(Timeout):
            stolon.killall([g], timeout=0.01)
        assert not g.dead
    finally:
        g.kill(ValueError, block=False)
        g.join()
    assert stolon.killall([stolon.spawn(_sleeper, 10, 0)], timeout=-1) is None


def test_killall_accepts_raw_greenlets_and_iterators():
    raw = stolon.spawn_raw(stolon.sleep, 10)
    g = stolon.spawn(_sleeper, 10, None)
    stolon.sleep(0)
    stolon.killall(iter([raw, g]))
    assert raw.dead and g.dead


# -- wait and iwait ------------------------------------------------------------------------

def test_wait_returns_ready_objects_in_order():
    a = stolon.spawn(_sleeper, 0.01, "a")
    b = stolon.spawn(lambda: "b")
    assert stolon.wait([a, b]) == [b, a]


def test_wait_count_and_timeout():
    a = stolon.spawn(_sleeper, 0.01, "a")
    b = stolon.spawn(_sleeper, 10, "b")
    try:
        assert stolon.wait([a, b], count=1) == [a]
        assert stolon.wait([b, a], timeout=0.005) == [a]
        assert stolon.wait([b], timeout=-1) == []
        assert not b.has_links()
    finally:
        b.kill()


def test_wait_and_iwait_work_with_any_object_with_rawlink():
    flags = [Flag() for _ in range(3)]

    def set_in_reverse():
        for flag in reversed(flags):
            stolon.sleep(0.001)
            flag.set()
    setter = stolon.spawn(set_in_reverse)
    assert stolon.wait(flags) == flags[::-1]
    setter.join()
    more = [Flag(), Flag()]
    stolon.spawn(more[1].set)
    assert list(stolon.iwait(more, timeout=0.005)) == [more[1]]
    assert more[0]._links == []


def test_wait_without_objects_runs_the_loop_until_it_is_empty():
    seen = []

    def late():
        stolon.sleep(0.005)
        seen.append("done")
    stolon.spawn(late)
    assert stolon.wait() is True
    assert seen == ["done"]
    g = stolon.spawn(_sleeper, 10, None)
    try:
        assert stolon.wait(timeout=0.005) is False
    finally:
        g.kill()


def test_iwait_yields_each_object_as_it_becomes_ready():
    gs = [stolon.spawn(_sleeper, d, d) for d in (0.02, 0.01, 0)]
    seen = []
    for g in stolon.iwait(gs):
        seen.append(g.value)
        stolon.sleep(0.015)     # the others finish meanwhile: none is lost
    assert seen == [0, 0.01, 0.02]


def test_iwait_count_timeout_and_nothing():
    gs = [stolon.spawn(_sleeper, d, d) for d in (10, 0.001, 0)]
    try:
        assert [g.value for g in stolon.iwait(gs, count=2)] == [0, 0.001]
        assert list(stolon.iwait(gs, timeout=0.005)) == [gs[1], gs[2]]
        assert list(stolon.iwait(gs, count=0)) == []
        assert list(stolon.iwait([])) == []
        assert not gs[0].has_links()
    finally:
        gs[0].kill()


def test_iwait_stopped_early_in_a_with_block_unlinks():
    gs = [stolon.spawn(_sleeper, d, d) for d in (0, 10, 10)]
    try:
        with stolon.iwait(gs) as it:
            for g in it:
                assert g is gs[0]
                break
        assert not any(g.has_links() for g in gs)
    finally:
        stolon.killall(gs)


def test_iwait_of_none_joins_the_hub():
    stolon.spawn(stolon.sleep, 0.001)
    assert stolon.iwait(None) == [True]


def test_a_wait_that_could_never_end_raises_loopexit():
    g = stolon.spawn(lambda: getcurrent().join())
    try:
        with pytest.raises(LoopExit):
            stolon.wait([g])
    finally:
        g.kill()
    g2 = stolon.spawn(lambda: 1)
    with pytest.raises(LoopExit):
        stolon.wait([g2], count=-1)     # as in gevent: a negative count never completes
    assert g2.ready()


def test_killing_a_waiting_greenlet_cleans_up_its_links():
    target = stolon.spawn(_sleeper, 10, None)
    waiter_g = stolon.spawn(stolon.joinall, [target])
    iterer = stolon.spawn(lambda: list(stolon.iwait([target])))
    stolon.sleep(0)
    assert target.has_links()
    stolon.killall([waiter_g, iterer])
    assert not target.has_links()
    target.kill()


# -- no growth over many spawn/join cycles -------------------------------------------------

def _noop():
    return None


def _spawn_join_cycles(cycles, batch=1000):
    spawn = stolon.spawn
    joinall = stolon.joinall
    for _ in range(cycles // batch):
        joinall([spawn(_noop) for _ in range(batch)])
    g = spawn(_noop)
    g.join()
    g.get()


def _counts():
    for _ in range(3):
        gc.collect()
    return len(gc.get_objects()), sys.getallocatedblocks()


def _assert_flat(cycles):
    psutil = pytest.importorskip("psutil")
    _spawn_join_cycles(10000)     # warm-up: caches, free lists, the ident registry
    objects_before, blocks_before = _counts()
    rss_before = psutil.Process().memory_info().rss
    _spawn_join_cycles(cycles)
    objects_after, blocks_after = _counts()
    rss_after = psutil.Process().memory_info().rss
    # a leak of one object per cycle would show as `cycles`; allow small noise
    assert objects_after - objects_before < 100, (objects_before, objects_after)
    assert blocks_after - blocks_before < 1000, (blocks_before, blocks_after)
    assert rss_after - rss_before < 8 * 1024 * 1024, (rss_before, rss_after)


def test_a_million_spawn_join_cycles_leave_objects_and_rss_flat():
    _assert_flat(1000000)
