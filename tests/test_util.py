"""stolon.util: run-info dumps for debugging a stuck program, GreenletTree, wrap_errors,
assert_switches."""
import io
import threading
import time

import pytest

import stolon
from stolon.util import GreenletTree, assert_switches, format_run_info, print_run_info, wrap_errors


def stuck_in_a_marked_function(seconds):
    stolon.sleep(seconds)


@pytest.fixture
def stuck_greenlet():
    g = stolon.spawn(stuck_in_a_marked_function, 10)
    stolon.sleep(0)
    yield g
    g.kill()


@pytest.fixture
def stuck_thread():
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="marked-worker-thread")
    thread.start()
    yield thread
    release.set()
    thread.join()


# -- format_run_info / print_run_info ---------------------------------------------------


def test_lists_threads_with_stacks(stuck_thread):
    lines = format_run_info()
    assert all(isinstance(line, str) for line in lines)
    text = "\n".join(lines)
    assert "* Threads" in text and "* Greenlets" in text
    assert "Thread 0x%x (marked-worker-thread)" % stuck_thread.ident in text
    current = "Thread 0x%x (%s) (CURRENT)" % (threading.get_ident(),
                                               threading.current_thread().name)
    assert current in text
    assert "in wait" in text            # the helper thread's stack: Event.wait


def test_current_thread_ident_chooses_the_marked_thread(stuck_thread):
    text = "\n".join(format_run_info(current_thread_ident=stuck_thread.ident))
    assert "(marked-worker-thread) (CURRENT)" in text
    assert "(%s) (CURRENT)" % threading.current_thread().name not in text


def test_thread_stacks_can_be_elided(stuck_thread):
    lines = format_run_info(thread_stacks=False)
    assert "\t...stack elided..." in lines
    threads_part = "\n".join(lines[:lines.index("* Greenlets")])
    assert "in wait" not in threads_part


def test_lists_greenlets_with_their_stacks(stuck_greenlet):
    text = "\n".join(format_run_info())
    assert repr(stuck_greenlet) in text
    assert "in stuck_in_a_marked_function" in text
    assert repr(stolon.get_hub()) in text


def test_greenlet_stacks_can_be_left_out(stuck_greenlet):
    lines = format_run_info(greenlet_stacks=False)
    greenlets_part = "\n".join(lines[lines.index("* Greenlets"):])
    assert repr(stuck_greenlet) in greenlets_part
    assert "in stuck_in_a_marked_function" not in greenlets_part


def test_limit_shortens_stacks(stuck_greenlet):
    def frames(lines):
        return sum(line.count('File "') for line in lines)

    assert frames(format_run_info(limit=1)) < frames(format_run_info())


def test_print_run_info_writes_the_lines(stuck_greenlet):
    out = io.StringIO()
    print_run_info(file=out)
    text = out.getvalue()
    assert "* Threads" in text and repr(stuck_greenlet) in text
    assert text.endswith("\n")


