"""stolon.loop lifetimes: dropped watchers, destroy, GC, fd and object leaks, threads, scale."""
import gc
import socket
import sys
import threading
import weakref

import pytest

import stolon.loop as L
from conftest import loop_fd_count


def test_dropped_active_watcher_keeps_running(loop_any):
    got = []
    t = loop_any.timer(0.001)
    t.start(got.append, 1)
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is not None  # the loop owns it while active
    loop_any.run()
    assert got == [1]
    gc.collect()
    assert ref() is None  # released once it stopped


def test_dropped_repeating_watcher_stopped_via_close(loop_any):
    n = []
    t = loop_any.timer(0, 0.001)

    def cb(w):
        n.append(1)
        if len(n) == 3:
            w.close()
    t.start(cb, t)
    ref = weakref.ref(t)
    del t
    loop_any.run()
    gc.collect()
    assert len(n) == 3 and ref() is None


def test_destroy_with_active_watchers(loop_any):
    a, b = socket.socketpair()
    try:
        ws = [loop_any.timer(30), loop_any.io(a.fileno(), L.READ), loop_any.idle(),
              loop_any.prepare(), loop_any.check(), loop_any.async_(), loop_any.fork()]
        for w in ws:
            w.start(print)
        refs = [weakref.ref(w) for w in ws]
        loop_any.destroy()
        for w in ws:
            assert not w.active and not w.pending
            with pytest.raises(ValueError, match="destroyed loop"):
                w.start(print)
            w.stop()  # harmless
            with pytest.raises(ValueError):
                ws[5].send()
        del ws, w
        gc.collect()
        assert all(r() is None for r in refs)
    finally:
        a.close()
        b.close()


def test_cycle_loop_watcher_collected():
    lp = L.loop("poll", default=False)
    t = lp.timer(30)
    t.start(lambda: lp)  # cycle: loop -> timer -> callback -> loop
    lref = weakref.ref(lp)
    del lp, t
    gc.collect()
    assert lref() is None


def test_watcher_referencing_itself_collected(loop_any):
    t = loop_any.timer(30)
    t.start(lambda: t)
    t.stop()
    r = weakref.ref(t)
    del t
    gc.collect()
    assert r() is None


def test_loops_in_several_threads():
    results = {}

    def worker(i):
        lp = L.loop("epoll" if i % 2 else "poll", default=False)
        got = []
        for j in range(50):
            lp.timer(0.001 * (j % 5)).start(got.append, j)
        lp.run_callback(got.append, "cb")
        lp.run()
        results[i] = (got[0], len(got), lp.default)
        lp.destroy()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    assert all(r == ("cb", 51, False) for r in results.values())


def test_ten_thousand_io_watchers(loop_any):
    a, b = socket.socketpair()
    try:
        hits = []
        ws = [loop_any.io(a.fileno(), L.WRITE) for _ in range(10000)]

        def cb(w):
            hits.append(1)
            w.stop()
        for w in ws:
            w.start(cb, w)
        loop_any.run()
        assert len(hits) == 10000
        assert not any(w.active for w in ws)
    finally:
        a.close()
        b.close()


def test_ten_thousand_io_watchers_on_distinct_fds(loop_any):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(2000, soft // 2 - 50)
    pairs = [socket.socketpair() for _ in range(n // 2)]
    try:
        hits = []
        ws = []
        for a, b in pairs:
            for s in (a, b):
                w = loop_any.io(s.fileno(), L.WRITE)
                w.start(lambda w=w: (hits.append(1), w.stop()))
                ws.append(w)
        loop_any.run()
        assert len(hits) == len(ws)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_million_timers_started_and_stopped(loop_any):
    ts = [loop_any.timer(1 + (i % 100) * 0.01) for i in range(1000)]
    cb = print
    for _ in range(1000):
        for t in ts:
            t.start(cb)
        for t in ts:
            t.stop()
    assert loop_any.activecnt == 0
    assert loop_any.run() is False


def test_fd_count_unchanged_after_many_lifetimes():
    before = loop_fd_count()
    if before is None:
        pytest.skip("no /proc/self/fd")
    a, b = socket.socketpair()
    try:
        for i in range(10000):
            lp = L.loop("epoll" if i % 2 else "poll", default=False) if i % 100 == 0 else lp
            w = lp.io(a.fileno(), L.WRITE)
            w.start(lambda w=w: w.stop())
            t = lp.timer(0)
            t.start(lambda: None)
            lp.run(nowait=True)
            w.close()
            t.close()
            if i % 100 == 99:
                lp.destroy()
    finally:
        a.close()
        b.close()
    gc.collect()
    assert loop_fd_count() == before


def _count_objects():
    gc.collect()
    counts = {}
    for o in gc.get_objects():
        name = type(o).__name__
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_gc_object_counts_flat(loop_any):
    def churn():
        for _ in range(2000):
            w = loop_any.timer(0)
            w.start(lambda *a: None, 1, 2)
            c = loop_any.run_callback(lambda x: x, 3)
            i = loop_any.idle()
            i.start(i.stop)
            loop_any.run()
            del w, c, i
    churn()
    before = _count_objects()
    churn()
    after = _count_objects()
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0) > 10}
    assert not grown, grown


def test_refcounts_flat(loop_any):
    if not hasattr(sys, "gettotalrefcount"):
        cb = lambda *a: None  # noqa: E731
        arg = object()
        base = sys.getrefcount(cb), sys.getrefcount(arg)
        for _ in range(1000):
            t = loop_any.timer(0)
            t.start(cb, arg)
            loop_any.run()
            t.start(cb, arg)
            t.stop()
            t.start(cb, arg)
            t.close()
        del t
        assert (sys.getrefcount(cb), sys.getrefcount(arg)) == base
