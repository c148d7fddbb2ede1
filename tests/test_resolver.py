"""stolon.resolver.thread: the thread resolver (lookups in the hub's thread pool).

Only names the C library answers locally (/etc/hosts, numeric addresses, the reserved
'.invalid' TLD) are used: there is no network here.  Cross-checked against gevent 26.9's
``gevent.resolver.thread.Resolver`` (names switched).
"""
import os
import socket
import threading
import time

import pytest

import stolon
from stolon.hub import get_hub

from stolon.resolver.thread import Resolver

INVALID_NAME = "no-such-host.invalid"


def _os_threads():
    return len(os.listdir("/proc/self/task"))


def _fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="module", autouse=True)
def _no_leaks():
    get_hub()
    fds = _fd_count()
    threads = _os_threads()
    yield
    hub = get_hub()
    if hub._threadpool is not None:
        hub._threadpool.kill()
        hub._threadpool = None
    # gevent's resolver holds the pool it was made with: a killed pool must not stay there
    hub._resolver = None
    deadline = time.monotonic() + 2
    while _os_threads() != threads and time.monotonic() < deadline:
        stolon.sleep(0.005)
    assert _os_threads() <= threads
    assert _fd_count() == fds


@pytest.fixture
def resolver():
    return get_hub().resolver


def test_resolver_is_cached_on_the_hub(resolver):
    assert resolver is get_hub().resolver is get_hub()._resolver
    assert socket.gaierror in get_hub().NOT_ERROR


def test_gethostbyname(resolver):
    assert resolver.gethostbyname("localhost") == "127.0.0.1"
    assert resolver.gethostbyname("127.0.0.1") == "127.0.0.1"


def test_gethostbyname_ex(resolver):
    name, aliases, addresses = resolver.gethostbyname_ex("127.0.0.1")
    assert addresses == ["127.0.0.1"]
    assert resolver.gethostbyname_ex("127.0.0.1") == socket.gethostbyname_ex("127.0.0.1")


def test_getaddrinfo(resolver):
    infos = resolver.getaddrinfo("127.0.0.1", 80, socket.AF_INET, socket.SOCK_STREAM)
    assert [info[4] for info in infos] == [("127.0.0.1", 80)]
    assert infos[0][0] == socket.AF_INET
    infos = resolver.getaddrinfo("localhost", "80", family=socket.AF_INET, type=socket.SOCK_STREAM)
    assert ("127.0.0.1", 80) in [info[4] for info in infos]


def test_invalid_name_raises_gaierror_quietly(resolver, capsys):
    with pytest.raises(socket.gaierror):
        resolver.getaddrinfo(INVALID_NAME, 80)
    with pytest.raises(socket.gaierror):
        resolver.gethostbyname(INVALID_NAME)
    # lookup failures are answers, not bugs: the hub does not print them
    assert capsys.readouterr().err == ""


def test_gethostbyaddr(resolver):
    name, aliases, addresses = resolver.gethostbyaddr("127.0.0.1")
    assert addresses == ["127.0.0.1"]
    assert (name, aliases, addresses) == socket.gethostbyaddr("127.0.0.1")


def test_getnameinfo(resolver):
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    assert resolver.getnameinfo(("127.0.0.1", 8080), flags) == ("127.0.0.1", "8080")
    assert resolver.getnameinfo(("127.0.0.1", 80), 0) == socket.getnameinfo(("127.0.0.1", 80), 0)


def test_bad_arguments_raise_in_the_caller(resolver, capsys):
    with pytest.raises(TypeError):
        resolver.getnameinfo("127.0.0.1", 0)
    capsys.readouterr()


@pytest.mark.skipif(stolon.__name__ == "gevent",
                    reason="gevent's thread resolver has no getfqdn (gevent.socket does)")
def test_getfqdn(resolver):
    assert resolver.getfqdn("127.0.0.1") == socket.getfqdn("127.0.0.1")
    assert resolver.getfqdn("") == socket.getfqdn("")
    assert resolver.getfqdn(INVALID_NAME) == INVALID_NAME


def test_lookup_lets_other_greenlets_run(resolver):
    # a greenlet spawned before the lookup runs while the caller waits for the
    # thread: a lookup that blocked the hub would return first
    order = []
    g = stolon.spawn(order.append, "greenlet")
    order.append(resolver.gethostbyname("localhost"))
    g.join()
    assert order == ["greenlet", "127.0.0.1"]


def test_concurrent_lookups(resolver):
    names = ["localhost", "127.0.0.1"] * 10
    greenlets = [stolon.spawn(resolver.gethostbyname, name) for name in names]
    stolon.joinall(greenlets, timeout=2)
    assert [g.value for g in greenlets] == ["127.0.0.1"] * len(names)


def test_resolver_of_another_thread_hub():
    box = {}

    def in_thread():
        hub = get_hub()
        box["address"] = hub.resolver.gethostbyname("localhost")
        box["separate"] = hub.resolver is not box["main"]
        hub.destroy(True)
        box["closed"] = hub._resolver is None and hub._threadpool is None

    box["main"] = get_hub().resolver
    t = threading.Thread(target=in_thread)
    t.start()
    t.join(2)
    del box["main"]
    assert box == {"address": "127.0.0.1", "separate": True, "closed": True}


def test_repr_and_close():
    resolver = Resolver()
    assert "pool=<ThreadPool" in repr(resolver)
    resolver.close()


# -- the blocking resolver and the old module name ---------------------------------

def test_blocking_resolver_answers_as_the_stdlib_in_the_calling_thread():
    from stolon.resolver.blocking import Resolver as BlockingResolver
    resolver = BlockingResolver()
    assert resolver.gethostbyname("localhost") == socket.gethostbyname("localhost")
    assert resolver.getaddrinfo("127.0.0.1", 80, 0, socket.SOCK_STREAM) == \
        [tuple(int(x) if isinstance(x, int) else x for x in info)
         for info in socket.getaddrinfo("127.0.0.1", 80, 0, socket.SOCK_STREAM)]
    with pytest.raises(socket.gaierror):
        resolver.gethostbyname(INVALID_NAME)
    resolver.close()


def test_a_hub_takes_the_blocking_resolver_by_assignment():
    from stolon.resolver.blocking import Resolver as BlockingResolver
    import stolon.socket as ssocket
    hub = get_hub()
    saved = hub._resolver
    hub.resolver = BlockingResolver()
    try:
        assert ssocket.gethostbyname("localhost") == "127.0.0.1"
        assert isinstance(hub.resolver, BlockingResolver)
    finally:
        hub.resolver = saved


def test_resolver_thread_is_the_old_name_of_resolver_thread():
    import importlib
    import sys
    sys.modules.pop("stolon.resolver_thread", None)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("stolon.resolver_thread")
    assert old.Resolver is Resolver and old.__all__ == ["Resolver"]


@pytest.mark.skipif(stolon.__name__ != "st" + "olon",
                    reason="gevent's resolver keeps the pool it was made with, killed or not")
def test_the_resolver_uses_the_hubs_pool_of_the_moment():
    hub = get_hub()
    resolver = hub.resolver
    old = hub.threadpool
    assert resolver.pool is old
    old.kill()
    del hub.threadpool
    assert resolver.gethostbyname("localhost") == "127.0.0.1"
    assert resolver.pool is hub.threadpool is not old
