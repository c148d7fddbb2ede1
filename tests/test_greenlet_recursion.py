"""Deep Python and deep C recursion around switches: the right values come
back, the recursion counters are per greenlet, and running out of recursion is
a RecursionError, never a crash."""
import sys

import pytest

from stolon import greenlet, getcurrent

LIMIT = sys.getrecursionlimit()


def rec(n, fn):
    """n Python frames, then fn()."""
    if n == 0:
        return fn()
    return rec(n - 1, fn)


def crec(n, fn):
    """n levels of Python -> C (sorted) -> Python recursion, then fn()."""
    if n == 0:
        return fn()
    out = []
    sorted([n], key=lambda _: out.append(crec(n - 1, fn)))
    return out[0]


def frame_depth():
    n, f = 0, sys._getframe(1)
    while f is not None:
        n += 1
        f = f.f_back
    return n


# ---------------------------------------------------------------- deep Python frames

def test_switch_from_500_deep_python_frames_many_times():
    main = getcurrent()

    def body():
        def loop():
            total = 0
            while True:
                v = main.switch(total)
                if v is None:
                    return total
                total += v
        return rec(500, loop)

    g = greenlet(body)
    assert g.switch() == 0
    for i in range(1, 1001):
        assert g.switch(i) == i * (i + 1) // 2
    assert g.switch(None) == 500500
    assert g.dead


def test_two_greenlets_deep_at_different_depths_ping_pong():
    log = []

    def a_body():
        def inner():
            for i in range(50):
                log.append(("a", i, frame_depth()))
                gb.switch()
            return "a"
        return rec(300, inner)

    def b_body():
        def inner():
            for i in range(50):
                log.append(("b", i, frame_depth()))
                ga.switch()
        return rec(450, inner)

    ga = greenlet(a_body)
    gb = greenlet(b_body, parent=ga)
    assert ga.switch() == "a"
    depths_a = {d for who, _, d in log if who == "a"}
    depths_b = {d for who, _, d in log if who == "b"}
    assert len(depths_a) == 1 and len(depths_b) == 1
    assert depths_b.pop() - depths_a.pop() == 150
    assert [i for who, i, _ in log if who == "a"] == list(range(50))


def budget():
    """Frames we can still add from the caller's depth, with a safety margin."""
    room = LIMIT - frame_depth() - 60
    assert room > 200, "test runner stack is unexpectedly deep"
    return room


def test_recursion_depth_is_saved_per_greenlet():
    # A greenlet suspended near the limit does not eat main's budget.
    main = getcurrent()
    n = budget()
    g = greenlet(lambda: rec(n, lambda: main.switch("deep")))
    assert g.switch() == "deep"
    assert rec(n, lambda: "main deep too") == "main deep too"
    g.switch()
    assert g.dead


