"""Leak checks by repetition: object counts (gc) and RSS (psutil) stay flat.

Each check warms up, measures, runs up to a million cycles in batches and
measures again.  The number of cycles is capped by a time budget (never
asserted: it only bounds the work), with a floor of MIN_CYCLES so that every
run has the statistical power described below.

Tolerances, and why they still catch leaks (measured noise against real
greenlet on 3.9/3.11/3.13: 0 objects and at most 20 KiB of RSS per check):

* OBJ_TOL = 50 objects.  Leaking one object per cycle gives >= 50,000 (the
  smallest floor), one per five hundred cycles >= 100.
* RSS_TOL = 1 MiB.  The allocator keeps freed arenas and glibc trims lazily;
  the smallest heap leak glibc can make is a 32-byte chunk, and
  32 B x 50,000 cycles = 1.5 MiB.
"""
import gc
import threading
import time

import pytest

from conftest import glet_settle
from stolon import greenlet, getcurrent, GreenletExit

psutil = pytest.importorskip("psutil")

OBJ_TOL = 50
RSS_TOL = 1024 * 1024
MIN_CYCLES = 100_000
MAX_CYCLES = 1_000_000
BUDGET_S = 5.0


def measure():
    for _ in range(3):
        gc.collect()
    return len(gc.get_objects()), psutil.Process().memory_info().rss


def assert_flat(run_batch, batch=50_000, max_cycles=MAX_CYCLES, min_cycles=MIN_CYCLES,
                budget=BUDGET_S, obj_tol=OBJ_TOL, rss_tol=RSS_TOL):
    """run_batch(n) performs n cycles; checks objects and RSS do not grow."""
    glet_settle()
    run_batch(batch)  # warm up caches, free lists, arenas
    objs0, rss0 = measure()
    done = 0
    start = time.monotonic()
    while done < max_cycles and (done < min_cycles or time.monotonic() - start < budget):
        run_batch(batch)
        done += batch
    objs1, rss1 = measure()
    print("LEAKCHECK cycles=%d objs=%+d rss=%+d" % (done, objs1 - objs0, rss1 - rss0))
    assert objs1 - objs0 <= obj_tol, "objects grew by %d over %d cycles" % (objs1 - objs0, done)
    assert rss1 - rss0 <= rss_tol, "RSS grew by %d bytes over %d cycles" % (rss1 - rss0, done)
    return done


def test_create_switch_finish_cycles():
    def f():
        return 1

    def batch(n):
        for _ in range(n):
            greenlet(f).switch()
    assert assert_flat(batch) >= MIN_CYCLES


def test_switches_between_two_greenlets():
    main = getcurrent()

    def loop():
        while True:
            main.switch()

    g = greenlet(loop)
    g.switch()

    def batch(n):
        sw = g.switch
        for _ in range(n // 2):  # a round trip is two switches
            sw()
    assert_flat(batch, batch=100_000, min_cycles=MAX_CYCLES, budget=0)
    g.throw()
    assert g.dead


def test_switches_with_values():
    main = getcurrent()

    def loop():
        v = None
        while True:
            v = main.switch(v, k=v)

    g = greenlet(loop)
    g.switch()

    def batch(n):
        sw = g.switch
        for i in range(n // 2):
            sw(i)
    assert_flat(batch, batch=100_000, max_cycles=500_000, min_cycles=500_000)
    g.throw()


def test_kill_on_dealloc_cycles():
    main = getcurrent()

    def body():
        try:
            main.switch()
        except GreenletExit:
            raise

    def batch(n):
        for _ in range(n):
            g = greenlet(body)
            g.switch()
            del g
    assert_flat(batch, batch=10_000, min_cycles=50_000, budget=4.0)


def test_throw_cycles():
    main = getcurrent()

    def body():
        while True:
            try:
                main.switch()
            except KeyError:
                pass

    g = greenlet(body)
    g.switch()

    def batch(n):
        t = g.throw
        for _ in range(n):
            t(KeyError)
    assert_flat(batch, batch=10_000, min_cycles=50_000, budget=4.0)
    g.throw()


def test_exception_in_run_cycles():
    def boom():
        raise ValueError("x")

    def batch(n):
        for _ in range(n):
            try:
                greenlet(boom).switch()
            except ValueError:
                pass
    assert_flat(batch, batch=10_000, min_cycles=50_000, budget=4.0)


def test_deep_stack_switch_cycles():
    # The stack slices copied to the heap on every switch must be reused/freed.
    main = getcurrent()

    def rec(n):
        if n == 0:
            while True:
                main.switch()
        return rec(n - 1)

    g = greenlet(rec)
    g.switch(100)

    def batch(n):
        sw = g.switch
        for _ in range(n // 2):
            sw()
    assert_flat(batch, batch=50_000, min_cycles=100_000, budget=3.0)
    g.throw()


def test_context_and_tracing_cycles(glet_clean_trace):
    import contextvars
    var = contextvars.ContextVar("glet_leak_var")

    def body():
        var.set(1)
        return getcurrent().gr_context

    def tracer(event, args):
        pass

    def batch(n):
        from stolon import settrace
        settrace(tracer)
        try:
            for _ in range(n):
                g = greenlet(body)
                g.gr_context = contextvars.Context()
                g.switch()
        finally:
            settrace(None)
    assert_flat(batch, batch=10_000, min_cycles=50_000, budget=4.0)


def test_threads_with_greenlets_are_released(glet_threads):
    def worker():
        gs = [greenlet(lambda: getcurrent().parent.switch()) for _ in range(10)]
        for g in gs:
            g.switch()
        getcurrent().extra = [object() for _ in range(10)]

    def batch(n):
        for _ in range(n):
            t = threading.Thread(target=worker)
            t.start()
            t.join(10)
        glet_settle()
    assert_flat(batch, batch=50, min_cycles=300, max_cycles=300, budget=0,
                rss_tol=RSS_TOL)


def test_arg_and_kwarg_refcounts_flat():
    import sys
    args = ("a", "b", "c")
    kwargs = {"x": 1}
    rc_args = sys.getrefcount(args)
    rc_kwargs = sys.getrefcount(kwargs)
    g = greenlet(lambda *a, **k: getcurrent().parent.switch(*a, **k))
    g2 = greenlet(lambda **k: getcurrent().parent.switch(**k))
    for _ in range(1000):
        g.switch(*args)
        g2.switch(**kwargs)
    assert sys.getrefcount(args) == rc_args
    assert sys.getrefcount(kwargs) == rc_kwargs
