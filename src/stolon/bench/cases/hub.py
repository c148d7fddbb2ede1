"""Cases for the cooperative core: sleep(0), spawn+join, Event and Queue ping-pong,
many sleeping tasks.  stolon and gevent run the same gevent-API body; asyncio and
uvloop run the equivalent coroutine body on their own loop (made once per prepare).

Each run() does n units of work and checks that all of it happened.
"""
import asyncio
import importlib
import random

from .base import RateCase
from .registry import register

GROUP = "cooperative core (hub)"
ANCHORS = ("gevent", "asyncio", "uvloop")
SLEEPERS = 1000          # greenlets taking turns in the sleep(0) case
NAP_TASKS = 20_000       # tasks per unit of the random-sleep case: far more work than 10 ms


def _is_asyncio(lib):
    return lib.__name__ in ("asyncio", "uvloop")


def _new_loop(lib):
    if lib.__name__ == "uvloop":
        return lib.new_event_loop()
    return asyncio.new_event_loop()


def _sub(lib, name):
    return importlib.import_module(lib.__name__ + "." + name)


def _runner(lib, body):
    """run(n) for asyncio-style libs: body(n) is a coroutine run to completion on a
    loop made once."""
    loop = _new_loop(lib)
    return lambda n: loop.run_until_complete(body(n))


# -- sleep(0) among SLEEPERS greenlets: n rounds, every greenlet yields once per round

def prepare_sleep0(lib, n):
    done = [0]
    if _is_asyncio(lib):
        async def turn():
            for _ in range(n):
                await asyncio.sleep(0)
            done[0] += 1

        async def body(_):
            await asyncio.gather(*[turn() for _ in range(SLEEPERS)])
        go = _runner(lib, body)
    else:
        def turn():
            sleep = lib.sleep
            for _ in range(n):
                sleep(0)
            done[0] += 1

        def go(_):
            for _ in range(SLEEPERS):
                lib.spawn_raw(turn)
            while done[0] < SLEEPERS:
                lib.sleep(0.0005)

    def run():
        done[0] = 0
        go(n)
        assert done[0] == SLEEPERS
    return run


# -- spawn n tasks of a trivial function, then join them all

def prepare_spawn_join(lib, n):
    if _is_asyncio(lib):
        async def work(i):
            return i

        async def body(count):
            tasks = [asyncio.ensure_future(work(i)) for i in range(count)]
            return await asyncio.gather(*tasks)
        go = _runner(lib, body)

        def run():
            assert len(go(n)) == n
        return run

    def work(i):
        return i

    def run():
        spawn = lib.spawn
        greenlets = [spawn(work, i) for i in range(n)]
        lib.joinall(greenlets)
        assert greenlets[-1].value == n - 1 and all(g.ready() for g in greenlets)
    return run


# -- two tasks bouncing a token through two Events: n round trips

def prepare_event_pingpong(lib, n):
    if _is_asyncio(lib):
        async def body(count):
            ping, pong = asyncio.Event(), asyncio.Event()
            trips = [0]

            async def other():
                for _ in range(count):
                    await ping.wait()
                    ping.clear()
                    pong.set()

            task = asyncio.ensure_future(other())
            for _ in range(count):
                ping.set()
                await pong.wait()
                pong.clear()
                trips[0] += 1
            await task
            return trips[0]
        go = _runner(lib, body)
    else:
        Event = _sub(lib, "event").Event

        def go(count):
            ping, pong = Event(), Event()
            trips = [0]

            def other():
                for _ in range(count):
                    ping.wait()
                    ping.clear()
                    pong.set()

            g = lib.spawn(other)
            for _ in range(count):
                ping.set()
                pong.wait()
                pong.clear()
                trips[0] += 1
            g.join()
            return trips[0]

    def run():
        assert go(n) == n
    return run


# -- two tasks bouncing items through two Queues: n round trips

def prepare_queue_pingpong(lib, n):
    if _is_asyncio(lib):
        async def body(count):
            there, back = asyncio.Queue(), asyncio.Queue()

            async def other():
                for _ in range(count):
                    back.put_nowait(await there.get())

            task = asyncio.ensure_future(other())
            total = 0
            for i in range(count):
                there.put_nowait(i)
                total += await back.get()
            await task
            return total
        go = _runner(lib, body)
    else:
        Queue = _sub(lib, "queue").Queue

        def go(count):
            there, back = Queue(), Queue()

            def other():
                for _ in range(count):
                    back.put(there.get())

            g = lib.spawn(other)
            total = 0
            for i in range(count):
                there.put(i)
                total += back.get()
            g.join()
            return total

    def run():
        assert go(n) == n * (n - 1) // 2
    return run


# -- n units of NAP_TASKS tasks, each sleeping a random 0-10 ms

def prepare_random_sleeps(lib, n):
    rng = random.Random(1234)
    delays = [rng.uniform(0.0, 0.010) for _ in range(NAP_TASKS)]
    done = [0]
    if _is_asyncio(lib):
        async def nap(d):
            await asyncio.sleep(d)
            done[0] += 1

        async def body(units):
            for _ in range(units):
                await asyncio.gather(*[nap(d) for d in delays])
        go = _runner(lib, body)
    else:
        def nap(d):
            lib.sleep(d)
            done[0] += 1

        def go(units):
            spawn = lib.spawn
            for _ in range(units):
                lib.joinall([spawn(nap, d) for d in delays])

    def run():
        done[0] = 0
        go(n)
        assert done[0] == n * NAP_TASKS
    return run


def _check(prepare, work):
    def check(lib):
        prepare(lib, work)()
    return check


NEEDS = ()   # asyncio has none of the gevent names; each body picks its own API
register(RateCase("hub-sleep0", f"sleep(0) among {SLEEPERS:,} greenlets", GROUP, "sleeps/s",
                  prepare_sleep0, ops_per_iter=SLEEPERS, anchors=ANCHORS, needs=NEEDS,
                  check=_check(prepare_sleep0, 3),
                  about=f"{SLEEPERS} greenlets (tasks) each yielding with sleep(0): per yield"))
register(RateCase("hub-spawn-join", "spawn + join", GROUP, "greenlets/s",
                  prepare_spawn_join, anchors=ANCHORS, needs=NEEDS,
                  check=_check(prepare_spawn_join, 50),
                  about="spawn(f, i) n times, then joinall (gather): per greenlet (task)"))
register(RateCase("hub-event-pingpong", "Event ping-pong", GROUP, "round trips/s",
                  prepare_event_pingpong, anchors=ANCHORS, needs=NEEDS,
                  check=_check(prepare_event_pingpong, 50),
                  about="two greenlets, two Events, set/wait/clear: per round trip (2 wake-ups)"))
register(RateCase("hub-queue-pingpong", "Queue ping-pong", GROUP, "round trips/s",
                  prepare_queue_pingpong, anchors=ANCHORS, needs=NEEDS,
                  check=_check(prepare_queue_pingpong, 50),
                  about="two greenlets, two Queues, put/get: per round trip (2 items)"))
register(RateCase("hub-random-sleeps", f"{NAP_TASKS:,} tasks sleeping 0-10 ms", GROUP, "tasks/s",
                  prepare_random_sleeps, ops_per_iter=NAP_TASKS, anchors=ANCHORS, needs=NEEDS,
                  clock="wall", check=_check(prepare_random_sleeps, 1),
                  about="spawn greenlets that sleep a random 0-10 ms, join them: per task (wall clock)"))
