"""Cases for the event loop with Python callbacks: stolon.loop against
gevent's default loop (gevent.get_hub().loop), the shape of API both share.

Each run() does n operations on a loop made (or fetched) before timing, so
the timing sees the watchers and callbacks, not the loop's creation.
"""
import socket

from .base import RateCase
from .registry import register

GROUP = "event loop (Python callbacks)"


def _loop(lib):
    """A loop of the library under test: a fresh stolon loop, gevent's hub loop."""
    if lib.__name__ == "stolon":
        import stolon.loop

        return stolon.loop.loop(default=False)
    return lib.get_hub().loop


def prepare_timers(lib, n):
    loop = _loop(lib)
    fired = [0]

    def cb():
        fired[0] += 1

    def run():
        timer = loop.timer
        for _ in range(n):
            timer(0.0).start(cb)
        loop.run()
        assert fired[0] >= n
        fired[0] = 0
    return run


def prepare_run_callback(lib, n):
    loop = _loop(lib)
    ran = [0]

    def cb():
        ran[0] += 1

    def run():
        run_callback = loop.run_callback
        for _ in range(n):
            run_callback(cb)
        loop.run()
        assert ran[0] >= n
        ran[0] = 0
    return run


def prepare_io_pingpong(lib, n):
    """One byte bounced between the ends of a socketpair, each end read by an
    io watcher whose Python callback answers: n round trips."""
    loop = _loop(lib)

    def run():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        ra, rb = loop.io(a.fileno(), 1), loop.io(b.fileno(), 1)
        trips = [0]

        def on_a():
            a.recv(1)
            trips[0] += 1
            if trips[0] >= n:
                ra.stop()
                rb.stop()
            else:
                a.send(b"x")

        def on_b():
            b.recv(1)
            b.send(b"y")
        ra.start(on_a)
        rb.start(on_b)
        b.send(b"z")
        loop.run()
        ra.close()
        rb.close()
        a.close()
        b.close()
        assert trips[0] == n
    return run


def check_loop(lib):
    for prepare in (prepare_timers, prepare_run_callback, prepare_io_pingpong):
        prepare(lib, 50)()     # each run() asserts that every callback ran


register(RateCase("loop-timers", "timers started and fired", GROUP, "timers/s",
                  prepare_timers, anchors=("gevent",), check=check_loop,
                  about="create a timer(0), start it with a Python callback, run the loop: per timer"))
register(RateCase("loop-run-callback", "run_callback throughput", GROUP, "callbacks/s",
                  prepare_run_callback, anchors=("gevent",), check=check_loop,
                  about="loop.run_callback(cb) then run the loop: per callback"))
register(RateCase("loop-io-pingpong", "io ping-pong, socketpair", GROUP, "round trips/s",
                  prepare_io_pingpong, anchors=("gevent",), check=check_loop,
                  about="a byte bounced between two io watchers' Python callbacks: per round trip"))