def test_print_run_info_defaults_to_stderr(capsys):
    print_run_info(thread_stacks=False, greenlet_stacks=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "* Greenlets" in captured.err


def test_lists_the_watchers_of_the_loop(stuck_greenlet):
    # stolon adds a section on each hub's loop and its active watchers; gevent does
    # not print watchers (this test fails on gevent on purpose)
    def marked_watcher_callback():
        pass

    timer = stolon.get_hub().loop.timer(10)
    timer.start(marked_watcher_callback)
    try:
        text = "\n".join(format_run_info())
    finally:
        timer.close()
    assert "Loop: backend=" in text
    assert "marked_watcher_callback" in text
    closed = "\n".join(format_run_info())
    assert "marked_watcher_callback" not in closed


# -- GreenletTree -----------------------------------------------------------------------


def test_current_tree_has_the_spawned_greenlet(stuck_greenlet):
    tree = GreenletTree.current_tree()
    assert tree.is_current_tree and tree.root
    assert tree.greenlet is stolon.getcurrent()
    children = [child.greenlet for child in tree.child_trees]
    assert stuck_greenlet in children
    assert "at 0x%x" % id(stuck_greenlet) in str(tree)     # its repr may gain a name
    assert "in stuck_in_a_marked_function" not in str(tree)
    assert "in stuck_in_a_marked_function" in tree.format()


def test_tree_follows_the_spawning_greenlet():
    spawned = []

    def spawner():
        spawned.append(stolon.spawn(stolon.sleep, 10))
        stolon.sleep(10)

    parent = stolon.spawn(spawner)
    stolon.sleep(0)
    stolon.sleep(0)
    try:
        tree = GreenletTree.current_tree()
        [parent_tree] = [t for t in tree.child_trees if t.greenlet is parent]
        assert [t.greenlet for t in parent_tree.child_trees] == spawned
        assert spawned[0].parent is stolon.get_hub()
        assert spawned[0] not in [t.greenlet for t in tree.child_trees]
    finally:
        stolon.killall(spawned + [parent])


def test_forest_includes_the_current_tree():
    forest = GreenletTree.forest()
    assert [t for t in forest if t.is_current_tree][0].greenlet is stolon.getcurrent()


def test_format_lines_details():
    tree = GreenletTree.current_tree()
    assert tree.format_lines(False)[0] == repr(stolon.getcurrent())
    detailed = tree.format_lines(True)
    assert any("Parent: None" in line for line in detailed)
    no_stacks = tree.format_lines({"running_stacks": False})
    assert len(no_stacks) < len(detailed)
    assert tree.format().splitlines()[0] == repr(stolon.getcurrent())
    assert str(tree) == "\n".join(tree.format_lines(False))


# -- wrap_errors ------------------------------------------------------------------------


def divide(a, b):
    """Divide."""
    return a / b


def test_wrap_errors_returns_listed_errors():
    safe = wrap_errors(ZeroDivisionError, divide)
    assert safe(6, 3) == 2
    result = safe(1, 0)
    assert isinstance(result, ZeroDivisionError)


def test_wrap_errors_accepts_a_tuple_and_lets_others_through():
    safe = wrap_errors((KeyError, ZeroDivisionError), divide)
    assert isinstance(safe(1, 0), ZeroDivisionError)
    with pytest.raises(TypeError):
        safe(1, "x")


def test_wrap_errors_looks_like_the_function():
    safe = wrap_errors(ZeroDivisionError, divide)
    assert str(safe) == str(divide)
    assert repr(safe) == repr(divide)
    assert safe.__name__ == "divide" and safe.__doc__ == "Divide."
    assert safe.__wrapped__ is divide
    assert safe.__code__ is divide.__code__


def test_wrap_errors_in_a_greenlet_keeps_it_successful():
    g = stolon.spawn(wrap_errors(ZeroDivisionError, divide), 1, 0)
    g.join()
    assert g.successful()
    assert isinstance(g.value, ZeroDivisionError)


# -- assert_switches ------------------------------------------------------------------

UNDER_GEVENT = stolon.__name__ != "st" + "olon"


def _busy(seconds):
    """Run without switching (the real time.sleep would do, but a spin is the same
    under monkey patching)."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


def test_assert_switches_fails_for_a_body_that_never_switches():
    with pytest.raises(AssertionError) as info:
        with assert_switches():
            pass
    message = str(info.value)
    assert message.startswith("To any greenlet in ")
    assert "appears to be blocked" in message and "Blocked Stack" in message


def test_assert_switches_passes_for_a_body_that_switches():
    with assert_switches():
        stolon.sleep(0)
    with assert_switches(max_blocking_time=1.0):
        pass                    # no switch, but quick
    with assert_switches(max_blocking_time=1.0, hub_only=True):
        stolon.sleep(0.01)


def test_assert_switches_with_a_limit_fails_for_a_long_stretch():
    with pytest.raises(AssertionError) as info:
        with assert_switches(max_blocking_time=0.02):
            _busy(0.06)
    assert "(max allowed 0.0200 seconds)" in str(info.value)


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent times from the start of the block to its "
                                         "last switch: it misses a long final stretch")
def test_assert_switches_counts_the_stretch_after_the_last_switch():
    with pytest.raises(AssertionError):
        with assert_switches(max_blocking_time=0.02):
            stolon.sleep(0)
            _busy(0.06)
    with pytest.raises(AssertionError):
        with assert_switches(max_blocking_time=0.02, hub_only=True):
            stolon.sleep(0)
            _busy(0.06)


@pytest.mark.skipif(UNDER_GEVENT, reason="gevent times each switch from the start of the block")
def test_assert_switches_hub_only_ignores_switches_between_other_greenlets():
    main = stolon.getcurrent()
    partner = stolon.greenlet(lambda: [(_busy(0.005), main.switch()) for _ in range(20)])

    def ping_pong():
        for _ in range(20):
            _busy(0.005)
            partner.switch()

    with assert_switches(max_blocking_time=0.05):
        ping_pong()             # every stretch is short
    partner = stolon.greenlet(lambda: [(_busy(0.005), main.switch()) for _ in range(20)])
    with pytest.raises(AssertionError) as info:
        with assert_switches(max_blocking_time=0.05, hub_only=True):
            ping_pong()         # but the hub never ran in 0.2 s
    assert str(info.value).startswith("To the hub in ")


def test_assert_switches_lets_the_body_s_exception_through_and_uninstalls():
    before = stolon.gettrace() if hasattr(stolon, "gettrace") else None
    with pytest.raises(KeyError):
        with assert_switches():
            raise KeyError("mine")
    with pytest.raises(AssertionError):
        with assert_switches(max_blocking_time=0.01):
            _busy(0.03)
    if hasattr(stolon, "gettrace"):
        assert stolon.gettrace() is before