def test_new_greenlet_counts_depth_from_where_it_started():
    # The first switch runs ``run`` on top of the starter's recursion depth.
    n = budget()

    def start_deep():
        return greenlet(lambda: rec(n, lambda: "ok")).switch()
    with pytest.raises(RecursionError):
        rec(n // 2 + 60, start_deep)
    # and from shallow depth the same greenlet body is fine
    assert greenlet(lambda: rec(n, lambda: "ok")).switch() == "ok"


def test_infinite_recursion_in_greenlet_is_recursion_error():
    def inf():
        return inf()
    g = greenlet(inf)
    with pytest.raises(RecursionError):
        g.switch()
    assert g.dead
    # everything still works afterwards
    assert greenlet(lambda: rec(100, lambda: "fine")).switch() == "fine"


def test_recursion_error_caught_inside_greenlet_then_switch():
    main = getcurrent()

    def body():
        def inf():
            return inf()
        try:
            inf()
        except RecursionError:
            pass
        return main.switch("recovered") + 1
    g = greenlet(body)
    assert g.switch() == "recovered"
    assert g.switch(41) == 42


def test_recursion_error_in_many_greenlets_sequentially():
    def inf():
        return inf()
    for _ in range(20):
        with pytest.raises(RecursionError):
            greenlet(inf).switch()


def test_switch_inside_recursion_error_handler_at_depth():
    main = getcurrent()

    def body():
        def inf(n):
            try:
                return inf(n + 1)
            except RecursionError:
                if n % 100 == 0:
                    main.switch(n)
                raise
        try:
            inf(0)
        except RecursionError:
            return "unwound"
    g = greenlet(body)
    got = [g.switch()]
    while True:
        v = g.switch()
        got.append(v)
        if v == "unwound":
            break
    assert got[-1] == "unwound"
    nums = got[:-1]
    assert nums == sorted(nums, reverse=True) and nums[-1] == 0


# ---------------------------------------------------------------- deep C recursion

def test_switch_from_inside_nested_sorted_calls():
    main = getcurrent()
    g = greenlet(lambda: crec(100, lambda: main.switch("bottom") + "!"))
    assert g.switch() == "bottom"
    assert g.switch("up") == "up!"
    assert g.dead


def test_two_greenlets_both_deep_in_c_calls_alternate():
    log = []

    def make(name, other_name, depth):
        def bottom():
            for i in range(30):
                log.append((name, i))
                greenlets[other_name].switch()
            return name
        return lambda: crec(depth, bottom)

    greenlets = {}
    greenlets["a"] = greenlet(make("a", "b", 60))
    greenlets["b"] = greenlet(make("b", "a", 90), parent=greenlets["a"])
    assert greenlets["a"].switch() == "a"
    assert log[:4] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert len(log) == 60


def test_main_deep_in_c_calls_while_child_deep_too():
    main = getcurrent()

    def child():
        v = main.switch("started")
        return crec(120, lambda: main.switch(("child deep", v)))
    g = greenlet(child)
    assert g.switch() == "started"  # started shallow: it keeps its own depth

    def in_main():
        assert g.switch(1) == ("child deep", 1)
        return "main deep"
    assert crec(120, in_main) == "main deep"
    g.switch()
    assert g.dead


def test_switch_inside_sort_key_affects_only_that_sort():
    main = getcurrent()

    def key(x):
        main.switch(("key", x))
        return -x

    g = greenlet(lambda: sorted([3, 1, 2], key=key))
    seen = [g.switch()]
    while not g.dead:
        seen.append(g.switch())
    assert seen[:3] == [("key", 3), ("key", 1), ("key", 2)]
    assert seen[-1] == [3, 2, 1]


def test_switch_inside_map_filter_reduce_chain():
    import functools
    main = getcurrent()

    def step(acc, x):
        return acc + main.switch(x)

    g = greenlet(lambda: functools.reduce(step, filter(None, map(int, "0123")), 0))
    values = []
    v = g.switch()
    while not g.dead:
        values.append(v)
        v = g.switch(v * 10)
    assert values == [1, 2, 3]
    assert v == 60


def test_nested_greenlets_each_deep_in_c_calls():
    def level(n):
        if n == 0:
            return 0
        return crec(10, lambda: greenlet(level).switch(n - 1) + 1)
    assert greenlet(level).switch(10) == 10


def test_deep_c_recursion_error_in_greenlet_is_catchable():
    def body():
        try:
            crec(100000, lambda: None)
        except RecursionError:
            return "caught"
    assert greenlet(body).switch() == "caught"


def test_many_greenlets_suspended_at_varied_depths_resume_randomly():
    import random
    main = getcurrent()
    rng = random.Random(1234)
    gs = []
    for i in range(40):
        depth = rng.randrange(10, 300)
        use_c = i % 2 == 0
        f = (lambda d: crec(d // 4, lambda: main.switch(d) * 2)) if use_c else (
            lambda d: rec(d, lambda: main.switch(d) * 2))
        g = greenlet(f)
        assert g.switch(depth) == depth
        gs.append((g, depth))
    rng.shuffle(gs)
    for g, depth in gs:
        assert g.switch(depth + 1) == (depth + 1) * 2
        assert g.dead
