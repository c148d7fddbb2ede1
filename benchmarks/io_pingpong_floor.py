"""How fast could any loop run the loop-io-pingpong case?

The case's two Python callbacks (recv one byte, send one byte) cost the same
under every loop.  This script times them called directly, one after the
other with no loop at all, beside the case itself under stolon's loop and
gevent's, in interleaved rounds.  A loop whose own cost were zero would take
the callbacks' time per round trip, so gevent's time divided by the
callbacks' time is the highest stolon/gevent ratio the case can show.

Both ends are registered in an epoll set while the callbacks run alone, as
they are under a loop: a send then pays the same wake-up work in the kernel.

    python benchmarks/io_pingpong_floor.py [rounds] [round trips per round]
"""
import select
import socket
import statistics
import sys
import time

import gevent

from stolon.bench.cases.loop import prepare_io_pingpong


def callbacks_alone(n):
    """The case's callbacks, called in turn without a loop: seconds for n round trips."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    ep = select.epoll()
    ep.register(a.fileno(), select.EPOLLIN)
    ep.register(b.fileno(), select.EPOLLIN)
    trips = [0]

    def on_a():
        a.recv(1)
        trips[0] += 1
        if trips[0] >= n:
            pass
        else:
            a.send(b"x")

    def on_b():
        b.recv(1)
        b.send(b"y")
    b.send(b"z")
    start = time.process_time()
    for _ in range(n - 1):
        on_a()
        on_b()
    on_a()
    elapsed = time.process_time() - start
    assert trips[0] == n
    ep.close()
    a.close()
    b.close()
    return elapsed


def timed(run):
    start = time.process_time()
    run()
    return time.process_time() - start


def main():
    import stolon

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    runs = {"stolon": prepare_io_pingpong(stolon, n), "gevent": prepare_io_pingpong(gevent, n)}
    times = {"callbacks alone": [], "stolon": [], "gevent": []}
    for _ in range(rounds):
        times["callbacks alone"].append(callbacks_alone(n))
        for name, run in runs.items():
            times[name].append(timed(run))
    us = {name: statistics.median(t) / n * 1e6 for name, t in times.items()}
    for name, value in us.items():
        spread = (max(times[name]) - min(times[name])) / n * 1e6 / 2
        print("%-16s %6.2f us per round trip  (+- %.2f)" % (name, value, spread))
    print("stolon/gevent now:                   %.2f" % (us["gevent"] / us["stolon"]))
    print("ceiling (a loop that costs nothing): %.2f" % (us["gevent"] / us["callbacks alone"]))
    print("stolon's own cost per round trip:    %.2f us (gevent's %.2f us)"
          % (us["stolon"] - us["callbacks alone"], us["gevent"] - us["callbacks alone"]))


if __name__ == "__main__":
    main()
