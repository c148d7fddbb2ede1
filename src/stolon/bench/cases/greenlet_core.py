"""Cases for the greenlet core: switching, creating, getcurrent.

Each ``prepare_*`` returns a callable doing n iterations; greenlets are
created and parked before it is returned, so the timing sees only the
operation named by the case.  Loops bind methods to locals (``sw =
g.switch``) to keep Python overhead small and identical for every library.
"""
import sys

from .base import RateCase
from .registry import register

GROUP = "greenlet core"
CHECK_SWITCHES = 100


def _park(main, depth, seen=None):
    """Recurse until `depth` Python frames are on this greenlet, then switch
    back to main forever.  The innermost frame is the switch point.

    With `seen` (a list; the untimed check only), every arrival in the child
    appends the number of Python frames on the child's stack, so the check
    can tell that each switch really reached the child at the right depth."""
    if depth > 1:
        return _park(main, depth - 1, seen)
    sw = main.switch
    if seen is None:
        while True:
            sw()
    while True:
        seen.append(_frames_here())
        sw()


def _park_in_sorted(main, depth, seen=None):
    """Like _park, but with `depth` C-level sorted(key=...) calls between the
    greenlet's start and its switch point, so the C stack that a switch must
    save and restore grows with depth."""
    if depth == 0:
        return _park(main, 1, seen)
    sorted((0,), key=lambda _item: _park_in_sorted(main, depth - 1, seen))


def _frames_here():
    frame, count = sys._getframe(1), 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


def _switch_into(lib, n, park, depth):
    """A greenlet parked by park(main, depth); run() switches into it n times.

    Each iteration is a round trip: main -> child -> main, two switches.
    Dropping run kills the child (GreenletExit), outside the timed region.
    """
    main = lib.getcurrent()
    child = lib.greenlet(park)
    child.switch(main, depth)
    sw = child.switch

    def run():
        for _ in range(n):
            sw()
    return run


def prepare_pingpong(lib, n):
    return _switch_into(lib, n, _park, 1)


def prepare_deep(depth):
    def prepare(lib, n):
        return _switch_into(lib, n, _park, depth)
    return prepare


def prepare_c_recursion(depth):
    def prepare(lib, n):
        return _switch_into(lib, n, _park_in_sorted, depth)
    return prepare


def check_switch(park, depth, min_frames):
    """A fast result is worth nothing if the switch did not happen: switch
    into a parked child CHECK_SWITCHES times and verify that each one
    arrived there, with at least min_frames Python frames below the switch
    point, and that control came back to main each time."""
    def check(lib):
        main, seen = lib.getcurrent(), []
        child = lib.greenlet(park)
        child.switch(main, depth, seen)
        for _ in range(CHECK_SWITCHES):
            child.switch()
        assert lib.getcurrent() is main, "control did not return to the main greenlet"
        assert len(seen) == CHECK_SWITCHES + 1, \
            f"{CHECK_SWITCHES} switches reached the child {len(seen) - 1} times"
        assert min(seen) >= min_frames, \
            f"the child switched from {min(seen)} frames, expected >= {min_frames}"
        assert child and not child.dead, "the parked child is not suspended"
    return check


def check_create_finish(lib):
    g = lib.greenlet(lambda x: x + 1)
    assert g.switch(41) == 42, "run's return value did not reach the switch() caller"
    assert g.dead, "a finished greenlet is not dead"


def check_getcurrent(lib):
    main = lib.getcurrent()
    assert lib.getcurrent() is main, "getcurrent() is not stable in the main greenlet"
    g = lib.greenlet(lambda: lib.getcurrent())
    assert g.switch() is g, "getcurrent() inside a greenlet is not that greenlet"


def _noop():
    pass


def prepare_create_finish(lib, n):
    greenlet = lib.greenlet

    def run():
        for _ in range(n):
            greenlet(_noop).switch()
    return run


def prepare_getcurrent(lib, n):
    getcurrent = lib.getcurrent

    def run():
        # unrolled x10: a bare `for` costs about as much as getcurrent itself
        # and would pull every ratio towards 1.0
        for _ in range(n):
            getcurrent(); getcurrent(); getcurrent(); getcurrent(); getcurrent()  # noqa: E702
            getcurrent(); getcurrent(); getcurrent(); getcurrent(); getcurrent()  # noqa: E702
    return run


register(RateCase(
    "switch-pingpong", "switch ping-pong", GROUP, "switches/s", prepare_pingpong,
    ops_per_iter=2, check=check_switch(_park, 1, 1),
    about="main <-> one child greenlet, one Python frame deep"))

for _depth in (10, 100, 500):
    register(RateCase(
        f"switch-deep-{_depth}", f"switch, {_depth} Python frames below", GROUP, "switches/s",
        prepare_deep(_depth), ops_per_iter=2, check=check_switch(_park, _depth, _depth),
        about=f"the child switches from under {_depth} Python frames (frame exposure cost)"))

register(RateCase(
    "switch-c-recursion-20", "switch inside 20 nested sorted(key=)", GROUP, "switches/s",
    prepare_c_recursion(20), ops_per_iter=2, check=check_switch(_park_in_sorted, 20, 41),
    about="the child switches from inside 20 nested sorted(key=...) calls: "
          "the C stack slice to save and restore is large"))

register(RateCase(
    "create-switch-finish", "create + switch + finish", GROUP, "greenlets/s",
    prepare_create_finish, check=check_create_finish,
    about="greenlet(noop).switch(): create, start, run, die"))

register(RateCase(
    "getcurrent", "getcurrent()", GROUP, "calls/s", prepare_getcurrent, ops_per_iter=10,
    check=check_getcurrent,
    pytest_work=100))
