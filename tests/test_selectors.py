"""stolon.selectors: GeventSelector / DefaultSelector, a selectors.BaseSelector on the
hub's loop with gevent.selectors' semantics (the standard library's keys, maps,
errors and return shapes; cooperative select(); watchers kept from register() to
unregister() or close(), and none left after)."""
import os
import selectors as std_selectors
import socket
import time

import pytest

import stolon
from stolon import selectors as gselectors

EVENT_READ = std_selectors.EVENT_READ
EVENT_WRITE = std_selectors.EVENT_WRITE

# The same file runs against gevent (names switched) as a cross-check.
UNDER_GEVENT = stolon.__name__ != "st" + "olon"


@pytest.fixture(scope="module", autouse=True)
def no_fd_leak():
    stolon.get_hub()   # the hub's own descriptors are not the tests'
    before = len(os.listdir("/proc/self/fd"))
    yield
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.fixture
def active_count():
    """Asserts the hub's loop has as many active watchers after the test as before."""
    loop = stolon.get_hub().loop
    stolon.sleep(0.001)   # lets the hub's own callback machinery go idle
    before = loop.activecnt
    yield
    stolon.sleep(0.001)
    assert loop.activecnt == before


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def sel(active_count):
    selector = gselectors.DefaultSelector()
    yield selector
    selector.close()


def test_module_names():
    assert gselectors.DefaultSelector is gselectors.GeventSelector
    assert issubclass(gselectors.GeventSelector, std_selectors.BaseSelector)
    assert gselectors.EVENT_READ == EVENT_READ and gselectors.EVENT_WRITE == EVENT_WRITE
    assert gselectors.SelectorKey is std_selectors.SelectorKey
    assert set(gselectors.__all__) == {"DefaultSelector", "GeventSelector"}


# -- registration ----------------------------------------------------------------------

def test_register_get_key_get_map(sel, pair):
    a, b = pair
    key = sel.register(a, EVENT_READ, "data")
    assert key == std_selectors.SelectorKey(a, a.fileno(), EVENT_READ, "data")
    assert sel.get_key(a) is key
    assert sel.get_key(a.fileno()) is key
    mapping = sel.get_map()
    assert len(mapping) == 1 and mapping[a] is key and list(mapping) == [a.fileno()]
    key_b = sel.register(b.fileno(), EVENT_READ | EVENT_WRITE)
    assert key_b.fileobj == b.fileno() and key_b.data is None
    assert len(sel.get_map()) == 2


def test_register_errors(sel, pair):
    a, b = pair
    sel.register(a, EVENT_READ)
    with pytest.raises(KeyError, match="already registered"):
        sel.register(a.fileno(), EVENT_WRITE)
    with pytest.raises(ValueError, match="Invalid events"):
        sel.register(b, 0)
    with pytest.raises(ValueError, match="Invalid events"):
        sel.register(b, 4)
    with pytest.raises(ValueError, match="Invalid file object"):
        sel.register(object(), EVENT_READ)
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        sel.register(-1, EVENT_READ)
    with pytest.raises(KeyError):
        sel.get_key(b)
    assert len(sel.get_map()) == 1


def test_register_closed_fd_is_value_error(sel):
    r, w = os.pipe()
    os.close(r)
    try:
        with pytest.raises(ValueError, match="Invalid file descriptor"):
            sel.register(r, EVENT_READ)
    finally:
        os.close(w)
    if not UNDER_GEVENT:
        # deliberate difference: like the standard selectors, a failed register
        # leaves nothing registered (gevent keeps the key, without a watcher)
        assert r not in sel.get_map()


def test_unregister(sel, pair):
    a, b = pair
    key = sel.register(a, EVENT_READ)
    assert sel.unregister(a) is key
    with pytest.raises(KeyError, match="is not registered"):
        sel.unregister(a)
    with pytest.raises(KeyError):
        sel.get_key(a)
    b.sendall(b"x")
    assert sel.select(0) == []


def test_unregister_after_the_file_is_closed(sel):
    a, b = socket.socketpair()
    key = sel.register(a, EVENT_READ)
    a.close()
    b.close()
    # a.fileno() is now -1: the key is found by the object itself
    assert sel.unregister(a) is key
    assert len(sel.get_map()) == 0


def test_modify_events_and_data(sel, pair):
    a, b = pair
    sel.register(a, EVENT_READ, "r")
    assert sel.select(0) == []
    key = sel.modify(a, EVENT_WRITE, "w")
    assert (key.events, key.data) == (EVENT_WRITE, "w")
    assert sel.get_key(a) is key
    assert sel.select(0) == [(key, EVENT_WRITE)]
    key2 = sel.modify(a, EVENT_WRITE, "other data")
    assert (key2.events, key2.data) == (EVENT_WRITE, "other data")
    assert sel.select(0) == [(key2, EVENT_WRITE)]
    b.sendall(b"x")
    key3 = sel.modify(a, EVENT_READ | EVENT_WRITE, None)
    assert sel.select(0) == [(key3, EVENT_READ | EVENT_WRITE)]
    with pytest.raises(KeyError, match="is not registered"):
        sel.modify(b, EVENT_READ)


def test_modify_while_a_watcher_waits(sel, pair):
    a, b = pair
    sel.register(a, EVENT_READ)
    assert sel.select(0) == []      # the watcher is now started
    key = sel.modify(a, EVENT_WRITE)
    assert sel.select(1) == [(key, EVENT_WRITE)]


# -- select ----------------------------------------------------------------------------

def test_select_socketpair_read_and_write(sel, pair):
    a, b = pair
    key_a = sel.register(a, EVENT_READ)
    key_b = sel.register(b, EVENT_WRITE)
    assert sel.select(0) == [(key_b, EVENT_WRITE)]
    b.sendall(b"x")
    result = sel.select(1)
    assert sorted(result, key=lambda kv: kv[0].fd) == sorted(
        [(key_a, EVENT_READ), (key_b, EVENT_WRITE)], key=lambda kv: kv[0].fd)
    assert a.recv(1) == b"x"


def test_select_reports_only_registered_events(sel, pair):
    a, b = pair
    key = sel.register(a, EVENT_READ)
    b.sendall(b"x")
    assert sel.select(1) == [(key, EVENT_READ)]   # a is writable too


def test_select_timeout_zero_and_negative_do_not_block(sel, pair):
    a, b = pair
    sel.register(a, EVENT_READ)
    start = time.monotonic()
    assert sel.select(0) == []
    assert sel.select(-1) == []
    assert time.monotonic() - start < 0.5


def test_select_positive_timeout(sel, pair):
    a, b = pair
    sel.register(a, EVENT_READ)
    start = time.monotonic()
    assert sel.select(0.05) == []
    assert 0.045 <= time.monotonic() - start < 1


def test_select_none_woken_by_another_greenlet(sel, pair):
    a, b = pair
    key = sel.register(a, EVENT_READ, "k")
    ran = []

    def send():
        ran.append(True)
        b.sendall(b"x")

    stolon.spawn_later(0.02, send)
    start = time.monotonic()
    assert sel.select(None) == [(key, EVENT_READ)]
    assert ran == [True]
    assert time.monotonic() - start < 1


def test_select_keeps_readiness_between_calls(sel, pair):
    a, b = pair
    key = sel.register(a, EVENT_READ)
    assert sel.select(0) == []
    b.sendall(b"x")
    stolon.sleep(0.01)      # the loop sees it while nobody selects
    ran = []
    stolon.spawn(ran.append, "other")
    assert sel.select(0) == [(key, EVENT_READ)]
    assert ran == ["other"]  # answering from what was recorded still yields


def test_select_hangup_is_readable(sel, pair):
    a, b = pair
    key = sel.register(a, EVENT_READ)
    b.close()
    assert sel.select(1) == [(key, EVENT_READ)]
    assert a.recv(1) == b""


def test_select_interrupted_by_timeout(sel, pair):
    a, b = pair
    key = sel.register(a, EVENT_READ)
    with pytest.raises(stolon.Timeout):
        with stolon.Timeout(0.02):
            sel.select()
    b.sendall(b"x")
    assert sel.select(1) == [(key, EVENT_READ)]


def test_several_greenlets_with_their_own_selectors(active_count):
    pairs = [socket.socketpair() for _ in range(4)]
    woke = []

    def wait_on(i):
        with gselectors.DefaultSelector() as selector:
            selector.register(pairs[i][0], EVENT_READ, i)
            for key, events in selector.select(2):
                woke.append((key.data, events))

    try:
        waiters = [stolon.spawn(wait_on, i) for i in range(4)]
        stolon.sleep(0.01)
        for i in (3, 1, 0, 2):
            pairs[i][1].sendall(b"x")
            stolon.sleep(0.01)
        stolon.joinall(waiters, timeout=2)
        assert woke == [(3, EVENT_READ), (1, EVENT_READ), (0, EVENT_READ), (2, EVENT_READ)]
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# -- close -----------------------------------------------------------------------------

def test_close_releases_every_watcher(active_count, pair):
    a, b = pair
    selector = gselectors.GeventSelector()
    selector.register(a, EVENT_READ)
    selector.register(b, EVENT_READ)
    assert selector.select(0) == []   # both watchers started and left waiting
    selector.close()
    assert selector.get_map() is None
    selector.close()                  # twice is fine


def test_unregister_releases_started_watchers(active_count, pair):
    a, b = pair
    with gselectors.DefaultSelector() as selector:
        selector.register(a, EVENT_READ)
        selector.register(b, EVENT_WRITE)
        assert len(selector.select(0)) == 1
        selector.unregister(a)
        selector.unregister(b)
        assert len(selector.get_map()) == 0
    assert selector.get_map() is None


def test_context_manager_closes(active_count, pair):
    a, b = pair
    with gselectors.DefaultSelector() as selector:
        selector.register(a, EVENT_READ)
        selector.select(0)
    assert selector.get_map() is None
